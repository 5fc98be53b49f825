// Focused tests of the Raft core, one feature per block: election timers, the voting rules, log
// replication and its fast backtracking, the commit rule of the Raft paper (Figure 8), the
// leader's no-op, flow control, learners, proposal and membership-change refusals, and what
// survives a crash. Every test is deterministic (fixed seeds, synchronous harness) and ends with
// the harness's safety check (election safety, state machine safety, log matching).

import {
  ConfChange,
  ConfChangeRefusedError,
  ConfChangeType,
  EntryType,
  Message,
  MessageType,
  MemoryStorage,
  NotLeaderError,
  ProgressState,
  ProgressStatus,
  ProposalDroppedError,
  RawNode,
  SeededRng,
  StateType,
  entrySizeBytes,
  makeMessage,
} from '../../src/raft';
import { Cluster, isType } from './harness';
import { newCluster, thrown } from './cluster-fixture';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ELECTION_TICKS = 10;

function progressOf(c: Cluster, leader: number, follower: number): ProgressStatus {
  const p = c.node(leader).rawNode.status().progress?.get(follower);
  if (!p) throw new Error(`node ${leader} has no progress for ${follower} (is it the leader?)`);
  return p;
}

function commitOf(c: Cluster, id: number): number {
  return c.node(id).rawNode.status().commit;
}

function lastIndexOf(c: Cluster, id: number): number {
  return c.node(id).rawNode.raft.raftLog.lastIndex();
}

function conf(type: ConfChangeType, nodeId: number): ConfChange {
  return { type, nodeId, context: new Uint8Array(0) };
}

/** Campaigns (pre-vote first) until the node leads; a rejection may first teach it a higher term. */
function campaignUntilLeader(c: Cluster, id: number, attempts = 3): void {
  for (let i = 0; i < attempts; i++) {
    c.campaign(id);
    if (c.node(id).state === StateType.Leader) return;
  }
  throw new Error(`node ${id} did not become leader in ${attempts} campaigns (state ${c.node(id).state})`);
}

/**
 * Steps a vote request into `voter`, handles its Ready, and returns its single answer. Everything
 * else the voter sent is dropped: the test looks at one decision at a time.
 */
function askVote(
  c: Cluster,
  voter: number,
  candidate: number,
  term: number,
  lastIndex: number,
  lastTerm: number,
  type: MessageType.Vote | MessageType.PreVote = MessageType.Vote,
): Message {
  c.queue = [];
  c.node(voter).rawNode.step(makeMessage({ type, from: candidate, to: voter, term, index: lastIndex, logTerm: lastTerm }));
  c.processReady(voter);
  const respType = type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
  const answers = c.queue.filter((m) => m.from === voter && m.to === candidate && m.type === respType);
  c.queue = [];
  expect(answers).toHaveLength(1);
  return answers[0] as Message;
}

// -------------------------------------------------------------------------------------------

describe('raft: election timeouts', () => {
  it('each timeout is drawn in [electionTicks, 2 * electionTicks) and the draw spreads over that range', () => {
    const firstTimeoutTicks: number[] = [];
    for (let seed = 1; seed <= 200; seed++) {
      const rn = new RawNode({
        id: 1,
        storage: new MemoryStorage({ voters: [1, 2, 3], learners: [] }),
        electionTicks: ELECTION_TICKS,
        heartbeatTicks: 1,
        rng: new SeededRng(seed),
      });
      let ticks = 0;
      while (rn.status().state === StateType.Follower) {
        rn.tick();
        ticks++;
        if (ticks > 3 * ELECTION_TICKS) throw new Error(`seed ${seed}: no campaign after ${ticks} ticks`);
      }
      expect(rn.status().state).toBe(StateType.PreCandidate);
      firstTimeoutTicks.push(ticks);
    }
    expect(Math.min(...firstTimeoutTicks)).toBe(ELECTION_TICKS);
    expect(Math.max(...firstTimeoutTicks)).toBe(2 * ELECTION_TICKS - 1);
    // Every value of the range occurs: the jitter is not degenerate.
    expect(new Set(firstTimeoutTicks).size).toBe(ELECTION_TICKS);
  });

  it('different nodes of one cluster time out at different ticks', () => {
    const ids = [1, 2, 3, 4, 5];
    const c = newCluster(ids);
    for (const id of ids) c.isolate(id); // nobody hears anybody: each node's own timer decides
    const firstCampaignTick = new Map<number, number>();
    for (let t = 1; t <= 2 * ELECTION_TICKS; t++) {
      c.tick();
      for (const n of c.nodes.values()) {
        if (!firstCampaignTick.has(n.id) && n.state !== StateType.Follower) firstCampaignTick.set(n.id, t);
      }
    }
    expect([...firstCampaignTick.keys()].sort()).toEqual(ids);
    for (const t of firstCampaignTick.values()) {
      expect(t).toBeGreaterThanOrEqual(ELECTION_TICKS);
      expect(t).toBeLessThan(2 * ELECTION_TICKS);
    }
    expect(new Set(firstCampaignTick.values()).size).toBeGreaterThan(1);
  });

  it('a new term draws a new timeout: without pre-vote, an isolated candidate retries at varying intervals', () => {
    const c = newCluster([1, 2, 3], { preVote: false });
    c.isolate(1);
    const termStartTick: number[] = [];
    let lastTerm = c.node(1).term;
    for (let t = 1; t <= 20 * ELECTION_TICKS; t++) {
      c.tickNodes([1]);
      if (c.node(1).term !== lastTerm) {
        lastTerm = c.node(1).term;
        termStartTick.push(t);
      }
    }
    expect(termStartTick.length).toBeGreaterThan(5);
    const intervals = termStartTick.slice(1).map((t, i) => t - (termStartTick[i] as number));
    for (const d of intervals) {
      expect(d).toBeGreaterThanOrEqual(ELECTION_TICKS);
      expect(d).toBeLessThan(2 * ELECTION_TICKS);
    }
    expect(new Set(intervals).size).toBeGreaterThan(1);
  });
});

