// Policy 3, learners: one learner in every zone that has an up node and holds no voter of the
// range (rule `zones-without-voter`), none at all under rule `none`. A dead learner is re-created
// in its zone and removed; extra learners (a second one in a zone, one in a zone that holds a
// voter, leftovers of an aborted move) are removed. Learners do not vote, so none of this touches
// a quorum.

import type { ClusterIndex, NodeSlot } from './cluster-index';
import { learnerMoveSteps } from './moves';
import { votersPerZone, type RangeView } from './range-view';
import type { PlanResult } from './repair';
import type { Round } from './round';
import { pickLearnerTarget } from './targets';
import type { OperatorStep } from './types';

export interface LearnerAnalysis {
  /** Learners the rules want kept but whose node is dead: re-create in their zone, then remove. */
  readonly deadKept: readonly NodeSlot[];
  /** Zones (indexes) that should hold a learner and hold none. */
  readonly missingZones: readonly number[];
  /** Learners the rules do not want. */
  readonly excess: readonly NodeSlot[];
}

const NO_WORK: LearnerAnalysis = { deadKept: [], missingZones: [], excess: [] };

/** Zones that should hold a learner of `view`: zones with an up node and no voter of the range. */
function desiredZones(index: ClusterIndex, view: RangeView): boolean[] {
  const perZone = votersPerZone(index, view);
  return index.zones.map((_, zone) => index.zoneHasUpNode[zone] === true && perZone[zone] === 0);
}

/** Rank of a learner for keeping it when its zone has several: live first, then lowest id. */
function keepRank(node: NodeSlot): number {
  switch (node.health) {
    case 'up':
      return 0;
    case 'suspect':
    case 'down':
      return 1;
    case 'draining':
      return 2;
    case 'dead':
      return 3;
  }
}

export function analyzeLearners(index: ClusterIndex, view: RangeView): LearnerAnalysis {
  if (index.rules.learners === 'none') return view.learners.length === 0 ? NO_WORK : { deadKept: [], missingZones: [], excess: view.learners };
  const desired = desiredZones(index, view);
  const keeperOfZone = new Map<number, NodeSlot>();
  const excess: NodeSlot[] = [];
  for (const learner of view.learners) {
    if (learner.zone < 0 || desired[learner.zone] !== true) {
      excess.push(learner);
      continue;
    }
    const keeper = keeperOfZone.get(learner.zone);
    if (keeper === undefined) {
      keeperOfZone.set(learner.zone, learner);
    } else if (keepRank(learner) < keepRank(keeper)) {
      excess.push(keeper);
      keeperOfZone.set(learner.zone, learner);
    } else {
      excess.push(learner);
    }
  }
  const deadKept: NodeSlot[] = [];
  for (const keeper of keeperOfZone.values()) if (keeper.health === 'dead') deadKept.push(keeper);
  const missingZones: number[] = [];
  desired.forEach((wanted, zone) => {
    if (wanted && !keeperOfZone.has(zone)) missingZones.push(zone);
  });
  if (deadKept.length === 0 && missingZones.length === 0 && excess.length === 0) return NO_WORK;
  deadKept.sort((a, b) => a.id - b.id);
  excess.sort((a, b) => a.id - b.id);
  return { deadKept, missingZones, excess };
}

/** Whether the rules want a learner in `learner`'s zone and `learner` is the one kept there. */
export function wantsLearnerIn(index: ClusterIndex, view: RangeView, learner: NodeSlot): boolean {
  if (index.rules.learners === 'none' || learner.zone < 0) return false;
  return desiredZones(index, view)[learner.zone] === true;
}

export function planLearners(round: Round, view: RangeView): PlanResult {
  const { deadKept, missingZones, excess } = analyzeLearners(round.index, view);
  const rangeId = view.info.id;
  for (const dead of deadKept) {
    const to = pickLearnerTarget(round, view, dead.zone);
    if (to !== undefined) return learnerMoveSteps(view, to, dead);
    return [{ kind: 'remove-replica', rangeId, nodeId: dead.id }];
  }
  for (const zone of missingZones) {
    const to = pickLearnerTarget(round, view, zone);
    if (to !== undefined) return learnerMoveSteps(view, to, undefined);
  }
  const extra = excess[0];
  if (extra !== undefined) {
    const steps: OperatorStep[] = [{ kind: 'remove-replica', rangeId, nodeId: extra.id }];
    return steps;
  }
  return 'no-target';
}
