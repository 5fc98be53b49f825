// Small builders for cluster states, and a perfect executor that runs operators to completion
// through `checkStep`, checking every executed step with the independent checkers.

import {
  checkStep,
  schedule,
  type ClusterState,
  type InFlightOperator,
  type NodeId,
  type NodeInfo,
  type NodeState,
  type Operator,
  type PlacementRules,
  type RangeInfo,
  type RangeStats,
  type ReplicaInfo,
  type SchedulerConfig,
} from '../../src/placement';
import { applyStepToCopy, checkTransition, type NodeStates, type Violation } from '../../src/placement/scheduler/invariants';

export const NOW_MS = 1_000_000;
export const DOWN_REPLACE_AFTER_MS = 60_000;

/** A config for tests: generous limits unless a test sets them. */
export const TEST_CONFIG: Partial<SchedulerConfig> = {
  downReplaceAfterMs: DOWN_REPLACE_AFTER_MS,
  maxOperatorsPerRound: 1_000,
  maxInFlightOperators: 10_000,
  maxInFlightPerNode: 1_000,
  maxLeaderTransfersPerNode: 1_000,
};

export const RULES_3: PlacementRules = { votersPerRange: 3, learners: 'none' };

/** A node; `down` nodes are down since `downForMs` before NOW_MS (default: long enough to be replaced). */
export function node(id: NodeId, zone: string, state: NodeState = 'up', options: { downForMs?: number; weight?: number } = {}): NodeInfo {
  const info: NodeInfo = { id, zone, state, ...(options.weight === undefined ? {} : { weight: options.weight }) };
  if (state !== 'down') return info;
  return { ...info, downSinceMs: NOW_MS - (options.downForMs ?? 2 * DOWN_REPLACE_AFTER_MS) };
}

export interface RangeOptions {
  /** Default: the first voter. `null`: no known leader. */
  readonly leader?: NodeId | null;
  readonly learners?: readonly NodeId[];
  /** Learners' caughtUp flag (default true). */
  readonly caughtUp?: boolean;
  readonly stats?: Partial<RangeStats>;
  readonly version?: number;
}

export function range(id: number, voters: readonly NodeId[], options: RangeOptions = {}): RangeInfo {
  const replicas: ReplicaInfo[] = voters.map((nodeId) => ({ nodeId, role: 'voter' }));
  for (const nodeId of options.learners ?? []) replicas.push({ nodeId, role: 'learner', caughtUp: options.caughtUp ?? true });
  const leader = options.leader === undefined ? voters[0] : options.leader;
  const base: RangeInfo = {
    id,
    epoch: { confVersion: replicas.length, version: options.version ?? 1 },
    replicas,
    stats: { sizeBytes: 1024, keys: 10, qps: 1, ...options.stats },
  };
  return leader === null || leader === undefined ? base : { ...base, leaderNodeId: leader };
}

export function cluster(
  nodes: readonly NodeInfo[],
  ranges: readonly RangeInfo[],
  options: { rules?: PlacementRules; inFlight?: readonly InFlightOperator[]; nowMs?: number } = {},
): ClusterState {
  return { nowMs: options.nowMs ?? NOW_MS, nodes, ranges, rules: options.rules ?? RULES_3, inFlight: options.inFlight ?? [] };
}

/** Node states for the independent checkers. */
export function nodeStatesOf(state: ClusterState, downReplaceAfterMs: number = DOWN_REPLACE_AFTER_MS): NodeStates {
  const byId = new Map(state.nodes.map((info) => [info.id, info]));
  return {
    state: (nodeId) => byId.get(nodeId)?.state,
    replaceable: (nodeId) => {
      const info = byId.get(nodeId);
      return info?.state === 'down' && info.downSinceMs !== undefined && state.nowMs - info.downSinceMs >= downReplaceAfterMs;
    },
  };
}

