// Bad config and inconsistent input are typed errors; operating conditions never throw.

import {
  InvalidClusterStateError,
  InvalidSchedulerConfigError,
  resolveSchedulerConfig,
  schedule,
  DEFAULT_SCHEDULER_CONFIG,
  type NodeInfo,
} from '../../src/placement';
import { cluster, node, range, TEST_CONFIG } from './fixtures';

const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c')];

describe('errors', () => {
  it('resolves the defaults and validates each field, naming it', () => {
    expect(resolveSchedulerConfig()).toEqual(DEFAULT_SCHEDULER_CONFIG);
    for (const [field, value] of [
      ['maxInFlightPerNode', 0],
      ['maxOperatorsPerRound', -1],
      ['downReplaceAfterMs', 1.5],
      ['replicaBalanceTolerance', 1],
      ['splitSizeBytes', 0],
    ] as const) {
      let error: unknown;
      try {
        resolveSchedulerConfig({ [field]: value });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(InvalidSchedulerConfigError);
      expect((error as InvalidSchedulerConfigError).field).toBe(field);
      expect((error as InvalidSchedulerConfigError).code).toBe('PLACEMENT_INVALID_CONFIG');
    }
  });

  it('rejects bad rules', () => {
    expect(() => schedule(cluster(nodes, [], { rules: { votersPerRange: 0, learners: 'none' } }))).toThrow(InvalidSchedulerConfigError);
    expect(() => schedule(cluster(nodes, [], { rules: { votersPerRange: 3, learners: 'none', voterZones: [''] } }))).toThrow(InvalidSchedulerConfigError);
  });

  it('rejects inconsistent cluster states', () => {
    const downWithoutTime: NodeInfo = { id: 4, zone: 'a', state: 'down' };
    const cases = [
      cluster([...nodes, node(1, 'b')], []),
      cluster([...nodes, downWithoutTime], []),
      cluster(nodes, [range(1, [1, 2, 3]), range(1, [1, 2, 3])]),
      cluster(nodes, [range(1, [1, 2, 2])]),
    ];
    for (const state of cases) expect(() => schedule(state, TEST_CONFIG)).toThrow(InvalidClusterStateError);
    const operator = { id: 'x', rangeId: 1, epoch: { confVersion: 1, version: 1 }, purpose: 'repair' as const, steps: [] };
    expect(() => schedule(cluster(nodes, [range(1, [1, 2, 3])], { inFlight: [{ operator, nextStep: 0 }, { operator, nextStep: 0 }] }), TEST_CONFIG)).toThrow(
      InvalidClusterStateError,
    );
    expect(() => schedule(cluster(nodes, [range(1, [1, 2, 3])], { inFlight: [{ operator, nextStep: 3 }] }), TEST_CONFIG)).toThrow(InvalidClusterStateError);
  });

  it('reports an empty cluster, a dead cluster and lost quorums without throwing', () => {
    expect(schedule(cluster([], []), TEST_CONFIG).operators).toEqual([]);
    const dead = [node(1, 'a', 'down'), node(2, 'b', 'down'), node(3, 'c', 'down')];
    expect(schedule(cluster(dead, [range(1, [1, 2, 3])]), TEST_CONFIG).unavailableRanges).toEqual([1]);
  });
});