describe('raft: voting', () => {
  // Leader stickiness (check-quorum) would make voters ignore these requests; it is off here so
  // that the log comparison and the one-vote-per-term rule are what decides.
  // Every node's log ends with entries of two leader terms: [..., no-op(t), a, no-op(t+1), b].
  function clusterWithTwoTerms(): { c: Cluster; last: number; lastTerm: number } {
    const c = newCluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    c.propose(1, 'a');
    campaignUntilLeader(c, 2);
    const b = c.propose(2, 'b');
    return { c, last: b.index, lastTerm: b.term };
  }

  it('a vote is refused to a candidate whose log is less up to date, and granted otherwise (§5.4.1)', () => {
    const { c, last, lastTerm } = clusterWithTwoTerms();
    expect(lastIndexOf(c, 3)).toBe(last);
    expect(c.node(3).rawNode.raft.raftLog.lastTerm()).toBe(lastTerm);
    expect(c.node(3).rawNode.raft.raftLog.term(last - 2)).toBe(lastTerm - 1);
    let term = c.node(3).term;

    // Same last term, shorter log.
    expect(askVote(c, 3, 1, ++term, last - 1, lastTerm).reject).toBe(true);
    // Longer log, but its last entry is from an older term.
    expect(askVote(c, 3, 1, ++term, last + 10, lastTerm - 1).reject).toBe(true);
    // Exactly as up to date.
    expect(askVote(c, 3, 1, ++term, last, lastTerm).reject).toBe(false);
    // Shorter, but the last entry is from a newer term.
    expect(askVote(c, 3, 1, ++term, last - 2, lastTerm + 1).reject).toBe(false);
    // Pre-votes follow the same rule, and never move the voter's term.
    const before = c.node(3).term;
    expect(askVote(c, 3, 1, before + 1, last - 1, lastTerm, MessageType.PreVote).reject).toBe(true);
    expect(askVote(c, 3, 1, before + 1, last, lastTerm, MessageType.PreVote).reject).toBe(false);
    expect(c.node(3).term).toBe(before);
  });

  it('a node that missed committed entries cannot be elected; an up-to-date node can', () => {
    const c = newCluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    const heal = c.isolate(3);
    c.propose(1, 'x');
    c.propose(1, 'y'); // committed by 1 and 2
    c.crash(1);
    heal();
    const term3 = c.node(3).term;
    c.campaign(3);
    expect(c.node(3).state).not.toBe(StateType.Leader);
    expect(c.node(3).term).toBe(term3); // the pre-vote was lost, so the term did not move
    campaignUntilLeader(c, 2);
    c.propose(2, 'z');
    expect(c.node(2).appliedData()).toEqual(['x', 'y', 'z']);
    expect(c.node(3).appliedData()).toEqual(['x', 'y', 'z']);
  });

  it('a node votes at most once per term, and the vote survives a restart', () => {
    const { c, last, lastTerm } = clusterWithTwoTerms();
    const term = c.node(3).term + 1;
    expect(askVote(c, 3, 1, term, last, lastTerm).reject).toBe(false);
    expect(c.node(3).storage.initialState().hardState).toMatchObject({ term, vote: 1 });
    // Another equally up-to-date candidate in the same term is refused...
    expect(askVote(c, 3, 2, term, last, lastTerm).reject).toBe(true);
    // ...while the chosen candidate may ask again (a retransmission).
    expect(askVote(c, 3, 1, term, last, lastTerm).reject).toBe(false);

    c.crash(3);
    c.restart(3);
    expect(c.node(3).rawNode.status()).toMatchObject({ term, vote: 1 });
    expect(askVote(c, 3, 2, term, last, lastTerm).reject).toBe(true);
    // A new term frees the vote.
    expect(askVote(c, 3, 2, term + 1, last, lastTerm).reject).toBe(false);
    expect(c.node(3).rawNode.status()).toMatchObject({ term: term + 1, vote: 2 });
  });
});

