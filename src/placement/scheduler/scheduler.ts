// One scheduling round: classify every range by its most urgent need, then issue operators policy
// by policy in priority order — repair, drain, learners, replica balance, leader balance, splits —
// until the rate limits are reached. At most one operator per range; none for a range with one in
// flight, none for a range without a quorum or without a live leader to execute it.
//
// Pure: the result depends on the arguments only (no clock, no randomness, no I/O), and not on the
// order of nodes, ranges or in-flight operators in the input. Ties break by id.

import { balanceLeaders } from './balance-leaders';
import { balanceReplicas, planZoneFix } from './balance-replicas';
import { buildIndex } from './cluster-index';
import { resolveSchedulerConfig, validateRules, type SchedulerConfig } from './config';
import { needsDrain, planDrain } from './drain';
import { needsLearnerWork, planLearners } from './learners';
import { viewRange, zoneViolations, type RangeView } from './range-view';
import { needsRepair, planRepair, repairUrgency, type PlanResult } from './repair';
import { Round } from './round';
import { splitReason } from './split';
import type { ClusterState, OperatorPurpose, RangeId, ScheduleResult, SplitReason } from './types';

function issue(round: Round, view: RangeView, purpose: OperatorPurpose, plan: (round: Round, view: RangeView) => PlanResult): void {
  if (round.exhausted) {
    round.counts.throttled++;
    return;
  }
  const steps = plan(round, view);
  if (steps === 'no-target') round.counts.noTarget++;
  else round.emit(view.slot, purpose, steps);
}

/**
 * Plan one round. `config` overrides the defaults (`DEFAULT_SCHEDULER_CONFIG`); it is validated
 * here. Throws `InvalidSchedulerConfigError` or `InvalidClusterStateError` on bad input only.
 */
export function schedule(state: ClusterState, config: Partial<SchedulerConfig> = {}): ScheduleResult {
  const resolved = resolveSchedulerConfig(config);
  validateRules(state.rules);
  const index = buildIndex(state, resolved);
  const round = new Round(index, resolved);
  const { counts } = round;

  const unavailableRanges: RangeId[] = [];
  const repairs: RangeView[] = [];
  const drains: RangeView[] = [];
  const learners: RangeView[] = [];
  const zoneFixes: RangeView[] = [];
  const splits: { view: RangeView; reason: SplitReason }[] = [];

  for (const slot of index.ranges) {
    if (slot.locked) {
      counts.inFlight++;
      continue;
    }
    const view = viewRange(slot);
    if (!view.available) {
      unavailableRanges.push(slot.info.id);
      continue;
    }
    if (!view.leaderLive) {
      counts.leaderless++;
      continue;
    }
    const reason = splitReason(resolved, slot.info.stats);
    if (reason !== undefined) {
      splits.push({ view, reason });
      counts.split++;
    }
    if (needsRepair(index, view)) {
      repairs.push(view);
      counts.repair++;
      continue;
    }
    if (needsDrain(view)) {
      drains.push(view);
      counts.drain++;
      continue;
    }
    slot.leaderMovable = slot.leader?.health === 'up';
    if (needsLearnerWork(index, view)) {
      learners.push(view);
      counts.learner++;
      continue;
    }
    if (zoneViolations(index, view) > 0) {
      zoneFixes.push(view);
      continue;
    }
    slot.replicaMovable = slot.nodes.every((node) => node.health === 'up');
  }

  repairs.sort((a, b) => repairUrgency(a) - repairUrgency(b) || a.slot.info.id - b.slot.info.id);
  for (const view of repairs) issue(round, view, 'repair', planRepair);
  for (const view of drains) issue(round, view, 'drain', planDrain);
  for (const view of learners) issue(round, view, 'learner', planLearners);
  for (const view of zoneFixes) issue(round, view, 'balance-replicas', planZoneFix);
  balanceReplicas(round);
  balanceLeaders(round);
  for (const { view, reason } of splits) {
    if (view.slot.locked) continue;
    issue(round, view, 'split', () => [{ kind: 'split-range', rangeId: view.slot.info.id, reason }]);
  }

  return { operators: round.operators, unavailableRanges, counts: { ...counts } };
}
