// Property tests over random small clusters: every operator the scheduler issues is safe when run
// step by step (checked by the independent checkers), respects the limits and the one-operator-
// per-range rule, and the output does not depend on the input order.

import fc from 'fast-check';
import { schedule, type ClusterState, type InFlightOperator, type NodeInfo, type NodeState, type RangeInfo, type ReplicaInfo, type SchedulerConfig } from '../../src/placement';
import { operatorCharges } from '../../src/placement/scheduler/cluster-index';
import { checkOperatorPlan } from '../../src/placement/scheduler/invariants';
import { DOWN_REPLACE_AFTER_MS, NOW_MS, nodeStatesOf, settle } from './fixtures';

interface Generated {
  readonly state: ClusterState;
  readonly config: Partial<SchedulerConfig>;
  /** Which first-round operators stay in flight for the second round. */
  readonly keepInFlight: readonly boolean[];
}

const arbGenerated: fc.Arbitrary<Generated> = fc
  .record({
    zones: fc.integer({ min: 1, max: 4 }),
    nodes: fc.array(
      fc.record({
        zone: fc.nat(3),
        state: fc.constantFrom<NodeState>('up', 'up', 'up', 'up', 'suspect', 'down', 'draining'),
        downForMs: fc.integer({ min: 0, max: 2 * DOWN_REPLACE_AFTER_MS }),
        weight: fc.constantFrom(1, 1, 1, 2),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    ranges: fc.array(
      fc.record({
        voters: fc.uniqueArray(fc.nat(12), { minLength: 1, maxLength: 5 }),
        learners: fc.uniqueArray(fc.nat(12), { maxLength: 2 }),
        leaderPick: fc.nat(6),
        noLeader: fc.boolean(),
        caughtUp: fc.boolean(),
        sizeBytes: fc.constantFrom(1, 5_000, 20_000),
      }),
      { maxLength: 25 },
    ),
    votersPerRange: fc.constantFrom(1, 3, 3, 3, 5),
    learners: fc.constantFrom('none' as const, 'zones-without-voter' as const),
    voterZoneCount: fc.integer({ min: 0, max: 3 }),
    maxOperatorsPerRound: fc.integer({ min: 1, max: 20 }),
    maxInFlightOperators: fc.integer({ min: 1, max: 30 }),
    maxInFlightPerNode: fc.integer({ min: 1, max: 4 }),
    maxLeaderTransfersPerNode: fc.integer({ min: 1, max: 4 }),
    keepInFlight: fc.array(fc.boolean(), { maxLength: 20 }),
  })
  .map((g) => {
    const nodeCount = g.nodes.length;
    const nodes: NodeInfo[] = g.nodes.map((n, i) => {
      const base: NodeInfo = { id: i + 1, zone: `z${n.zone % g.zones}`, state: n.state, weight: n.weight };
      return n.state === 'down' ? { ...base, downSinceMs: NOW_MS - n.downForMs } : base;
    });
    // Indexes past the node count name nodes missing from the registry.
    const nodeIdOf = (k: number): number => (k < nodeCount ? k + 1 : 100 + k);
    const ranges: RangeInfo[] = g.ranges.map((r, i) => {
      const voterIds = [...new Set(r.voters.map(nodeIdOf))];
      const learnerIds = [...new Set(r.learners.map(nodeIdOf))].filter((id) => !voterIds.includes(id));
      const replicas: ReplicaInfo[] = [
        ...voterIds.map((nodeId): ReplicaInfo => ({ nodeId, role: 'voter' })),
        ...learnerIds.map((nodeId): ReplicaInfo => ({ nodeId, role: 'learner', caughtUp: r.caughtUp })),
      ];
      const base: RangeInfo = { id: i + 1, epoch: { confVersion: replicas.length, version: 1 }, replicas, stats: { sizeBytes: r.sizeBytes, keys: 1, qps: 1 } };
      return r.noLeader ? base : { ...base, leaderNodeId: (replicas[r.leaderPick % replicas.length] as ReplicaInfo).nodeId };
    });
    const voterZones = Array.from({ length: g.voterZoneCount }, (_, z) => `z${z}`);
    const state: ClusterState = {
      nowMs: NOW_MS,
      nodes,
      ranges,
      rules: { votersPerRange: g.votersPerRange, learners: g.learners, ...(voterZones.length === 0 ? {} : { voterZones }) },
      inFlight: [],
    };
    const config: Partial<SchedulerConfig> = {
      downReplaceAfterMs: DOWN_REPLACE_AFTER_MS,
      maxOperatorsPerRound: g.maxOperatorsPerRound,
      maxInFlightOperators: g.maxInFlightOperators,
      maxInFlightPerNode: g.maxInFlightPerNode,
      maxLeaderTransfersPerNode: g.maxLeaderTransfersPerNode,
      splitSizeBytes: 10_000,
    };
    return { state, config, keepInFlight: g.keepInFlight };
  });

function perNodeCharges(operators: readonly InFlightOperator[]): { replica: Map<number, number>; transfer: Map<number, number> } {
  const replica = new Map<number, number>();
  const transfer = new Map<number, number>();
  for (const { operator } of operators) {
    const charges = operatorCharges(operator);
    for (const id of charges.replicaNodes) replica.set(id, (replica.get(id) ?? 0) + 1);
    for (const id of charges.transferNodes) transfer.set(id, (transfer.get(id) ?? 0) + 1);
  }
  return { replica, transfer };
}

describe('scheduler properties', () => {
  it('every issued operator is safe step by step, within the limits, one per range, none on a busy range', () => {
    fc.assert(
      fc.property(arbGenerated, ({ state: start, config, keepInFlight }) => {
        const first = schedule(start, config);
        const inFlight: InFlightOperator[] = first.operators.filter((_, i) => keepInFlight[i] === true).map((operator) => ({ operator, nextStep: 0 }));
        const state: ClusterState = { ...start, inFlight };
        const result = schedule(state, config);
        const states = nodeStatesOf(state);
        const busy = new Set(inFlight.map(({ operator }) => operator.rangeId));
        const seen = new Set<number>();

        expect(result.operators.length).toBeLessThanOrEqual(config.maxOperatorsPerRound!);
        expect(inFlight.length + result.operators.length).toBeLessThanOrEqual(Math.max(config.maxInFlightOperators!, inFlight.length));
        for (const operator of result.operators) {
          expect(busy.has(operator.rangeId)).toBe(false);
          expect(seen.has(operator.rangeId)).toBe(false);
          seen.add(operator.rangeId);
          const rangeInfo = state.ranges.find((candidate) => candidate.id === operator.rangeId)!;
          expect(checkOperatorPlan(rangeInfo, operator, states, state.rules)).toEqual([]);
          expect(result.unavailableRanges).not.toContain(operator.rangeId);
          expect(operator.steps.every((step) => step.rangeId === operator.rangeId)).toBe(true);
        }
        const all = [...inFlight, ...result.operators.map((operator) => ({ operator, nextStep: 0 }))];
        const { replica, transfer } = perNodeCharges(all);
        for (const info of state.nodes) {
          if (info.state === 'down') continue;
          expect(replica.get(info.id) ?? 0).toBeLessThanOrEqual(config.maxInFlightPerNode!);
          expect(transfer.get(info.id) ?? 0).toBeLessThanOrEqual(config.maxLeaderTransfersPerNode!);
        }
        // Order of the input does not matter.
        const reversed: ClusterState = { ...state, nodes: [...state.nodes].reverse(), ranges: [...state.ranges].reverse(), inFlight: [...inFlight].reverse() };
        expect(schedule(reversed, config)).toEqual(result);
      }),
      { numRuns: Number(process.env.PLACEMENT_PROPERTY_RUNS ?? 400) },
    );
  });

  it('rounds executed to completion never break an invariant, and the scheduler goes quiet', () => {
    fc.assert(
      fc.property(arbGenerated, ({ state, config }) => {
        const settled = settle(state, config, 60);
        expect(settled.violations).toEqual([]);
        expect(settled.rounds).toBeLessThan(60);
        // Whatever was available stays available (no operator costs a range its quorum).
        const before = new Set(schedule(state, config).unavailableRanges);
        const original = new Set(state.ranges.map((info) => info.id));
        for (const id of schedule(settled.state, config).unavailableRanges) {
          if (original.has(id)) expect(before.has(id)).toBe(true);
        }
      }),
      { numRuns: Number(process.env.PLACEMENT_PROPERTY_RUNS ?? 200) },
    );
  });
});
