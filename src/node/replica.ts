// One replica of one range on this node: its Raft state machine, its persisted log, its KV state
// machine, and the callers waiting on its proposals and reads. The Node drives it; a Replica
// never does I/O on its own initiative.

import { randomBytes } from 'node:crypto';
import {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  NotLeaderError,
  RaftLogger,
  RawNode,
  Ready,
  SeededRng,
  Snapshot,
  StateType,
  decodeConfChange,
} from '../raft';
import { CorruptDataError, Engine, RaftLogStorage, WriteBatch } from '../storage';
import { rangeDescriptorKey } from '../storage/keys';
import { DbSnapshot, installStagedSnapshot, snapshotPayload, stageInstallDone } from './snapshot';
import {
  Command,
  CommandResult,
  CommandStatus,
  ENTRY_KIND_KV,
  ENTRY_KIND_SPLIT,
  SplitCommand,
  decodeCommand,
  decodeSplit,
  encodeCommand,
  encodeSplit,
} from './command';
import { KvStateMachine, RangeBounds, keyInRange } from './kv-state-machine';
import { SnapshotPayloadUnavailableError } from '../transport/errors';
import { ProposalLostError, ReadIndexDroppedError, ReadTimeoutError } from './errors';

/** The persisted form of a range's descriptor (its rangeDescriptorKey record, and a Raft snapshot's data). */
export interface StoredDescriptor {
  readonly rangeId: number;
  readonly startHex: string;
  readonly endHex: string;
  readonly epochVersion: number;
  readonly confVersion?: number;
}

export function encodeDescriptor(rangeId: number, b: RangeBounds): Buffer {
  const d: StoredDescriptor = {
    rangeId,
    startHex: Buffer.from(b.start).toString('hex'),
    endHex: Buffer.from(b.end).toString('hex'),
    epochVersion: b.epochVersion,
    confVersion: b.confVersion,
  };
  return Buffer.from(JSON.stringify(d));
}

/** The bounds and epoch a stored descriptor describes. */
export function boundsOf(d: StoredDescriptor): RangeBounds {
  return {
    start: Buffer.from(d.startHex, 'hex'),
    end: Buffer.from(d.endHex, 'hex'),
    epochVersion: d.epochVersion,
    confVersion: d.confVersion ?? 0,
  };
}

/**
 * The bounds of a replica that has no descriptor yet (created for a leader's message, waiting for
 * a snapshot or for the split that creates it): they contain no key, so it never serves one.
 */
export const NO_BOUNDS: RangeBounds = { start: Buffer.from([0]), end: Buffer.from([0]), epochVersion: 0, confVersion: 0 };

/** Whether two ranges share a key. */
export function boundsOverlap(a: RangeBounds, b: RangeBounds): boolean {
  const endsAfter = (end: Uint8Array, key: Uint8Array): boolean => end.length === 0 || Buffer.compare(key, end) < 0;
  if (Buffer.compare(a.start, a.end) === 0 && a.end.length > 0) return false; // empty
  if (Buffer.compare(b.start, b.end) === 0 && b.end.length > 0) return false;
  return endsAfter(a.end, b.start) && endsAfter(b.end, a.start);
}

/** The right side of a split, as the parent's replica hands it to the node at apply. */
export interface SplitRight {
  readonly rangeId: number;
  readonly bounds: RangeBounds;
  /** The parent's membership at the split: the new range starts with the same replicas. */
  readonly confState: ConfState;
  /** The parent's log index of the split entry. */
  readonly splitIndex: number;
  /** The parent range (the left side). */
  readonly parentId: number;
}

/** The descriptor a Raft snapshot of range `rangeId` carries as its data. */
export function snapshotDescriptor(rangeId: number, data: Uint8Array): StoredDescriptor {
  let d: StoredDescriptor;
  try {
    d = JSON.parse(Buffer.from(data).toString('utf8')) as StoredDescriptor;
  } catch (err) {
    throw new CorruptDataError(`range ${rangeId} snapshot`, `its descriptor is not valid JSON: ${(err as Error).message}`);
  }
  if (d.rangeId !== rangeId) throw new CorruptDataError(`range ${rangeId} snapshot`, `it carries the descriptor of range ${d.rangeId}`);
  return d;
}

