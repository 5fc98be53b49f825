// One scheduling round: the index, the rate limits left, the operators issued so far and the
// counts reported. Policies plan steps; `emit` is the only place an operator is created, so the
// limits, the one-operator-per-range rule and the projected counts are enforced in one place.

import type { SchedulerConfig } from './config';
import { isBudgeted, operatorCharges, projectSteps, type ClusterIndex, type NodeSlot } from './cluster-index';
import type { RangeView } from './range-view';
import type { Operator, OperatorPurpose, OperatorStep } from './types';

export interface MutableCounts {
  repair: number;
  drain: number;
  learner: number;
  split: number;
  throttled: number;
  noTarget: number;
  leaderless: number;
  inFlight: number;
}

export type EmitResult = 'issued' | 'throttled';

export class Round {
  readonly operators: Operator[] = [];
  readonly counts: MutableCounts = { repair: 0, drain: 0, learner: 0, split: 0, throttled: 0, noTarget: 0, leaderless: 0, inFlight: 0 };
  /**
   * Urgent work (repair, drain) may fill a node's `maxInFlightPerNode`; background work (learners,
   * balance) leaves a quarter of it free, so a long rebalance never starves a repair of targets.
   */
  urgent = true;
  private remaining: number;
  private readonly backgroundReplicaOps: number;

  constructor(readonly index: ClusterIndex, readonly config: SchedulerConfig) {
    this.remaining = Math.max(0, Math.min(config.maxOperatorsPerRound, config.maxInFlightOperators - index.inFlightCount));
    this.backgroundReplicaOps = config.maxInFlightPerNode - Math.floor(config.maxInFlightPerNode / 4);
  }

  /** No operator can be issued any more this round. */
  get exhausted(): boolean {
    return this.remaining <= 0;
  }

  /** Whether `node` can receive one more replica (or have a learner promoted). */
  hasRoom(node: NodeSlot): boolean {
    return !isBudgeted(node) || node.replicaOps < (this.urgent ? this.config.maxInFlightPerNode : this.backgroundReplicaOps);
  }

  /** Whether `node` can take part in one more leader transfer. */
  hasTransferRoom(node: NodeSlot): boolean {
    return !isBudgeted(node) || node.transferOps < this.config.maxLeaderTransfersPerNode;
  }

  /**
   * Issue an operator of `steps` on `range` if the limits allow: lock the range, charge every node
   * involved, project the steps' effect on replica and leader counts.
   */
  emit(range: RangeView, purpose: OperatorPurpose, steps: readonly OperatorStep[]): EmitResult {
    if (this.index.isLocked(range.r)) throw new TypeError(`range ${range.info.id} is locked: a policy planned it twice`);
    const { epoch, id } = range.info;
    const operator: Operator = {
      id: `${purpose}/r${id}/v${epoch.version}/c${epoch.confVersion}`,
      rangeId: id,
      epoch: { confVersion: epoch.confVersion, version: epoch.version },
      purpose,
      steps,
    };
    const charges = operatorCharges(operator);
    const replicaNodes = [...charges.replicaNodes].map((nodeId) => this.node(nodeId));
    const transferNodes = [...charges.transferNodes].map((nodeId) => this.node(nodeId));
    if (this.remaining <= 0 || !replicaNodes.every((node) => this.hasRoom(node)) || !transferNodes.every((node) => this.hasTransferRoom(node))) {
      this.counts.throttled++;
      return 'throttled';
    }
    this.remaining--;
    this.index.lock(range.r);
    for (const node of replicaNodes) node.replicaOps++;
    for (const node of transferNodes) node.transferOps++;
    projectSteps(steps, 0, range.info.replicas, (nodeId) => this.node(nodeId));
    this.operators.push(operator);
    return 'issued';
  }

  private node(id: number): NodeSlot {
    const node = this.index.nodeById.get(id);
    if (node === undefined) throw new TypeError(`a policy planned a step on node ${id}, which the index does not hold`);
    return node;
  }
}
