// Policy 4, replica balance. First, voters placed against the zone rules (two in one zone while
// enough zones have up nodes, or one in a zone not allowed to hold voters) move to a zone that
// fixes it. Then voters and learners are balanced separately — voters so that every node can take
// its share of leaders, learners so that they do not pile onto the newest nodes — each in its
// balance domains (see `balanceDomains`): replicas move from the most loaded up node to the least
// loaded ones until every node holds between mean × (1 − t) and mean × (1 + t) of them per unit
// of weight (t = `replicaBalanceTolerance`), or no move helps. Balanced voters and learners make
// balanced replica counts. Only ranges that are healthy and correctly placed move, a move never
// worsens the zone placement, and a move never inverts the pair it balances (so nothing
// oscillates).

import type { NodeSlot } from './cluster-index';
import { learnerMoveSteps, voterMoveSteps } from './moves';
import { learnerScore, viewRange, voterScore, votersPerZone, type RangeView } from './range-view';
import type { PlanResult } from './repair';
import type { Round } from './round';
import { pickLearnerTarget, pickVoterTarget, voterZonePenalty } from './targets';
import type { ReplicaRole } from './types';

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
  offenders.sort((a, b) => Number(a === view.leader) - Number(b === view.leader) || voterScore(b) - voterScore(a) || a.id - b.id);
  for (const voter of offenders) {
    const to = pickVoterTarget(round, view, { replacing: voter, maxZonePenalty: 1 });
    if (to === undefined) continue;
    const steps = voterMoveSteps(round, view, to, voter);
    if (steps !== undefined) return steps;
  }
  return 'no-target';
}

interface Band {
  readonly role: ReplicaRole;
  readonly mean: number;
  readonly high: number;
  readonly low: number;
  /** The domain is one zone: moves stay inside it. Undefined: any zone. */
  readonly zone: number | undefined;
}

function count(band: Band, node: NodeSlot): number {
  return band.role === 'voter' ? node.voters : node.learners;
}

function score(band: Band, node: NodeSlot): number {
  return band.role === 'voter' ? voterScore(node) : learnerScore(node);
}

/** Whether moving one replica of the band's role from `source` to `target` brings the pair toward the band, without inverting it. */
function worthMoving(band: Band, source: NodeSlot, target: NodeSlot): boolean {
  if (band.zone !== undefined && target.zone !== band.zone) return false;
  const s = score(band, source);
  const t = score(band, target);
  const towardBand = (s > band.high && t < band.mean) || (t < band.low && s > band.mean);
  return towardBand && (count(band, source) - 1) / source.weight >= (count(band, target) + 1) / target.weight;
}

/** Plan one move off `source` for `view`, if a target is worth it. */
function planMoveOff(round: Round, band: Band, view: RangeView, source: NodeSlot): PlanResult {
  const accept = (candidate: NodeSlot): boolean => worthMoving(band, source, candidate);
  if (band.role === 'learner') {
    const to = pickLearnerTarget(round, view, source.zone, accept);
    return to === undefined ? 'no-target' : learnerMoveSteps(view, to, source);
  }
  // Never worsen the zone placement: the target's zone penalty may not exceed the source's.
  const current = voterZonePenalty(round, view, source, source);
  const to = pickVoterTarget(round, view, { replacing: source, maxZonePenalty: current, accept });
  if (to === undefined) return 'no-target';
  return voterMoveSteps(round, view, to, source) ?? 'no-target';
}

/** One move of a replica of the band's role off `source`: non-leader replicas first (no transfer needed). */
function moveOneOff(round: Round, band: Band, source: NodeSlot): boolean {
  const { index } = round;
  let attempts = 0;
  let issued = false;
  for (const leaderPass of [false, true]) {
    const done = index.someRangeOf(source, (r) => {
      if (!index.isReplicaMovable(r) || (index.leaderOf(r) === source) !== leaderPass) return false;
      if (index.range(r).replicas.find((replica) => replica.nodeId === source.id)?.role !== band.role) return false;
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
 * The groups of up nodes balanced against their own mean, per role. Learners never leave their
 * zone: one domain per zone. Voters: when the rules fix how many replicas of every range each zone
 * holds — one learner or voter in every zone (learner rule `zones-without-voter`), or no more
 * voter zones than voters per range — each zone is its own domain; otherwise one domain of the
 * nodes in zones that may hold voters (nodes elsewhere hold none and must not drag the mean down).
 */
function balanceDomains(round: Round, role: ReplicaRole): { nodes: NodeSlot[]; zone: number | undefined }[] {
  const { index } = round;
  const perZone = role === 'learner' || index.rules.learners !== 'none' || index.voterZoneCount <= index.rules.votersPerRange;
  if (!perZone) return [{ nodes: index.upNodes.filter((node) => index.zoneAllowsVoters[node.zone] === true), zone: undefined }];
  return index.zones.map((_, zone) => ({ nodes: index.upNodes.filter((node) => node.zone === zone), zone }));
}

function balanceDomain(round: Round, role: ReplicaRole, up: readonly NodeSlot[], zone: number | undefined): void {
  if (up.length < 2) return;
  let total = 0;
  let weight = 0;
  for (const node of up) {
    total += role === 'voter' ? node.voters : node.learners;
    weight += node.weight;
  }
  const mean = total / weight;
  const tolerance = round.config.replicaBalanceTolerance;
  const band: Band = { role, mean, high: mean * (1 + tolerance), low: mean * (1 - tolerance), zone };
  const givenUp = new Set<NodeSlot>();
  while (!round.exhausted) {
    let source: NodeSlot | undefined;
    let target: NodeSlot | undefined;
    for (const node of up) {
      // Giving a replica away costs the source nothing; receiving one takes room.
      const s = score(band, node);
      if (!givenUp.has(node) && s > mean && (source === undefined || s > score(band, source))) source = node;
      if (round.hasRoom(node) && (target === undefined || s < score(band, target))) target = node;
    }
    // The most loaded source and the least loaded target: if this pair is not worth a move, no pair is.
    if (source === undefined || target === undefined || source === target || !worthMoving(band, source, target)) return;
    if (!moveOneOff(round, band, source)) givenUp.add(source);
  }
}

export function balanceReplicas(round: Round): void {
  const roles: ReplicaRole[] = round.index.rules.learners === 'none' ? ['voter'] : ['voter', 'learner'];
  for (const role of roles) {
    for (const domain of balanceDomains(round, role)) balanceDomain(round, role, domain.nodes, domain.zone);
  }
}
