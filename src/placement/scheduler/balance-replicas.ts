// Policy 4, replica balance. First, voters placed against the zone rules (two in one zone while
// enough zones have up nodes, or one in a zone not allowed to hold voters) move to a zone that
// fixes it. Then, in each balance domain (a zone, when the rules fix each zone's share; otherwise
// the nodes of all zones that may hold voters), replicas move from the most loaded up node to the
// least loaded ones until every node holds between mean × (1 − t) and mean × (1 + t) replicas per
// unit of weight (t = `replicaBalanceTolerance`), or no move helps. Only ranges that are healthy and correctly placed
// move, each move never worsens the zone placement, and a move never inverts the pair it balances
// (so nothing oscillates).

import type { NodeSlot } from './cluster-index';
import { learnerMoveSteps, voterMoveSteps } from './moves';
import { replicaScore, viewRange, votersPerZone, type RangeView } from './range-view';
import type { PlanResult } from './repair';
import type { Round } from './round';
import { pickLearnerTarget, pickVoterTarget, voterZonePenalty } from './targets';

/** Ranges tried per source node before giving up on it for this round. */
const ATTEMPTS_PER_SOURCE = 8;

/** Move the voter that breaks the zone rules to a zone with no other voter of the range. */
export function planZoneFix(round: Round, view: RangeView): PlanResult {
  const { index } = round;
  const perZone = votersPerZone(index, view);
  const offenders = view.voters.filter(
    (voter) => voter.zone < 0 || index.zoneAllowsVoters[voter.zone] !== true || (perZone[voter.zone] ?? 0) > 1,
  );
  // Prefer moving a replica that is not the leader, from the most loaded node.
  offenders.sort((a, b) => Number(a === view.leader) - Number(b === view.leader) || replicaScore(b) - replicaScore(a) || a.id - b.id);
  for (const voter of offenders) {
    const to = pickVoterTarget(round, view, { replacing: voter, maxZonePenalty: 1 });
    if (to === undefined) continue;
    const steps = voterMoveSteps(round, view, to, voter);
    if (steps !== undefined) return steps;
  }
  return 'no-target';
}

interface Band {
  readonly mean: number;
  readonly high: number;
  readonly low: number;
  /** The domain is one zone: moves stay inside it. Undefined: any zone. */
  readonly zone: number | undefined;
}

/** Whether moving one replica from `source` to `target` brings the pair toward the band, without inverting it. */
function worthMoving(band: Band, source: NodeSlot, target: NodeSlot): boolean {
  if (band.zone !== undefined && target.zone !== band.zone) return false;
  const s = replicaScore(source);
  const t = replicaScore(target);
  const towardBand = (s > band.high && t < band.mean) || (t < band.low && s > band.mean);
  return towardBand && (source.replicas - 1) / source.weight >= (target.replicas + 1) / target.weight;
}

/** Plan one move off `source` for `range`, if a target is worth it. */
function planMoveOff(round: Round, band: Band, view: RangeView, source: NodeSlot): PlanResult {
  const accept = (candidate: NodeSlot): boolean => worthMoving(band, source, candidate);
  if (view.learners.includes(source)) {
    const to = pickLearnerTarget(round, view, source.zone, accept);
    return to === undefined ? 'no-target' : learnerMoveSteps(view, to, source);
  }
  // Never worsen the zone placement: the target's zone penalty may not exceed the source's.
  const current = voterZonePenalty(round, view, source, source);
  const to = pickVoterTarget(round, view, { replacing: source, maxZonePenalty: current, accept });
  if (to === undefined) return 'no-target';
  return voterMoveSteps(round, view, to, source) ?? 'no-target';
}

/** One move off `source`: non-leader replicas first (no transfer needed). */
function moveOneOff(round: Round, band: Band, source: NodeSlot): boolean {
  const { index } = round;
  let attempts = 0;
  let issued = false;
  for (const leaderPass of [false, true]) {
    const done = index.someRangeOf(source, (r) => {
      if (!index.isReplicaMovable(r) || (index.leaderOf(r) === source) !== leaderPass) return false;
      if (++attempts > ATTEMPTS_PER_SOURCE) return true;
      const view = viewRange(index, r);
      const plan = planMoveOff(round, band, view, source);
      if (plan === 'no-target') return false;
      issued = round.emit(view, 'balance-replicas', plan) === 'issued';
      return true;
    });
    if (done) break;
  }
  return issued;
}

/**
 * The groups of up nodes balanced against their own mean. When the rules fix how many replicas of
 * every range each zone holds — one learner or voter in every zone (learner rule
 * `zones-without-voter`), or no more voter zones than voters per range — each zone is its own
 * domain: replicas can only move inside it. Otherwise one domain of the nodes in zones that may
 * hold voters (nodes elsewhere hold nothing and must not drag the mean down).
 */
function balanceDomains(round: Round): { nodes: NodeSlot[]; zone: number | undefined }[] {
  const { index } = round;
  const perZone = index.rules.learners !== 'none' || index.voterZoneCount <= index.rules.votersPerRange;
  if (!perZone) return [{ nodes: index.upNodes.filter((node) => index.zoneAllowsVoters[node.zone] === true), zone: undefined }];
  return index.zones.map((_, zone) => ({ nodes: index.upNodes.filter((node) => node.zone === zone), zone }));
}

function balanceDomain(round: Round, up: readonly NodeSlot[], zone: number | undefined): void {
  if (up.length < 2) return;
  let total = 0;
  let weight = 0;
  for (const node of up) {
    total += node.replicas;
    weight += node.weight;
  }
  const mean = total / weight;
  const tolerance = round.config.replicaBalanceTolerance;
  const band: Band = { mean, high: mean * (1 + tolerance), low: mean * (1 - tolerance), zone };
  const givenUp = new Set<NodeSlot>();
  while (!round.exhausted) {
    let source: NodeSlot | undefined;
    let target: NodeSlot | undefined;
    for (const node of up) {
      // Giving a replica away costs the source nothing; receiving one takes room.
      const score = replicaScore(node);
      if (!givenUp.has(node) && score > mean && (source === undefined || score > replicaScore(source))) source = node;
      if (round.hasRoom(node) && (target === undefined || score < replicaScore(target))) target = node;
    }
    // The most loaded source and the least loaded target: if this pair is not worth a move, no pair is.
    if (source === undefined || target === undefined || source === target || !worthMoving(band, source, target)) return;
    if (!moveOneOff(round, band, source)) givenUp.add(source);
  }
}

export function balanceReplicas(round: Round): void {
  for (const domain of balanceDomains(round)) balanceDomain(round, domain.nodes, domain.zone);
}
