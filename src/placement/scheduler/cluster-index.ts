// The scheduler's working view of one round, built once from the input in O(nodes + replicas +
// in-flight steps): nodes by id with their health, zone and projected counts; for each node the
// ranges it holds (in range id order); for each range its replicas' nodes and whether it is locked.
//
// Projected counts include the remaining steps of in-flight operators (a learner being added
// already counts on its target, a replica being removed no longer counts on its source), so a
// round never over-fills a node that earlier rounds are already filling.

import { InvalidClusterStateError, InvalidSchedulerConfigError } from './errors';
import type { SchedulerConfig } from './config';
import type { ClusterState, NodeId, NodeInfo, PlacementRules, RangeInfo } from './types';

/**
 * A node's health for scheduling: `down` is down for less than `downReplaceAfterMs` (its replicas
 * wait), `dead` is down for longer, or unknown to the node list (its replicas are replaced).
 */
export type Health = 'up' | 'draining' | 'suspect' | 'down' | 'dead';

export interface NodeSlot {
  readonly id: NodeId;
  /** Undefined for a node named by a replica but missing from the node list. */
  readonly info: NodeInfo | undefined;
  /** Index into `ClusterIndex.zones`; -1 for an unknown node. */
  readonly zone: number;
  readonly health: Health;
  readonly weight: number;
  /** Replicas (voters and learners), projected through in-flight operators. */
  replicas: number;
  /** Leaders, projected through in-flight transfers. */
  leaders: number;
  /** Operators in flight (issued this round included) that involve this node. */
  inFlight: number;
  /** Ranges with a replica here, in range id order. */
  readonly ranges: RangeSlot[];
}

export interface RangeSlot {
  readonly info: RangeInfo;
  /** `nodes[i]` is the node of `info.replicas[i]`. */
  readonly nodes: readonly NodeSlot[];
  readonly leader: NodeSlot | undefined;
  /** An operator is in flight or was issued this round: leave the range alone. */
  locked: boolean;
  /** Healthy and correctly placed: a replica may move for balance (set by the classification). */
  replicaMovable: boolean;
  /** Its leader may move for balance (set by the classification). */
  leaderMovable: boolean;
}

export interface ClusterIndex {
  readonly nowMs: number;
  readonly rules: PlacementRules;
  /** Every node, known ones first in id order, then unknown ones named by replicas. */
  readonly nodes: readonly NodeSlot[];
  readonly nodeById: ReadonlyMap<NodeId, NodeSlot>;
  /** Nodes whose health is `up`, in id order: the only ones that receive replicas or leaders. */
  readonly upNodes: readonly NodeSlot[];
  /** Zone names, sorted. */
  readonly zones: readonly string[];
  /** Per zone: whether it has an up node. */
  readonly zoneHasUpNode: readonly boolean[];
  /** Per zone: whether the rules let it hold voters. */
  readonly zoneAllowsVoters: readonly boolean[];
  /** Zones that allow voters and have an up node: how far voters of one range can spread. */
  readonly voterZoneCount: number;
  /** Ranges in id order. */
  readonly ranges: readonly RangeSlot[];
  readonly inFlightCount: number;
}

export function healthOf(info: NodeInfo | undefined, nowMs: number, downReplaceAfterMs: number): Health {
  if (info === undefined) return 'dead';
  switch (info.state) {
    case 'up':
    case 'draining':
    case 'suspect':
      return info.state;
    case 'down': {
      const since = info.downSinceMs;
      if (since === undefined || !Number.isFinite(since)) {
        throw new InvalidClusterStateError(`node ${info.id} is down but has no downSinceMs`);
      }
      return nowMs - since >= downReplaceAfterMs ? 'dead' : 'down';
    }
    default:
      throw new InvalidClusterStateError(`node ${String((info as NodeInfo).id)} has unknown state ${String((info as NodeInfo).state)}`);
  }
}

/** Alive for quorum purposes (see safety.ts). */
export function isLive(node: NodeSlot): boolean {
  return node.health === 'up' || node.health === 'draining';
}

/** Counted against `maxInFlightPerNode`: nodes that do work for an operator. */
export function isBudgeted(node: NodeSlot): boolean {
  return node.health === 'up' || node.health === 'draining' || node.health === 'suspect';
}

function sortedById<T extends { readonly id: number }>(items: readonly T[]): readonly T[] {
  for (let i = 1; i < items.length; i++) {
    if ((items[i - 1] as T).id >= (items[i] as T).id) return [...items].sort((a, b) => a.id - b.id);
  }
  return items;
}

