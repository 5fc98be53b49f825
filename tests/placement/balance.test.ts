// Policies 4 and 5: replica and leader balance (zones respected, no oscillation).

import { schedule, type NodeInfo, type RangeInfo } from '../../src/placement';
import { cluster, leaderCounts, node, range, replicaCounts, settle, stepsOf, TEST_CONFIG } from './fixtures';

/** `count` ranges over nodes 1..n (zones by id modulo `zones`), voters in distinct zones, round-robin. */
function spreadRanges(count: number, nodeIds: readonly number[], zones: number): RangeInfo[] {
  const ranges: RangeInfo[] = [];
  for (let i = 0; i < count; i++) {
    const voters: number[] = [];
    for (let k = 0; voters.length < 3; k++) {
      const id = nodeIds[(i + k * 7) % nodeIds.length]!;
      if (!voters.includes(id) && !voters.some((v) => v % zones === id % zones)) voters.push(id);
    }
    ranges.push(range(i + 1, voters, { leader: voters[i % 3] }));
  }
  return ranges;
}

function zonesOf(nodes: readonly NodeInfo[], info: RangeInfo): string[] {
  return info.replicas.map((replica) => nodes.find((candidate) => candidate.id === replica.nodeId)!.zone);
}

describe('replica balance', () => {
  const old = [1, 2, 3, 4, 5, 6].map((id) => node(id, `z${id % 3}`));
  const ranges = spreadRanges(30, [1, 2, 3, 4, 5, 6], 3);

  it('moves replicas onto an empty node, inside its zone when three zones hold the three voters of every range', () => {
    const nodes = [...old, node(7, 'z1')];
    const state = cluster(nodes, ranges);
    const { operators } = schedule(state, TEST_CONFIG);
    expect(operators.length).toBeGreaterThan(0);
    for (const operator of operators) {
      expect(operator.purpose).toBe('balance-replicas');
      const steps = stepsOf(operator);
      expect(steps[0]).toBe('add-learner 7');
      expect(steps[1]).toBe('promote-learner 7');
      expect(steps[steps.length - 1]).toMatch(/^remove-replica /);
    }
    const { state: after, violations } = settle(state);
    expect(violations).toEqual([]);
    // Each zone holds one voter of every range: 30 replicas per zone, balanced inside it.
    const counts = replicaCounts(after);
    expect([1, 4, 7].map((id) => counts.get(id))).toEqual([10, 10, 10]);
    expect([2, 5, 3, 6].map((id) => counts.get(id))).toEqual([15, 15, 15, 15]);
    for (const info of after.ranges) expect(new Set(zonesOf(nodes, info)).size).toBe(3);
  });

  it('balances across zones when there are more zones than voters', () => {
    const five = [1, 2, 3, 4, 5].map((id) => node(id, `z${id}`));
    const ranges5 = Array.from({ length: 20 }, (_, i) => range(i + 1, [1 + (i % 2), 3 + (i % 2), 5]));
    const nodes = [...five, node(6, 'z1'), node(7, 'z3')];
    const { state: after, violations } = settle(cluster(nodes, ranges5));
    expect(violations).toEqual([]);
    const counts = [...replicaCounts(after).values()];
    // 60 replicas over 7 nodes: 8 or 9 each, within the 4 % band once integers allow.
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    for (const info of after.ranges) expect(new Set(zonesOf(nodes, info)).size).toBe(3);
  });

  it('issues nothing for a balanced cluster', () => {
    const { operators } = schedule(cluster(old, ranges), TEST_CONFIG);
    expect(operators).toEqual([]);
  });

  it('gives a node of weight 2 twice the replicas', () => {
    const nodes = [node(1, 'z0'), node(2, 'z1'), node(3, 'z2'), node(4, 'z0', 'up', { weight: 2 }), node(5, 'z1', 'up', { weight: 2 }), node(6, 'z2', 'up', { weight: 2 })];
    const { state, violations } = settle(cluster(nodes, spreadRanges(60, [1, 2, 3, 4, 5, 6], 3)));
    expect(violations).toEqual([]);
    const counts = replicaCounts(state);
    for (const [light, heavy] of [[1, 4], [2, 5], [3, 6]] as const) {
      expect(counts.get(heavy)! / counts.get(light)!).toBeGreaterThan(1.7);
      expect(counts.get(heavy)! / counts.get(light)!).toBeLessThan(2.3);
    }
  });

  it('moves a voter out of a zone that holds two voters of the range when a third zone is free', () => {
    const nodes = [node(1, 'a'), node(2, 'a'), node(3, 'b'), node(4, 'c')];
    const { operators } = schedule(cluster(nodes, [range(1, [1, 2, 3], { leader: 1 })]), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['add-learner 4', 'promote-learner 4', 'remove-replica 2']);
  });

  it('never moves replicas of a range with a replica on a suspect node', () => {
    const nodes = [...old.slice(0, 5), node(6, 'z0', 'suspect'), node(7, 'z1')];
    const { operators } = schedule(cluster(nodes, ranges), TEST_CONFIG);
    const moves = operators.filter((operator) => operator.purpose === 'balance-replicas');
    expect(moves.length).toBeGreaterThan(0);
    for (const operator of moves) {
      const replicas = ranges.find((info) => info.id === operator.rangeId)!.replicas;
      expect(replicas.some((replica) => replica.nodeId === 6)).toBe(false);
    }
  });
});

