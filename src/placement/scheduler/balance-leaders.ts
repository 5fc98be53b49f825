// Policy 5, leader balance: transfer leadership from nodes with the most leaders (per unit of
// weight) to voters of the same range with fewer, until every up node is within
// `leaderBalanceTolerance` of the mean or no transfer helps. Leadership only ever goes to a voter on
// an up node. Overloaded nodes push first; then nodes still below the band pull a leadership from
// ranges where they are a voter.

import type { NodeSlot } from './cluster-index';
import { leaderScore, viewRange } from './range-view';
import type { Round } from './round';
import { pickLeaderTarget } from './targets';

/** Led ranges tried per source node (or voter ranges per pulling node) before giving up on it. */
const ATTEMPTS_PER_NODE = 16;

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

function pushOne(round: Round, band: Band, from: NodeSlot): boolean {
  let attempts = 0;
  for (const range of from.ranges) {
    if (range.leader !== from || !range.leaderMovable || range.locked) continue;
    if (++attempts > ATTEMPTS_PER_NODE) return false;
    const view = viewRange(range);
    const to = pickLeaderTarget(round, view, from);
    if (to === undefined || !worthTransferring(band, from, to)) continue;
    const rangeId = range.info.id;
    return round.emit(range, 'balance-leaders', [{ kind: 'transfer-leader', rangeId, fromNodeId: from.id, toNodeId: to.id }]) === 'issued';
  }
  return false;
}

function pullOne(round: Round, band: Band, to: NodeSlot): boolean {
  let attempts = 0;
  for (const range of to.ranges) {
    const from = range.leader;
    if (from === undefined || from === to || !range.leaderMovable || range.locked) continue;
    if (range.info.replicas.find((replica) => replica.nodeId === to.id)?.role !== 'voter') continue;
    if (++attempts > ATTEMPTS_PER_NODE) return false;
    if (!round.hasRoom(from) || !worthTransferring(band, from, to)) continue;
    const rangeId = range.info.id;
    return round.emit(range, 'balance-leaders', [{ kind: 'transfer-leader', rangeId, fromNodeId: from.id, toNodeId: to.id }]) === 'issued';
  }
  return false;
}

export function balanceLeaders(round: Round): void {
  const up = round.index.upNodes;
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

  const givenUp = new Set<NodeSlot>();
  while (!round.exhausted) {
    let from: NodeSlot | undefined;
    let to: NodeSlot | undefined;
    for (const node of up) {
      if (!round.hasRoom(node)) continue;
      const score = leaderScore(node);
      if (!givenUp.has(node) && score > mean && (from === undefined || score > leaderScore(from))) from = node;
      if (to === undefined || score < leaderScore(to)) to = node;
    }
    if (from === undefined || to === undefined || from === to || !worthTransferring(band, from, to)) break;
    if (!pushOne(round, band, from)) givenUp.add(from);
  }

  const pullers = up.filter((node) => leaderScore(node) < band.low).sort((a, b) => leaderScore(a) - leaderScore(b) || a.id - b.id);
  for (const node of pullers) {
    while (!round.exhausted && round.hasRoom(node) && leaderScore(node) < band.low && pullOne(round, band, node)) {
      // keep pulling while below the band
    }
  }
}