describe('raft: log replication', () => {
  it('a new leader appends an empty no-op entry of its term, which commits everywhere', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    const a = c.propose(1, 'a');
    c.node(1).rawNode.transferLeader(2);
    c.stabilize();
    const leader = c.node(2);
    expect(leader.state).toBe(StateType.Leader);
    const log = c.storedLog(2);
    const noop = log.find((e) => e.term === leader.term);
    expect(noop).toBeDefined();
    expect(noop).toMatchObject({ index: a.index + 1, term: leader.term, type: EntryType.Normal });
    expect(noop?.data.length).toBe(0);
    expect(log[log.length - 1]).toBe(noop);
    for (const n of c.nodes.values()) {
      expect(n.applied.find((e) => e.index === a.index + 1)).toEqual({ index: a.index + 1, term: leader.term, data: '' });
    }
  });

  it('a follower with a long divergent tail from an old term converges in a few round trips (fast backtracking)', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    const base = c.propose(1, 'base'); // everywhere
    // The old leader, cut off, accepts 60 proposals that no one else sees.
    const heal = c.isolate(1);
    const divergent = 60;
    for (let i = 0; i < divergent; i++) c.node(1).rawNode.propose(encoder.encode(`stale-${i}`));
    c.stabilize();
    expect(lastIndexOf(c, 1)).toBe(base.index + divergent);
    // The other two elect a leader and write 30 entries of their own.
    c.tickUntil(() => c.leaders().some((n) => n.id !== 1), 100);
    const mid = c.leaders().find((n) => n.id !== 1)!;
    for (let i = 0; i < 30; i++) c.propose(mid.id, `new-${i}`);
    // A second leadership change, so the final leader starts probing node 1 at its (long) last index.
    const other = mid.id === 2 ? 3 : 2;
    c.node(mid.id).rawNode.transferLeader(other);
    c.stabilize();
    expect(c.node(other).state).toBe(StateType.Leader);
    const leaderLast = lastIndexOf(c, other);
    expect(leaderLast).toBeGreaterThan(30);

    const appends = c.record((m) => m.type === MessageType.App && m.to === 1);
    const rejections = c.record((m) => m.type === MessageType.AppResp && m.from === 1 && m.reject);
    heal();
    c.tickUntil(() => c.node(1).appliedIndex === c.node(other).appliedIndex, 50);

    expect(c.node(1).appliedData()).toEqual(c.node(other).appliedData());
    expect(c.node(1).appliedData().some((d) => d.startsWith('stale-'))).toBe(false);
    expect(c.storedLog(1).map((e) => e.term)).toEqual(c.storedLog(other).map((e) => e.term));
    // One-entry-at-a-time backtracking would need ~30 rejected probes; term hints need one or two.
    expect(rejections.count()).toBeLessThanOrEqual(2);
    expect(appends.count()).toBeLessThanOrEqual(4);
    expect(appends.count()).toBeLessThan(divergent / 10);
  });

  describe('the commit rule (Raft paper, Figure 8)', () => {
    // Five nodes, one entry per append message (so the test decides which entries reach whom),
    // elections only by explicit campaign (no ticks, no check-quorum stickiness).
    //   (a) S1 leads term t and replicates "a" (index i) to S2 only; S1 crashes.
    //   (b) S5 leads term t+1 with votes of S3, S4; its entries at i, i+1 reach no one; S5 crashes.
    //   (c) S1 restarts and leads term t+2; "a" reaches S3 and S4 — a majority holds it — but no
    //       entry of term t+2 reaches anyone.
    // Terms and indexes are relative: (a) is term t, index i; (b) is term t+1; (c) is term t+2.
    interface Figure8 {
      c: Cluster;
      aIndex: number;
      aTerm: number;
      s5Term: number;
      s1Term: number;
    }
    function figure8(): Figure8 {
      const c = newCluster([1, 2, 3, 4, 5], { checkQuorum: false, maxSizePerMsgBytes: 1 });
      c.elect(1);
      const aTerm = c.node(1).term;
      const onlyTo2 = c.addFilter((m) => m.from === 1 && m.type === MessageType.App && m.to !== 2);
      const a = c.propose(1, 'a');
      onlyTo2();
      expect(a.term).toBe(aTerm);
      expect(commitOf(c, 1)).toBe(a.index - 1);
      expect(c.storedLog(3).map((e) => e.index)).not.toContain(a.index);
      c.crash(1);

      const mute5 = c.addFilter((m) => m.from === 5 && m.type === MessageType.App);
      c.campaign(5);
      expect(c.node(5).state).toBe(StateType.Leader);
      const s5Term = c.node(5).term;
      expect(s5Term).toBe(aTerm + 1);
      c.node(5).rawNode.propose(encoder.encode('b'));
      c.stabilize();
      expect(c.storedLog(5).slice(-3).map((e) => [e.index, e.term])).toEqual([
        [a.index - 1, aTerm],
        [a.index, s5Term],
        [a.index + 1, s5Term],
      ]);
      c.crash(5);
      mute5();

      c.restart(1);
      // The network loses every append that would give a node one of S1's term-3 entries (while
      // appends that node must reject, or that carry older entries, get through).
      c.addFilter(
        (m) =>
          m.from === 1 &&
          m.type === MessageType.App &&
          m.entries.some((e) => e.term > s5Term) &&
          c.node(m.to).storage.lastIndex() >= m.index &&
          c.node(m.to).storage.term(m.index) === m.logTerm,
      );
      campaignUntilLeader(c, 1);
      const s1Term = c.node(1).term;
      expect(s1Term).toBe(aTerm + 2);
      return { c, aIndex: a.index, aTerm, s5Term, s1Term };
    }

    it('an entry of an earlier term stored on a majority is NOT committed by counting replicas', () => {
      const { c, aIndex, aTerm, s5Term } = figure8();
      // "a" (of the older term) is on S1, S2, S3, S4: four of five...
      for (const id of [1, 2, 3, 4]) expect(c.node(id).storage.term(aIndex)).toBe(aTerm);
      expect(progressOf(c, 1, 3).match).toBe(aIndex);
      expect(progressOf(c, 1, 4).match).toBe(aIndex);
      // ...yet the leader of term 3 does not commit it.
      expect(commitOf(c, 1)).toBe(aIndex - 1);
      for (const n of c.nodes.values()) expect(n.appliedData()).not.toContain('a');

      // (d) And rightly so: S1 crashes, S5 comes back with a newer last term, wins, and
      // overwrites index 2 everywhere. Had "a" been applied, state machines would now diverge.
      c.crash(1);
      c.clearFilters();
      c.restart(5);
      campaignUntilLeader(c, 5);
      c.stabilize();
      for (const id of [2, 3, 4, 5]) {
        const n = c.node(id);
        expect(n.applied.find((e) => e.index === aIndex)).toEqual({ index: aIndex, term: s5Term, data: '' });
        expect(n.appliedData()).toEqual(['b']);
        expect(c.node(id).storage.term(aIndex)).toBe(s5Term);
      }
    });

    it('the same entry becomes committed once an entry of the current term is stored on a majority', () => {
      const { c, aIndex, s1Term } = figure8();
      expect(commitOf(c, 1)).toBe(aIndex - 1);
      // (e) S1's no-op (term t+2) now reaches the others: it commits, and "a" with it.
      c.clearFilters();
      c.tick(2);
      expect(commitOf(c, 1)).toBe(aIndex + 1);
      expect(c.node(1).storage.term(aIndex + 1)).toBe(s1Term);
      for (const id of [1, 2, 3, 4]) expect(c.node(id).appliedData()).toEqual(['a']);

      // S5 can no longer win: a majority has an entry of term t+2, newer than anything S5 holds.
      c.crash(1);
      c.restart(5);
      for (let i = 0; i < 3; i++) c.campaign(5);
      expect(c.node(5).state).not.toBe(StateType.Leader);
      campaignUntilLeader(c, 2);
      c.propose(2, 'c');
      for (const id of [2, 3, 4, 5]) expect(c.node(id).appliedData()).toEqual(['a', 'c']);
    });
  });
});

