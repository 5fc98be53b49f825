// Scheduler options and placement rules: typed in one interface each, defaults in one place,
// validated once by `resolveSchedulerConfig` / `validateRules`.

import { InvalidSchedulerConfigError } from './errors';
import type { PlacementRules } from './types';

export interface SchedulerConfig {
  /** How long a node stays down before its replicas are replaced (ms). 5 minutes. */
  readonly downReplaceAfterMs: number;
  /** New operators one round may issue, all policies together. */
  readonly maxOperatorsPerRound: number;
  /** Operators in flight in the whole cluster (earlier ones included); new ones stop at this bound. */
  readonly maxInFlightOperators: number;
  /**
   * Operators in flight that add a replica to one node (each a snapshot for it to receive; a
   * promotion of its learner counts too). Removing a replica costs a node nothing worth limiting.
   * Repair and drain may use all of it; learner placement and balance leave a quarter free for them.
   */
  readonly maxInFlightPerNode: number;
  /** Leader transfers in flight that involve one node, at either end. */
  readonly maxLeaderTransfersPerNode: number;
  /** Split a range at or above this size (bytes). 96 MiB, for 64 MiB-class ranges. */
  readonly splitSizeBytes: number;
  /** Split a range at or above this many keys. */
  readonly splitKeys: number;
  /** Split a range at or above this load (reads and writes per second). */
  readonly splitQps: number;
  /**
   * Replica balance band, as a fraction of the mean replicas per unit of weight: a node above
   * mean × (1 + t) gives replicas away, a node below mean × (1 − t) takes some. Once every up node
   * is inside the band, max/min ≤ (1 + t)/(1 − t): 1.083 for the default 0.04.
   */
  readonly replicaBalanceTolerance: number;
  /** The same band for leaders (default 0.1: max/min ≤ 1.22 once converged). */
  readonly leaderBalanceTolerance: number;
}

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = Object.freeze({
  downReplaceAfterMs: 5 * 60 * 1000,
  maxOperatorsPerRound: 64,
  maxInFlightOperators: 256,
  maxInFlightPerNode: 4,
  maxLeaderTransfersPerNode: 4,
  splitSizeBytes: 96 * 1024 * 1024,
  splitKeys: 1_000_000,
  splitQps: 2_500,
  replicaBalanceTolerance: 0.04,
  leaderBalanceTolerance: 0.1,
});

export const DEFAULT_PLACEMENT_RULES: PlacementRules = Object.freeze({
  votersPerRange: 3,
  learners: 'none',
});

/** Upper bound on `votersPerRange`: more voters than this is a configuration mistake. */
export const MAX_VOTERS_PER_RANGE = 9;

function requireInteger(field: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidSchedulerConfigError(field, `must be an integer >= ${min}, got ${value}`);
  }
}

function requirePositive(field: string, value: number): void {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new InvalidSchedulerConfigError(field, `must be a positive number, got ${value}`);
  }
}

function requireFraction(field: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0 && value < 1)) {
    throw new InvalidSchedulerConfigError(field, `must be in [0, 1), got ${value}`);
  }
}

/** Defaults overlaid with `overrides`, validated. */
export function resolveSchedulerConfig(overrides: Partial<SchedulerConfig> = {}): SchedulerConfig {
  const config: SchedulerConfig = { ...DEFAULT_SCHEDULER_CONFIG, ...overrides };
  requireInteger('downReplaceAfterMs', config.downReplaceAfterMs, 0);
  requireInteger('maxOperatorsPerRound', config.maxOperatorsPerRound, 0);
  requireInteger('maxInFlightOperators', config.maxInFlightOperators, 0);
  requireInteger('maxInFlightPerNode', config.maxInFlightPerNode, 1);
  requireInteger('maxLeaderTransfersPerNode', config.maxLeaderTransfersPerNode, 1);
  requirePositive('splitSizeBytes', config.splitSizeBytes);
  requirePositive('splitKeys', config.splitKeys);
  requirePositive('splitQps', config.splitQps);
  requireFraction('replicaBalanceTolerance', config.replicaBalanceTolerance);
  requireFraction('leaderBalanceTolerance', config.leaderBalanceTolerance);
  return Object.freeze(config);
}

export function validateRules(rules: PlacementRules): void {
  requireInteger('rules.votersPerRange', rules.votersPerRange, 1);
  if (rules.votersPerRange > MAX_VOTERS_PER_RANGE) {
    throw new InvalidSchedulerConfigError('rules.votersPerRange', `must be at most ${MAX_VOTERS_PER_RANGE}, got ${rules.votersPerRange}`);
  }
  if (rules.learners !== 'none' && rules.learners !== 'zones-without-voter') {
    throw new InvalidSchedulerConfigError('rules.learners', `must be 'none' or 'zones-without-voter', got ${String(rules.learners)}`);
  }
  for (const zone of rules.voterZones ?? []) {
    if (typeof zone !== 'string' || zone.length === 0) {
      throw new InvalidSchedulerConfigError('rules.voterZones', 'must hold non-empty zone names');
    }
  }
}
