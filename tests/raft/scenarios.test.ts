// Cluster scenarios that read like sentences: a fault is injected into a small deterministic
// cluster (partitions, crashes, lagging nodes, membership changes) and the test asserts the
// state every node ends in. Every scenario ends with the harness's safety check (at most one
// leader per term, no two nodes applying different entries at an index, log matching on disk).

import {
  ConfChangeType,
  MessageType,
  NotLeaderError,
  ProposalDroppedError,
  StateType,
} from '../../src/raft';
import { Cluster, HarnessNode, ctxString, isType } from './harness';
import { newCluster, thrown } from './cluster-fixture';

const encoder = new TextEncoder();
const ELECTION_TICKS = 10;

/** The leader among `ids` (running, highest term), if any. */
function leaderAmong(c: Cluster, ids: number[]): HarnessNode | undefined {
  return c
    .leaders()
    .filter((n) => ids.includes(n.id))
    .sort((a, b) => b.term - a.term)[0];
}

function readIndexOf(n: HarnessNode, ctx: string): number | undefined {
  return n.readStates.find((rs) => ctxString(rs) === ctx)?.index;
}

// -------------------------------------------------------------------------------------------

describe('cluster: election', () => {
  it('a partitioned minority cannot elect a leader; the majority side does, and the minority follows it after healing', () => {
    const c = newCluster([1, 2, 3, 4, 5]);
    const initialTerm = c.node(1).term;
    const heal = c.partition([1, 2], [3, 4, 5]);
    let minorityEverLed = false;
    const watchMinority = (): void => {
      if (c.node(1).state === StateType.Leader || c.node(2).state === StateType.Leader) minorityEverLed = true;
    };
    c.tickUntil(() => {
      watchMinority();
      return leaderAmong(c, [3, 4, 5]) !== undefined;
    }, 10 * ELECTION_TICKS);
    for (let i = 0; i < 5 * ELECTION_TICKS; i++) {
      c.tick();
      watchMinority();
    }
    expect(minorityEverLed).toBe(false);
    const leader = leaderAmong(c, [3, 4, 5])!;
    expect(c.leaders()).toEqual([leader]);
    // Pre-vote: the minority kept failing pre-votes, so its terms never moved.
    expect(c.node(1).term).toBe(initialTerm);
    expect(c.node(2).term).toBe(initialTerm);
    c.propose(leader.id, 'x');

    heal();
    c.tick(3);
    expect(c.leaders()).toEqual([leader]);
    for (const n of c.nodes.values()) {
      expect(n.leader).toBe(leader.id);
      expect(n.term).toBe(leader.term);
      expect(n.appliedData()).toEqual(['x']);
    }
  });

  it('with pre-vote, a rejoining node that was isolated does not raise its term and does not disrupt the leader', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    const term = c.node(1).term;
    const campaigns = c.record((m) => m.from === 3 && (m.type === MessageType.Vote || m.type === MessageType.PreVote));

    const heal = c.isolate(3);
    c.tick(10 * ELECTION_TICKS);
    expect(campaigns.count(isType(MessageType.PreVote))).toBeGreaterThan(0); // it did try
    expect(campaigns.count(isType(MessageType.Vote))).toBe(0); // but never won a pre-vote
    expect(c.node(3).term).toBe(term);
    c.propose(1, 'b');

    heal();
    c.tick(2 * ELECTION_TICKS);
    expect(c.node(1).state).toBe(StateType.Leader);
    expect(c.node(1).term).toBe(term);
    expect(c.leaders()).toEqual([c.node(1)]);
    expect(c.node(3).term).toBe(term);
    expect(c.node(3).leader).toBe(1);
    expect(campaigns.count(isType(MessageType.Vote))).toBe(0);
    expect(c.node(3).appliedData()).toEqual(['a', 'b']);
  });

  it('without pre-vote, the same rejoining node raises its term while isolated and deposes the leader when it returns', () => {
    // The contrast that motivates pre-vote (the default).
    const c = newCluster([1, 2, 3], { preVote: false });
    c.elect(1);
    const term = c.node(1).term;
    const heal = c.isolate(3);
    c.tick(10 * ELECTION_TICKS);
    expect(c.node(3).term).toBeGreaterThan(term + 1);
    expect(c.node(1).state).toBe(StateType.Leader);
    expect(c.node(1).term).toBe(term);

    heal();
    c.tick();
    expect(c.node(1).term).toBeGreaterThan(term);
    c.tickUntil(() => c.leader() !== undefined, 10 * ELECTION_TICKS);
    expect(c.leader()!.term).toBeGreaterThan(term + 1);
  });
});