export function buildIndex(state: ClusterState, config: SchedulerConfig): ClusterIndex {
  if (!Number.isFinite(state.nowMs)) throw new InvalidClusterStateError(`nowMs must be a finite number, got ${state.nowMs}`);
  const nodeInfos = sortedById(state.nodes);
  const zoneSet = new Set<string>();
  for (const info of nodeInfos) zoneSet.add(info.zone);
  const zones = [...zoneSet].sort();
  const zoneIndex = new Map<string, number>();
  zones.forEach((zone, i) => zoneIndex.set(zone, i));

  const nodes: NodeSlot[] = [];
  const nodeById = new Map<NodeId, NodeSlot>();
  const upNodes: NodeSlot[] = [];
  const zoneHasUpNode = zones.map(() => false);
  for (const info of nodeInfos) {
    if (nodeById.has(info.id)) throw new InvalidClusterStateError(`node ${info.id} is listed twice`);
    const weight = info.weight ?? 1;
    if (!(Number.isFinite(weight) && weight > 0)) throw new InvalidSchedulerConfigError(`nodes[${info.id}].weight`, `must be a positive number, got ${weight}`);
    const zone = zoneIndex.get(info.zone) as number;
    const slot: NodeSlot = {
      id: info.id,
      info,
      zone,
      health: healthOf(info, state.nowMs, config.downReplaceAfterMs),
      weight,
      replicas: 0,
      leaders: 0,
      inFlight: 0,
      ranges: [],
    };
    nodes.push(slot);
    nodeById.set(info.id, slot);
    if (slot.health === 'up') {
      upNodes.push(slot);
      zoneHasUpNode[zone] = true;
    }
  }
  const slotOf = (id: NodeId): NodeSlot => {
    let slot = nodeById.get(id);
    if (slot === undefined) {
      slot = { id, info: undefined, zone: -1, health: 'dead', weight: 1, replicas: 0, leaders: 0, inFlight: 0, ranges: [] };
      nodes.push(slot);
      nodeById.set(id, slot);
    }
    return slot;
  };

  const voterZones = state.rules.voterZones ?? [];
  const zoneAllowsVoters = zones.map((zone) => voterZones.length === 0 || voterZones.includes(zone));
  let voterZoneCount = 0;
  zones.forEach((_, i) => {
    if (zoneAllowsVoters[i] === true && zoneHasUpNode[i] === true) voterZoneCount++;
  });

  const ranges: RangeSlot[] = [];
  const rangeById = new Map<number, RangeSlot>();
  for (const info of sortedById(state.ranges)) {
    if (rangeById.has(info.id)) throw new InvalidClusterStateError(`range ${info.id} is listed twice`);
    const replicaNodes: NodeSlot[] = [];
    for (const replica of info.replicas) {
      const node = slotOf(replica.nodeId);
      if (replicaNodes.includes(node)) throw new InvalidClusterStateError(`range ${info.id} has two replicas on node ${replica.nodeId}`);
      replicaNodes.push(node);
    }
    const leaderIndex = info.leaderNodeId === undefined ? -1 : info.replicas.findIndex((r) => r.nodeId === info.leaderNodeId);
    const slot: RangeSlot = {
      info,
      nodes: replicaNodes,
      leader: leaderIndex < 0 ? undefined : replicaNodes[leaderIndex],
      locked: false,
      replicaMovable: false,
      leaderMovable: false,
    };
    ranges.push(slot);
    rangeById.set(info.id, slot);
    for (const node of replicaNodes) {
      node.replicas++;
      node.ranges.push(slot);
    }
    if (slot.leader !== undefined) slot.leader.leaders++;
  }

  for (const { operator, nextStep } of state.inFlight) {
    if (!Number.isSafeInteger(nextStep) || nextStep < 0 || nextStep > operator.steps.length) {
      throw new InvalidClusterStateError(`operator ${operator.id}: nextStep ${nextStep} is outside [0, ${operator.steps.length}]`);
    }
    const range = rangeById.get(operator.rangeId);
    if (range !== undefined) {
      if (range.locked) throw new InvalidClusterStateError(`range ${operator.rangeId} has two operators in flight`);
      range.locked = true;
    }
    const involved = new Set<NodeSlot>();
    operator.steps.forEach((step, i) => {
      if (step.rangeId !== operator.rangeId) throw new InvalidClusterStateError(`operator ${operator.id}: a step names range ${step.rangeId}`);
      switch (step.kind) {
        case 'add-learner':
        case 'promote-learner':
        case 'remove-replica': {
          const node = slotOf(step.nodeId);
          involved.add(node);
          if (i >= nextStep && step.kind === 'add-learner') node.replicas++;
          if (i >= nextStep && step.kind === 'remove-replica') node.replicas--;
          break;
        }
        case 'transfer-leader': {
          const from = slotOf(step.fromNodeId);
          const to = slotOf(step.toNodeId);
          involved.add(from).add(to);
          if (i >= nextStep) {
            from.leaders--;
            to.leaders++;
          }
          break;
        }
        case 'split-range':
          if (range?.leader !== undefined) involved.add(range.leader);
          break;
      }
    });
    for (const node of involved) node.inFlight++;
  }

  return {
    nowMs: state.nowMs,
    rules: state.rules,
    nodes,
    nodeById,
    upNodes,
    zones,
    zoneHasUpNode,
    zoneAllowsVoters,
    voterZoneCount,
    ranges,
    inFlightCount: state.inFlight.length,
  };
}
