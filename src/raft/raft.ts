// The Raft protocol of one replica, as a pure state machine (see DESIGN.md). Time enters as
// tick(), input as step(message) and the propose/read/transfer calls; output is collected in
// `msgs`, `readStates` and the log's unstable part, which RawNode hands out as a Ready.
//
// Roles are step functions (stepLeader, stepCandidate, stepFollower); only become* changes the
// role. Term checks happen once, in step(), before dispatch.
//
// Membership changes one node at a time and takes effect when the change entry is APPLIED (the
// application calls applyConfChange). Safety rules:
//   - a leader accepts a new change only after every earlier change is applied (pendingConfIndex);
//   - a new leader treats everything in its log as a possibly pending change (pendingConfIndex =
//     its last index), so it first applies what it inherited;
//   - a node does not campaign while it has committed but unapplied changes.
// Two successive configurations then differ by one voter, so any majority of one intersects any
// majority of the next.

import { ConfChangeRefusedError, NotLeaderError, ProposalDroppedError, RaftConfigError, CompactedError, SnapshotTemporarilyUnavailableError } from './errors';
import { RaftLog } from './log';
import { Progress, ProgressState } from './progress';
import { VoteResult, committedIndex, isQuorum, voteResult } from './quorum';
import { ReadOnly, ReadRequest } from './read-only';
import { Rng } from './rng';
import { Storage } from './storage';
import {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NONE,
  NodeId,
  ReadState,
  Snapshot,
  SoftState,
  StateType,
  encodeConfChange,
  makeMessage,
} from './types';

/** Optional sink for the core's diagnostics; the node layer wires it to pino. */
export interface RaftLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}

export interface RaftConfig {
  /** This replica's id, >= 1. */
  readonly id: NodeId;
  readonly storage: Storage;
  /** Election timeout in ticks; each term draws a timeout in [electionTicks, 2 * electionTicks). Typical: 10. */
  readonly electionTicks: number;
  /** Leader heartbeat interval in ticks; must be < electionTicks. Typical: 1. */
  readonly heartbeatTicks: number;
  /** The only source of randomness (election timeout jitter). */
  readonly rng: Rng;
  /** On restart: the last index the application applied (and persisted). Default: the snapshot index. */
  readonly applied?: number;
  /** Max total entry bytes in one append message (at least one entry is always sent). Default 1 MiB. */
  readonly maxSizePerMsgBytes?: number;
  /** Max append messages in flight to one follower in Replicate state. Default 256. */
  readonly maxInflightMsgs?: number;
  /** Max total bytes of committed entries in one Ready. Default 16 MiB. */
  readonly maxApplyBytesPerReady?: number;
  /** Run a pre-vote round before incrementing the term (default true). */
  readonly preVote?: boolean;
  /** Leader steps down without a quorum of recent contact; followers ignore votes while a leader is alive (default true). */
  readonly checkQuorum?: boolean;
  readonly logger?: RaftLogger;
}

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly inflight: number;
}

export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly leader: NodeId;
  readonly state: StateType;
  readonly confState: ConfState;
  /** Only on the leader. */
  readonly progress?: ReadonlyMap<NodeId, ProgressStatus>;
  readonly leadTransferee: NodeId;
}

/** Marks a vote request caused by leadership transfer: it bypasses leader stickiness. */
const CAMPAIGN_TRANSFER = new Uint8Array([0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72]); // "transfer"

enum CampaignType {
  PreElection = 'PreElection',
  Election = 'Election',
  Transfer = 'Transfer',
}

const NO_OP_LOGGER: RaftLogger = { debug() {}, info() {}, warn() {} };

