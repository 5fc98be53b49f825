// Wire shapes every service builds from a replica: its descriptor and the NotLeader routing error.

import type { Replica } from '../node';
import type { RangeDescriptorMsg, RoutingErrorMsg } from './messages';

const ROLE_VOTER = 1;
const ROLE_LEARNER = 2;

export function descriptorOf(r: Replica): RangeDescriptorMsg {
  const b = r.sm.bounds;
  return {
    rangeId: r.rangeId,
    startKey: Buffer.from(b.start),
    endKey: Buffer.from(b.end),
    epoch: { version: b.epochVersion, confVersion: b.confVersion },
    replicas: [
      ...r.confState.voters.map((nodeId) => ({ nodeId, role: ROLE_VOTER })),
      ...r.confState.learners.map((nodeId) => ({ nodeId, role: ROLE_LEARNER })),
    ],
  };
}

/** NotLeader for range `r`, naming `leader` (0 = unknown) and its address when known. */
export function notLeaderError(r: Replica, leader: number, addressOf: (nodeId: number) => string | undefined): RoutingErrorMsg {
  return {
    message: leader === 0 ? `range ${r.rangeId}: no leader known; retry shortly` : `range ${r.rangeId}: leader is node ${leader}`,
    notLeader: { rangeId: r.rangeId, leader: leader === 0 ? null : { nodeId: leader, address: addressOf(leader) ?? '' } },
  };
}
