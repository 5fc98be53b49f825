// Policy 1, repair: dead voters are replaced (add learner, promote, then remove), nothing else is.

import { schedule, type NodeInfo } from '../../src/placement';
import { checkOperatorPlan } from '../../src/placement/scheduler/invariants';
import { cluster, DOWN_REPLACE_AFTER_MS, node, nodeStatesOf, range, settle, stepsOf, TEST_CONFIG } from './fixtures';

// Zones a, b, c with two nodes each; node 3 (zone c) is dead.
const BASE: NodeInfo[] = [node(1, 'a'), node(2, 'b'), node(3, 'c', 'down'), node(4, 'a'), node(5, 'b'), node(6, 'c')];

describe('repair', () => {
  it('replaces a voter on a node down past the timeout: learner, promote, then remove — in that order', () => {
    const state = cluster(BASE, [range(1, [1, 2, 3])]);
    const { operators, counts } = schedule(state, TEST_CONFIG);
    expect(counts.repair).toBe(1);
    expect(operators).toHaveLength(1);
    const [operator] = operators;
    expect(operator?.purpose).toBe('repair');
    // The replacement goes to zone c (the only zone without a voter), so node 6.
    expect(stepsOf(operator!)).toEqual(['add-learner 6', 'promote-learner 6', 'remove-replica 3']);
    expect(checkOperatorPlan(state.ranges[0]!, operator!, nodeStatesOf(state), state.rules)).toEqual([]);
  });

  it('leaves a voter on a node down for less than the timeout, or suspect, alone', () => {
    const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c', 'down', { downForMs: DOWN_REPLACE_AFTER_MS - 1 }), node(4, 'a', 'suspect'), node(5, 'b'), node(6, 'c')];
    const { operators, counts } = schedule(cluster(nodes, [range(1, [1, 2, 3]), range(2, [4, 5, 6], { leader: 5 })]), TEST_CONFIG);
    expect(operators).toEqual([]);
    expect(counts.repair).toBe(0);
  });

  it('replaces a voter on a node the registry no longer lists', () => {
    const nodes = [node(1, 'a'), node(2, 'b'), node(4, 'c')];
    const { operators } = schedule(cluster(nodes, [range(1, [1, 2, 3])]), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['add-learner 4', 'promote-learner 4', 'remove-replica 3']);
  });

  it('adds a voter to a range below its count, without removing anything', () => {
    const { operators } = schedule(cluster(BASE, [range(1, [1, 2])]), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['add-learner 6', 'promote-learner 6']);
  });

  it('removes the least useful voter of a range above its count: the dead one first', () => {
    const { operators } = schedule(cluster(BASE, [range(1, [1, 2, 3, 6])]), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['remove-replica 3']);
  });

  it('transfers leadership before removing an extra voter that leads', () => {
    // Node 1 and 4 share zone a: one of them goes; 4 leads and is the more loaded one.
    const nodes = [node(1, 'a'), node(2, 'b'), node(4, 'a'), node(6, 'c')];
    const { operators } = schedule(cluster(nodes, [range(1, [1, 2, 4, 6], { leader: 4 }), range(2, [4, 2, 6])]), TEST_CONFIG);
    const steps = stepsOf(operators.find((operator) => operator.rangeId === 1)!);
    expect(steps[steps.length - 1]).toBe('remove-replica 4');
    expect(steps[0]).toMatch(/^transfer-leader 4->/);
  });

  it('promotes an existing caught-up learner instead of adding a new replica', () => {
    const { operators } = schedule(cluster(BASE, [range(1, [1, 2, 3], { learners: [6] })]), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['promote-learner 6', 'remove-replica 3']);
  });

  it('reports a range whose quorum is lost and does not touch it', () => {
    const nodes = [node(1, 'a'), node(2, 'b', 'down'), node(3, 'c', 'down'), node(4, 'a'), node(5, 'b'), node(6, 'c')];
    const result = schedule(cluster(nodes, [range(1, [1, 2, 3]), range(2, [4, 5, 6])]), TEST_CONFIG);
    expect(result.unavailableRanges).toEqual([1]);
    expect(result.operators.filter((operator) => operator.rangeId === 1)).toEqual([]);
  });

  it('skips a range without a live leader (nobody to execute the steps)', () => {
    const result = schedule(cluster(BASE, [range(1, [1, 2, 3], { leader: null }), range(2, [1, 2, 3], { leader: 3 })]), TEST_CONFIG);
    expect(result.operators).toEqual([]);
    expect(result.counts.leaderless).toBe(2);
  });

  it('repairs the range closest to losing its quorum first', () => {
    const rules = { votersPerRange: 5, learners: 'none' as const };
    const nodes = [1, 2, 3, 4, 5, 6, 7, 8].map((id) => node(id, `z${id}`, id === 4 || id === 5 ? 'down' : 'up'));
    // Range 1 has one dead voter (4 live of 5), range 2 has two (3 live of 5: one more loss and it is gone).
    const state = cluster(nodes, [range(1, [1, 2, 3, 4, 6]), range(2, [1, 2, 3, 4, 5])], { rules });
    const { operators, counts } = schedule(state, { ...TEST_CONFIG, maxOperatorsPerRound: 1 });
    expect(operators.map((operator) => operator.rangeId)).toEqual([2]);
    expect(counts.throttled).toBe(1);
  });

  it('counts a range it cannot repair for lack of a target', () => {
    const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c', 'down')];
    const { operators, counts } = schedule(cluster(nodes, [range(1, [1, 2, 3])]), TEST_CONFIG);
    expect(operators).toEqual([]);
    expect(counts.noTarget).toBe(1);
  });

  it('settles with every range at its voter count and nothing left on the dead node', () => {
    const ranges = [range(1, [1, 2, 3]), range(2, [3, 4, 5], { leader: 4 }), range(3, [6, 3, 1], { leader: 6 }), range(4, [2, 6, 4])];
    const { state, violations } = settle(cluster(BASE, ranges));
    expect(violations).toEqual([]);
    for (const info of state.ranges) {
      expect(info.replicas.map((replica) => replica.role)).toEqual(['voter', 'voter', 'voter']);
      expect(info.replicas.some((replica) => replica.nodeId === 3)).toBe(false);
      // Distinct zones: there are three zones with up nodes.
      const zones = info.replicas.map((replica) => BASE.find((candidate) => candidate.id === replica.nodeId)!.zone);
      expect(new Set(zones).size).toBe(3);
    }
  });
});