describe('leader balance', () => {
  const nodes = [1, 2, 3, 4, 5, 6].map((id) => node(id, `z${id % 3}`));

  it('transfers leaderships from a node that leads everything to voters with fewer', () => {
    const ranges = spreadRanges(30, [1, 2, 3, 4, 5, 6], 3).map((info) => ({ ...info, leaderNodeId: info.replicas[0]!.nodeId }));
    const skewed = ranges.map((info) => (info.replicas.some((replica) => replica.nodeId === 1) ? { ...info, leaderNodeId: 1 } : info));
    const state = cluster(nodes, skewed);
    const { operators } = schedule(state, TEST_CONFIG);
    expect(operators.length).toBeGreaterThan(0);
    for (const operator of operators) {
      expect(operator.purpose).toBe('balance-leaders');
      expect(stepsOf(operator)).toEqual([expect.stringMatching(/^transfer-leader 1->[2-6]$/)]);
    }
    const { state: after, violations } = settle(state);
    expect(violations).toEqual([]);
    const counts = [...leaderCounts(after).values()];
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(2);
  });

  it('never hands leadership to a draining, suspect or down voter', () => {
    // Node 1 leads 10 ranges whose other voters are 2 (draining) and 3 (suspect); 4..6 lead nothing.
    const mixed = [node(1, 'a'), node(2, 'b', 'draining'), node(3, 'c', 'suspect'), node(4, 'a'), node(5, 'b'), node(6, 'c')];
    const ranges = Array.from({ length: 10 }, (_, i) => range(i + 1, [1, 2, 3], { leader: 1 }));
    const { operators } = schedule(cluster(mixed, ranges), TEST_CONFIG);
    for (const operator of operators) {
      for (const step of operator.steps) {
        if (step.kind === 'transfer-leader') expect([4, 5, 6]).toContain(step.toNodeId);
      }
    }
  });
});

describe('balance with learners and limits', () => {
  it('balances voters and learners separately, so a new node also gets voters (and can lead)', () => {
    const rules = { votersPerRange: 3, learners: 'zones-without-voter' as const };
    // Zones a..d, two nodes each; every range has voters in three zones and a learner in the fourth.
    const nodes = ['a', 'b', 'c', 'd'].flatMap((zone, z) => [node(z * 2 + 1, zone), node(z * 2 + 2, zone)]);
    const ranges = Array.from({ length: 24 }, (_, i) => {
      const zones = [0, 1, 2, 3].filter((z) => z !== i % 4);
      const voters = zones.map((z) => z * 2 + 1 + (i % 2));
      return range(i + 1, voters, { learners: [(i % 4) * 2 + 1 + ((i + 1) % 2)], leader: voters[i % 3] });
    });
    const withNew = [...nodes, node(9, 'a')];
    const { state, violations } = settle(cluster(withNew, ranges, { rules }));
    expect(violations).toEqual([]);
    const voters = new Map<number, number>();
    const learners = new Map<number, number>();
    for (const info of state.ranges) {
      for (const replica of info.replicas) {
        const counts = replica.role === 'voter' ? voters : learners;
        counts.set(replica.nodeId, (counts.get(replica.nodeId) ?? 0) + 1);
      }
    }
    // Zone a holds 18 voters and 6 learners over nodes 1, 2, 9.
    expect([1, 2, 9].map((id) => voters.get(id) ?? 0)).toEqual([6, 6, 6]);
    expect([1, 2, 9].map((id) => learners.get(id) ?? 0)).toEqual([2, 2, 2]);
    expect(leaderCounts(state).get(9)).toBeGreaterThan(0);
  });

  it('leaves a quarter of a node’s replica limit to repair and drain', () => {
    const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c'), node(4, 'a'), node(5, 'b'), node(6, 'c'), node(7, 'c')];
    const ranges = Array.from({ length: 12 }, (_, i) => {
      const voters = [1 + (i % 2) * 3, 2 + (i % 2) * 3, 3 + (i % 2) * 3];
      return range(i + 1, voters, { leader: voters[Math.floor(i / 2) % 3] });
    });
    const config = { ...TEST_CONFIG, maxInFlightPerNode: 4 };
    const first = schedule(cluster(nodes, ranges), config);
    const ontoSeven = first.operators.filter((operator) => operator.steps.some((step) => step.kind === 'add-learner' && step.nodeId === 7));
    expect(ontoSeven).toHaveLength(3);
    // With those in flight, node 3 dies: its replacement can still go to node 7.
    const inFlight = first.operators.map((operator) => ({ operator, nextStep: 0 }));
    const withDead = nodes.map((info) => (info.id === 3 ? node(3, 'c', 'down') : info));
    const second = schedule(cluster(withDead, ranges, { inFlight }), config);
    const repairs = second.operators.filter((operator) => operator.purpose === 'repair');
    expect(repairs.length).toBeGreaterThan(0);
    expect(repairs.some((operator) => operator.steps.some((step) => step.kind === 'add-learner' && step.nodeId === 7))).toBe(true);
  });
});
