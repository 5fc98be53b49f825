// Quorum arithmetic and the safety check of one operator step against the current descriptor.
//
// Liveness for quorum purposes is conservative: only voters on `up` or `draining` nodes count as
// alive. A `suspect` node may be alive, but a step that would need it to keep a majority waits.

import { InvalidClusterStateError } from './errors';
import type { InFlightOperator, NodeId, NodeInfo, NodeState, OperatorStep, PlacementRules, RangeInfo, ReplicaInfo } from './types';

/** The smallest majority of `voters` voters. */
export function quorumSize(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/** Alive for quorum purposes: heartbeating and serving. */
export function isLiveState(state: NodeState | undefined): boolean {
  return state === 'up' || state === 'draining';
}

/** What the caller knows when it is about to execute a step. */
export interface StepContext {
  /** The range's current descriptor; undefined if it no longer exists. */
  readonly range: RangeInfo | undefined;
  readonly nodes: ReadonlyMap<NodeId, NodeInfo>;
  readonly rules: PlacementRules;
}

/**
 * - `ready`: execute `step` now;
 * - `done`: the step's effect is already there (a retry, or the cluster did it): advance `nextStep`
 *   without executing it, and check the next one;
 * - `complete`: every step is done; forget the operator;
 * - `wait`: not safe or not possible yet (learner still catching up, a voter needed for the
 *   majority is not known alive, no live leader): check again later; the caller bounds the wait;
 * - `abort`: the step can no longer be executed safely (target gone, would remove the leader or go
 *   below the voter count): drop the operator; the scheduler plans again from the new state.
 */
export type StepVerdict =
  | { readonly status: 'ready'; readonly step: OperatorStep }
  | { readonly status: 'done' }
  | { readonly status: 'complete' }
  | { readonly status: 'wait'; readonly reason: string }
  | { readonly status: 'abort'; readonly reason: string };

function findReplica(range: RangeInfo, nodeId: NodeId): ReplicaInfo | undefined {
  for (const replica of range.replicas) if (replica.nodeId === nodeId) return replica;
  return undefined;
}

function countVoters(range: RangeInfo, nodes: ReadonlyMap<NodeId, NodeInfo>, excluded: NodeId | undefined): { voters: number; live: number } {
  let voters = 0;
  let live = 0;
  for (const replica of range.replicas) {
    if (replica.role !== 'voter' || replica.nodeId === excluded) continue;
    voters++;
    if (isLiveState(nodes.get(replica.nodeId)?.state)) live++;
  }
  return { voters, live };
}

/** Why the range cannot take a membership change or a leader transfer right now, if it cannot. */
function leaderProblem(range: RangeInfo, nodes: ReadonlyMap<NodeId, NodeInfo>): string | undefined {
  const { voters, live } = countVoters(range, nodes, undefined);
  if (live < quorumSize(voters)) return `range ${range.id} has lost its quorum (${live} of ${voters} voters alive)`;
  const leader = range.leaderNodeId;
  if (leader === undefined) return `range ${range.id} has no known leader`;
  if (findReplica(range, leader)?.role !== 'voter' || !isLiveState(nodes.get(leader)?.state)) {
    return `range ${range.id}: leader ${leader} is not a live voter`;
  }
  return undefined;
}

/**
 * Whether the next step of `inFlight` is safe to execute against the current state. The rules,
 * each enforced here whatever the plan said:
 * - a learner is added only on an `up` node that holds no replica of the range;
 * - a learner is promoted only once caught up, and only if the larger voter set keeps a live
 *   majority;
 * - a voter is removed only if the range keeps at least `votersPerRange` voters (so a replacement
 *   is promoted before the replica it replaces goes), keeps a live majority, and the removed
 *   voter is not the leader (leadership is transferred first);
 * - leadership goes only to a voter on an `up` node.
 */
export function checkStep(context: StepContext, inFlight: InFlightOperator): StepVerdict {
  const { operator, nextStep } = inFlight;
  if (!Number.isSafeInteger(nextStep) || nextStep < 0 || nextStep > operator.steps.length) {
    throw new InvalidClusterStateError(`operator ${operator.id}: nextStep ${nextStep} is outside [0, ${operator.steps.length}]`);
  }
  const step = operator.steps[nextStep];
  if (step === undefined) return { status: 'complete' };
  const { range, nodes, rules } = context;
  if (range === undefined) return { status: 'abort', reason: `range ${operator.rangeId} no longer exists` };
  if (range.id !== step.rangeId) {
    throw new InvalidClusterStateError(`operator ${operator.id}: step names range ${step.rangeId}, context holds range ${range.id}`);
  }

  switch (step.kind) {
    case 'add-learner': {
      if (findReplica(range, step.nodeId) !== undefined) return { status: 'done' };
      const state = nodes.get(step.nodeId)?.state;
      if (state !== 'up') return { status: 'abort', reason: `node ${step.nodeId} is ${state ?? 'unknown'}, not up` };
      const problem = leaderProblem(range, nodes);
      if (problem !== undefined) return { status: 'wait', reason: problem };
      return { status: 'ready', step };
    }
    case 'promote-learner': {
      const replica = findReplica(range, step.nodeId);
      if (replica === undefined) return { status: 'abort', reason: `node ${step.nodeId} holds no replica to promote` };
      if (replica.role === 'voter') return { status: 'done' };
      const state = nodes.get(step.nodeId)?.state;
      if (state !== 'up') return { status: 'abort', reason: `node ${step.nodeId} is ${state ?? 'unknown'}, not up` };
      if (replica.caughtUp !== true) return { status: 'wait', reason: `learner on node ${step.nodeId} is catching up` };
      const problem = leaderProblem(range, nodes);
      if (problem !== undefined) return { status: 'wait', reason: problem };
      const { voters, live } = countVoters(range, nodes, undefined);
      if (live + 1 < quorumSize(voters + 1)) {
        return { status: 'wait', reason: `promoting would leave ${live + 1} of ${voters + 1} voters alive` };
      }
      return { status: 'ready', step };
    }
    case 'remove-replica': {
      const replica = findReplica(range, step.nodeId);
      if (replica === undefined) return { status: 'done' };
      const problem = leaderProblem(range, nodes);
      if (problem !== undefined) return { status: 'wait', reason: problem };
      if (replica.role === 'learner') return { status: 'ready', step };
      if (range.leaderNodeId === step.nodeId) return { status: 'abort', reason: `node ${step.nodeId} leads the range; transfer leadership first` };
      const { voters, live } = countVoters(range, nodes, step.nodeId);
      if (voters < rules.votersPerRange) {
        return { status: 'abort', reason: `removing would leave ${voters} voters, below ${rules.votersPerRange}` };
      }
      if (live < quorumSize(voters)) return { status: 'wait', reason: `removing would leave ${live} of ${voters} voters alive` };
      return { status: 'ready', step };
    }
    case 'transfer-leader': {
      if (range.leaderNodeId !== step.fromNodeId) return { status: 'done' };
      const target = findReplica(range, step.toNodeId);
      if (target?.role !== 'voter') return { status: 'abort', reason: `node ${step.toNodeId} is not a voter` };
      const state = nodes.get(step.toNodeId)?.state;
      if (state !== 'up') return { status: 'abort', reason: `node ${step.toNodeId} is ${state ?? 'unknown'}, not up` };
      const problem = leaderProblem(range, nodes);
      if (problem !== undefined) return { status: 'wait', reason: problem };
      return { status: 'ready', step };
    }
    case 'split-range': {
      if (range.epoch.version !== operator.epoch.version) return { status: 'done' };
      const problem = leaderProblem(range, nodes);
      if (problem !== undefined) return { status: 'wait', reason: problem };
      return { status: 'ready', step };
    }
  }
}