function isTransferContext(ctx: Uint8Array): boolean {
  if (ctx.length !== CAMPAIGN_TRANSFER.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readonly raftLog: RaftLog;
  state: StateType = StateType.Follower;
  lead: NodeId = NONE;

  /** Members by id; voters and learners are disjoint. */
  readonly prs = new Map<NodeId, Progress>();
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();

  /** Output, drained by RawNode.ready(). */
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  droppedReads: Uint8Array[] = [];

  private votes = new Map<NodeId, boolean>();
  private readonly readOnly = new ReadOnly();
  /** Proposals appended since the last flushBatched(). */
  private proposalsUnsent = false;
  /** Read requests queued since the last flushBatched(): one heartbeat round will carry them all. */
  private readHeartbeatUnsent = false;
  /** Read requests that arrived before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];

  /** A change at an index > applied may still be pending; no new change until it is applied. */
  pendingConfIndex = 0;
  leadTransferee: NodeId = NONE;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly maxMsgSize: number;
  private readonly maxInflight: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly rng: Rng;
  private readonly logger: RaftLogger;

  constructor(c: RaftConfig) {
    validateConfig(c);
    this.id = c.id;
    this.electionTimeout = c.electionTicks;
    this.heartbeatTimeout = c.heartbeatTicks;
    this.maxMsgSize = c.maxSizePerMsgBytes ?? 1024 * 1024;
    this.maxInflight = c.maxInflightMsgs ?? 256;
    this.preVote = c.preVote ?? true;
    this.checkQuorum = c.checkQuorum ?? true;
    this.rng = c.rng;
    this.logger = c.logger ?? NO_OP_LOGGER;
    this.raftLog = new RaftLog(c.storage, c.maxApplyBytesPerReady ?? 16 * 1024 * 1024);

    const { hardState, confState } = c.storage.initialState();
    this.applyConfState(confState);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) {
      if (hardState.commit < this.raftLog.committed || hardState.commit > this.raftLog.lastIndex()) {
        throw new RaftConfigError(
          'storage',
          `hard state commit ${hardState.commit} is outside the log [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
        );
      }
      this.raftLog.committed = hardState.commit;
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    if (c.applied !== undefined && c.applied > 0) {
      if (c.applied > this.raftLog.committed) {
        throw new RaftConfigError('applied', `applied ${c.applied} is beyond the committed index ${this.raftLog.committed}`);
      }
      this.raftLog.applied = Math.max(this.raftLog.applied, c.applied);
    }
    this.becomeFollower(this.term, NONE);
  }

  // ------------------------------------------------------------------------------------------
  // Observed state

  softState(): SoftState {
    return { leader: this.lead, state: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  status(): Status {
    let progress: Map<NodeId, ProgressStatus> | undefined;
    if (this.state === StateType.Leader) {
      progress = new Map();
      for (const [id, pr] of this.prs) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
          inflight: pr.inflights.count(),
        });
      }
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      commit: this.raftLog.committed,
      applied: this.raftLog.applied,
      leader: this.lead,
      state: this.state,
      confState: this.confState(),
      progress,
      leadTransferee: this.leadTransferee,
    };
  }

  /** A voter in its own configuration: may campaign. */
  promotable(): boolean {
    return this.voters.has(this.id);
  }

  // ------------------------------------------------------------------------------------------
  // Role changes

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes = new Map();
    const last = this.raftLog.lastIndex();
    for (const pr of this.prs.values()) {
      const isLearner = pr.isLearner;
      const fresh = new Progress(pr.id, last + 1, this.maxInflight, isLearner);
      if (pr.id === this.id) fresh.match = last;
      this.prs.set(pr.id, fresh);
    }
    this.pendingConfIndex = 0;
    this.dropPendingReads();
  }

  private dropPendingReads(): void {
    const dropped: ReadRequest[] = this.readOnly.reset();
    for (const rs of dropped) if (rs.from === this.id || rs.from === NONE) this.droppedReads.push(rs.context);
    for (const m of this.pendingReadIndexMessages) if (m.from === this.id || m.from === NONE) this.droppedReads.push(m.context);
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.rng.intn(this.electionTimeout);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  private becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('raft: leader cannot become pre-candidate');
    // Does not change term or vote: a pre-vote round is harmless to the cluster.
    this.votes = new Map();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
  }

  private becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  private becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error('raft: follower cannot become leader directly');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.prs.get(this.id);
    if (self) self.becomeReplicate();
    // Anything in the log may be an unapplied membership change: no new change until it is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op entry: commits everything from earlier terms once it commits (§5.4.2).
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  // ------------------------------------------------------------------------------------------
  // Time

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.stepDownWithoutQuorum();
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** Check-quorum: a leader that heard from no quorum during the last election timeout steps down. */
  private stepDownWithoutQuorum(): void {
    const active = isQuorum(this.voters, (id) => id === this.id || (this.prs.get(id)?.recentActive ?? false));
    for (const pr of this.prs.values()) if (pr.id !== this.id) pr.recentActive = false;
    if (!active) {
      this.logger.warn(`${this.id} stepped down at term ${this.term}: no quorum heard within an election timeout`);
      this.becomeFollower(this.term, NONE);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Application requests

  /** Starts an election now (the application's "campaign" call). */
  campaign(): void {
    this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
  }

  propose(data: Uint8Array): { index: number; term: number } {
    return this.proposeEntry(EntryType.Normal, data);
  }

  private proposeEntry(type: EntryType, data: Uint8Array): { index: number; term: number } {
    if (this.state !== StateType.Leader) throw new NotLeaderError(this.lead, this.term);
    if (this.leadTransferee !== NONE) {
      throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
    }
    if (!this.prs.has(this.id)) throw new ProposalDroppedError('this node was removed from the group');
    this.appendEntries([{ term: 0, index: 0, type, data }]);
    // Replicated when the application next asks for a Ready (flushBatched): every proposal
    // made in between travels in one append per follower instead of one each.
    this.proposalsUnsent = true;
    return { index: this.raftLog.lastIndex(), term: this.term };
  }

  /**
   * Sends what was batched since the last call (RawNode.ready() calls it): the entries proposed,
   * in one append per follower, and one heartbeat round for every read request queued, carrying
   * the latest one's context (a quorum's acks of it confirm leadership for all the earlier ones,
   * and it leaves after each of them arrived).
   */
  flushBatched(): void {
    if (this.proposalsUnsent) {
      this.proposalsUnsent = false;
      if (this.state === StateType.Leader) this.bcastAppend();
    }
    if (this.readHeartbeatUnsent) {
      this.readHeartbeatUnsent = false;
      if (this.state === StateType.Leader) this.bcastHeartbeat();
    }
  }

  /** Whether flushBatched() has something to send. */
  hasBatched(): boolean {
    return this.proposalsUnsent || this.readHeartbeatUnsent;
  }

  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    if (this.state !== StateType.Leader) throw new NotLeaderError(this.lead, this.term);
    if (this.pendingConfIndex > this.raftLog.applied) {
      throw new ConfChangeRefusedError(
        `an earlier change at index ${this.pendingConfIndex} is not applied yet (applied ${this.raftLog.applied})`,
      );
    }
    this.validateConfChange(cc);
    const pos = this.proposeEntry(EntryType.ConfChange, encodeConfChange(cc));
    this.pendingConfIndex = pos.index;
    return pos;
  }

  private validateConfChange(cc: ConfChange): void {
    if (!(Number.isInteger(cc.nodeId) && cc.nodeId > 0)) {
      throw new ConfChangeRefusedError(`node id must be a positive integer, got ${cc.nodeId}`);
    }
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        if (this.voters.has(cc.nodeId)) throw new ConfChangeRefusedError(`node ${cc.nodeId} is already a voter`);
        return;
      case ConfChangeType.AddLearner:
        if (this.learners.has(cc.nodeId)) throw new ConfChangeRefusedError(`node ${cc.nodeId} is already a learner`);
        if (this.voters.has(cc.nodeId) && this.voters.size === 1) {
          throw new ConfChangeRefusedError(`demoting node ${cc.nodeId} would leave no voters`);
        }
        return;
      case ConfChangeType.RemoveNode:
        if (!this.prs.has(cc.nodeId)) throw new ConfChangeRefusedError(`node ${cc.nodeId} is not a member`);
        if (this.voters.has(cc.nodeId) && this.voters.size === 1) {
          throw new ConfChangeRefusedError(`removing node ${cc.nodeId} would leave no voters`);
        }
        return;
    }
  }

  /** Applies a committed membership change; returns the new membership. Idempotent. */
  applyConfChange(cc: ConfChange): ConfState {
    const wasVoter = this.voters.has(this.id);
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        this.learners.delete(cc.nodeId);
        this.voters.add(cc.nodeId);
        this.ensureProgress(cc.nodeId, false);
        break;
      case ConfChangeType.AddLearner:
        this.voters.delete(cc.nodeId);
        this.learners.add(cc.nodeId);
        this.ensureProgress(cc.nodeId, true);
        break;
      case ConfChangeType.RemoveNode:
        this.voters.delete(cc.nodeId);
        this.learners.delete(cc.nodeId);
        this.prs.delete(cc.nodeId);
        break;
    }
    this.afterConfChange(wasVoter);
    return this.confState();
  }

  private ensureProgress(id: NodeId, isLearner: boolean): void {
    const pr = this.prs.get(id);
    if (pr) {
      pr.isLearner = isLearner;
      return;
    }
    const fresh = new Progress(id, this.raftLog.lastIndex() + 1, this.maxInflight, isLearner);
    // A new member counts as active so that check-quorum does not depose the leader at once.
    fresh.recentActive = true;
    this.prs.set(id, fresh);
  }

  private afterConfChange(wasVoter: boolean): void {
    if (this.state !== StateType.Leader) return;
    if (wasVoter && !this.voters.has(this.id)) {
      // Removed or demoted: a leader must be a voter. Step down; the rest elect a new leader.
      this.logger.info(`${this.id} stepped down: no longer a voter`);
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    // The quorum may have shrunk: entries may now be committed.
    if (this.maybeCommit()) this.bcastAppend();
    else {
      // New members want the log now.
      for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
    }
  }

  private applyConfState(cs: ConfState): void {
    this.voters.clear();
    this.learners.clear();
    this.prs.clear();
    const next = this.raftLog.lastIndex() + 1;
    for (const id of cs.voters) {
      this.voters.add(id);
      this.prs.set(id, new Progress(id, next, this.maxInflight, false));
    }
    for (const id of cs.learners) {
      if (this.voters.has(id)) throw new RaftConfigError('confState', `node ${id} is both voter and learner`);
      this.learners.add(id);
      this.prs.set(id, new Progress(id, next, this.maxInflight, true));
    }
  }

  readIndex(context: Uint8Array): void {
    if (this.state === StateType.Leader) {
      this.handleReadIndex(makeMessage({ type: MessageType.ReadIndex, from: this.id, to: this.id, context }));
      return;
    }
    if (this.lead === NONE) throw new NotLeaderError(NONE, this.term);
    this.send(makeMessage({ type: MessageType.ReadIndex, to: this.lead, context }));
  }

  transferLeader(target: NodeId): void {
    const m = makeMessage({ type: MessageType.TransferLeader, from: this.id, to: this.id, index: target });
    if (this.state === StateType.Leader) {
      this.handleTransferLeader(m);
      return;
    }
    if (this.lead === NONE) throw new NotLeaderError(NONE, this.term);
    this.send(makeMessage({ type: MessageType.TransferLeader, to: this.lead, index: target }));
  }

  reportUnreachable(id: NodeId): void {
    if (this.state !== StateType.Leader) return;
    const pr = this.prs.get(id);
    if (!pr) return;
    // An append may have been lost: fall back to probing.
    if (pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.state !== StateType.Leader) return;
    const pr = this.prs.get(id);
    if (!pr || pr.state !== ProgressState.Snapshot) return;
    if (!ok) pr.pendingSnapshot = 0;
    // Probe from the snapshot (or from match on failure); wait for the next heartbeat reply
    // before sending, so a failed snapshot is not retried in a tight loop.
    pr.becomeProbe();
    pr.probeSent = true;
  }

  // ------------------------------------------------------------------------------------------
  // Messages

  step(m: Message): void {
    if (m.term === 0) {
      // Local request, no term.
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isTransferContext(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Leader stickiness: we heard from a live leader within the minimum election timeout,
          // so this candidate is disruptive (e.g. a partitioned node rejoining). Ignore it.
          this.logger.debug(`${this.id} ignored ${m.type} from ${m.from} at term ${m.term}: leader ${this.lead} is alive`);
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote never changes our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // We bump the term only if the pre-vote wins.
      } else {
        const leaderMsg = m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
        this.becomeFollower(m.term, leaderMsg ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader (e.g. partitioned away while we moved on). Answer so it learns our
        // term and steps down; otherwise, with pre-vote, it could block our elections forever.
        this.send(makeMessage({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.send(makeMessage({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.state) {
      case StateType.Leader:
        this.stepLeader(m);
        return;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m);
        return;
      case StateType.Follower:
        this.stepFollower(m);
        return;
    }
  }

  private handleVoteRequest(m: Message): void {
    // We can vote for m.from if we already did, or if we have not voted and know no leader in
    // this term; a pre-vote for a future term is always possible.
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      // For a pre-vote, answer in the term the candidate would use, so it can count the vote.
      this.send(makeMessage({ type: respType, to: m.from, term: m.term }));
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(makeMessage({ type: respType, to: m.from, term: this.term, reject: true }));
    }
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.logger.debug(`${this.id} cannot campaign: not a voter`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn(`${this.id} cannot campaign at term ${this.term}: committed membership changes are not applied yet`);
      return;
    }
    this.campaignNow(t);
  }

  private hasUnappliedConfChanges(): boolean {
    const lo = this.raftLog.applied + 1;
    const hi = this.raftLog.committed + 1;
    if (lo >= hi) return false;
    let i = Math.max(lo, this.raftLog.firstIndex());
    while (i < hi) {
      const ents = this.raftLog.slice(i, hi, 4 * 1024 * 1024);
      for (const e of ents) if (e.type === EntryType.ConfChange) return true;
      i += ents.length;
    }
    return false;
  }

  private campaignNow(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1; // the term we would use; not ours yet
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    // Vote for ourselves; a single-voter group wins at once.
    if (this.poll(this.id, true) === VoteResult.Won) {
      if (t === CampaignType.PreElection) this.campaignNow(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    const context = t === CampaignType.Transfer ? CAMPAIGN_TRANSFER : new Uint8Array(0);
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send(makeMessage({ type: voteMsg, to: id, term, index: lastIndex, logTerm: lastTerm, context }));
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.voters, this.votes);
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.ReadIndex:
        this.handleReadIndex(m);
        return;
      case MessageType.TransferLeader:
        this.handleTransferLeader(m);
        return;
      default:
        break;
    }
    const pr = this.prs.get(m.from);
    if (!pr) return; // not (or no longer) a member
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from); // always m.term === this.term here
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.ReadIndex:
      case MessageType.TransferLeader:
        // No leader to forward to.
        return;
      default:
        break;
    }
    if (m.type !== myVoteResp) return;
    const res = this.poll(m.from, !m.reject);
    if (res === VoteResult.Won) {
      if (this.state === StateType.PreCandidate) this.campaignNow(CampaignType.Election);
      else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (res === VoteResult.Lost) {
      // m.term may be above ours (a pre-vote rejection carries the rejecter's term... which was
      // handled in step()); stay at our term otherwise.
      this.becomeFollower(this.term, NONE);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === NONE) return;
        this.send(makeMessage({ type: MessageType.TransferLeader, to: this.lead, index: m.index }));
        return;
      case MessageType.TimeoutNow:
        // The leader picked us: campaign at once, bypassing pre-vote and leader stickiness.
        this.hup(CampaignType.Transfer);
        return;
      case MessageType.ReadIndex:
        if (this.lead === NONE) return;
        this.send(makeMessage({ type: MessageType.ReadIndex, to: this.lead, context: m.context }));
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestContext: m.context });
        return;
      default:
        return;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Follower handlers

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index is known to match; tell the leader where we are.
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: lastNew }));
      return;
    }
    // Reject, with a hint that lets the leader skip a whole term of mismatching entries.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send(
      makeMessage({
        type: MessageType.AppResp,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        rejectHintTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(makeMessage({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    if (this.restore(s)) {
      this.logger.info(`${this.id} restored snapshot at index ${s.metadata.index} term ${s.metadata.term}`);
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot from the leader. Returns false if it is not newer than what we have. */
  private restore(s: Snapshot): boolean {
    const idx = s.metadata.index;
    if (idx <= this.raftLog.committed) return false;
    if (this.raftLog.matchTerm(idx, s.metadata.term)) {
      // We already have the entry: just fast-forward commit, keep the log after it.
      this.raftLog.commitTo(idx);
      return false;
    }
    this.raftLog.restore(s);
    this.applyConfState(s.metadata.confState);
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Leader

  private appendEntries(ents: Entry[]): void {
    let li = this.raftLog.lastIndex();
    const stamped = ents.map((e) => ({ ...e, term: this.term, index: ++li }));
    this.raftLog.append(stamped);
    // The leader's own "ack". It is counted before the entries are persisted; that is safe
    // because nobody learns of the commit until the Ready that persists them has been handled.
    this.prs.get(this.id)?.maybeUpdate(this.raftLog.lastIndex());
    this.maybeCommit();
  }

  /** Advances commit to the quorum's match index if that entry is from our term. */
  private maybeCommit(): boolean {
    const mci = committedIndex(this.voters, (id) => this.prs.get(id)?.match ?? 0);
    const wasInTerm = this.committedEntryInCurrentTerm();
    if (!this.raftLog.maybeCommit(mci, this.term)) return false;
    if (!wasInTerm && this.committedEntryInCurrentTerm()) this.releasePendingReadIndexMessages();
    return true;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  private send(m: Message): void {
    let out = m.from === NONE ? { ...m, from: this.id } : m;
    if (m.type === MessageType.PreVote || m.type === MessageType.PreVoteResp || m.type === MessageType.VoteResp) {
      // Vote traffic carries the term of the election it belongs to, set by the caller.
      if (m.term === 0) throw new Error(`raft: ${m.type} must carry an explicit term`);
    } else if (out.term === 0) {
      out = { ...out, term: this.term };
    }
    this.msgs.push(out);
  }

  /** Sends entries (or a snapshot) to a follower. Returns whether a message was sent. */
  private sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.raftLog.term(pr.next - 1);
      ents = this.raftLog.entries(pr.next, this.maxMsgSize);
    } catch (e) {
      if (e instanceof CompactedError) return this.sendSnapshot(pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(
      makeMessage({
        type: MessageType.App,
        to,
        index: pr.next - 1,
        logTerm: prevTerm,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    );
    if (ents.length > 0) {
      const last = (ents[ents.length - 1] as Entry).index;
      if (pr.state === ProgressState.Replicate) {
        pr.optimisticUpdate(last);
        pr.inflights.add(last);
      } else if (pr.state === ProgressState.Probe) {
        pr.probeSent = true;
      }
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(pr: Progress): boolean {
    if (!pr.recentActive) {
      // Do not ship a snapshot to a node we have not heard from lately.
      return false;
    }
    let snap: Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) return false;
      throw e;
    }
    if (snap.metadata.index === 0) throw new Error('raft: need a snapshot to send but the log has none');
    pr.becomeSnapshot(snap.metadata.index);
    this.logger.info(`${this.id} sends snapshot at index ${snap.metadata.index} to ${pr.id}`);
    this.send(makeMessage({ type: MessageType.Snap, to: pr.id, snapshot: snap }));
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  /**
   * Leader only: sends every follower one heartbeat carrying `context` (the application's quiesce
   * marker), if the group is idle: everything in the log committed and applied, every follower's
   * log equal to ours, no read, leadership transfer or membership change pending. Returns whether
   * it sent them. It is an ordinary heartbeat for the followers (safety is unchanged); the
   * application stops ticking an idle group after it (see the node layer's quiescing).
   */
  quiesceHeartbeats(context: Uint8Array): boolean {
    if (this.state !== StateType.Leader) return false;
    const last = this.raftLog.lastIndex();
    if (this.raftLog.committed !== last || this.raftLog.applied !== last) return false;
    if (this.leadTransferee !== NONE || this.pendingConfIndex > this.raftLog.applied) return false;
    if (this.readOnly.lastPendingContext() !== undefined || this.pendingReadIndexMessages.length > 0) return false;
    for (const [id, pr] of this.prs) {
      if (id !== this.id && pr.match !== last) return false;
    }
    for (const id of this.prs.keys()) {
      if (id !== this.id) this.send(makeMessage({ type: MessageType.Heartbeat, to: id, commit: last, context }));
    }
    return true;
  }

  private bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingContext();
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what we know it has.
      const commit = Math.min(pr.match, this.raftLog.committed);
      this.send(makeMessage({ type: MessageType.Heartbeat, to: id, commit, context: ctx ?? new Uint8Array(0) }));
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.rejectHintTerm > 0) nextProbe = this.raftLog.findConflictByTerm(m.rejectHint, m.rejectHintTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (m.index > this.raftLog.lastIndex()) {
      // A follower cannot hold entries of this term beyond our log; such an ack comes from a
      // confused peer (e.g. bootstrapped differently). Never let it move match past our log.
      this.logger.warn(`${this.id} ignored an ack for index ${m.index} from ${m.from}: beyond our last index ${this.raftLog.lastIndex()}`);
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      // A duplicate or stale ack; in Probe it still tells us the follower is listening.
      return;
    }
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        if (pr.match + 1 >= this.raftLog.firstIndex() || pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from);
    }
    // Fill the inflight window (bounded by maxInflightMsgs).
    while (this.sendAppend(m.from, false)) {
      // keep sending
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.logger.info(`${this.id} sends TimeoutNow to ${m.from}: it has caught up`);
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from);
    if (m.context.length === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (!acks) return;
    if (!isQuorum(this.voters, (id) => id === this.id || acks.has(id))) return;
    for (const rs of this.readOnly.advance(m.context)) this.releaseRead(rs.from, rs.index, rs.context);
  }

  private handleReadIndex(m: Message): void {
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      // A single voter is its own quorum.
      this.releaseRead(m.from, this.raftLog.committed, m.context);
      return;
    }
    if (!this.committedEntryInCurrentTerm()) {
      // Our commit index may be behind the previous leader's until our no-op commits.
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendReadIndexHeartbeats(m);
  }

  private sendReadIndexHeartbeats(m: Message): void {
    if (!this.readOnly.add(this.raftLog.committed, m.context, m.from)) return;
    // Our own ack; the quorum check happens on the followers' heartbeat replies, to the round
    // that flushBatched() sends for every request queued until the next Ready.
    this.readOnly.recvAck(this.id, m.context);
    this.readHeartbeatUnsent = true;
  }

  private releasePendingReadIndexMessages(): void {
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.sendReadIndexHeartbeats(m);
  }

  private releaseRead(from: NodeId, index: number, context: Uint8Array): void {
    if (from === this.id || from === NONE) {
      this.readStates.push({ index, requestContext: context });
    } else {
      this.send(makeMessage({ type: MessageType.ReadIndexResp, to: from, index, context }));
    }
  }

  private handleTransferLeader(m: Message): void {
    const target = m.index;
    const pr = this.prs.get(target);
    if (!pr || pr.isLearner) {
      this.logger.warn(`${this.id} ignores transfer to ${target}: not a voter`);
      return;
    }
    if (target === this.id) return;
    if (this.leadTransferee === target) return;
    this.abortLeaderTransfer();
    // The transfer must finish within an election timeout (checked in tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = target;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(makeMessage({ type: MessageType.TimeoutNow, to }));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }
}

function validateConfig(c: RaftConfig): void {
  if (!(Number.isInteger(c.id) && c.id > 0)) throw new RaftConfigError('id', `must be a positive integer, got ${c.id}`);
  if (!(Number.isInteger(c.heartbeatTicks) && c.heartbeatTicks > 0)) {
    throw new RaftConfigError('heartbeatTicks', `must be a positive integer, got ${c.heartbeatTicks}`);
  }
  if (!(Number.isInteger(c.electionTicks) && c.electionTicks > c.heartbeatTicks)) {
    throw new RaftConfigError('electionTicks', `must be an integer greater than heartbeatTicks (${c.heartbeatTicks}), got ${c.electionTicks}`);
  }
  if (c.maxInflightMsgs !== undefined && !(Number.isInteger(c.maxInflightMsgs) && c.maxInflightMsgs > 0)) {
    throw new RaftConfigError('maxInflightMsgs', `must be a positive integer, got ${c.maxInflightMsgs}`);
  }
  if (c.maxSizePerMsgBytes !== undefined && !(c.maxSizePerMsgBytes > 0)) {
    throw new RaftConfigError('maxSizePerMsgBytes', `must be positive, got ${c.maxSizePerMsgBytes}`);
  }
}