describe('cluster: check-quorum', () => {
  it('an isolated leader steps down within two election timeouts, and the majority elects a new leader that the old one follows after healing', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    const term = c.node(1).term;

    const heal = c.isolate(1);
    const ticks = c.tickUntil(() => c.node(1).state !== StateType.Leader, 2 * ELECTION_TICKS);
    expect(ticks).toBeLessThanOrEqual(2 * ELECTION_TICKS);
    expect(c.node(1).state).toBe(StateType.Follower);
    expect(thrown(() => c.node(1).rawNode.propose(encoder.encode('nope')))).toBeInstanceOf(NotLeaderError);

    c.tickUntil(() => leaderAmong(c, [2, 3]) !== undefined, 10 * ELECTION_TICKS);
    const next = leaderAmong(c, [2, 3])!;
    expect(next.term).toBeGreaterThan(term);
    expect(c.node(1).term).toBe(term); // isolated, its pre-votes failed: term unchanged
    c.propose(next.id, 'b');

    heal();
    c.tick(3);
    expect(c.leaders()).toEqual([next]);
    expect(c.node(1).leader).toBe(next.id);
    expect(c.node(1).term).toBe(next.term);
    expect(c.node(1).appliedData()).toEqual(['a', 'b']);
  });

  it('a leader that still hears from a majority keeps leading through many election timeouts', () => {
    const c = newCluster([1, 2, 3, 4, 5]);
    c.elect(1);
    const term = c.node(1).term;
    c.crash(4);
    c.crash(5);
    c.tick(10 * ELECTION_TICKS);
    expect(c.node(1).state).toBe(StateType.Leader);
    expect(c.node(1).term).toBe(term);
  });
});

describe('cluster: snapshots', () => {
  it('a follower that fell behind a compacted log catches up from a snapshot and applies the same data', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'w-0');
    c.crash(3);
    for (let i = 1; i <= 20; i++) c.propose(1, `w-${i}`);
    c.snapshotAndCompact(1);
    const snapIndex = c.node(1).storage.snapshot().metadata.index;
    expect(snapIndex).toBe(c.node(1).appliedIndex);
    // The entries node 3 misses are gone from the leader's log.
    expect(c.node(1).storage.firstIndex()).toBeGreaterThan(c.node(3).storage.lastIndex() + 1);

    const snaps = c.record((m) => m.type === MessageType.Snap && m.to === 3);
    c.restart(3);
    c.tickUntil(() => c.node(3).appliedIndex === c.node(1).appliedIndex, 5 * ELECTION_TICKS);
    expect(snaps.count()).toBe(1);
    expect(snaps.messages[0]?.snapshot?.metadata.index).toBe(snapIndex);
    expect(c.node(3).storage.snapshot().metadata.index).toBe(snapIndex);
    expect(c.node(3).storage.firstIndex()).toBe(snapIndex + 1);
    expect(c.node(3).confState).toEqual({ voters: [1, 2, 3], learners: [] });

    c.propose(1, 'after');
    const expected = ['w-0', ...Array.from({ length: 20 }, (_, i) => `w-${i + 1}`), 'after'];
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(expected);
    expect(c.storedLog(3).map((e) => e.index)).toEqual([snapIndex + 1]);
  });
});

describe('cluster: learners', () => {
  it('a learner added with an empty disk catches up from a snapshot, is promoted, and can then be elected', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    for (let i = 0; i < 10; i++) c.propose(1, `w-${i}`);
    c.snapshotAndCompact(1);

    const snaps = c.record((m) => m.type === MessageType.Snap && m.to === 4);
    c.addEmptyNode(4);
    c.proposeConfChange(1, ConfChangeType.AddLearner, 4);
    c.tick(2);
    expect(snaps.count()).toBe(1);
    for (const id of [1, 2, 3, 4]) expect(c.node(id).confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.node(4).appliedData()).toEqual(c.node(1).appliedData());
    expect(c.node(1).rawNode.status().progress?.get(4)).toMatchObject({ isLearner: true, match: c.node(1).appliedIndex });

    // As a learner it cannot be made leader.
    c.node(1).rawNode.transferLeader(4);
    c.stabilize();
    expect(c.node(1).state).toBe(StateType.Leader);
    expect(c.node(1).rawNode.status().leadTransferee).toBe(0);

    c.proposeConfChange(1, ConfChangeType.AddVoter, 4);
    for (const id of [1, 2, 3, 4]) expect(c.node(id).confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });

    c.node(1).rawNode.transferLeader(4);
    c.stabilize();
    expect(c.node(4).state).toBe(StateType.Leader);
    expect(c.leaders()).toEqual([c.node(4)]);
    c.propose(4, 'from-4');
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(c.node(4).appliedData());
    expect(c.node(4).appliedData().slice(-1)).toEqual(['from-4']);
  });

  it('a learner added with an empty disk catches up from the log alone, learning the full membership, and after promotion cannot elect itself alone', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    for (let i = 0; i < 10; i++) c.propose(1, `w-${i}`);
    // No compaction: the leader can send its whole log, from index 1.
    c.addEmptyNode(4);
    c.proposeConfChange(1, ConfChangeType.AddLearner, 4);
    c.tick(2);
    expect(c.node(4).appliedData()).toEqual(c.node(1).appliedData());
    // The learner must know the group it joined: the bootstrap voters and itself.
    expect(c.node(4).rawNode.status().confState).toEqual({ voters: [1, 2, 3], learners: [4] });

    c.proposeConfChange(1, ConfChangeType.AddVoter, 4);
    expect(c.node(4).rawNode.status().confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    // One voter of four is no quorum: cut off, it must never lead.
    c.isolate(4);
    c.tick(10 * ELECTION_TICKS);
    expect(c.node(4).state).not.toBe(StateType.Leader);
    expect(c.node(1).state).toBe(StateType.Leader);
  });
});

