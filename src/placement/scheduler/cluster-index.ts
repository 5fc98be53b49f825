// The scheduler's working view of one round, built once from the input in O(nodes + replicas +
// in-flight steps). Nodes get a small object each (a cluster has thousands); ranges (a cluster has
// hundreds of thousands) live in flat typed arrays addressed by their position `r` in id order, so a
// round allocates a few arrays instead of an object per range:
//   replicas of range r:   replicaNode[replicaStart[r] .. replicaStart[r + 1])  (node positions,
//                          parallel to ranges[r].replicas)
//   ranges held by node n: nodeRanges[nodeRangeStart[n] .. nodeRangeStart[n + 1])  (ascending r)
//
// Projected counts include the remaining steps of in-flight operators (a learner being added
// already counts on its target, a replica being removed no longer counts on its source), so a
// round never over-fills a node that earlier rounds are already filling.

import { InvalidClusterStateError, InvalidSchedulerConfigError } from './errors';
import type { SchedulerConfig } from './config';
import type { ClusterState, NodeId, NodeInfo, Operator, OperatorStep, PlacementRules, RangeId, RangeInfo, ReplicaInfo, ReplicaRole } from './types';

/**
 * A node's health for scheduling: `down` is down for less than `downReplaceAfterMs` (its replicas
 * wait), `dead` is down for longer, or unknown to the node list (its replicas are replaced).
 */
export type Health = 'up' | 'draining' | 'suspect' | 'down' | 'dead';