export interface ReplicaConfig {
  readonly rangeId: number;
  readonly nodeId: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Seed for election jitter; each replica gets its own. */
  readonly seed: number;
  readonly logger?: RaftLogger;
  /** Take a snapshot and compact once this many applied entries are in the log. */
  readonly snapshotEveryEntries: number;
  /** Keep this many entries behind the snapshot for slightly lagging followers. */
  readonly compactionSlackEntries: number;
  /** Called when a membership change is applied, to stage node-level records with it. */
  readonly onConfChange?: (batch: WriteBatch, cc: ConfChange) => void;
  /**
   * Called when a split applies, after the left side's new descriptor is staged: the node stages
   * the right side's initial state (descriptor, Raft state, sessions) into the same batch.
   */
  readonly onSplit?: (batch: WriteBatch, parent: Replica, right: SplitRight) => void;
  /** Throws if a snapshot with these bounds may not be installed here (it overlaps another range). */
  readonly checkInstall?: (rangeId: number, bounds: RangeBounds) => void;
  /** Stages node-level records with a snapshot install (the node drops a tombstone of the range). */
  readonly onInstall?: (batch: WriteBatch, rangeId: number) => void;
  /** False for a replica without a descriptor yet: it serves nothing until a snapshot or split initializes it. */
  readonly initialized: boolean;
}

interface ProposalWaiter {
  readonly term: number;
  /** `result` is absent for membership changes. */
  readonly resolve: (r: { result: CommandResult | undefined; index: number }) => void;
  readonly reject: (e: Error) => void;
}

interface ReadCaller {
  readonly resolve: (appliedIndex: number) => void;
  readonly reject: (e: Error) => void;
  /** When the caller arrived (ms since epoch): retried rounds keep it, so waits are measured whole. */
  readonly arrivedAtMs: number;
}

/**
 * One ReadIndex request to Raft on behalf of every caller that arrived before it was issued
 * (read batching, as etcd does): one heartbeat round confirms leadership for all of them.
 */
interface ReadRound {
  readonly ctx: string;
  callers: readonly ReadCaller[];
  /** When the round was issued (ms since epoch): a round whose answer never came is dropped eventually. */
  readonly startedAtMs: number;
  /** Set once the read index is known. */
  index?: number;
  /** Whether a slow-read warning was logged for it already. */
  reportedSlow?: boolean;
}

export class Replica {
  readonly rawNode: RawNode;
  private readonly proposals = new Map<number, ProposalWaiter>();
  /** Callers waiting for the next round (they arrived after the current one was issued). */
  private queuedReads: ReadCaller[] = [];
  /** Rounds issued and not yet released, by context. */
  private readonly readRounds = new Map<string, ReadRound>();
  /** The round whose read index has not arrived yet; at most one at a time. */
  private roundInFlight: ReadRound | undefined;
  private readSeq = 0;
  private readonly incarnation = randomBytes(6).toString('hex');
  appliedIndex: number;
  confState: ConfState;
  /** This node applied its own removal from the range: the node destroys the replica after the turn. */
  removedSelf = false;
  /** Whether the replica has a descriptor (see ReplicaConfig.initialized). */
  initialized: boolean;
  /** Reads served from this replica (counted by the api layer; reported to placement as load). */
  readsServed = 0;
  /** Not ticked (and its leader sends no heartbeats) until a message, proposal or read wakes it. */
  quiesced = false;
  /** The leader when the range went quiet (this node, or the one whose liveness it watches). */
  quiescedLeader = 0;
  /** Ticks since the range last did anything but heartbeat (the node quiesces it after a while). */
  idleTicks = 0;
  /** When this replica last heard from (or was) its leader, ms: a long silence makes it a GC candidate. */
  lastLeaderContactMs = Date.now();

  /** The LevelDB read view that outgoing snapshot payloads stream from, and its Raft snapshot index. */
  private snapHandle: SnapshotHandle | undefined;
  /** A payload was asked for a snapshot we cannot stream: prepare a fresh one. */
  private freshSnapshotWanted = false;

  constructor(
    readonly config: ReplicaConfig,
    readonly storage: RaftLogStorage,
    readonly sm: KvStateMachine,
    private readonly engine: Engine,
  ) {
    this.initialized = config.initialized;
    const applied = storage.appliedState();
    this.appliedIndex = applied.applied;
    this.confState = applied.confState;
    this.rawNode = new RawNode({
      id: config.nodeId,
      storage,
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      rng: new SeededRng(config.seed),
      applied: applied.applied,
      logger: config.logger,
      // The ready loop sends a leader's appends while its own write is in flight.
      sendBeforePersist: true,
    });
  }

  get rangeId(): number {
    return this.config.rangeId;
  }