describe('cluster: leadership transfer', () => {
  it('leadership moves to an up-to-date follower at once, in the next term', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    const term = c.node(1).term;
    c.node(1).rawNode.transferLeader(2);
    c.stabilize();
    expect(c.node(2).state).toBe(StateType.Leader);
    expect(c.node(2).term).toBe(term + 1);
    expect(c.node(1).state).toBe(StateType.Follower);
    for (const n of c.nodes.values()) expect(n.leader).toBe(2);
    c.propose(2, 'b');
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['a', 'b']);
  });

  it('leadership moves to a lagging follower only after the leader has caught it up; proposals made meanwhile are refused', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    const heal = c.isolate(3);
    c.propose(1, 'b');
    c.propose(1, 'c');
    heal();
    const term = c.node(1).term;
    const leaderLast = c.node(1).rawNode.raft.raftLog.lastIndex();
    expect(c.node(3).storage.lastIndex()).toBeLessThan(leaderLast);

    const traffic = c.record((m) => m.to === 3 || m.from === 3);
    const held = c.hold((m) => m.to === 3); // the catch-up is visibly in progress until released
    c.node(1).rawNode.transferLeader(3);
    c.stabilize();
    expect(c.node(1).state).toBe(StateType.Leader);
    expect(c.node(1).rawNode.status().leadTransferee).toBe(3);
    const err = thrown(() => c.node(1).rawNode.propose(encoder.encode('during')));
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect(c.node(3).term).toBe(term);

    held.release();
    c.stabilize();
    expect(c.node(3).state).toBe(StateType.Leader);
    expect(c.node(3).term).toBe(term + 1);
    expect(c.leaders()).toEqual([c.node(3)]);
    // TimeoutNow left the old leader only after node 3 had acknowledged the whole log.
    const msgs = traffic.messages;
    const timeoutNowAt = msgs.findIndex((m) => m.type === MessageType.TimeoutNow);
    expect(timeoutNowAt).toBeGreaterThan(0);
    const ackedBefore = msgs
      .slice(0, timeoutNowAt)
      .filter((m) => m.type === MessageType.AppResp && m.from === 3 && !m.reject)
      .map((m) => m.index);
    expect(Math.max(...ackedBefore)).toBe(leaderLast);

    c.propose(3, 'd');
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('cluster: linearizable reads (ReadIndex)', () => {
  it('a read on the leader is served at an index covering every write acknowledged before it', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    const writes = ['w1', 'w2', 'w3'].map((w) => c.propose(1, w));
    const lastAcked = Math.max(...writes.map((w) => w.index));
    expect(c.node(1).appliedIndex).toBeGreaterThanOrEqual(lastAcked); // acknowledged = applied on the leader

    const heartbeats = c.record((m) => m.type === MessageType.Heartbeat && m.context.length > 0);
    c.readIndex(1, 'r1');
    const at = readIndexOf(c.node(1), 'r1');
    expect(at).toBeDefined();
    expect(at!).toBeGreaterThanOrEqual(lastAcked);
    expect(heartbeats.count()).toBe(2); // leadership was confirmed by a quorum round first
    expect(c.node(1).appliedIndex).toBeGreaterThanOrEqual(at!);
    expect(c.node(1).appliedData()).toEqual(['w1', 'w2', 'w3']);
  });

  it('a read on a lagging follower is answered by the leader at an index covering every acknowledged write, and waits for it to apply', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'w1');
    const lagging = c.hold((m) => m.type === MessageType.App && m.to === 3);
    const w2 = c.propose(1, 'w2'); // acknowledged by 1 and 2
    expect(c.node(1).appliedData()).toEqual(['w1', 'w2']);
    expect(c.node(3).appliedData()).toEqual(['w1']);

    c.readIndex(3, 'r3');
    const at = readIndexOf(c.node(3), 'r3');
    expect(at).toBeDefined();
    expect(at!).toBeGreaterThanOrEqual(w2.index);
    // Reading now would be stale: node 3 has not applied the read index yet.
    expect(c.node(3).appliedIndex).toBeLessThan(at!);

    lagging.release();
    c.tick();
    expect(c.node(3).appliedIndex).toBeGreaterThanOrEqual(at!);
    expect(c.node(3).appliedData()).toEqual(['w1', 'w2']);

    c.readIndex(2, 'r2');
    expect(readIndexOf(c.node(2), 'r2')).toBeGreaterThanOrEqual(w2.index);
  });

  it('a leader partitioned from the majority never releases a read; it drops it when it steps down', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'w1');
    const heal = c.partition([1], [2, 3]);
    c.readIndex(1, 'stale?');
    c.tick(3);
    expect(c.node(1).state).toBe(StateType.Leader); // still believes it leads...
    expect(c.node(1).readStates).toHaveLength(0); // ...but cannot confirm it, so no read

    c.tickUntil(() => leaderAmong(c, [2, 3]) !== undefined, 10 * ELECTION_TICKS);
    const next = leaderAmong(c, [2, 3])!;
    const w2 = c.propose(next.id, 'w2'); // a write the old leader knows nothing about
    c.tickUntil(() => c.node(1).state !== StateType.Leader, 2 * ELECTION_TICKS);
    expect(c.node(1).readStates).toHaveLength(0);
    expect(c.node(1).droppedReads).toEqual(['stale?']);

    heal();
    c.tick(3);
    expect(c.node(1).readStates).toHaveLength(0);
    c.readIndex(1, 'fresh');
    expect(readIndexOf(c.node(1), 'fresh')).toBeGreaterThanOrEqual(w2.index);
  });
});

