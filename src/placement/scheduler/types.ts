// The scheduler's vocabulary: the cluster state it reads, the operators it issues, what it reports.
// Everything here is plain data, so the placement service can build it from its meta state machine
// and the tests can write it by hand.

export type NodeId = number;
export type RangeId = number;

/**
 * A node's health as the placement service sees it (from heartbeats and admin commands):
 * - `up`: heartbeating; may receive replicas and leaders;
 * - `suspect`: heartbeats late; keeps its replicas (they are not replaced yet), receives nothing new;
 * - `down`: no heartbeats since `downSinceMs`; its replicas are replaced once it has been down for
 *   `downReplaceAfterMs`;
 * - `draining`: alive and serving, but everything is being moved off it (`kvctl node drain`).
 */
export type NodeState = 'up' | 'suspect' | 'down' | 'draining';

export interface NodeInfo {
  readonly id: NodeId;
  readonly zone: string;
  readonly state: NodeState;
  /** When the node was first seen down, on the caller's clock (ms). Required when `state` is `down`. */
  readonly downSinceMs?: number;
  /** Relative capacity (default 1): a node of weight 2 is given twice the replicas and leaders. */
  readonly weight?: number;
}

export type ReplicaRole = 'voter' | 'learner';

export interface ReplicaInfo {
  readonly nodeId: NodeId;
  readonly role: ReplicaRole;
  /**
   * Learners only: the range leader reports the learner's log close enough to its own that
   * promoting it will not stall commits. A learner is promoted only when this is true.
   */
  readonly caughtUp?: boolean;
}

/** `version` bumps on split/merge, `confVersion` on every membership change (DESIGN.md). */
export interface RangeEpoch {
  readonly confVersion: number;
  readonly version: number;
}

export interface RangeStats {
  readonly sizeBytes: number;
  readonly keys: number;
  /** Reads and writes per second, as last reported by the range leader. */
  readonly qps: number;
}

/** Key bounds as the caller holds them (hex strings or bytes); the scheduler never reads them. */
export type KeyBound = string | Uint8Array;

export interface RangeInfo {
  readonly id: RangeId;
  readonly start?: KeyBound;
  readonly end?: KeyBound;
  readonly epoch: RangeEpoch;
  readonly replicas: readonly ReplicaInfo[];
  /** The node the last heartbeat named as leader; undefined when no leader is known. */
  readonly leaderNodeId?: NodeId;
  readonly stats: RangeStats;
}

/**
 * Learners per zone:
 * - `none`: no learners; any learner found is removed;
 * - `zones-without-voter`: one learner in every zone that has an up node and holds no voter of
 *   the range (stale reads close to clients, and a copy to promote on zone failover).
 */
export type LearnerRule = 'none' | 'zones-without-voter';

export interface PlacementRules {
  /** Voters per range: 3 by default, 5 for more failure tolerance. At least 1. */
  readonly votersPerRange: number;
  /**
   * Zones allowed to hold voters (the primary zones). Empty or undefined: every zone. Voters of one
   * range go to distinct zones whenever there are enough zones with up nodes.
   */
  readonly voterZones?: readonly string[];
  readonly learners: LearnerRule;
}

// ---------------------------------------------------------------------------------------------
// Operators

/** Add `nodeId` as a non-voting learner; it receives a snapshot and catches up. */
export interface AddLearner {
  readonly kind: 'add-learner';
  readonly rangeId: RangeId;
  readonly nodeId: NodeId;
}

/** Turn the learner on `nodeId` into a voter (only once the leader reports it caught up). */
export interface PromoteLearner {
  readonly kind: 'promote-learner';
  readonly rangeId: RangeId;
  readonly nodeId: NodeId;
}

/** Remove the replica (voter or learner) on `nodeId` from the range. */
export interface RemoveReplica {
  readonly kind: 'remove-replica';
  readonly rangeId: RangeId;
  readonly nodeId: NodeId;
}

/** Make sure `fromNodeId` no longer leads the range, by handing leadership to `toNodeId`. */
export interface TransferLeader {
  readonly kind: 'transfer-leader';
  readonly rangeId: RangeId;
  readonly fromNodeId: NodeId;
  readonly toNodeId: NodeId;
}

