// Choosing the node that receives a replica or a leader. Only `up` nodes with room in the per-node
// limit qualify, never one that already holds a replica of the range. Ties break by node id, so
// the choice depends on the input only.

import type { NodeSlot } from './cluster-index';
import type { RangeView } from './range-view';
import { leaderScore, learnersPerZone, votersPerZone } from './range-view';
import type { Round } from './round';

export interface VoterTargetOptions {
  /** The voter the new one replaces: its zone no longer counts as taken. */
  readonly replacing?: NodeSlot;
  /**
   * Highest zone penalty accepted: 2 for a zone that already holds another voter of the range, +1
   * for a zone that holds one of its learners (which the new voter would make redundant).
   */
  readonly maxZonePenalty?: number;
  /** An extra condition on the candidate (balance: the move must be worth it). */
  readonly accept?: (candidate: NodeSlot) => boolean;
}

function holds(view: RangeView, node: NodeSlot): boolean {
  return view.nodes.includes(node);
}

/** The zone penalty of placing a voter of `view` on `candidate` (see `VoterTargetOptions`). */
export function voterZonePenalty(round: Round, view: RangeView, candidate: NodeSlot, replacing?: NodeSlot): number {
  const perZone = votersPerZone(round.index, view, replacing);
  const learnerZones = round.index.rules.learners === 'none' ? undefined : learnersPerZone(round.index, view);
  return zonePenalty(perZone, learnerZones, candidate.zone);
}

function zonePenalty(perZone: readonly number[], learnerZones: readonly number[] | undefined, zone: number): number {
  if (zone < 0) return 3;
  return ((perZone[zone] ?? 0) > 0 ? 2 : 0) + ((learnerZones?.[zone] ?? 0) > 0 ? 1 : 0);
}

/**
 * The best node for a new voter of `view`: in a zone allowed to hold voters, with the lowest zone
 * penalty, then the fewest voters per unit of weight (counting the new one), then the lowest id.
 */
export function pickVoterTarget(round: Round, view: RangeView, options: VoterTargetOptions = {}): NodeSlot | undefined {
  const { index } = round;
  const perZone = votersPerZone(index, view, options.replacing);
  const learnerZones = index.rules.learners === 'none' ? undefined : learnersPerZone(index, view);
  const maxPenalty = options.maxZonePenalty ?? Number.POSITIVE_INFINITY;
  let best: NodeSlot | undefined;
  let bestPenalty = 0;
  let bestScore = 0;
  for (const candidate of index.upNodes) {
    if (index.zoneAllowsVoters[candidate.zone] !== true) continue;
    if (holds(view, candidate) || !round.hasRoom(candidate)) continue;
    const penalty = zonePenalty(perZone, learnerZones, candidate.zone);
    if (penalty > maxPenalty) continue;
    const score = (candidate.voters + 1) / candidate.weight;
    if (best !== undefined && (penalty > bestPenalty || (penalty === bestPenalty && score >= bestScore))) continue;
    if (options.accept !== undefined && !options.accept(candidate)) continue;
    best = candidate;
    bestPenalty = penalty;
    bestScore = score;
  }
  return best;
}

/** The best node for a learner of `view` in `zone`: fewest learners per weight, then lowest id. */
export function pickLearnerTarget(round: Round, view: RangeView, zone: number, accept?: (candidate: NodeSlot) => boolean): NodeSlot | undefined {
  let best: NodeSlot | undefined;
  let bestScore = 0;
  for (const candidate of round.index.upNodes) {
    if (candidate.zone !== zone || holds(view, candidate) || !round.hasRoom(candidate)) continue;
    const score = (candidate.learners + 1) / candidate.weight;
    if (best !== undefined && score >= bestScore) continue;
    if (accept !== undefined && !accept(candidate)) continue;
    best = candidate;
    bestScore = score;
  }
  return best;
}

/**
 * The best voter of `view` to take leadership from `from`: an up node with room, fewest leaders per
 * weight, then lowest id. `extra` is a node about to become a voter (a move's new replica).
 */
export function pickLeaderTarget(round: Round, view: RangeView, from: NodeSlot, extra?: NodeSlot): NodeSlot | undefined {
  let best: NodeSlot | undefined;
  const consider = (candidate: NodeSlot): void => {
    if (candidate === from || candidate.health !== 'up' || !round.hasTransferRoom(candidate)) return;
    if (best === undefined || leaderScore(candidate) < leaderScore(best) || (leaderScore(candidate) === leaderScore(best) && candidate.id < best.id)) {
      best = candidate;
    }
  };
  for (const voter of view.voters) consider(voter);
  if (extra !== undefined) consider(extra);
  return best;
}