  isLeader(): boolean {
    return this.rawNode.basicStatus().state === StateType.Leader;
  }

  /** Proposes a command; resolves with its result once applied here. */
  propose(cmd: Command): Promise<{ result: CommandResult; index: number }> {
    const pos = this.rawNode.propose(encodeCommand(cmd)); // throws NotLeaderError / ProposalDroppedError
    return new Promise((resolve, reject) => {
      this.proposals.set(pos.index, {
        term: pos.term,
        resolve: (r) => resolve({ result: r.result as CommandResult, index: r.index }),
        reject,
      });
    });
  }

  /** Proposes a split of the range; resolves once applied here (its status says whether it took effect). */
  proposeSplit(s: SplitCommand): Promise<CommandResult> {
    const pos = this.rawNode.propose(encodeSplit(s)); // throws NotLeaderError / ProposalDroppedError
    return new Promise((resolve, reject) => {
      this.proposals.set(pos.index, { term: pos.term, resolve: (r) => resolve(r.result as CommandResult), reject });
    });
  }

  /** Proposes a membership change; resolves with the new membership once applied here. */
  proposeConfChange(cc: ConfChange): Promise<ConfState> {
    const pos = this.rawNode.proposeConfChange(cc); // throws NotLeaderError / ConfChangeRefusedError
    return new Promise((resolve, reject) => {
      this.proposals.set(pos.index, { term: pos.term, resolve: () => resolve(this.confState), reject });
    });
  }