export function stepsOf(operator: Operator): string[] {
  return operator.steps.map((step) => {
    switch (step.kind) {
      case 'transfer-leader':
        return `transfer-leader ${step.fromNodeId}->${step.toNodeId}`;
      case 'split-range':
        return `split-range ${step.reason}`;
      default:
        return `${step.kind} ${step.nodeId}`;
    }
  });
}

export function replicaCounts(state: ClusterState): Map<NodeId, number> {
  const counts = new Map<NodeId, number>(state.nodes.map((info) => [info.id, 0]));
  for (const info of state.ranges) for (const replica of info.replicas) counts.set(replica.nodeId, (counts.get(replica.nodeId) ?? 0) + 1);
  return counts;
}

export function leaderCounts(state: ClusterState): Map<NodeId, number> {
  const counts = new Map<NodeId, number>(state.nodes.map((info) => [info.id, 0]));
  for (const info of state.ranges) if (info.leaderNodeId !== undefined) counts.set(info.leaderNodeId, (counts.get(info.leaderNodeId) ?? 0) + 1);
  return counts;
}

export interface Settled {
  readonly state: ClusterState;
  readonly rounds: number;
  readonly operators: readonly Operator[];
  readonly violations: readonly Violation[];
}

/**
 * Run `operator` to completion (or until a step waits or aborts) on `state`, as a perfect executor:
 * each step goes through `checkStep`, learners catch up at once, splits create a right-hand range.
 */
export function execute(state: ClusterState, operator: Operator, violations: Violation[]): ClusterState {
  let ranges = [...state.ranges];
  const nodes = new Map(state.nodes.map((info) => [info.id, info]));
  const states = nodeStatesOf(state);
  for (let nextStep = 0; nextStep < operator.steps.length; nextStep++) {
    const index = ranges.findIndex((candidate) => candidate.id === operator.rangeId);
    const current = ranges[index];
    const verdict = checkStep({ range: current, nodes, rules: state.rules }, { operator, nextStep });
    if (verdict.status === 'done') continue;
    if (verdict.status !== 'ready' || current === undefined) break;
    let next = applyStepToCopy(current, verdict.step);
    violations.push(...checkTransition(current, verdict.step, next, states, state.rules));
    if (verdict.step.kind === 'split-range') {
      const half = { sizeBytes: Math.floor(current.stats.sizeBytes / 2), keys: Math.floor(current.stats.keys / 2), qps: current.stats.qps / 2 };
      next = { ...next, stats: half };
      const maxId = Math.max(...ranges.map((candidate) => candidate.id));
      ranges.push({ ...next, id: maxId + 1 });
    }
    ranges[index] = next;
  }
  ranges = ranges.sort((a, b) => a.id - b.id);
  return { ...state, ranges };
}

/** Every learner has caught up (a round has passed). */
function catchUp(state: ClusterState): ClusterState {
  const ranges = state.ranges.map((info) =>
    info.replicas.every((replica) => replica.role === 'voter' || replica.caughtUp === true)
      ? info
      : { ...info, replicas: info.replicas.map((replica) => (replica.role === 'learner' ? { ...replica, caughtUp: true } : replica)) },
  );
  return { ...state, ranges };
}

/**
 * Schedule and execute rounds until the scheduler issues nothing (or `maxRounds`). An operator whose
 * step must wait is dropped at the end of its round, as an executor's timeout would.
 */
export function settle(start: ClusterState, config: Partial<SchedulerConfig> = TEST_CONFIG, maxRounds = 100): Settled {
  let state = start;
  const operators: Operator[] = [];
  const violations: Violation[] = [];
  for (let round = 1; round <= maxRounds; round++) {
    const result = schedule(state, config);
    if (result.operators.length === 0) return { state, rounds: round - 1, operators, violations };
    for (const operator of result.operators) {
      operators.push(operator);
      state = execute(state, operator, violations);
    }
    state = catchUp(state);
  }
  return { state, rounds: maxRounds, operators, violations };
}
