// What is left on a node: the figures behind `kvctl node drain`'s progress bar, and per-node loads.

import { UnknownNodeError } from './errors';
import type { ClusterState, DrainProgress, NodeId, NodeLoad } from './types';

/** Replicas and leaders still on `nodeId`, and the in-flight operators involving it. O(ranges). */
export function drainProgress(state: ClusterState, nodeId: NodeId): DrainProgress {
  const node = state.nodes.find((candidate) => candidate.id === nodeId);
  if (node === undefined) throw new UnknownNodeError(nodeId);
  let voters = 0;
  let learners = 0;
  let leaders = 0;
  for (const range of state.ranges) {
    for (const replica of range.replicas) {
      if (replica.nodeId !== nodeId) continue;
      if (replica.role === 'voter') voters++;
      else learners++;
    }
    if (range.leaderNodeId === nodeId) leaders++;
  }
  let inFlightOperators = 0;
  for (const { operator } of state.inFlight) {
    const involved = operator.steps.some((step) =>
      step.kind === 'transfer-leader' ? step.fromNodeId === nodeId || step.toNodeId === nodeId : step.kind !== 'split-range' && step.nodeId === nodeId,
    );
    if (involved) inFlightOperators++;
  }
  const replicas = voters + learners;
  return { nodeId, state: node.state, voters, learners, replicas, leaders, inFlightOperators, done: replicas === 0 && leaders === 0 };
}

/** Replicas, leaders, bytes and leader load per node (every listed node, in id order). O(replicas). */
export function nodeLoads(state: ClusterState): NodeLoad[] {
  interface Tally { replicas: number; voters: number; learners: number; leaders: number; sizeBytes: number; leaderQps: number }
  const tallies = new Map<NodeId, Tally>();
  for (const node of state.nodes) tallies.set(node.id, { replicas: 0, voters: 0, learners: 0, leaders: 0, sizeBytes: 0, leaderQps: 0 });
  for (const range of state.ranges) {
    for (const replica of range.replicas) {
      const tally = tallies.get(replica.nodeId);
      if (tally === undefined) continue;
      tally.replicas++;
      if (replica.role === 'voter') tally.voters++;
      else tally.learners++;
      tally.sizeBytes += range.stats.sizeBytes;
    }
    const leader = range.leaderNodeId === undefined ? undefined : tallies.get(range.leaderNodeId);
    if (leader !== undefined) {
      leader.leaders++;
      leader.leaderQps += range.stats.qps;
    }
  }
  return [...tallies.entries()].sort((a, b) => a[0] - b[0]).map(([nodeId, tally]) => ({ nodeId, ...tally }));
}