  /**
   * Linearizable read barrier: resolves with an applied index at or past the read index once it
   * is safe to read local state.
   */
  readBarrier(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.queuedReads.push({ resolve, reject, arrivedAtMs: Date.now() });
      this.maybeStartReadRound();
    });
  }

  /**
   * Issues one ReadIndex for every queued caller, unless a round is in flight: callers that came
   * after a round was issued must wait for the next one (its index is taken after they arrived).
   */
  private maybeStartReadRound(): void {
    if (this.roundInFlight || this.queuedReads.length === 0) return;
    const callers = this.queuedReads;
    this.queuedReads = [];
    // Unique across restarts too: a leader ignores a context it already has pending.
    const ctx = `${this.config.nodeId}:${this.incarnation}:${++this.readSeq}`;
    try {
      this.rawNode.readIndex(Buffer.from(ctx)); // throws NotLeaderError when no leader is known
    } catch (err) {
      for (const c of callers) c.reject(err as Error);
      return;
    }
    const round: ReadRound = { ctx, callers, startedAtMs: Date.now() };
    this.readRounds.set(ctx, round);
    this.roundInFlight = round;
  }

  private endRound(round: ReadRound, err: Error | undefined): void {
    this.readRounds.delete(round.ctx);
    if (this.roundInFlight === round) this.roundInFlight = undefined;
    if (err) for (const c of round.callers) c.reject(err);
  }

  /** Stages what the Ready says to persist. */
  async stagePersist(batch: WriteBatch, rd: Ready): Promise<void> {
    if (rd.snapshot) {
      // Reads stay off the live data until the batch holding the Raft snapshot is written.
      this.sm.installing = true;
      const newBounds = boundsOf(snapshotDescriptor(this.rangeId, rd.snapshot.data));
      // Checked when the message arrived too; a range created here since would be a bug.
      this.config.checkInstall?.(this.rangeId, newBounds);
      const installed = await installStagedSnapshot(
        this.engine,
        this.rangeId,
        rd.snapshot,
        this.initialized ? this.sm.bounds : undefined,
        newBounds,
      );
      this.storage.stageApplySnapshot(batch, rd.snapshot);
      this.config.onInstall?.(batch, this.rangeId);
      this.sm.bounds = newBounds;
      this.initialized = true;
      batch.put(rangeDescriptorKey(this.rangeId), encodeDescriptor(this.rangeId, this.sm.bounds));
      await stageInstallDone(this.engine, batch, this.rangeId, rd.snapshot.metadata.index);
      this.sm.resetSessions(installed.sessionRecords);
      this.sm.keyCount = installed.keys;
      this.appliedIndex = rd.snapshot.metadata.index;
      this.confState = rd.snapshot.metadata.confState;
      // Proposals at or below the snapshot can no longer be matched to their entries.
      this.failProposalsUpTo(rd.snapshot.metadata.index);
    }
    this.storage.stageAppend(batch, rd.entries);
    if (rd.hardState) this.storage.stageHardState(batch, rd.hardState);
  }

  /**
   * Applies committed entries, staging the data, the sessions and the applied index into one
   * batch. Returns callbacks to run once that batch is written.
   */
  stageApply(batch: WriteBatch, entries: readonly Entry[]): Array<() => void> {
    const done: Array<() => void> = [];
    if (!this.initialized && entries.length > 0) {
      // Its log starts behind a snapshot that it has not received: nothing can be applied yet.
      throw new CorruptDataError(`range ${this.rangeId}`, `an uninitialized replica was handed entry ${entries[0]?.index} to apply`);
    }
    for (const e of entries) {
      if (e.index <= this.appliedIndex) continue; // already applied before a restart
      let result: CommandResult | undefined;
      let isConf = false;
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        this.confState = this.rawNode.applyConfChange(cc);
        this.config.onConfChange?.(batch, cc);
        this.sm.bounds = { ...this.sm.bounds, confVersion: this.sm.bounds.confVersion + 1 };
        batch.put(rangeDescriptorKey(this.rangeId), encodeDescriptor(this.rangeId, this.sm.bounds));
        if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.config.nodeId) this.removedSelf = true;
        isConf = true;
      } else if (e.data.length > 0 && e.data[0] === ENTRY_KIND_KV) {
        result = this.sm.apply(batch, e.index, decodeCommand(e.data));
      } else if (e.data.length > 0 && e.data[0] === ENTRY_KIND_SPLIT) {
        result = this.applySplit(batch, e.index, decodeSplit(e.data));
      }
      this.appliedIndex = e.index;
      const w = this.proposals.get(e.index);
      if (w) {
        this.proposals.delete(e.index);
        if (w.term === e.term && (result || isConf)) {
          const r = result;
          done.push(() => w.resolve({ result: r, index: e.index }));
        } else {
          done.push(() => w.reject(new ProposalLostError(this.rangeId, e.index)));
        }
      }
    }
    if (entries.length > 0) {
      this.sm.flushSessions(batch);
      this.storage.stageApplyState(batch, this.appliedIndex, this.confState);
    }
    return done;
  }

  /**
   * Applies a split: the range keeps [start, splitKey) and the node creates [splitKey, end) as
   * range `newRangeId` with the same replicas, both at version + 1. Refused (nothing changes) when
   * the range's epoch moved since the split was decided or the key is not strictly inside it.
   */
  private applySplit(batch: WriteBatch, index: number, s: SplitCommand): CommandResult {
    const b = this.sm.bounds;
    if (s.epochVersion !== b.epochVersion) return { status: CommandStatus.EpochNotMatch, results: [] };
    if (Buffer.compare(s.splitKey, b.start) <= 0 || !keyInRange(s.splitKey, b)) return { status: CommandStatus.KeyNotInRange, results: [] };
    this.sm.flushSessions(batch);
    const version = b.epochVersion + 1;
    const left: RangeBounds = { ...b, end: Buffer.from(s.splitKey), epochVersion: version };
    const right: RangeBounds = { start: Buffer.from(s.splitKey), end: Buffer.from(b.end), epochVersion: version, confVersion: b.confVersion };
    this.sm.bounds = left;
    batch.put(rangeDescriptorKey(this.rangeId), encodeDescriptor(this.rangeId, left));
    this.config.onSplit?.(batch, this, { rangeId: s.newRangeId, bounds: right, confState: this.confState, splitIndex: index, parentId: this.rangeId });
    return { status: CommandStatus.Ok, results: [] };
  }

  /** After the Ready's batches are written: release reads and drop dead waiters. */
  afterReady(rd: Ready): void {
    for (const rs of rd.readStates) {
      const round = this.readRounds.get(Buffer.from(rs.requestContext).toString());
      if (!round) continue;
      round.index = rs.index;
      if (this.roundInFlight === round) this.roundInFlight = undefined;
    }
    for (const ctx of rd.droppedReads) {
      const round = this.readRounds.get(Buffer.from(ctx).toString());
      if (round) this.endRound(round, new ReadIndexDroppedError(this.rangeId));
    }
    if (rd.softState && rd.softState.state !== StateType.Leader && rd.softState.leader === 0) {
      // A round forwarded to a leader we lost contact with may never be answered.
      if (this.roundInFlight) this.endRound(this.roundInFlight, new NotLeaderError(0, this.rawNode.status().term));
    }
    this.releaseReads();
    this.maybeStartReadRound();
  }

  private releaseReads(): void {
    for (const round of this.readRounds.values()) {
      if (round.index !== undefined && this.appliedIndex >= round.index) {
        this.endRound(round, undefined);
        for (const c of round.callers) c.resolve(this.appliedIndex);
      }
    }
  }

  /** Whether proposals wait to be applied here. */
  hasPendingProposals(): boolean {
    return this.proposals.size > 0;
  }

  /** Number of reads waiting (for bounds and status). */
  pendingReads(): number {
    let n = this.queuedReads.length;
    for (const r of this.readRounds.values()) n += r.callers.length;
    return n;
  }

  /**
   * Read rounds whose oldest caller has waited longer than `afterMs` (each round reported once,
   * counted from the callers' arrival, not from a retry): with the replica's Raft state, so that
   * a read that never completes says why in the log.
   */
  slowReads(nowMs: number, afterMs: number): Array<{ waitingMs: number; callers: number; readIndex: number | undefined }> {
    const out: Array<{ waitingMs: number; callers: number; readIndex: number | undefined }> = [];
    for (const round of this.readRounds.values()) {
      const waitingMs = nowMs - oldestArrival(round.callers, round.startedAtMs);
      if (round.reportedSlow || waitingMs <= afterMs) continue;
      round.reportedSlow = true;
      out.push({ waitingMs, callers: round.callers.length, readIndex: round.index });
    }
    return out;
  }

  /**
   * Refuses the reads that have waited longer than `limitMs` since they arrived, with
   * ReadTimeoutError: this replica cannot serve them now (no read index came back, or its applied
   * state does not reach the read index), and the client should try another replica rather than
   * spend its whole deadline here. Returns how many were refused.
   */
  expireReads(nowMs: number, limitMs: number): number {
    let refused = 0;
    const expired = (c: ReadCaller): boolean => nowMs - c.arrivedAtMs > limitMs;
    const refuse = (c: ReadCaller, readIndex: number | undefined): void => {
      refused++;
      c.reject(new ReadTimeoutError(this.rangeId, nowMs - c.arrivedAtMs, readIndex, this.appliedIndex));
    };
    const keep: ReadCaller[] = [];
    for (const c of this.queuedReads) if (expired(c)) refuse(c, undefined); else keep.push(c);
    this.queuedReads = keep;
    for (const round of [...this.readRounds.values()]) {
      if (!round.callers.some(expired)) continue;
      const left: ReadCaller[] = [];
      for (const c of round.callers) if (expired(c)) refuse(c, round.index); else left.push(c);
      round.callers = left;
      // A round nobody waits for any more is forgotten (a late answer to it is ignored).
      if (left.length === 0) this.endRound(round, undefined);
    }
    if (refused > 0) this.maybeStartReadRound();
    return refused;
  }

  /**
   * Re-issues a round whose read index has not arrived within `retryAfterMs` (the request or its
   * answer was lost on the way to or from the leader). Its callers keep waiting: any read index
   * taken later is still after they arrived. Their own deadlines bound the wait.
   */
  retryStalledReads(nowMs: number, retryAfterMs: number): void {
    const r = this.roundInFlight;
    if (!r || nowMs - r.startedAtMs <= retryAfterMs) return;
    this.endRound(r, undefined);
    this.queuedReads = [...r.callers, ...this.queuedReads];
    this.maybeStartReadRound();
  }

  private failProposalsUpTo(index: number): void {
    for (const [i, w] of this.proposals) {
      if (i <= index) {
        this.proposals.delete(i);
        w.reject(new ProposalLostError(this.rangeId, i));
      }
    }
  }

  /** The persist batch of the turn is written: an installed snapshot's data may be read. */
  afterPersist(): void {
    this.sm.installing = false;
  }

  /** Asks for a snapshot of the current applied state at the next chance (an older one was refused). */
  wantFreshSnapshot(): void {
    this.freshSnapshotWanted = true;
  }

  /** Whether to take a snapshot now: the log grew enough, or a payload was asked for one we lack. */
  wantsSnapshot(): boolean {
    const snapIndex = this.storage.snapshot().metadata.index;
    return this.freshSnapshotWanted || this.appliedIndex - snapIndex >= this.config.snapshotEveryEntries;
  }

  /**
   * Snapshots the applied state and compacts the log, keeping some slack for lagging followers.
   * Call it only when the database holds exactly the applied state (between ready-loop turns):
   * the payload of this snapshot will be read from a LevelDB view taken here.
   */
  snapshotAndCompact(batch: WriteBatch): void {
    this.freshSnapshotWanted = false;
    if (this.appliedIndex > this.storage.snapshot().metadata.index) {
      this.storage.stageCreateSnapshot(batch, this.appliedIndex, this.confState, this.descriptorBytes());
      const compactTo = this.appliedIndex - this.config.compactionSlackEntries;
      if (compactTo >= this.storage.firstIndex()) this.storage.stageCompact(batch, compactTo);
    }
    this.takeSnapshotView();
  }

  /** The Raft snapshot's own data: the range descriptor (the payload travels separately). */
  private descriptorBytes(): Buffer {
    return encodeDescriptor(this.rangeId, this.sm.bounds);
  }

  /**
   * At open (the database holds exactly the applied state): a view for the stored Raft snapshot
   * if nothing was applied since, else ask the loop for a fresh snapshot.
   */
  prepareSnapshotViewAtOpen(): void {
    const index = this.storage.snapshot().metadata.index;
    if (index === 0) return;
    if (this.appliedIndex === index) this.takeSnapshotView();
    else this.freshSnapshotWanted = true;
  }

  /** Takes a LevelDB view for the current Raft snapshot; the previous view closes once its readers finish. */
  takeSnapshotView(): void {
    const index = this.storage.snapshot().metadata.index;
    if (index === 0 || this.snapHandle?.index === index) return;
    const old = this.snapHandle;
    if (old) old.retired = true;
    // The bounds are captured with the view: a split applied later must not change what this
    // snapshot's payload holds (its descriptor, in the Raft snapshot, has these bounds).
    this.snapHandle = { index, view: this.engine.db.snapshot(), bounds: this.sm.bounds, readers: 0, retired: false };
    // Payloads still streaming from the old view keep it open; the last one closes it.
    if (old && old.readers === 0) old.view.close().catch(() => undefined);
  }

  /** The payload of the Raft snapshot `snap`, streamed from the view taken when it was created. */
  snapshotPayload(snap: Snapshot, chunkBytes: number): AsyncIterable<Buffer> {
    const h = this.snapHandle;
    if (!h || h.index !== snap.metadata.index) {
      this.freshSnapshotWanted = true;
      throw new SnapshotPayloadUnavailableError(this.rangeId, snap.metadata.index);
    }
    return new PayloadReader(h, snapshotPayload(this.engine, h.view, this.rangeId, h.bounds, chunkBytes));
  }

  /** Fails every waiter (shutdown). */
  close(err: Error): void {
    for (const w of this.proposals.values()) w.reject(err);
    this.proposals.clear();
    if (this.snapHandle) {
      this.snapHandle.retired = true;
      if (this.snapHandle.readers === 0) this.snapHandle.view.close().catch(() => undefined);
    }
    this.snapHandle = undefined;
    for (const r of [...this.readRounds.values()]) this.endRound(r, err);
    for (const c of this.queuedReads) c.reject(err);
    this.queuedReads = [];
  }
}

