// Policy 1, repair: keep every range at exactly `votersPerRange` voters, none of them dead.
// A dead voter (down for `downReplaceAfterMs`, or on a node the registry no longer lists) is
// replaced: the new voter is added as a learner, promoted, and only then is the dead one removed.
// Voters on suspect or recently-down nodes are left alone: they may come back.

import { isLive, type ClusterIndex, type NodeSlot } from './cluster-index';
import { voterMoveSteps, removalSteps } from './moves';
import { voterScore, votersPerZone, type RangeView } from './range-view';
import type { Round } from './round';
import { quorumSize } from './safety';
import { pickVoterTarget, voterZonePenalty } from './targets';
import type { OperatorStep } from './types';

export type PlanResult = readonly OperatorStep[] | 'no-target';

/** Lower is more urgent: how many more voters the range can lose before it loses its quorum. */
export function repairUrgency(view: RangeView): number {
  return view.liveVoters - quorumSize(view.voters.length);
}

const HEALTH_RANK = { dead: 0, down: 1, suspect: 2, draining: 3, up: 4 } as const;

/** Which voter to drop from a range that has too many: the least useful one first. */
function removalOrder(index: ClusterIndex, view: RangeView): NodeSlot[] {
  const perZone = votersPerZone(index, view);
  const misplaced = (node: NodeSlot): number =>
    node.zone < 0 || index.zoneAllowsVoters[node.zone] !== true || (perZone[node.zone] ?? 0) > 1 ? 0 : 1;
  return [...view.voters].sort(
    (a, b) =>
      HEALTH_RANK[a.health] - HEALTH_RANK[b.health] ||
      misplaced(a) - misplaced(b) ||
      voterScore(b) - voterScore(a) ||
      a.id - b.id,
  );
}

/** A learner of the range that can become a voter: on an up node, in a zone allowed to hold voters. */
function promotableLearner(round: Round, view: RangeView, replacing: NodeSlot | undefined): { node: NodeSlot; penalty: number } | undefined {
  let best: { node: NodeSlot; penalty: number } | undefined;
  for (const learner of view.learners) {
    if (learner.health !== 'up' || round.index.zoneAllowsVoters[learner.zone] !== true || !round.hasRoom(learner)) continue;
    // The learner's own zone holds a learner (itself); only other voters count against it.
    const penalty = voterZonePenalty(round, view, learner, replacing) & 2;
    if (best === undefined || penalty < best.penalty) best = { node: learner, penalty };
  }
  return best;
}

/** The steps that bring `view` one step closer to its voter count, or why none can. */
export function planRepair(round: Round, view: RangeView): PlanResult {
  const { index } = round;
  const target = index.rules.votersPerRange;
  const voterCount = view.voters.length;

  if (voterCount > target) {
    for (const victim of removalOrder(index, view)) {
      // Removing a live voter must leave a live majority of the smaller set.
      if (isLive(victim) && view.liveVoters - 1 < quorumSize(voterCount - 1)) continue;
      const steps = removalSteps(round, view, victim);
      if (steps !== undefined) return steps;
    }
    return 'no-target';
  }

  // Below the count, add a voter; at the count with a dead voter, replace it.
  const dead = view.voters.filter((voter) => voter.health === 'dead');
  const replacing = voterCount >= target ? dead[0] : undefined;
  const fresh = pickVoterTarget(round, view, { replacing });
  const learner = promotableLearner(round, view, replacing);
  let to: NodeSlot | undefined = fresh;
  if (learner !== undefined && (fresh === undefined || learner.penalty <= (voterZonePenalty(round, view, fresh, replacing) & 2))) {
    to = learner.node;
  }
  if (to === undefined) return 'no-target';
  return voterMoveSteps(round, view, to, replacing) ?? 'no-target';
}