describe('raft: flow control', () => {
  it('in Probe state the leader sends one append at a time, until the follower answers', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'warm-up');
    expect(progressOf(c, 1, 3).state).toBe(ProgressState.Replicate);
    c.node(1).rawNode.reportUnreachable(3); // the transport lost something: back to probing
    expect(progressOf(c, 1, 3).state).toBe(ProgressState.Probe);

    const held = c.hold((m) => m.type === MessageType.App && m.to === 3);
    for (let i = 0; i < 5; i++) c.propose(1, `p${i}`);
    expect(held.messages).toHaveLength(1);
    expect(progressOf(c, 1, 3).state).toBe(ProgressState.Probe);
    expect(c.node(2).appliedData()).toHaveLength(6); // the other follower is not slowed down

    // A heartbeat answer proves the follower is alive: one more probe, not more.
    c.tick();
    expect(held.messages).toHaveLength(2);

    held.release();
    c.stabilize();
    expect(progressOf(c, 1, 3).state).toBe(ProgressState.Replicate);
    expect(c.node(3).appliedData()).toEqual(c.node(1).appliedData());
  });

  it('in Replicate state the leader keeps at most maxInflightMsgs appends in flight', () => {
    const maxInflightMsgs = 3;
    // One entry per message, so every proposal needs its own append.
    const c = newCluster([1, 2, 3], { maxInflightMsgs, maxSizePerMsgBytes: 1 });
    c.elect(1);
    c.propose(1, 'warm-up');
    expect(progressOf(c, 1, 3).state).toBe(ProgressState.Replicate);

    const held = c.hold((m) => m.type === MessageType.App && m.to === 3);
    for (let i = 0; i < 10; i++) c.propose(1, `p${i}`);
    // Appends carrying entries fill the window; empty ones (commit-index updates sent before it
    // filled) take no slot. Once full, nothing more is sent at all.
    const withEntries = held.messages.filter((m) => m.entries.length > 0);
    expect(withEntries).toHaveLength(maxInflightMsgs);
    expect(withEntries.map((m) => m.entries.map((e) => decoder.decode(e.data)))).toEqual([['p0'], ['p1'], ['p2']]);
    expect(held.messages.length).toBeLessThanOrEqual(2 * maxInflightMsgs);
    expect(progressOf(c, 1, 3).inflight).toBe(maxInflightMsgs);
    expect(c.node(2).appliedData()).toHaveLength(11);

    // Let the messages through one delivery at a time; the window never grows past its bound.
    held.release();
    let maxSeen = 0;
    for (let guard = 0; guard < 10_000; guard++) {
      const readys = c.processReadys();
      const delivered = c.deliverOne();
      maxSeen = Math.max(maxSeen, progressOf(c, 1, 3).inflight);
      if (!readys && !delivered) break;
    }
    expect(maxSeen).toBeLessThanOrEqual(maxInflightMsgs);
    expect(c.node(3).appliedData()).toEqual(c.node(1).appliedData());
  });

  it('append messages stay within maxSizePerMsgBytes, yet always carry at least one entry', () => {
    const maxSizePerMsgBytes = 100;
    const c = newCluster([1, 2, 3], { maxSizePerMsgBytes });
    c.elect(1);
    const heal = c.isolate(3);
    const small = (i: number): string => `small-${i}`.padEnd(10, '.'); // 10 + 24 = 34 bytes each
    for (let i = 0; i < 10; i++) c.propose(1, small(i));
    const big = 'B'.repeat(500); // alone exceeds the bound
    c.propose(1, big);
    for (let i = 10; i < 13; i++) c.propose(1, small(i));
    heal();

    const appends = c.record((m) => m.type === MessageType.App && m.to === 3 && m.entries.length > 0);
    c.tickUntil(() => c.node(3).appliedIndex === c.node(1).appliedIndex, 50);
    expect(c.node(3).appliedData()).toEqual(c.node(1).appliedData());

    expect(appends.count()).toBeGreaterThan(0);
    for (const m of appends.messages) {
      const bytes = m.entries.reduce((sum, e) => sum + entrySizeBytes(e), 0);
      if (m.entries.length > 1) expect(bytes).toBeLessThanOrEqual(maxSizePerMsgBytes);
    }
    // Batching happened (two small entries fit)...
    expect(appends.messages.some((m) => m.entries.length === 2)).toBe(true);
    expect(appends.messages.every((m) => m.entries.length <= 2)).toBe(true);
    // ...and the oversized entry travelled alone.
    const withBig = appends.messages.filter((m) => m.entries.some((e) => decoder.decode(e.data) === big));
    expect(withBig.length).toBeGreaterThan(0);
    for (const m of withBig) expect(m.entries).toHaveLength(1);
  });
});