describe('cluster: membership change', () => {
  it('a crashed voter is removed and a new one added; the crashed node later restarts and does not disrupt the group', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.crash(3);
    c.propose(1, 'b');

    c.proposeConfChange(1, ConfChangeType.RemoveNode, 3);
    for (const id of [1, 2]) expect(c.node(id).confState).toEqual({ voters: [1, 2], learners: [] });

    // The new node receives the group through a snapshot (the membership it must learn lives
    // in the snapshot metadata; see the learner scenario that catches up from the log alone).
    c.snapshotAndCompact(1);
    c.addEmptyNode(4);
    c.proposeConfChange(1, ConfChangeType.AddVoter, 4);
    c.tick(2);
    for (const id of [1, 2, 4]) expect(c.node(id).confState).toEqual({ voters: [1, 2, 4], learners: [] });
    c.propose(1, 'c');
    for (const id of [1, 2, 4]) expect(c.node(id).appliedData()).toEqual(['a', 'b', 'conf:RemoveNode:3', 'conf:AddVoter:4', 'c']);

    // Node 3 comes back believing it is still a voter of {1, 2, 3}.
    const term = c.node(1).term;
    const term3 = c.node(3).term;
    c.restart(3);
    expect(c.node(3).confState).toEqual({ voters: [1, 2, 3], learners: [] });
    c.tick(10 * ELECTION_TICKS);
    expect(c.leaders()).toEqual([c.node(1)]);
    for (const id of [1, 2, 4]) expect(c.node(id).term).toBe(term);
    expect(c.node(3).state).not.toBe(StateType.Leader);
    expect(c.node(3).term).toBe(term3);

    c.propose(1, 'd');
    for (const id of [1, 2, 4]) expect(c.node(id).appliedData().slice(-2)).toEqual(['c', 'd']);
    expect(c.node(3).appliedData()).toEqual(['a']);
    // Losing one more member still leaves a quorum of the new configuration: 1, 4 without 2.
    c.crash(2);
    c.propose(1, 'e');
    expect(c.node(4).appliedData().slice(-1)).toEqual(['e']);
  });
});

describe('cluster: recovery', () => {
  it('every node crashes and restarts from disk; every acknowledged write survives, in order, exactly once', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    const acked = ['a', 'b', 'c'];
    for (const w of acked) c.propose(1, w);
    // One more proposal is in flight when the power goes: appended by the leader, not yet sent.
    c.node(1).rawNode.propose(encoder.encode('in-flight'));
    for (const id of [1, 2, 3]) c.crash(id);
    for (const id of [1, 2, 3]) c.restart(id);
    c.tickUntil(() => c.leader() !== undefined, 10 * ELECTION_TICKS);
    const leader = c.leader()!;
    c.propose(leader.id, 'd');
    c.tick(2);
    for (const n of c.nodes.values()) {
      expect(n.appliedData()).toEqual(['a', 'b', 'c', 'd']);
      const indexes = n.applied.map((e) => e.index);
      expect(new Set(indexes).size).toBe(indexes.length);
    }
  });
});
