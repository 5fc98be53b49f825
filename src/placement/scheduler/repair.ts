// Policy 1, repair: keep every range at exactly `votersPerRange` voters, none of them dead.
// A dead voter (down for `downReplaceAfterMs`, or on a node the registry no longer lists) is
// replaced: the new voter is added as a learner, promoted, and only then is the dead one removed.
// Voters on suspect or recently-down nodes are left alone: they may come back.

import { isLive, type ClusterIndex, type NodeSlot } from './cluster-index';
import { voterMoveSteps, removalSteps } from './moves';
import { voterScore, votersPerZone, type RangeView } from './range-view';
import type { Round } from './round';
import { quorumSize } from './safety';
import { pickVoterTarget } from './targets';
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

/** Whether another voter of the range (leaving out `replacing`) is in `node`'s zone. */
function sharesZoneWithVoter(round: Round, view: RangeView, node: NodeSlot, replacing: NodeSlot | undefined): boolean {
  return node.zone >= 0 && (votersPerZone(round.index, view, replacing)[node.zone] ?? 0) > 0;
}

/** A learner of the range that can become a voter: on an up node with room, in a zone allowed to hold voters. */
function promotableLearner(round: Round, view: RangeView, replacing: NodeSlot | undefined): { node: NodeSlot; sharesZone: boolean } | undefined {
  let best: { node: NodeSlot; sharesZone: boolean } | undefined;
  for (const learner of view.learners) {
    if (learner.health !== 'up' || round.index.zoneAllowsVoters[learner.zone] !== true || !round.hasRoom(learner)) continue;
    const sharesZone = sharesZoneWithVoter(round, view, learner, replacing);
    if (best === undefined || (best.sharesZone && !sharesZone)) best = { node: learner, sharesZone };
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
  // A learner already holds the data: promote it unless a fresh node would spread the voters better.
  let to: NodeSlot | undefined = fresh;
  if (learner !== undefined && (fresh === undefined || !learner.sharesZone || sharesZoneWithVoter(round, view, fresh, replacing))) {
    to = learner.node;
  }
  if (to === undefined) return 'no-target';
  return voterMoveSteps(round, view, to, replacing) ?? 'no-target';
}
