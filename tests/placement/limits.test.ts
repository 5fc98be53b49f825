// Rate limits and the one-operator-per-range rule.

import { schedule, type InFlightOperator, type NodeInfo, type Operator, type RangeInfo } from '../../src/placement';
import { cluster, node, range, TEST_CONFIG } from './fixtures';

// Node 3 is dead and holds a voter of 12 ranges; nodes 4..6 (zone c... spread) can take them.
const nodes: NodeInfo[] = [node(1, 'a'), node(2, 'b'), node(3, 'c', 'down'), node(4, 'c'), node(5, 'c'), node(6, 'c')];
const ranges: RangeInfo[] = Array.from({ length: 12 }, (_, i) => range(i + 1, [1, 2, 3], { leader: i % 2 === 0 ? 1 : 2 }));

function receivers(operators: readonly Operator[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const operator of operators) {
    for (const step of operator.steps) if (step.kind === 'add-learner') counts.set(step.nodeId, (counts.get(step.nodeId) ?? 0) + 1);
  }
  return counts;
}

describe('limits', () => {
  it('issues at most maxOperatorsPerRound operators and counts the rest as throttled', () => {
    const { operators, counts } = schedule(cluster(nodes, ranges), { ...TEST_CONFIG, maxOperatorsPerRound: 5 });
    expect(operators).toHaveLength(5);
    expect(counts.repair).toBe(12);
    expect(counts.throttled).toBe(7);
  });

  it('gives no node more than maxInFlightPerNode replica additions', () => {
    const { operators } = schedule(cluster(nodes, ranges), { ...TEST_CONFIG, maxInFlightPerNode: 2 });
    expect(operators).toHaveLength(6);
    expect([...receivers(operators).values()]).toEqual([2, 2, 2]);
  });

  it('counts in-flight operators against the per-node and the cluster limits', () => {
    const first = schedule(cluster(nodes, ranges), { ...TEST_CONFIG, maxInFlightPerNode: 2 });
    const inFlight: InFlightOperator[] = first.operators.map((operator) => ({ operator, nextStep: 0 }));
    const second = schedule(cluster(nodes, ranges, { inFlight }), { ...TEST_CONFIG, maxInFlightPerNode: 2 });
    expect(second.operators).toEqual([]);
    expect(second.counts.inFlight).toBe(6);
    const third = schedule(cluster(nodes, ranges, { inFlight }), { ...TEST_CONFIG, maxInFlightOperators: 8 });
    expect(third.operators).toHaveLength(2);
  });

  it('never issues a second operator for a range with one in flight, even a finished-looking one', () => {
    const first = schedule(cluster(nodes, ranges), TEST_CONFIG);
    const inFlight: InFlightOperator[] = first.operators.slice(0, 4).map((operator) => ({ operator, nextStep: operator.steps.length - 1 }));
    const busy = new Set(inFlight.map(({ operator }) => operator.rangeId));
    const second = schedule(cluster(nodes, ranges, { inFlight }), TEST_CONFIG);
    expect(second.operators).toHaveLength(8);
    for (const operator of second.operators) expect(busy.has(operator.rangeId)).toBe(false);
  });

  it('counts in-flight additions toward a node in later rounds, so they do not pile onto it', () => {
    // One target left with room for two: in flight toward node 4 already count against it.
    const few = [node(1, 'a'), node(2, 'b'), node(3, 'c', 'down'), node(4, 'c')];
    const first = schedule(cluster(few, ranges), { ...TEST_CONFIG, maxInFlightPerNode: 3 });
    expect(first.operators).toHaveLength(3);
    const inFlight = first.operators.map((operator) => ({ operator, nextStep: 1 }));
    const second = schedule(cluster(few, ranges, { inFlight }), { ...TEST_CONFIG, maxInFlightPerNode: 3 });
    expect(second.operators).toEqual([]);
  });

  it('limits leader transfers per node separately', () => {
    // Node 1 leads all 12 ranges; every transfer involves it, so 3 at most.
    const three = [node(1, 'a'), node(2, 'b'), node(3, 'c')];
    const led = Array.from({ length: 12 }, (_, i) => range(i + 1, [1, 2, 3], { leader: 1 }));
    const { operators } = schedule(cluster(three, led), { ...TEST_CONFIG, maxLeaderTransfersPerNode: 3 });
    expect(operators.map((operator) => operator.purpose)).toEqual(['balance-leaders', 'balance-leaders', 'balance-leaders']);
    expect(schedule(cluster(three, led), TEST_CONFIG).operators).toHaveLength(8);
  });
});