export type SplitReason = 'size' | 'keys' | 'load';

/** Split the range; the range leader picks the split key (it knows the data). */
export interface SplitRange {
  readonly kind: 'split-range';
  readonly rangeId: RangeId;
  readonly reason: SplitReason;
}

/** One step of an operator: a single command sent to the range leader. */
export type OperatorStep = AddLearner | PromoteLearner | RemoveReplica | TransferLeader | SplitRange;

/** Why an operator was issued, in the scheduler's priority order. */
export type OperatorPurpose = 'repair' | 'drain' | 'learner' | 'balance-replicas' | 'balance-leaders' | 'split';

/**
 * A safe sequence of steps on one range, executed in order, one at a time, by the caller. Before
 * each step the caller asks `checkStep` whether the step is safe now: the cluster may have changed
 * since the operator was planned. Every prefix of the sequence leaves the range with a quorum and
 * never below its voter count (a replacement is promoted before the replica it replaces goes).
 */
export interface Operator {
  /** Deterministic: the same plan of the same range at the same epoch has the same id. */
  readonly id: string;
  readonly rangeId: RangeId;
  /** The range's epoch when the operator was planned. */
  readonly epoch: RangeEpoch;
  readonly purpose: OperatorPurpose;
  readonly steps: readonly OperatorStep[];
}

/** An operator being executed; `nextStep` indexes `operator.steps` (steps before it are done). */
export interface InFlightOperator {
  readonly operator: Operator;
  readonly nextStep: number;
}

// ---------------------------------------------------------------------------------------------
// Input and output of one scheduling round

export interface ClusterState {
  /** The caller's clock (ms); compared with `NodeInfo.downSinceMs` only. */
  readonly nowMs: number;
  readonly nodes: readonly NodeInfo[];
  readonly ranges: readonly RangeInfo[];
  readonly rules: PlacementRules;
  /** Operators issued earlier and not finished or aborted: their ranges are left alone. */
  readonly inFlight: readonly InFlightOperator[];
}

/** Ranges that needed work this round, by policy, and why some of it was not issued. */
export interface ScheduleCounts {
  /** Ranges below their voter count, or with a replica to replace on a dead node. */
  readonly repair: number;
  /** Ranges with a replica or the leader on a draining node. */
  readonly drain: number;
  /** Ranges missing a learner the rules want, or holding one they do not. */
  readonly learner: number;
  /** Ranges past a split threshold. */
  readonly split: number;
  /** Needs not issued this round because a rate limit was reached. */
  readonly throttled: number;
  /** Needs not issued because no node could take the replica (or the leader). */
  readonly noTarget: number;
  /** Ranges skipped because no live leader is known to execute an operator. */
  readonly leaderless: number;
  /** Ranges skipped because an operator is in flight. */
  readonly inFlight: number;
}

export interface ScheduleResult {
  /** New operators, in priority order; at most one per range, none for a range already in flight. */
  readonly operators: readonly Operator[];
  /**
   * Ranges whose quorum is lost (fewer than a majority of voters on up or draining nodes). They are
   * not touched: no membership change can commit without a quorum.
   */
  readonly unavailableRanges: readonly RangeId[];
  readonly counts: ScheduleCounts;
}

/** What remains on a node being drained, for `kvctl node drain`'s progress bar. */
export interface DrainProgress {
  readonly nodeId: NodeId;
  readonly state: NodeState;
  readonly voters: number;
  readonly learners: number;
  /** voters + learners */
  readonly replicas: number;
  readonly leaders: number;
  /** In-flight operators that involve the node. */
  readonly inFlightOperators: number;
  /** Nothing left: the node can be removed. */
  readonly done: boolean;
}

/** Per-node figures derived from the ranges (for `kvctl nodes`, metrics and the simulation). */
export interface NodeLoad {
  readonly nodeId: NodeId;
  readonly replicas: number;
  readonly voters: number;
  readonly learners: number;
  readonly leaders: number;
  readonly sizeBytes: number;
  /** qps of the ranges this node leads. */
  readonly leaderQps: number;
}
