// The driver API of one replica: the application ticks it, steps messages into it, proposes, and
// drains `Ready`s. Contract of a Ready (see DESIGN.md, "persist before you speak"):
//
//   0. `earlyMessages` (empty unless the node was built with `sendBeforePersist`) may be sent at
//      once, before or while persisting;
//   1. persist `snapshot` (if any), then `entries`, then `hardState` — durably (fsync) when `mustSync`;
//   2. only then send `messages`;
//   3. apply `committedEntries` in order (and `applyConfChange` for ConfChange entries);
//   4. hand `readStates` to waiting readers once their index is applied;
//   5. call `advance(rd)`.

import { Raft, RaftConfig, Status } from './raft';
import {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  ReadState,
  Snapshot,
  SoftState,
  MessageType,
  StateType,
  hardStateEqual,
  isEmptyHardState,
  isLocalMessage,
} from './types';

export interface Ready {
  /** Present when leader or role changed since the last Ready. Not persisted. */
  readonly softState?: SoftState;
  /** Present when term, vote or commit changed: persist it. */
  readonly hardState?: HardState;
  /** Entries to append to stable storage (may overwrite a conflicting suffix). */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to persist (replacing the log) before the entries. */
  readonly snapshot?: Snapshot;
  /** Entries known committed, to apply in order. All of them are already in stable storage. */
  readonly committedEntries: readonly Entry[];
  /** Messages to send once everything above is persisted. */
  readonly messages: readonly Message[];
  /**
   * A leader's appends and heartbeats that may leave before this Ready is persisted, so that
   * followers write to their disks while the leader writes to its own (Raft thesis §10.2.1).
   * Safe because they vouch for nothing unpersisted: the leader counts its own copy toward
   * commit from the moment it appends, but these are released only when the commit index
   * (which every one of them carries) covers no entry that is not yet on the leader's disk, and
   * the term and vote are unchanged. Empty unless `sendBeforePersist` is on.
   */
  readonly earlyMessages: readonly Message[];
  /** Read-index requests released: read at `index` once applied >= index. */
  readonly readStates: readonly ReadState[];
  /** Contexts of read-index requests this node gave up on (it lost leadership): retry them. */
  readonly droppedReads: readonly Uint8Array[];
  /** True when the hard state or entries must be fsynced (false: nothing durable changed). */
  readonly mustSync: boolean;
}

export interface ProposalPosition {
  readonly index: number;
  readonly term: number;
}

export interface RawNodeConfig extends RaftConfig {
  /** Hand a leader's appends and heartbeats out as `Ready.earlyMessages` when safe. Default false. */
  readonly sendBeforePersist?: boolean;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private awaitingAdvance = false;
  private readonly sendBeforePersist: boolean;