export interface NodeSlot {
  readonly id: NodeId;
  /** Position in `ClusterIndex.nodes`. */
  readonly position: number;
  /** Undefined for a node named by a replica but missing from the node list. */
  readonly info: NodeInfo | undefined;
  /** Index into `ClusterIndex.zones`; -1 for an unknown node. */
  readonly zone: number;
  readonly health: Health;
  readonly weight: number;
  /** Voters and learners held, projected through in-flight operators. */
  voters: number;
  learners: number;
  /** Leaders, projected through in-flight transfers. */
  leaders: number;
  /** Operators in flight (issued this round included) that add a replica here. */
  replicaOps: number;
  /** Leader transfers in flight (issued this round included) from or to this node. */
  transferOps: number;
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

/** Counted against the per-node limits: nodes that can do work. Down nodes do none. */
export function isBudgeted(node: NodeSlot): boolean {
  return node.health === 'up' || node.health === 'draining' || node.health === 'suspect';
}

/** The nodes an operator charges against the per-node limits. */
export interface OperatorCharges {
  /** Nodes that receive a replica (a snapshot) or have their learner promoted: `maxInFlightPerNode`. */
  readonly replicaNodes: ReadonlySet<NodeId>;
  /** Both ends of each leader transfer: `maxLeaderTransfersPerNode`. */
  readonly transferNodes: ReadonlySet<NodeId>;
}

/** Removals and splits charge nobody: they move no data. Each node is charged once per operator. */
export function operatorCharges(operator: Operator): OperatorCharges {
  const replicaNodes = new Set<NodeId>();
  const transferNodes = new Set<NodeId>();
  for (const step of operator.steps) {
    if (step.kind === 'add-learner' || step.kind === 'promote-learner') replicaNodes.add(step.nodeId);
    else if (step.kind === 'transfer-leader') transferNodes.add(step.fromNodeId).add(step.toNodeId);
  }
  return { replicaNodes, transferNodes };
}

/**
 * Project `steps` from `start` on onto the nodes' counts, starting from the range's current
 * `replicas` (steps before `start` are already in them): a learner added counts as a learner, a
 * promotion turns it into a voter, a removal takes away whatever the replica is by then.
 */
export function projectSteps(steps: readonly OperatorStep[], start: number, replicas: readonly ReplicaInfo[], slotOf: (id: NodeId) => NodeSlot): void {
  const roles = new Map<NodeId, ReplicaRole>();
  for (const replica of replicas) roles.set(replica.nodeId, replica.role);
  for (let i = start; i < steps.length; i++) {
    const step = steps[i] as OperatorStep;
    switch (step.kind) {
      case 'add-learner':
        if (!roles.has(step.nodeId)) {
          roles.set(step.nodeId, 'learner');
          slotOf(step.nodeId).learners++;
        }
        break;
      case 'promote-learner':
        if (roles.get(step.nodeId) === 'learner') {
          roles.set(step.nodeId, 'voter');
          const node = slotOf(step.nodeId);
          node.learners--;
          node.voters++;
        }
        break;
      case 'remove-replica': {
        const role = roles.get(step.nodeId);
        if (role === 'voter') slotOf(step.nodeId).voters--;
        if (role === 'learner') slotOf(step.nodeId).learners--;
        roles.delete(step.nodeId);
        break;
      }
      case 'transfer-leader':
        slotOf(step.fromNodeId).leaders--;
        slotOf(step.toNodeId).leaders++;
        break;
      case 'split-range':
        break;
    }
  }
}

const LOCKED = 1;
const REPLICA_MOVABLE = 2;
const LEADER_MOVABLE = 4;

function sortedById<T extends { readonly id: number }>(items: readonly T[]): readonly T[] {
  for (let i = 1; i < items.length; i++) {
    if ((items[i - 1] as T).id >= (items[i] as T).id) return [...items].sort((a, b) => a.id - b.id);
  }
  return items;
}

export class ClusterIndex {
  readonly nowMs: number;
  readonly rules: PlacementRules;
  /** Every node: listed ones in id order, then unknown ones named by replicas or operators. */
  readonly nodes: NodeSlot[] = [];
  readonly nodeById = new Map<NodeId, NodeSlot>();
  /** Nodes whose health is `up`, in id order: the only ones that receive replicas or leaders. */
  readonly upNodes: NodeSlot[] = [];
  /** Zone names, sorted. */
  readonly zones: readonly string[];
  /** Per zone: whether it has an up node. */
  readonly zoneHasUpNode: boolean[];
  /** Per zone: whether the rules let it hold voters. */
  readonly zoneAllowsVoters: readonly boolean[];
  /** Zones that allow voters and have an up node: how far voters of one range can spread. */
  readonly voterZoneCount: number;
  /** Zones with an up node. */
  readonly upZoneCount: number;
  /** Ranges in id order; `r` below is a position in this array. */
  readonly ranges: readonly RangeInfo[];
  readonly replicaStart: Int32Array;
  readonly replicaNode: Int32Array;
  /** Position of the node that leads range r, or -1 (none known, or not a replica). */
  readonly leaderNode: Int32Array;
  readonly nodeRangeStart: Int32Array;
  readonly nodeRanges: Int32Array;
  readonly inFlightCount: number;
  private readonly flags: Uint8Array;
  /** Listed nodes by id when ids are small non-negative integers (the usual case): faster than the map. */
  private readonly denseById: (NodeSlot | undefined)[];

