// Independent checkers of the scheduler's safety rules, for the simulation and the tests. They are
// written against the descriptors directly and share no logic with the scheduler or `checkStep`, so
// a bug there cannot hide itself here.

import type { NodeId, NodeState, Operator, OperatorStep, PlacementRules, RangeInfo, ReplicaInfo } from './types';

export type InvariantRule =
  | 'duplicate-replica'
  | 'replica-on-unfit-node'
  | 'quorum-lost-by-operator'
  | 'voters-below-count'
  | 'removed-leader'
  | 'promoted-lagging-learner'
  | 'leader-to-unfit-node'
  | 'replaced-recent-node'
  | 'touched-unavailable-range'
  | 'range-in-flight-twice'
  | 'round-limit'
  | 'node-limit'
  | 'step-on-missing-replica';

export interface Violation {
  readonly rule: InvariantRule;
  readonly rangeId: number;
  readonly detail: string;
}

/** Node states as the checker sees them; `replaceable` says whether a down node is past the replace timeout. */
export interface NodeStates {
  state(nodeId: NodeId): NodeState | undefined;
  replaceable(nodeId: NodeId): boolean;
}

function alive(nodes: NodeStates, nodeId: NodeId): boolean {
  const state = nodes.state(nodeId);
  return state === 'up' || state === 'draining';
}

function liveMajority(replicas: readonly ReplicaInfo[], nodes: NodeStates): boolean {
  let voters = 0;
  let live = 0;
  for (const replica of replicas) {
    if (replica.role !== 'voter') continue;
    voters++;
    if (alive(nodes, replica.nodeId)) live++;
  }
  return voters > 0 && 2 * live > voters;
}

function voterCount(replicas: readonly ReplicaInfo[]): number {
  return replicas.filter((replica) => replica.role === 'voter').length;
}

/**
 * The rules one executed step must keep, given the descriptor before and after it. Returns the
 * violations (empty when the step was safe).
 */
export function checkTransition(before: RangeInfo, step: OperatorStep, after: RangeInfo, nodes: NodeStates, rules: PlacementRules): Violation[] {
  const violations: Violation[] = [];
  const rangeId = before.id;
  const add = (rule: InvariantRule, detail: string): void => {
    violations.push({ rule, rangeId, detail: `${step.kind}: ${detail}` });
  };
  const seen = new Set<NodeId>();
  for (const replica of after.replicas) {
    if (seen.has(replica.nodeId)) add('duplicate-replica', `two replicas on node ${replica.nodeId}`);
    seen.add(replica.nodeId);
  }
  if (liveMajority(before.replicas, nodes) && !liveMajority(after.replicas, nodes)) add('quorum-lost-by-operator', 'the range had a live majority before the step and none after');
  const prior = before.replicas.find((replica) => step.kind !== 'transfer-leader' && step.kind !== 'split-range' && replica.nodeId === step.nodeId);
  switch (step.kind) {
    case 'add-learner':
      if (nodes.state(step.nodeId) !== 'up') add('replica-on-unfit-node', `node ${step.nodeId} is ${nodes.state(step.nodeId) ?? 'unknown'}`);
      break;
    case 'promote-learner':
      if (prior === undefined) add('step-on-missing-replica', `node ${step.nodeId} holds no replica`);
      else if (prior.role === 'learner' && prior.caughtUp !== true) add('promoted-lagging-learner', `learner on node ${step.nodeId} was not caught up`);
      if (nodes.state(step.nodeId) !== 'up') add('replica-on-unfit-node', `promoted a replica on node ${step.nodeId}, which is ${nodes.state(step.nodeId) ?? 'unknown'}`);
      break;
    case 'remove-replica':
      if (prior?.role === 'voter') {
        if (voterCount(after.replicas) < rules.votersPerRange) add('voters-below-count', `removing node ${step.nodeId} left ${voterCount(after.replicas)} voters`);
        if (before.leaderNodeId === step.nodeId) add('removed-leader', `node ${step.nodeId} was the leader`);
      }
      break;
    case 'transfer-leader': {
      const target = after.replicas.find((replica) => replica.nodeId === step.toNodeId);
      if (target?.role !== 'voter' || nodes.state(step.toNodeId) !== 'up') {
        add('leader-to-unfit-node', `node ${step.toNodeId} is ${target?.role ?? 'no replica'} on a ${nodes.state(step.toNodeId) ?? 'unknown'} node`);
      }
      break;
    }
    case 'split-range':
      break;
  }
  return violations;
}

