// Policy 2, drain: move every replica and the leadership off nodes being drained. Leadership goes
// first (a cheap transfer), then each voter is replaced like a dead one (learner, promote, remove)
// and each learner is re-created in its zone if the rules still want it there, then removed.

import { voterMoveSteps, learnerMoveSteps, removalSteps } from './moves';
import { wantsLearnerIn } from './learners';
import type { RangeView } from './range-view';
import type { PlanResult } from './repair';
import type { Round } from './round';
import { pickLearnerTarget, pickLeaderTarget, pickVoterTarget } from './targets';

export function planDrain(round: Round, view: RangeView): PlanResult {
  const leader = view.leader;
  if (leader !== undefined && leader.health === 'draining' && round.hasTransferRoom(leader)) {
    const heir = pickLeaderTarget(round, view, leader);
    if (heir !== undefined) {
      return [{ kind: 'transfer-leader', rangeId: view.info.id, fromNodeId: leader.id, toNodeId: heir.id }];
    }
  }
  for (const voter of view.voters) {
    if (voter.health !== 'draining') continue;
    const to = pickVoterTarget(round, view, { replacing: voter });
    if (to === undefined) continue;
    const steps = voterMoveSteps(round, view, to, voter);
    if (steps !== undefined) return steps;
  }
  for (const learner of view.learners) {
    if (learner.health !== 'draining') continue;
    if (wantsLearnerIn(round.index, view, learner)) {
      const to = pickLearnerTarget(round, view, learner.zone);
      if (to !== undefined) return learnerMoveSteps(view, to, learner);
    }
    const steps = removalSteps(round, view, learner);
    if (steps !== undefined) return steps;
  }
  return 'no-target';
}
