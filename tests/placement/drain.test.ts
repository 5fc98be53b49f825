// Policy 2, drain: leadership first, then every replica, off draining nodes; drainProgress.

import { drainProgress, nodeLoads, schedule, UnknownNodeError } from '../../src/placement';
import { cluster, leaderCounts, node, range, settle, stepsOf, TEST_CONFIG } from './fixtures';

describe('drain', () => {
  it('transfers leadership off a draining node first, to an up voter — never to another draining one', () => {
    const nodes = [node(1, 'a', 'draining'), node(2, 'b', 'draining'), node(3, 'c'), node(4, 'a'), node(5, 'b')];
    const { operators, counts } = schedule(cluster(nodes, [range(1, [1, 2, 3], { leader: 1 })]), TEST_CONFIG);
    expect(counts.drain).toBe(1);
    expect(stepsOf(operators[0]!)).toEqual(['transfer-leader 1->3']);
  });

  it('does not transfer leadership onto a draining or suspect voter even when that is all there is', () => {
    const nodes = [node(1, 'a', 'draining'), node(2, 'b', 'draining'), node(3, 'c', 'suspect'), node(4, 'a'), node(5, 'b'), node(6, 'c')];
    const { operators } = schedule(cluster(nodes, [range(1, [1, 2, 3], { leader: 1 })]), TEST_CONFIG);
    // It moves the leader's replica instead, handing leadership to the new voter before removal.
    const steps = stepsOf(operators[0]!);
    expect(steps.slice(0, 2)).toEqual(['add-learner 4', 'promote-learner 4']);
    expect(steps.slice(2)).toEqual(['transfer-leader 1->4', 'remove-replica 1']);
  });

  it('moves a voter off a draining node with a promoted replacement before the removal', () => {
    const nodes = [node(1, 'a'), node(2, 'b', 'draining'), node(3, 'c'), node(4, 'a'), node(5, 'b')];
    const { operators } = schedule(cluster(nodes, [range(1, [1, 2, 3])]), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['add-learner 5', 'promote-learner 5', 'remove-replica 2']);
  });

  it('re-creates a draining learner in its zone when the rules want one there', () => {
    const rules = { votersPerRange: 3, learners: 'zones-without-voter' as const };
    const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c'), node(4, 'd', 'draining'), node(5, 'd')];
    const { operators } = schedule(cluster(nodes, [range(1, [1, 2, 3], { learners: [4] })], { rules }), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['add-learner 5', 'remove-replica 4']);
  });

  it('empties a draining node completely, and drainProgress follows it to done', () => {
    const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c', 'draining'), node(4, 'a'), node(5, 'b'), node(6, 'c')];
    const ranges = [range(1, [1, 2, 3], { leader: 3 }), range(2, [3, 4, 5], { leader: 3 }), range(3, [6, 3, 1]), range(4, [2, 6, 4])];
    const start = cluster(nodes, ranges);
    expect(drainProgress(start, 3)).toEqual({ nodeId: 3, state: 'draining', voters: 3, learners: 0, replicas: 3, leaders: 2, inFlightOperators: 0, done: false });
    const { state, violations } = settle(start);
    expect(violations).toEqual([]);
    expect(drainProgress(state, 3)).toMatchObject({ replicas: 0, leaders: 0, done: true });
    expect(leaderCounts(state).get(3)).toBe(0);
  });

  it('drainProgress counts in-flight operators that involve the node, and rejects an unknown node', () => {
    const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c', 'draining'), node(6, 'c')];
    const start = cluster(nodes, [range(1, [1, 2, 3])]);
    const { operators } = schedule(start, TEST_CONFIG);
    const inFlight = operators.map((operator) => ({ operator, nextStep: 0 }));
    expect(drainProgress({ ...start, inFlight }, 3).inFlightOperators).toBe(1);
    expect(() => drainProgress(start, 42)).toThrow(UnknownNodeError);
  });
});

describe('nodeLoads', () => {
  it('derives replicas, voters, learners, leaders, bytes and leader qps per node', () => {
    const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c')];
    const ranges = [range(1, [1, 2], { learners: [3], stats: { sizeBytes: 100, qps: 5 } }), range(2, [2, 3], { leader: 3, stats: { sizeBytes: 10, qps: 7 } })];
    expect(nodeLoads(cluster(nodes, ranges))).toEqual([
      { nodeId: 1, replicas: 1, voters: 1, learners: 0, leaders: 1, sizeBytes: 100, leaderQps: 5 },
      { nodeId: 2, replicas: 2, voters: 2, learners: 0, leaders: 0, sizeBytes: 110, leaderQps: 0 },
      { nodeId: 3, replicas: 2, voters: 1, learners: 1, leaders: 1, sizeBytes: 110, leaderQps: 7 },
    ]);
  });
});
