// Policy 5, leader balance: transfer leadership from nodes with the most leaders (per unit of
// weight) to voters of the same range with fewer, until every up node is within
// `leaderBalanceTolerance` of the mean or no transfer helps. Leadership only ever goes to a voter on
// an up node. Nodes above the band push leaderships to peers below the mean; then nodes still below
// the band pull leaderships from peers above the mean, among ranges where they are a voter. A
// transfer never inverts the pair it balances, so nothing oscillates.

import type { NodeSlot } from './cluster-index';
import { leaderScore, viewRange } from './range-view';
import type { Round } from './round';

interface Band {
  readonly mean: number;
  readonly high: number;
  readonly low: number;
}

function worthTransferring(band: Band, from: NodeSlot, to: NodeSlot): boolean {
  const f = leaderScore(from);
  const t = leaderScore(to);
  const towardBand = (f > band.high && t < band.mean) || (t < band.low && f > band.mean);
  return towardBand && (from.leaders - 1) / from.weight >= (to.leaders + 1) / to.weight;
}

// Both scans are bounded by the ranges of one node and cost a few comparisons per range.

function transfer(round: Round, r: number, from: NodeSlot, to: NodeSlot): boolean {
  const view = viewRange(round.index, r);
  const rangeId = view.info.id;
  return round.emit(view, 'balance-leaders', [{ kind: 'transfer-leader', rangeId, fromNodeId: from.id, toNodeId: to.id }]) === 'issued';
}

/** The voter of range r, other than `from`, best placed to lead: up, with room, fewest leaders per weight, lowest id. */
function bestPeer(round: Round, r: number, from: NodeSlot): NodeSlot | undefined {
  const { index } = round;
  const replicas = index.range(r).replicas;
  let best: NodeSlot | undefined;
  for (let i = 0; i < replicas.length; i++) {
    if ((replicas[i] as (typeof replicas)[number]).role !== 'voter') continue;
    const node = index.replicaNodeOf(r, i);
    if (node === from || node.health !== 'up' || !round.hasTransferRoom(node)) continue;
    if (best === undefined || leaderScore(node) < leaderScore(best) || (leaderScore(node) === leaderScore(best) && node.id < best.id)) best = node;
  }
  return best;
}

/** One pass over the ranges `from` leads, handing leaderships to peers while `from` is above the band. */
function pushFrom(round: Round, band: Band, from: NodeSlot): void {
  const { index } = round;
  index.someRangeOf(from, (r) => {
    if (round.exhausted || leaderScore(from) <= band.high || !round.hasTransferRoom(from)) return true;
    if (index.leaderOf(r) !== from || !index.isLeaderMovable(r)) return false;
    const to = bestPeer(round, r, from);
    if (to !== undefined && worthTransferring(band, from, to)) transfer(round, r, from, to);
    return false;
  });
}

/** One pass over the ranges where `to` is a voter, taking leaderships from loaded leaders while `to` is below the band. */
function pullTo(round: Round, band: Band, to: NodeSlot): void {
  const { index } = round;
  index.someRangeOf(to, (r) => {
    if (round.exhausted || leaderScore(to) >= band.low || !round.hasTransferRoom(to)) return true;
    const from = index.leaderOf(r);
    if (from === undefined || from === to || !index.isLeaderMovable(r)) return false;
    if (!round.hasTransferRoom(from) || !worthTransferring(band, from, to)) return false;
    if (index.range(r).replicas.find((replica) => replica.nodeId === to.id)?.role !== 'voter') return false;
    transfer(round, r, from, to);
    return false;
  });
}

export function balanceLeaders(round: Round): void {
  // Only nodes in zones that may hold voters can lead.
  const { index } = round;
  const up = index.upNodes.filter((node) => index.zoneAllowsVoters[node.zone] === true);
  if (up.length < 2) return;
  let total = 0;
  let weight = 0;
  for (const node of up) {
    total += node.leaders;
    weight += node.weight;
  }
  const mean = total / weight;
  const tolerance = round.config.leaderBalanceTolerance;
  const band: Band = { mean, high: mean * (1 + tolerance), low: mean * (1 - tolerance) };
  // Each out-of-band node is scanned once: the cost is bounded by their ranges, not by the cluster.
  const pushers = up.filter((node) => leaderScore(node) > band.high).sort((a, b) => leaderScore(b) - leaderScore(a) || a.id - b.id);
  for (const node of pushers) pushFrom(round, band, node);
  const pullers = up.filter((node) => leaderScore(node) < band.low).sort((a, b) => leaderScore(a) - leaderScore(b) || a.id - b.id);
  for (const node of pullers) pullTo(round, band, node);
}