describe('raft: learners', () => {
  it("a learner's acknowledgements never commit: with two of three voters down nothing commits", () => {
    const c = newCluster([1, 2, 3, 4], { learners: [4] });
    c.elect(1);
    c.propose(1, 'before');
    expect(c.node(4).appliedData()).toEqual(['before']);

    c.crash(2);
    c.crash(3);
    const x = c.propose(1, 'x');
    // The learner stored and acknowledged the entry...
    expect(c.node(4).storage.lastIndex()).toBe(x.index);
    expect(progressOf(c, 1, 4).match).toBe(x.index);
    // ...but leader + learner is not a quorum of {1, 2, 3}.
    expect(commitOf(c, 1)).toBe(x.index - 1);
    expect(commitOf(c, 4)).toBe(x.index - 1);
    for (const id of [1, 4]) expect(c.node(id).appliedData()).toEqual(['before']);

    c.restart(2);
    c.tick(3);
    expect(commitOf(c, 1)).toBe(x.index);
    for (const id of [1, 2, 4]) expect(c.node(id).appliedData()).toEqual(['before', 'x']);
  });

  it('a learner never campaigns, and a vote from a learner is not counted', () => {
    const c = newCluster([1, 2, 3, 4], { learners: [4] });
    const votes = c.record((m) => m.from === 4 && (m.type === MessageType.Vote || m.type === MessageType.PreVote));
    const initialTerm = c.node(4).term;
    c.isolate(4);
    c.tickNodes([4], 10 * ELECTION_TICKS);
    expect(c.node(4).state).toBe(StateType.Follower);
    expect(c.node(4).term).toBe(initialTerm);
    expect(votes.count()).toBe(0);

    // Voters 2 and 3 are down; 1 campaigns and only a learner would answer.
    c.clearFilters();
    c.crash(2);
    c.crash(3);
    c.campaign(1);
    expect(c.node(1).state).toBe(StateType.PreCandidate);
    const term = c.node(1).term;
    c.node(1).rawNode.step(makeMessage({ type: MessageType.PreVoteResp, from: 4, to: 1, term: term + 1 }));
    c.stabilize();
    expect(c.node(1).state).toBe(StateType.PreCandidate);
    expect(c.node(1).term).toBe(term);
  });
});

describe('raft: proposals', () => {
  it('a proposal on a follower throws NotLeaderError carrying the current leader id', () => {
    const c = newCluster([1, 2, 3]);
    // Before any election, the leader is unknown (0).
    const early = thrown(() => c.node(1).rawNode.propose(encoder.encode('x')));
    expect(early).toBeInstanceOf(NotLeaderError);
    expect(early).toMatchObject({ code: 'RAFT_NOT_LEADER', leader: 0 });

    c.elect(2);
    for (const id of [1, 3]) {
      const err = thrown(() => c.node(id).rawNode.propose(encoder.encode('x')));
      expect(err).toBeInstanceOf(NotLeaderError);
      expect(err).toMatchObject({ code: 'RAFT_NOT_LEADER', leader: 2, term: c.node(2).term });
      const ccErr = thrown(() => c.node(id).rawNode.proposeConfChange(conf(ConfChangeType.AddLearner, 9)));
      expect(ccErr).toBeInstanceOf(NotLeaderError);
      expect(ccErr).toMatchObject({ leader: 2 });
    }
    c.stabilize();
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual([]);
  });

  it('during a leadership transfer proposals throw ProposalDroppedError; an abandoned transfer re-opens them', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3); // the target cannot be reached, so the transfer cannot finish
    c.node(1).rawNode.transferLeader(3);
    c.stabilize();
    expect(c.node(1).rawNode.status().leadTransferee).toBe(3);
    const err = thrown(() => c.node(1).rawNode.propose(encoder.encode('during')));
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect(err).toMatchObject({ code: 'RAFT_PROPOSAL_DROPPED' });

    // Within an election timeout the leader gives up; it still has a quorum, so it keeps leading.
    c.tickNodes([1, 2], ELECTION_TICKS);
    expect(c.node(1).state).toBe(StateType.Leader);
    expect(c.node(1).rawNode.status().leadTransferee).toBe(0);
    c.propose(1, 'after');
    expect(c.node(2).appliedData()).toEqual(['after']);
  });
});