  constructor(config: RawNodeConfig) {
    this.sendBeforePersist = config.sendBeforePersist ?? false;
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /** Advances logical time by one tick (election and heartbeat timers count ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (pre-vote first when enabled). */
  campaign(): void {
    this.raft.campaign();
  }

  /**
   * Appends a command to the leader's log and returns where it landed. The entry is committed only
   * if an entry with the same index *and* term is later applied. Throws `NotLeaderError` (with
   * the known leader's id) on a non-leader and `ProposalDroppedError` during a leadership transfer.
   */
  propose(data: Uint8Array): ProposalPosition {
    return this.raft.propose(data);
  }

  /** Proposes one membership change. Throws `ConfChangeRefusedError` if it would be unsafe now. */
  proposeConfChange(cc: ConfChange): ProposalPosition {
    return this.raft.proposeConfChange(cc);
  }

  /** Applies a committed ConfChange entry; call it when the entry is applied. Returns the new membership. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Delivers a message from a peer. Local message types are refused. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) {
      throw new TypeError(`step: ${m.type} is a local message and cannot come from the network`);
    }
    this.raft.step(m);
  }

  /**
   * Requests a linearizable read point. The answer arrives as a `ReadState` with the same context
   * in a later Ready. Throws `NotLeaderError` when no leader is known.
   */
  /** See Raft.quiesceHeartbeats: an idle leader's last heartbeat round, carrying `context`. */
  quiesceHeartbeats(context: Uint8Array): boolean {
    return this.raft.quiesceHeartbeats(context);
  }

  readIndex(requestContext: Uint8Array): void {
    this.raft.readIndex(requestContext);
  }

  /** Asks the leader to hand leadership to `target` (catch it up, then tell it to campaign). */
  transferLeader(target: number): void {
    this.raft.transferLeader(target);
  }

  reportUnreachable(id: number): void {
    this.raft.reportUnreachable(id);
  }

  reportSnapshot(id: number, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  /** Full status, with every follower's progress on a leader (allocates: not for hot paths). */
  status(): Status {
    return this.raft.status();
  }

  /** Role and known leader, without allocating (for per-request checks). */
  basicStatus(): { readonly state: StateType; readonly leader: number; readonly term: number } {
    return { state: this.raft.state, leader: this.raft.lead, term: this.raft.term };
  }

  hasReady(): boolean {
    const r = this.raft;
    if (!softStateEqual(r.softState(), this.prevSoftState)) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.hasBatched() || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextCommittedEntries()) return true;
    if (r.readStates.length > 0 || r.droppedReads.length > 0) return true;
    return false;
  }

  /**
   * Everything the application must do next. Each ready() must be followed by advance() of that
   * Ready before the next ready(); step() and tick() may be called in between.
   */
  ready(): Ready {
    if (this.awaitingAdvance) throw new Error('raw node: ready() called again before advance() of the previous Ready');
    this.awaitingAdvance = true;
    const r = this.raft;
    r.flushBatched();
    const soft = r.softState();
    const hs = r.hardState();
    const entries = r.raftLog.unstableEntries();
    const snapshot = r.raftLog.pendingSnapshot();
    const hardChanged = !hardStateEqual(hs, this.prevHardState);
    let messages = r.msgs;
    let earlyMessages: Message[] = [];
    if (
      this.sendBeforePersist &&
      r.state === StateType.Leader &&
      snapshot === undefined &&
      hs.term === this.prevHardState.term &&
      hs.vote === this.prevHardState.vote &&
      // The last index already on disk: the unstable tail starts after it.
      hs.commit < r.raftLog.unstable.offset
    ) {
      messages = [];
      for (const m of r.msgs) {
        if (m.type === MessageType.App || m.type === MessageType.Heartbeat) earlyMessages.push(m);
        else messages.push(m);
      }
    }
    const rd: Ready = {
      softState: softStateEqual(soft, this.prevSoftState) ? undefined : soft,
      hardState: hardChanged ? hs : undefined,
      entries,
      snapshot,
      committedEntries: r.raftLog.nextCommittedEntries(),
      messages,
      earlyMessages,
      readStates: r.readStates,
      droppedReads: r.droppedReads,
      mustSync:
        entries.length > 0 || snapshot !== undefined || hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote,
    };
    // Messages and read states are handed over exactly once.
    r.msgs = [];
    r.readStates = [];
    r.droppedReads = [];
    if (rd.softState) this.prevSoftState = rd.softState;
    return rd;
  }

  /** Acknowledges that a Ready from ready() was persisted, sent and applied. */
  advance(rd: Ready): void {
    const r = this.raft;
    if (rd.hardState) this.prevHardState = rd.hardState;
    if (rd.snapshot) {
      r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
      // The application installed the snapshot's state: it is applied.
      r.raftLog.applied = Math.max(r.raftLog.applied, rd.snapshot.metadata.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1] as Entry;
      r.raftLog.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      const last = rd.committedEntries[rd.committedEntries.length - 1] as Entry;
      r.raftLog.appliedTo(last.index);
    }
    this.awaitingAdvance = false;
  }
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.state === b.state;
}