  constructor(state: ClusterState, config: SchedulerConfig) {
    if (!Number.isFinite(state.nowMs)) throw new InvalidClusterStateError(`nowMs must be a finite number, got ${state.nowMs}`);
    this.nowMs = state.nowMs;
    this.rules = state.rules;
    const nodeInfos = sortedById(state.nodes);
    this.zones = [...new Set(nodeInfos.map((info) => info.zone))].sort();
    const zoneIndex = new Map<string, number>();
    this.zones.forEach((zone, i) => zoneIndex.set(zone, i));
    this.zoneHasUpNode = this.zones.map(() => false);
    for (const info of nodeInfos) {
      if (this.nodeById.has(info.id)) throw new InvalidClusterStateError(`node ${info.id} is listed twice`);
      const weight = info.weight ?? 1;
      if (!(Number.isFinite(weight) && weight > 0)) throw new InvalidSchedulerConfigError(`nodes[${info.id}].weight`, `must be a positive number, got ${weight}`);
      const zone = zoneIndex.get(info.zone) as number;
      const node = this.addNode(info.id, info, zone, healthOf(info, state.nowMs, config.downReplaceAfterMs), weight);
      if (node.health === 'up') {
        this.upNodes.push(node);
        this.zoneHasUpNode[zone] = true;
      }
    }
    const maxId = nodeInfos.length === 0 ? -1 : (nodeInfos[nodeInfos.length - 1] as NodeInfo).id;
    const dense = Number.isSafeInteger(maxId) && maxId < 4 * nodeInfos.length + 64 && nodeInfos.every((info) => Number.isSafeInteger(info.id) && info.id >= 0);
    this.denseById = dense ? new Array<NodeSlot | undefined>(maxId + 1).fill(undefined) : [];
    if (dense) for (const node of this.nodes) this.denseById[node.id] = node;
    const voterZones = state.rules.voterZones ?? [];
    this.zoneAllowsVoters = this.zones.map((zone) => voterZones.length === 0 || voterZones.includes(zone));
    this.voterZoneCount = this.zones.filter((_, z) => this.zoneAllowsVoters[z] === true && this.zoneHasUpNode[z] === true).length;
    this.upZoneCount = this.zoneHasUpNode.filter(Boolean).length;

    // Ranges: replicas' node positions, leaders, counts.
    this.ranges = sortedById(state.ranges);
    const rangeCount = this.ranges.length;
    let total = 0;
    for (const info of this.ranges) total += info.replicas.length;
    this.replicaStart = new Int32Array(rangeCount + 1);
    this.replicaNode = new Int32Array(total);
    this.leaderNode = new Int32Array(rangeCount).fill(-1);
    this.flags = new Uint8Array(rangeCount);
    const inFlightByRange = new Map<RangeId, Operator>();
    const lockedRanges = new Map<RangeId, RangeInfo>();
    for (const { operator } of state.inFlight) {
      if (inFlightByRange.has(operator.rangeId)) throw new InvalidClusterStateError(`range ${operator.rangeId} has two operators in flight`);
      inFlightByRange.set(operator.rangeId, operator);
    }
    let at = 0;
    let previousId = Number.NEGATIVE_INFINITY;
    for (let r = 0; r < rangeCount; r++) {
      const info = this.ranges[r] as RangeInfo;
      if (info.id === previousId) throw new InvalidClusterStateError(`range ${info.id} is listed twice`);
      previousId = info.id;
      this.replicaStart[r] = at;
      for (const replica of info.replicas) {
        const node = this.slotOf(replica.nodeId);
        for (let i = this.replicaStart[r] as number; i < at; i++) {
          if (this.replicaNode[i] === node.position) throw new InvalidClusterStateError(`range ${info.id} has two replicas on node ${replica.nodeId}`);
        }
        this.replicaNode[at++] = node.position;
        if (replica.role === 'voter') node.voters++;
        else node.learners++;
        if (replica.nodeId === info.leaderNodeId) {
          this.leaderNode[r] = node.position;
          node.leaders++;
        }
      }
      if (inFlightByRange.has(info.id)) {
        this.flags[r] = LOCKED;
        lockedRanges.set(info.id, info);
      }
    }
    this.replicaStart[rangeCount] = at;

    // In-flight operators: project their remaining steps, charge their nodes.
    for (const { operator, nextStep } of state.inFlight) {
      if (!Number.isSafeInteger(nextStep) || nextStep < 0 || nextStep > operator.steps.length) {
        throw new InvalidClusterStateError(`operator ${operator.id}: nextStep ${nextStep} is outside [0, ${operator.steps.length}]`);
      }
      for (const step of operator.steps) {
        if (step.rangeId !== operator.rangeId) throw new InvalidClusterStateError(`operator ${operator.id}: a step names range ${step.rangeId}`);
      }
      projectSteps(operator.steps, nextStep, lockedRanges.get(operator.rangeId)?.replicas ?? [], (id) => this.slotOf(id));
      const charges = operatorCharges(operator);
      for (const id of charges.replicaNodes) this.slotOf(id).replicaOps++;
      for (const id of charges.transferNodes) this.slotOf(id).transferOps++;
    }
    this.inFlightCount = state.inFlight.length;

    // Ranges by node (counting sort: positions stay in ascending range order).
    const nodeCount = this.nodes.length;
    this.nodeRangeStart = new Int32Array(nodeCount + 1);
    for (let i = 0; i < total; i++) {
      const slot = (this.replicaNode[i] as number) + 1;
      this.nodeRangeStart[slot] = (this.nodeRangeStart[slot] as number) + 1;
    }
    for (let n = 0; n < nodeCount; n++) this.nodeRangeStart[n + 1] = (this.nodeRangeStart[n + 1] as number) + (this.nodeRangeStart[n] as number);
    this.nodeRanges = new Int32Array(total);
    const fill = this.nodeRangeStart.slice(0, nodeCount);
    for (let r = 0; r < rangeCount; r++) {
      const end = this.replicaStart[r + 1] as number;
      for (let i = this.replicaStart[r] as number; i < end; i++) {
        const n = this.replicaNode[i] as number;
        this.nodeRanges[fill[n] as number] = r;
        fill[n] = (fill[n] as number) + 1;
      }
    }
  }