describe('raft: membership changes', () => {
  it('a second change is refused with ConfChangeRefusedError while the first is not applied', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    const rn = c.node(1).rawNode;
    const first = rn.proposeConfChange(conf(ConfChangeType.AddLearner, 4));
    const err = thrown(() => rn.proposeConfChange(conf(ConfChangeType.AddLearner, 5)));
    expect(err).toBeInstanceOf(ConfChangeRefusedError);
    expect(err).toMatchObject({ code: 'RAFT_CONF_CHANGE_REFUSED' });

    // Still refused while it is committed by nobody (followers unreachable)...
    const heal = c.partition([1], [2, 3]);
    c.stabilize();
    expect(commitOf(c, 1)).toBeLessThan(first.index);
    expect(thrown(() => rn.proposeConfChange(conf(ConfChangeType.AddLearner, 5)))).toBeInstanceOf(ConfChangeRefusedError);
    // ...and accepted once the leader has applied the first one.
    heal();
    c.tick();
    expect(c.node(1).appliedIndex).toBeGreaterThanOrEqual(first.index);
    expect(() => rn.proposeConfChange(conf(ConfChangeType.AddLearner, 5))).not.toThrow();
    c.stabilize();
    for (const id of [1, 2, 3]) expect(c.node(id).confState).toEqual({ voters: [1, 2, 3], learners: [4, 5] });
  });

  it('a new leader accepts no membership change until it has applied every entry it inherited', () => {
    const c = newCluster([1, 2, 3], { checkQuorum: false });
    c.elect(1);
    // "x" reaches 2 and 3, but 1 crashes before telling anyone that it committed.
    const x = c.node(1).rawNode.propose(encoder.encode('x'));
    c.processReady(1);
    c.deliverAll();
    c.processReady(2);
    c.processReady(3);
    c.crash(1);
    c.stabilize();
    expect(commitOf(c, 2)).toBe(x.index - 1);

    const acks = c.hold((m) => m.type === MessageType.AppResp && m.to === 2);
    campaignUntilLeader(c, 2); // its no-op cannot commit yet: the acks are held
    expect(c.node(2).appliedIndex).toBe(x.index - 1);
    const err = thrown(() => c.node(2).rawNode.proposeConfChange(conf(ConfChangeType.AddLearner, 4)));
    expect(err).toBeInstanceOf(ConfChangeRefusedError);

    acks.release();
    c.stabilize();
    expect(c.node(2).appliedData()).toEqual(['x']);
    expect(() => c.node(2).rawNode.proposeConfChange(conf(ConfChangeType.AddLearner, 4))).not.toThrow();
    c.stabilize();
    for (const id of [2, 3]) expect(c.node(id).confState).toEqual({ voters: [1, 2, 3], learners: [4] });
  });

  it('a node does not campaign while a committed membership change is not yet applied', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    const cc = c.node(1).rawNode.proposeConfChange(conf(ConfChangeType.AddLearner, 4));
    c.processReady(1);
    c.deliverAll();
    c.processReady(2);
    c.processReady(3);
    c.deliverAll();
    c.processReady(1); // committed and applied on the leader; the new commit index goes out
    c.deliverAll();
    expect(c.crashAfterPersist(2)).toBe(true); // 2 persisted the commit, did not apply the change
    expect(c.node(2).storage.initialState().hardState.commit).toBe(cc.index);

    c.restart(2);
    const term = c.node(2).term;
    c.node(2).rawNode.campaign();
    expect(c.node(2).state).toBe(StateType.Follower);
    expect(c.node(2).term).toBe(term);
    expect(c.node(2).rawNode.raft.msgs).toHaveLength(0);

    c.stabilize(); // the change is applied now
    expect(c.node(2).confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    c.node(2).rawNode.campaign();
    expect(c.node(2).state).toBe(StateType.PreCandidate);
  });

  it('a voter added with an empty disk, caught up from the log alone, cannot win an election on its own', () => {
    // Four voters {1, 2, 3, 4}: a quorum is three, so node 4 alone must never lead, and the
    // group must never apply two different entries at one index.
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    c.addEmptyNode(4);
    c.proposeConfChange(1, ConfChangeType.AddLearner, 4);
    c.proposeConfChange(1, ConfChangeType.AddVoter, 4);
    expect(c.node(1).confState).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(c.node(4).appliedData()).toEqual(c.node(1).appliedData());

    c.isolate(4);
    c.tickNodes([4], 3 * ELECTION_TICKS);
    expect(c.node(4).state).not.toBe(StateType.Leader);
    expect(() => c.node(4).rawNode.propose(encoder.encode('split-brain'))).toThrow(NotLeaderError);
  });

  it('changes that would break the group are refused', () => {
    const c = newCluster([1]);
    c.elect(1);
    const rn = c.node(1).rawNode;
    expect(thrown(() => rn.proposeConfChange(conf(ConfChangeType.RemoveNode, 1)))).toBeInstanceOf(ConfChangeRefusedError);
    expect(thrown(() => rn.proposeConfChange(conf(ConfChangeType.AddLearner, 1)))).toBeInstanceOf(ConfChangeRefusedError);
    expect(thrown(() => rn.proposeConfChange(conf(ConfChangeType.AddVoter, 1)))).toBeInstanceOf(ConfChangeRefusedError);
    expect(thrown(() => rn.proposeConfChange(conf(ConfChangeType.RemoveNode, 7)))).toBeInstanceOf(ConfChangeRefusedError);
    expect(thrown(() => rn.proposeConfChange(conf(ConfChangeType.AddVoter, 0)))).toBeInstanceOf(ConfChangeRefusedError);
    c.stabilize();
    expect(c.node(1).confState).toEqual({ voters: [1], learners: [] });
  });

  it('removing the leader makes it step down; the remaining voters elect a new leader', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    const oldTerm = c.node(1).term;
    c.propose(1, 'a');
    c.proposeConfChange(1, ConfChangeType.RemoveNode, 1);
    expect(c.node(1).state).toBe(StateType.Follower);
    for (const id of [1, 2, 3]) expect(c.node(id).confState).toEqual({ voters: [2, 3], learners: [] });
    expect(thrown(() => c.node(1).rawNode.propose(encoder.encode('x')))).toBeInstanceOf(NotLeaderError);

    c.tickUntil(() => c.leaders().length === 1, 10 * ELECTION_TICKS);
    const next = c.leader()!;
    expect([2, 3]).toContain(next.id);
    expect(next.term).toBeGreaterThan(oldTerm);
    c.propose(next.id, 'b');
    for (const id of [2, 3]) expect(c.node(id).appliedData()).toEqual(['a', 'conf:RemoveNode:1', 'b']);
    // The removed node hears nothing more and, no longer a voter, never campaigns.
    const term1 = c.node(1).term;
    c.tick(5 * ELECTION_TICKS);
    expect(c.node(1).state).toBe(StateType.Follower);
    expect(c.node(1).term).toBe(term1);
    expect(c.node(1).appliedData()).toEqual(['a', 'conf:RemoveNode:1']);
  });
});