/** A LevelDB read view for the payload of one Raft snapshot, and the payload streams reading it. */
interface SnapshotHandle {
  readonly index: number;
  readonly view: DbSnapshot;
  readonly bounds: RangeBounds;
  readers: number;
  /** A newer view replaced it: it closes when its last reader finishes. */
  retired: boolean;
}

/**
 * A payload stream counted as a reader of `h` from its creation (not from its first read: a newer
 * snapshot retiring `h` in between must not close the view under it) until it ends, fails or is
 * abandoned through `return()`; the last reader of a retired view closes it.
 */
class PayloadReader implements AsyncIterableIterator<Buffer> {
  private released = false;

  constructor(
    private readonly h: SnapshotHandle,
    private readonly inner: AsyncGenerator<Buffer>,
  ) {
    h.readers++;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this;
  }

  async next(): Promise<IteratorResult<Buffer>> {
    if (this.released) return { done: true, value: undefined };
    try {
      const r = await this.inner.next();
      if (r.done) this.release();
      return r;
    } catch (err) {
      this.release();
      throw err;
    }
  }

  async return(): Promise<IteratorResult<Buffer>> {
    if (!this.released) {
      try {
        await this.inner.return(undefined);
      } finally {
        this.release();
      }
    }
    return { done: true, value: undefined };
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.h.readers--;
    if (this.h.retired && this.h.readers === 0) this.h.view.close().catch(() => undefined);
  }
}

/** When the longest-waiting caller arrived (`fallback` for a round with no callers). */
function oldestArrival(callers: readonly ReadCaller[], fallback: number): number {
  let t = fallback;
  for (const c of callers) if (c.arrivedAtMs < t) t = c.arrivedAtMs;
  return t;
}
