// One scheduling round: classify every range by its most urgent need, then issue operators policy
// by policy in priority order — repair, drain, learners, replica balance, leader balance, splits —
// until the rate limits are reached. At most one operator per range; none for a range with one in
// flight, none for a range without a quorum or without a live leader to execute it.
//
// Pure: the result depends on the arguments only (no clock, no randomness, no I/O), and not on the
// order of nodes, ranges or in-flight operators in the input. Ties break by id.

import { balanceLeaders } from './balance-leaders';
import { balanceReplicas, planZoneFix } from './balance-replicas';
import { ClusterIndex } from './cluster-index';
import { resolveSchedulerConfig, validateRules, type SchedulerConfig } from './config';
import { planDrain } from './drain';
import { planLearners } from './learners';
import { RangeFacts, viewRange, type RangeView } from './range-view';
import { planRepair, repairUrgency, type PlanResult } from './repair';
import { Round } from './round';
import { splitReason } from './split';
import type { ClusterState, OperatorPurpose, RangeId, ScheduleResult, SplitReason } from './types';

type Planner = (round: Round, view: RangeView) => PlanResult;

function issue(round: Round, view: RangeView, purpose: OperatorPurpose, plan: Planner): void {
  if (round.exhausted) {
    round.counts.throttled++;
    return;
  }
  const steps = plan(round, view);
  if (steps === 'no-target') round.counts.noTarget++;
  else round.emit(view, purpose, steps);
}

/**
 * Plan one round. `config` overrides the defaults (`DEFAULT_SCHEDULER_CONFIG`); it is validated
 * here. Throws `InvalidSchedulerConfigError` or `InvalidClusterStateError` on bad input only.
 * Cost: O(nodes + replicas + in-flight steps) to index and classify, plus O(nodes) per operator.
 */
export function schedule(state: ClusterState, config: Partial<SchedulerConfig> = {}): ScheduleResult {
  const resolved = resolveSchedulerConfig(config);
  validateRules(state.rules);
  const index = new ClusterIndex(state, resolved);
  const round = new Round(index, resolved);
  const { counts } = round;
  const target = state.rules.votersPerRange;

  const unavailableRanges: RangeId[] = [];
  const repairs: RangeView[] = [];
  const drains: number[] = [];
  const learners: number[] = [];
  const zoneFixes: number[] = [];
  const splits: { r: number; reason: SplitReason }[] = [];
  const facts = new RangeFacts(index);

  for (let r = 0; r < index.ranges.length; r++) {
    if (index.isLocked(r)) {
      counts.inFlight++;
      continue;
    }
    facts.load(r);
    const info = index.range(r);
    if (!facts.available) {
      unavailableRanges.push(info.id);
      continue;
    }
    if (!facts.leaderLive) {
      counts.leaderless++;
      continue;
    }
    const reason = splitReason(resolved, info.stats);
    if (reason !== undefined) {
      splits.push({ r, reason });
      counts.split++;
    }
    if (facts.voters !== target || facts.deadVoters > 0) {
      repairs.push(viewRange(index, r));
      counts.repair++;
    } else if (facts.draining) {
      drains.push(r);
      counts.drain++;
    } else if (facts.learnerMismatch) {
      index.markMovable(r, false, facts.leaderUp);
      learners.push(r);
      counts.learner++;
    } else if (facts.zoneViolations > 0) {
      // Fixed only once every replica is up: a move off a suspect or recently-down node would
      // replace it before its time.
      index.markMovable(r, false, facts.leaderUp);
      if (facts.allUp) zoneFixes.push(r);
    } else {
      index.markMovable(r, facts.allUp, facts.leaderUp);
    }
  }

  // Repairs in order of urgency: ranges closest to losing their quorum first.
  repairs.sort((a, b) => repairUrgency(a) - repairUrgency(b) || a.info.id - b.info.id);
  for (const view of repairs) issue(round, view, 'repair', planRepair);
  for (const r of drains) issue(round, viewRange(index, r), 'drain', planDrain);
  round.urgent = false;
  for (const r of learners) issue(round, viewRange(index, r), 'learner', planLearners);
  for (const r of zoneFixes) issue(round, viewRange(index, r), 'balance-replicas', planZoneFix);
  balanceReplicas(round);
  balanceLeaders(round);
  for (const { r, reason } of splits) {
    if (index.isLocked(r)) continue;
    const rangeId = index.range(r).id;
    issue(round, viewRange(index, r), 'split', () => [{ kind: 'split-range', rangeId, reason }]);
  }

  return { operators: round.operators, unavailableRanges, counts: { ...counts } };
}