describe('raft: persistence and restart', () => {
  it('a restarted node resumes its term, vote and log from disk and re-applies nothing', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    for (const d of ['a', 'b', 'c']) c.propose(1, d);
    for (const id of [1, 2]) {
      const before = c.node(id).rawNode.status();
      const log = c.storedLog(id);
      c.crash(id);
      c.restart(id);
      const after = c.node(id).rawNode.status();
      expect({ term: after.term, vote: after.vote, commit: after.commit, applied: after.applied }).toEqual({
        term: before.term,
        vote: before.vote,
        commit: before.commit,
        applied: before.applied,
      });
      expect(after.vote).toBe(1);
      expect(c.node(id).rawNode.raft.raftLog.allEntries()).toEqual(log);
      // Everything committed was applied before the crash: nothing to hand out again.
      expect(c.node(id).rawNode.hasReady()).toBe(false);
    }
    c.tickUntil(() => c.leader() !== undefined, 10 * ELECTION_TICKS);
    c.propose(c.leader()!.id, 'd');
    for (const n of c.nodes.values()) {
      expect(n.appliedData()).toEqual(['a', 'b', 'c', 'd']);
      const indexes = n.applied.map((e) => e.index);
      expect(new Set(indexes).size).toBe(indexes.length);
      expect(indexes).toEqual([...indexes].sort((x, y) => x - y));
    }
  });

  it('a node that crashed after persisting a commit but before applying it applies exactly the missing entries', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'a');
    // Drive one proposal by hand so node 2 crashes at a precise point.
    const b = c.node(1).rawNode.propose(encoder.encode('b'));
    c.processReady(1);
    c.deliverAll(); // appends reach 2 and 3
    c.processReady(2);
    c.processReady(3);
    c.deliverAll(); // their acks reach 1: "b" commits
    c.processReady(1);
    expect(c.node(1).appliedData()).toEqual(['a', 'b']);
    c.deliverAll(); // the new commit index reaches 2 and 3
    const appliedBefore = c.node(2).appliedIndex;
    expect(c.crashAfterPersist(2)).toBe(true);
    expect(c.node(2).storage.initialState().hardState.commit).toBe(b.index);
    expect(appliedBefore).toBe(b.index - 1);

    c.restart(2);
    expect(c.node(2).rawNode.status()).toMatchObject({ commit: b.index, applied: b.index - 1 });
    c.stabilize();
    expect(c.node(2).appliedData()).toEqual(['a', 'b']);
    const indexes = c.node(2).applied.map((e) => e.index);
    expect(new Set(indexes).size).toBe(indexes.length);
  });

  it("a leader's proposal whose Ready was never persisted is lost in a crash, but every acknowledged entry survives", () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'acked-1');
    c.propose(1, 'acked-2');
    const lost = c.node(1).rawNode.propose(encoder.encode('lost'));
    c.crash(1); // before its Ready was handled: not on disk, never sent
    expect(c.node(1).storage.lastIndex()).toBe(lost.index - 1);
    c.stabilize();
    for (const id of [2, 3]) expect(c.node(id).storage.lastIndex()).toBe(lost.index - 1);

    c.restart(1);
    expect(lastIndexOf(c, 1)).toBe(lost.index - 1);
    c.tickUntil(() => c.leader() !== undefined, 10 * ELECTION_TICKS);
    c.propose(c.leader()!.id, 'after');
    c.tick(2);
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['acked-1', 'acked-2', 'after']);
  });

  it('followers that crash before persisting an append never acknowledge it, so it does not commit on their account', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.propose(1, 'acked');
    const y = c.node(1).rawNode.propose(encoder.encode('y'));
    c.processReady(1);
    c.deliverAll(); // 2 and 3 hold "y" in memory only
    c.crash(2);
    c.crash(3);
    c.stabilize();
    expect(commitOf(c, 1)).toBe(y.index - 1);
    expect(c.node(1).appliedData()).toEqual(['acked']);
    for (const id of [2, 3]) expect(c.node(id).storage.lastIndex()).toBe(y.index - 1);

    // Back up, they receive "y" again from the leader; only now does it commit.
    c.restart(2);
    c.restart(3);
    c.tick(3);
    expect(commitOf(c, 1)).toBe(y.index);
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['acked', 'y']);
  });
});

describe('raft: read index', () => {
  it('a new leader holds reads until its no-op commits, then answers at an index covering it', () => {
    const c = newCluster([1, 2, 3]);
    const acks = c.hold((m) => m.type === MessageType.AppResp && m.to === 1);
    c.elect(1);
    const noopIndex = lastIndexOf(c, 1);
    expect(commitOf(c, 1)).toBeLessThan(noopIndex);
    c.readIndex(1, 'early');
    c.tick(); // heartbeats flow; still no read: the commit index may be stale until the no-op commits
    expect(c.node(1).readStates).toHaveLength(0);
    acks.release();
    c.stabilize();
    expect(commitOf(c, 1)).toBe(noopIndex);
    expect(c.node(1).readStates.map((rs) => [decoder.decode(rs.requestContext), rs.index])).toEqual([['early', noopIndex]]);
  });

  it('one heartbeat round carries every read request queued before the next Ready, and releases them all', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.stabilize();
    c.queue = [];
    c.node(1).rawNode.readIndex(encoder.encode('a'));
    c.node(1).rawNode.readIndex(encoder.encode('b'));
    c.node(1).rawNode.step(makeMessage({ type: MessageType.ReadIndex, from: 2, to: 1, context: encoder.encode('c') }));
    c.processReady(1);
    const heartbeats = c.queue.filter(isType(MessageType.Heartbeat));
    expect(heartbeats.map((m) => m.to).sort()).toEqual([2, 3]);
    for (const m of heartbeats) expect(decoder.decode(m.context)).toBe('c');
    c.stabilize();
    const index = commitOf(c, 1);
    expect(c.node(1).readStates.map((rs) => [decoder.decode(rs.requestContext), rs.index])).toEqual([
      ['a', index],
      ['b', index],
    ]);
    expect(c.node(2).readStates.map((rs) => [decoder.decode(rs.requestContext), rs.index])).toEqual([['c', index]]);
  });

  it('readIndex without a known leader throws NotLeaderError', () => {
    const c = newCluster([1, 2, 3]);
    expect(thrown(() => c.readIndex(2, 'r'))).toBeInstanceOf(NotLeaderError);
    expect(c.queue.filter(isType(MessageType.ReadIndex))).toHaveLength(0);
  });
});

