// A range's replicas sorted by role, with the figures every policy asks about.

import { isLive, type ClusterIndex, type NodeSlot, type RangeSlot } from './cluster-index';
import { quorumSize } from './safety';

export interface RangeView {
  readonly slot: RangeSlot;
  /** Nodes of the voters / learners, in id order. */
  readonly voters: readonly NodeSlot[];
  readonly learners: readonly NodeSlot[];
  /** Voters on up or draining nodes. */
  readonly liveVoters: number;
  /** A live majority of voters: membership changes can commit. */
  readonly available: boolean;
  /** The leader is known, is a voter, and its node is live: there is someone to send steps to. */
  readonly leaderLive: boolean;
}

export function viewRange(slot: RangeSlot): RangeView {
  const voters: NodeSlot[] = [];
  const learners: NodeSlot[] = [];
  let liveVoters = 0;
  let leaderIsVoter = false;
  slot.info.replicas.forEach((replica, i) => {
    const node = slot.nodes[i] as NodeSlot;
    if (replica.role === 'voter') {
      voters.push(node);
      if (isLive(node)) liveVoters++;
      if (node === slot.leader) leaderIsVoter = true;
    } else {
      learners.push(node);
    }
  });
  voters.sort((a, b) => a.id - b.id);
  learners.sort((a, b) => a.id - b.id);
  return {
    slot,
    voters,
    learners,
    liveVoters,
    available: voters.length > 0 && liveVoters >= quorumSize(voters.length),
    leaderLive: leaderIsVoter && slot.leader !== undefined && isLive(slot.leader),
  };
}

/** Voters per zone (zone index → count), leaving out `except`. */
export function votersPerZone(index: ClusterIndex, view: RangeView, except?: NodeSlot): number[] {
  const counts = new Array<number>(index.zones.length).fill(0);
  for (const voter of view.voters) {
    if (voter !== except && voter.zone >= 0) counts[voter.zone] = (counts[voter.zone] as number) + 1;
  }
  return counts;
}

/** Learners per zone (zone index → count), leaving out `except`. */
export function learnersPerZone(index: ClusterIndex, view: RangeView, except?: NodeSlot): number[] {
  const counts = new Array<number>(index.zones.length).fill(0);
  for (const learner of view.learners) {
    if (learner !== except && learner.zone >= 0) counts[learner.zone] = (counts[learner.zone] as number) + 1;
  }
  return counts;
}

/**
 * How badly the voters break the zone rules: voters in zones that may not hold voters, plus voters
 * beyond one per zone when there are enough zones to spread them. 0 is a correct placement.
 */
export function zoneViolations(index: ClusterIndex, view: RangeView): number {
  let disallowed = 0;
  const perZone = votersPerZone(index, view);
  let distinct = 0;
  perZone.forEach((count, zone) => {
    if (count > 0) {
      distinct++;
      if (index.zoneAllowsVoters[zone] !== true) disallowed += count;
    }
  });
  for (const voter of view.voters) if (voter.zone < 0) disallowed++;
  const wantDistinct = Math.min(view.voters.length, index.voterZoneCount);
  return disallowed + Math.max(0, wantDistinct - distinct);
}

/** Replica load per unit of weight. */
export function replicaScore(node: NodeSlot): number {
  return node.replicas / node.weight;
}

/** Leader load per unit of weight. */
export function leaderScore(node: NodeSlot): number {
  return node.leaders / node.weight;
}