  node(position: number): NodeSlot {
    const node = this.nodes[position];
    if (node === undefined) throw new RangeError(`no node at position ${position}`);
    return node;
  }

  range(r: number): RangeInfo {
    const range = this.ranges[r];
    if (range === undefined) throw new RangeError(`no range at position ${r}`);
    return range;
  }

  /** The node of replica `i` of range r (parallel to `range(r).replicas`). */
  replicaNodeOf(r: number, i: number): NodeSlot {
    return this.node(this.replicaNode[(this.replicaStart[r] as number) + i] as number);
  }

  leaderOf(r: number): NodeSlot | undefined {
    const position = this.leaderNode[r] as number;
    return position < 0 ? undefined : this.node(position);
  }

  /** Calls `visit(r)` for each range with a replica on `node`, in range id order, until it returns true. */
  someRangeOf(node: NodeSlot, visit: (r: number) => boolean): boolean {
    const end = this.nodeRangeStart[node.position + 1] as number;
    for (let i = this.nodeRangeStart[node.position] as number; i < end; i++) {
      if (visit(this.nodeRanges[i] as number)) return true;
    }
    return false;
  }

  isLocked(r: number): boolean {
    return ((this.flags[r] as number) & LOCKED) !== 0;
  }

  lock(r: number): void {
    this.flags[r] = (this.flags[r] as number) | LOCKED;
  }

  /** Healthy and correctly placed: a replica may move for balance (set by the classification). */
  isReplicaMovable(r: number): boolean {
    const flags = this.flags[r] as number;
    return (flags & LOCKED) === 0 && (flags & REPLICA_MOVABLE) !== 0;
  }

  /** Its leader may move for balance (set by the classification). */
  isLeaderMovable(r: number): boolean {
    const flags = this.flags[r] as number;
    return (flags & LOCKED) === 0 && (flags & LEADER_MOVABLE) !== 0;
  }

  markMovable(r: number, replica: boolean, leader: boolean): void {
    this.flags[r] = ((this.flags[r] as number) & LOCKED) | (replica ? REPLICA_MOVABLE : 0) | (leader ? LEADER_MOVABLE : 0);
  }

  private addNode(id: NodeId, info: NodeInfo | undefined, zone: number, health: Health, weight: number): NodeSlot {
    const node: NodeSlot = { id, position: this.nodes.length, info, zone, health, weight, voters: 0, learners: 0, leaders: 0, replicaOps: 0, transferOps: 0 };
    this.nodes.push(node);
    this.nodeById.set(id, node);
    return node;
  }

  /** The node with `id`, created as an unknown (dead) node if the node list does not have it. */
  slotOf(id: NodeId): NodeSlot {
    return this.denseById[id] ?? this.nodeById.get(id) ?? this.addNode(id, undefined, -1, 'dead', 1);
  }
}