describe('raft: sending before persisting (Ready.earlyMessages)', () => {
  /** A node that campaigns and, with the votes it is given, becomes leader; its Readys are "persisted" into its storage. */
  function electedLeader(voters: number[], learners: number[], sendBeforePersist: boolean) {
    const storage = new MemoryStorage({ voters, learners });
    const rn = new RawNode({ id: 1, storage, electionTicks: ELECTION_TICKS, heartbeatTicks: 1, rng: new SeededRng(1), preVote: false, sendBeforePersist });
    const handle = () => {
      const rd = rn.ready();
      if (rd.entries.length > 0) storage.append(rd.entries);
      if (rd.hardState) storage.setHardState(rd.hardState);
      rn.advance(rd);
      return rd;
    };
    rn.campaign();
    const campaign = handle();
    // The campaign's Ready changes the term and vote: nothing leaves before it is persisted.
    expect(campaign.earlyMessages).toHaveLength(0);
    for (const v of voters.filter((id) => id !== 1)) {
      rn.step(makeMessage({ type: MessageType.VoteResp, from: v, to: 1, term: rn.status().term }));
    }
    expect(rn.status().state).toBe(StateType.Leader);
    handle(); // the no-op (and, for a lone voter, its commit)
    // The followers take the no-op: their progress leaves the probe state.
    for (const v of voters.filter((id) => id !== 1)) {
      rn.step(makeMessage({ type: MessageType.AppResp, from: v, to: 1, term: rn.status().term, index: 1 }));
    }
    handle();
    return { rn, storage, handle };
  }

  it("hands a leader's appends out early when the commit index covers only entries on its disk", () => {
    const { rn } = electedLeader([1, 2, 3], [], true);
    rn.propose(encoder.encode('x'));
    const rd = rn.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    const apps = rd.earlyMessages.filter((m) => m.type === MessageType.App);
    expect(apps.map((m) => m.to).sort()).toEqual([2, 3]);
    for (const m of apps) expect(m.commit).toBeLessThan(2);
    expect(rd.messages.filter((m) => m.type === MessageType.App)).toHaveLength(0);
  });

  it('keeps them until after persisting when the commit index covers an entry not yet on disk (a leader that is its own quorum)', () => {
    const { rn } = electedLeader([1], [2], true);
    rn.step(makeMessage({ type: MessageType.AppResp, from: 2, to: 1, term: rn.status().term, index: 1 }));
    rn.propose(encoder.encode('x'));
    const rd = rn.ready();
    // The lone voter committed entry 2 when it appended it: an append carrying that commit to
    // the learner must not leave before entry 2 is on the leader's disk.
    expect(rd.hardState?.commit).toBe(2);
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.earlyMessages).toHaveLength(0);
    expect(rd.messages.some((m) => m.type === MessageType.App && m.to === 2)).toBe(true);
  });

  it('is off unless asked for', () => {
    const { rn } = electedLeader([1, 2, 3], [], false);
    rn.propose(encoder.encode('x'));
    const rd = rn.ready();
    expect(rd.earlyMessages).toHaveLength(0);
    expect(rd.messages.filter((m) => m.type === MessageType.App)).toHaveLength(2);
  });
});

describe('raft: quiesce heartbeats', () => {
  const QUIET = encoder.encode('quiet');

  it('an idle leader sends one heartbeat round with the context; a busy or unsure one sends nothing', () => {
    const c = newCluster([1, 2, 3]);
    c.elect(1);
    c.stabilize();
    // Everything committed, applied and on every follower: the round goes out, carrying the context.
    const rec = c.record(isType(MessageType.Heartbeat));
    expect(c.node(1).rawNode.quiesceHeartbeats(QUIET)).toBe(true);
    c.stabilize();
    expect(rec.messages.map((m) => [m.to, decoder.decode(m.context), m.commit])).toEqual([
      [2, 'quiet', commitOf(c, 1)],
      [3, 'quiet', commitOf(c, 1)],
    ]);
    rec.stop();
    // A proposal not yet on every follower: refused.
    const held = c.hold((m) => m.type === MessageType.App && m.to === 3);
    c.propose(1, 'x');
    c.stabilize();
    expect(c.node(1).rawNode.quiesceHeartbeats(QUIET)).toBe(false);
    held.release();
    c.stabilize();
    expect(c.node(1).rawNode.quiesceHeartbeats(QUIET)).toBe(true);
    // A pending read: refused. A follower: refused.
    c.node(1).rawNode.readIndex(encoder.encode('r'));
    expect(c.node(1).rawNode.quiesceHeartbeats(QUIET)).toBe(false);
    c.stabilize();
    expect(c.node(2).rawNode.quiesceHeartbeats(QUIET)).toBe(false);
    c.assertSafety();
  });
});
