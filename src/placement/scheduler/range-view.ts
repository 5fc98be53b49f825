// A range's replicas sorted by role, with the figures every policy asks about. Views are built only
// for ranges a policy works on; the classification of every range uses `RangeFacts`, which
// allocates nothing.

import { isLive, type ClusterIndex, type NodeSlot } from './cluster-index';
import { quorumSize } from './safety';
import type { RangeInfo } from './types';

export interface RangeView {
  /** Position of the range in `ClusterIndex.ranges`. */
  readonly r: number;
  readonly info: RangeInfo;
  /** `nodes[i]` is the node of `info.replicas[i]`. */
  readonly nodes: readonly NodeSlot[];
  /** Nodes of the voters / learners, in id order. */
  readonly voters: readonly NodeSlot[];
  readonly learners: readonly NodeSlot[];
  readonly leader: NodeSlot | undefined;
  /** Voters on up or draining nodes. */
  readonly liveVoters: number;
  /** A live majority of voters: membership changes can commit. */
  readonly available: boolean;
  /** The leader is known, is a voter, and its node is live: there is someone to send steps to. */
  readonly leaderLive: boolean;
}

export function viewRange(index: ClusterIndex, r: number): RangeView {
  const info = index.range(r);
  const leader = index.leaderOf(r);
  const nodes: NodeSlot[] = [];
  const voters: NodeSlot[] = [];
  const learners: NodeSlot[] = [];
  let liveVoters = 0;
  let leaderIsVoter = false;
  info.replicas.forEach((replica, i) => {
    const node = index.replicaNodeOf(r, i);
    nodes.push(node);
    if (replica.role === 'voter') {
      voters.push(node);
      if (isLive(node)) liveVoters++;
      if (node === leader) leaderIsVoter = true;
    } else {
      learners.push(node);
    }
  });
  voters.sort((a, b) => a.id - b.id);
  learners.sort((a, b) => a.id - b.id);
  return {
    r,
    info,
    nodes,
    voters,
    learners,
    leader,
    liveVoters,
    available: voters.length > 0 && liveVoters >= quorumSize(voters.length),
    leaderLive: leaderIsVoter && leader !== undefined && isLive(leader),
  };
}

/**
 * The facts the classification needs about one range, computed without allocating: `load` fills
 * the fields for range r. One instance serves a whole round.
 */
export class RangeFacts {
  voters = 0;
  liveVoters = 0;
  deadVoters = 0;
  learners = 0;
  /** Some replica is on a draining node. */
  draining = false;
  /** Every replica is on an up node. */
  allUp = true;
  /** The leader is a voter on a live node / on an up node. */
  leaderLive = false;
  leaderUp = false;
  /** Zone rules for voters broken (see `zoneViolations`). */
  zoneViolations = 0;
  /** Learners do not match the learner rule. */
  learnerMismatch = false;
  private readonly voterZones: Int32Array;
  private readonly learnerZones: Int32Array;

  constructor(private readonly index: ClusterIndex) {
    this.voterZones = new Int32Array(index.zones.length);
    this.learnerZones = new Int32Array(index.zones.length);
  }

  get available(): boolean {
    return this.voters > 0 && this.liveVoters >= quorumSize(this.voters);
  }

  load(r: number): void {
    const { index } = this;
    const info = index.range(r);
    const leader = index.leaderNode[r] as number;
    this.voters = this.liveVoters = this.deadVoters = this.learners = 0;
    this.draining = this.leaderLive = this.leaderUp = this.learnerMismatch = false;
    this.allUp = true;
    this.voterZones.fill(0);
    this.learnerZones.fill(0);
    let unzoned = 0;
    const replicas = info.replicas;
    for (let i = 0; i < replicas.length; i++) {
      const node = index.replicaNodeOf(r, i);
      const voter = (replicas[i] as RangeInfo['replicas'][number]).role === 'voter';
      if (node.health !== 'up') this.allUp = false;
      if (node.health === 'draining') this.draining = true;
      if (voter) {
        this.voters++;
        if (isLive(node)) this.liveVoters++;
        if (node.health === 'dead') this.deadVoters++;
        if (node.position === leader) {
          this.leaderLive = isLive(node);
          this.leaderUp = node.health === 'up';
        }
        if (node.zone < 0) unzoned++;
        else this.voterZones[node.zone] = (this.voterZones[node.zone] as number) + 1;
      } else {
        this.learners++;
        if (node.zone < 0 || node.health === 'dead') this.learnerMismatch = true;
        else this.learnerZones[node.zone] = (this.learnerZones[node.zone] as number) + 1;
      }
    }
    let distinct = 0;
    let disallowed = unzoned;
    for (let z = 0; z < index.zones.length; z++) {
      const voters = this.voterZones[z] as number;
      const learners = this.learnerZones[z] as number;
      if (voters > 0) {
        distinct++;
        if (index.zoneAllowsVoters[z] !== true) disallowed += voters;
      }
      if (index.rules.learners === 'none') {
        if (learners > 0) this.learnerMismatch = true;
      } else {
        // One learner exactly in every zone with an up node and no voter, none elsewhere.
        const wanted = index.zoneHasUpNode[z] === true && voters === 0 ? 1 : 0;
        if (learners !== wanted) this.learnerMismatch = true;
      }
    }
    this.zoneViolations = disallowed + Math.max(0, Math.min(this.voters, index.voterZoneCount) - distinct);
  }
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

/** Voters per unit of weight. */
export function voterScore(node: NodeSlot): number {
  return node.voters / node.weight;
}

/** Learners per unit of weight. */
export function learnerScore(node: NodeSlot): number {
  return node.learners / node.weight;
}

/** Leader load per unit of weight. */
export function leaderScore(node: NodeSlot): number {
  return node.leaders / node.weight;
}
