// Majority arithmetic over the voter set. Learners never appear here.

import { NodeId } from './types';

export enum VoteResult {
  Pending = 'Pending',
  Won = 'Won',
  Lost = 'Lost',
}

/**
 * The highest index replicated on a majority of `voters`: sort the match indexes in descending
 * order and take the one at position floor(n / 2). An empty voter set commits nothing.
 */
export function committedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number): number {
  const n = voters.size;
  if (n === 0) return 0;
  const matches: number[] = [];
  for (const id of voters) matches.push(matchOf(id));
  matches.sort((a, b) => b - a);
  return matches[Math.floor(n / 2)] as number;
}

/** Tallies granted/rejected votes from voters; votes from non-voters are ignored. */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const quorum = Math.floor(voters.size / 2) + 1;
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  if (granted >= quorum) return VoteResult.Won;
  if (voters.size - rejected < quorum) return VoteResult.Lost;
  return VoteResult.Pending;
}

/** Whether the members for which `active` holds form a majority of `voters`. */
export function isQuorum(voters: ReadonlySet<NodeId>, active: (id: NodeId) => boolean): boolean {
  let n = 0;
  for (const id of voters) if (active(id)) n++;
  return n >= Math.floor(voters.size / 2) + 1;
}
