// Policy 6, splits.

import { schedule } from '../../src/placement';
import { cluster, node, range, settle, stepsOf, TEST_CONFIG } from './fixtures';

const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c')];
const config = { ...TEST_CONFIG, splitSizeBytes: 10_000, splitKeys: 100, splitQps: 50 };

describe('split', () => {
  it.each([
    ['size', { sizeBytes: 10_000 }],
    ['keys', { keys: 100 }],
    ['load', { qps: 50 }],
  ] as const)('splits a range at its %s threshold', (reason, stats) => {
    const ranges = [range(1, [1, 2, 3], { stats }), range(2, [1, 2, 3], { leader: 2 }), range(3, [1, 2, 3], { leader: 3 })];
    const { operators, counts } = schedule(cluster(nodes, ranges), config);
    expect(counts.split).toBe(1);
    expect(operators.map((operator) => [operator.rangeId, operator.purpose, ...stepsOf(operator)])).toEqual([[1, 'split', `split-range ${reason}`]]);
  });

  it('does not split below the thresholds', () => {
    expect(schedule(cluster(nodes, [range(1, [1, 2, 3], { stats: { sizeBytes: 9_999, keys: 99, qps: 49 } })]), config).operators).toEqual([]);
  });

  it('splits until every range is below the threshold', () => {
    const { state, violations } = settle(cluster(nodes, [range(1, [1, 2, 3], { stats: { sizeBytes: 35_000 } })]), config);
    expect(violations).toEqual([]);
    expect(state.ranges.length).toBe(4);
    for (const info of state.ranges) expect(info.stats.sizeBytes).toBeLessThan(10_000);
  });

  it('repairs before splitting a range that needs both', () => {
    const withDead = [...nodes, node(4, 'c', 'down'), node(5, 'c')];
    const { operators } = schedule(cluster(withDead, [range(1, [1, 2, 4], { stats: { sizeBytes: 50_000 } })]), config);
    expect(operators.map((operator) => operator.purpose)).toEqual(['repair']);
  });
});