/** A copy of `range` with `step` applied as a perfect executor would (learners catch up at once). */
export function applyStepToCopy(range: RangeInfo, step: OperatorStep): RangeInfo {
  const replicas = range.replicas.map((replica) => ({ ...replica }));
  let { leaderNodeId } = range;
  let { confVersion, version } = range.epoch;
  switch (step.kind) {
    case 'add-learner':
      replicas.push({ nodeId: step.nodeId, role: 'learner', caughtUp: true });
      confVersion++;
      break;
    case 'promote-learner': {
      const index = replicas.findIndex((replica) => replica.nodeId === step.nodeId);
      if (index >= 0) replicas[index] = { nodeId: step.nodeId, role: 'voter' };
      confVersion++;
      break;
    }
    case 'remove-replica': {
      const index = replicas.findIndex((replica) => replica.nodeId === step.nodeId);
      if (index >= 0) replicas.splice(index, 1);
      if (leaderNodeId === step.nodeId) leaderNodeId = undefined;
      confVersion++;
      break;
    }
    case 'transfer-leader':
      leaderNodeId = step.toNodeId;
      break;
    case 'split-range':
      version++;
      break;
  }
  const copy: RangeInfo = { ...range, replicas, epoch: { confVersion, version } };
  return leaderNodeId === undefined ? withoutLeader(copy) : { ...copy, leaderNodeId };
}

function withoutLeader(range: RangeInfo): RangeInfo {
  const { leaderNodeId: _dropped, ...rest } = range;
  void _dropped;
  return rest;
}

/**
 * Run every step of a freshly issued operator against a copy of its range, as a perfect executor
 * would (learners caught up at once), checking each transition; plus the rules that hold for the
 * plan as a whole: never for a range without a live majority, and never replacing a voter whose node
 * is only suspect or recently down.
 */
export function checkOperatorPlan(range: RangeInfo, operator: Operator, nodes: NodeStates, rules: PlacementRules): Violation[] {
  const violations: Violation[] = [];
  if (!liveMajority(range.replicas, nodes)) {
    violations.push({ rule: 'touched-unavailable-range', rangeId: range.id, detail: `operator ${operator.id} on a range without a live majority` });
  }
  const promotes = operator.steps.some((step) => step.kind === 'promote-learner');
  for (const step of operator.steps) {
    if (step.kind !== 'remove-replica' || !promotes) continue;
    const replica = range.replicas.find((candidate) => candidate.nodeId === step.nodeId);
    const state = nodes.state(step.nodeId);
    if (replica?.role === 'voter' && (state === 'suspect' || (state === 'down' && !nodes.replaceable(step.nodeId)))) {
      violations.push({ rule: 'replaced-recent-node', rangeId: range.id, detail: `operator ${operator.id} replaces the voter on ${state} node ${step.nodeId}` });
    }
  }
  // The executor waits for a learner to catch up before promoting it; the plan may count on that.
  let current: RangeInfo = { ...range, replicas: range.replicas.map((replica) => (replica.role === 'learner' ? { ...replica, caughtUp: true } : replica)) };
  for (const step of operator.steps) {
    const present = current.replicas.find((replica) => step.kind !== 'transfer-leader' && step.kind !== 'split-range' && replica.nodeId === step.nodeId);
    if (step.kind === 'add-learner' && present !== undefined) {
      violations.push({ rule: 'duplicate-replica', rangeId: range.id, detail: `operator ${operator.id} adds a learner on node ${step.nodeId}, which holds a replica` });
      continue;
    }
    if ((step.kind === 'promote-learner' || step.kind === 'remove-replica') && present === undefined) {
      violations.push({ rule: 'step-on-missing-replica', rangeId: range.id, detail: `operator ${operator.id}: ${step.kind} on node ${step.nodeId}, which holds no replica` });
      continue;
    }
    const next = applyStepToCopy(current, step);
    violations.push(...checkTransition(current, step, next, nodes, rules));
    current = next;
  }
  return violations;
}
