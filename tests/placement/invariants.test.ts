// The independent checkers catch the mistakes a broken scheduler would make. Without these, a
// passing simulation would prove nothing.

import type { Operator, OperatorStep } from '../../src/placement';
import { checkOperatorPlan } from '../../src/placement/scheduler/invariants';
import { cluster, node, nodeStatesOf, range, RULES_3 } from './fixtures';

const state = cluster([node(1, 'a'), node(2, 'b'), node(3, 'c', 'down'), node(4, 'c'), node(5, 'a', 'draining'), node(6, 'b', 'suspect')], []);
const states = nodeStatesOf(state);

function plan(steps: OperatorStep[]): Operator {
  return { id: 'mutant', rangeId: 1, epoch: { confVersion: 3, version: 1 }, purpose: 'repair', steps };
}

function rules(violations: ReturnType<typeof checkOperatorPlan>): string[] {
  return violations.map((violation) => violation.rule);
}

describe('invariant checkers', () => {
  const r = range(1, [1, 2, 3]);

  it('accept the safe replacement order', () => {
    const safe = plan([
      { kind: 'add-learner', rangeId: 1, nodeId: 4 },
      { kind: 'promote-learner', rangeId: 1, nodeId: 4 },
      { kind: 'remove-replica', rangeId: 1, nodeId: 3 },
    ]);
    expect(checkOperatorPlan(r, safe, states, RULES_3)).toEqual([]);
  });

  it('catch a voter removed before its replacement is promoted', () => {
    const mutant = plan([
      { kind: 'add-learner', rangeId: 1, nodeId: 4 },
      { kind: 'remove-replica', rangeId: 1, nodeId: 3 },
      { kind: 'promote-learner', rangeId: 1, nodeId: 4 },
    ]);
    expect(rules(checkOperatorPlan(r, mutant, states, RULES_3))).toContain('voters-below-count');
  });

  it('catch a removal that loses the quorum', () => {
    // 4 voters, one dead: removing a live one leaves 2 live of 3... fine; removing two live ones is not.
    const four = range(1, [1, 2, 3, 4]);
    const mutant = plan([{ kind: 'remove-replica', rangeId: 1, nodeId: 4 }]);
    expect(checkOperatorPlan(four, mutant, states, RULES_3)).toEqual([]);
    const five = { ...range(1, [1, 2, 3, 4], { learners: [] }), replicas: [...four.replicas, { nodeId: 6, role: 'voter' as const }] };
    expect(rules(checkOperatorPlan(five, plan([{ kind: 'remove-replica', rangeId: 1, nodeId: 4 }]), states, RULES_3))).toContain('quorum-lost-by-operator');
  });

  it('catch a removal of the leader without a transfer first', () => {
    const four = range(1, [1, 2, 3, 4], { leader: 1 });
    expect(rules(checkOperatorPlan(four, plan([{ kind: 'remove-replica', rangeId: 1, nodeId: 1 }]), states, RULES_3))).toContain('removed-leader');
  });

  it('catch leadership handed to a draining or suspect node', () => {
    const withDraining = range(1, [1, 5, 6], { leader: 1 });
    for (const toNodeId of [5, 6]) {
      const mutant = plan([{ kind: 'transfer-leader', rangeId: 1, fromNodeId: 1, toNodeId }]);
      expect(rules(checkOperatorPlan(withDraining, mutant, states, RULES_3))).toContain('leader-to-unfit-node');
    }
  });

  it('catch a replica added on a node that is not up, or twice on one node', () => {
    expect(rules(checkOperatorPlan(r, plan([{ kind: 'add-learner', rangeId: 1, nodeId: 5 }]), states, RULES_3))).toContain('replica-on-unfit-node');
    expect(rules(checkOperatorPlan(r, plan([{ kind: 'add-learner', rangeId: 1, nodeId: 2 }]), states, RULES_3))).toContain('duplicate-replica');
  });

  it('catch the replacement of a voter on a suspect node, and any operator on a range without quorum', () => {
    const onSuspect = range(1, [1, 2, 6]);
    const replace = plan([
      { kind: 'add-learner', rangeId: 1, nodeId: 4 },
      { kind: 'promote-learner', rangeId: 1, nodeId: 4 },
      { kind: 'remove-replica', rangeId: 1, nodeId: 6 },
    ]);
    expect(rules(checkOperatorPlan(onSuspect, replace, states, RULES_3))).toContain('replaced-recent-node');
    const lost = range(1, [1, 3, 6]);
    expect(rules(checkOperatorPlan(lost, plan([{ kind: 'add-learner', rangeId: 1, nodeId: 4 }]), states, RULES_3))).toContain('touched-unavailable-range');
  });
});
