// One simulated replica: a RawNode (its memory, lost on a crash) over a "disk" that survives
// crashes: the MemoryStorage (log, hard state, snapshot) and the application's state (applied
// index, running state hash, membership as of the applied index).
//
// The application follows the Ready contract of src/raft/raw-node.ts in three stages:
//   A. take:    rd = ready()
//   B. persist: install rd.snapshot (storage + app state reset to the snapshot's data),
//               append rd.entries, set rd.hardState — then hand rd.messages to the network;
//   C. apply:   apply rd.committedEntries in order (ConfChange -> applyConfChange, and the new
//               membership is stored); each apply updates the app state atomically with the
//               applied index; release rd.readStates; advance(rd).
// Stage B and each single apply of stage C are atomic "disk writes" (the simulator never crashes
// inside them). A Ready is either handled in one simulator step (A+B+C) or, in seeds that split
// Readies, in three steps, so that the core is stepped and ticked between ready() and advance()
// and a crash can fall after A (the Ready is lost, nothing persisted) or after B (persisted and
// sent, nothing applied).

import {
  ConfChange,
  ConfState,
  EMPTY_HARD_STATE,
  Entry,
  EntryType,
  HardState,
  MemoryStorage,
  Message,
  RawNode,
  Ready,
  Snapshot,
  decodeConfChange,
} from '../../src/raft';
import { SeededRng } from '../../src/raft/rng';
import { Checkers, HASH_SEED, LogView, Violation, hashApply } from './checkers';
import { SimProfile } from './profile';

/** The application's persisted state. Mutated only by atomic apply / snapshot-install steps. */
export interface AppState {
  applied: number;
  /** Running hash of every entry applied (see hashApply), or the one installed from a snapshot. */
  hash: number;
  confState: ConfState;
}

/** What a node needs from the cluster around it. */
export interface NodeHost {
  readonly checkers: Checkers;
  readonly profile: SimProfile;
  nodeRng(id: number, incarnation: number): SeededRng;
  send(from: SimNode, m: Message): void;
  onApplied(node: SimNode, e: Entry): void;
  onConfChangeApplied(node: SimNode, index: number, cc: ConfChange, cs: ConfState): void;
  onSnapshotInstalled(node: SimNode, index: number): void;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export function encodeAppSnapshot(index: number, hash: number): Uint8Array {
  return textEncoder.encode(JSON.stringify({ index, hash }));
}

export function decodeAppSnapshot(data: Uint8Array): { index: number; hash: number } {
  const v = JSON.parse(textDecoder.decode(data)) as { index?: unknown; hash?: unknown };
  if (typeof v.index !== 'number' || typeof v.hash !== 'number') throw new TypeError('bad app snapshot');
  return { index: v.index, hash: v.hash };
}

/** Read-index contexts are 4-byte big-endian request ids. */
export function encodeReadContext(id: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, id);
  return b;
}

export function decodeReadContext(ctx: Uint8Array): number {
  if (ctx.length !== 4) throw new Violation('read index', `read context of ${ctx.length} bytes released; the simulator sends 4`);
  return new DataView(ctx.buffer, ctx.byteOffset, 4).getUint32(0);
}

export class SimNode {
  readonly storage: MemoryStorage;
  app: AppState;
  persistedHardState: HardState = EMPTY_HARD_STATE;
  raw: RawNode | undefined;
  /** Bumped on every start; messages and transport reports carry it. */
  incarnation = 0;
  /** Removed from the group and stopped for good. */
  retired = false;
  /** Touched since its last Ready: may have a Ready. */
  dirty = false;
  /** Checker bookkeeping: commit index at the last observation, and the term last checked as leader. */
  lastObservedCommit = 0;
  /** The highest index observed committed on a quorum of disks while this node led (see Cluster.observe). */
  lastObservedLeaderCommit = 0;
  /** The last term this node led in (this incarnation), and its commit index then. */
  ledTerm = 0;
  ledCommit = 0;
  leaderTermChecked = 0;
  readonly tickSkipProbability: number;
  logView: LogView | undefined;

  private pending: Ready | undefined;
  /** 0: no Ready outstanding; 1: taken (stage A done); 2: persisted and sent (stage B done). */
  private stage: 0 | 1 | 2 = 0;
  private splitThisReady = false;

  constructor(
    readonly id: number,
    initialConf: ConfState,
    tickSkipProbability: number,
  ) {
    this.storage = new MemoryStorage(initialConf);
    this.app = { applied: 0, hash: HASH_SEED, confState: initialConf };
    this.tickSkipProbability = tickSkipProbability;
  }

  get up(): boolean {
    return this.raw !== undefined;
  }

  /** Starts (or restarts) the process from what is on disk. */
  start(host: NodeHost): void {
    if (this.raw) throw new Error(`node ${this.id} is already running`);
    if (this.retired) throw new Error(`node ${this.id} is retired`);
    this.incarnation++;
    const p = host.profile;
    this.storage.setConfState(this.app.confState);
    const raw = new RawNode({
      id: this.id,
      storage: this.storage,
      electionTicks: p.electionTicks,
      heartbeatTicks: p.heartbeatTicks,
      rng: host.nodeRng(this.id, this.incarnation),
      applied: this.app.applied,
      maxSizePerMsgBytes: p.maxSizePerMsgBytes,
      maxInflightMsgs: p.maxInflightMsgs,
      preVote: p.preVote,
      checkQuorum: p.checkQuorum,
      sendBeforePersist: p.sendBeforePersist,
    });
    this.raw = raw;
    this.pending = undefined;
    this.stage = 0;
    this.dirty = true;
    const log = raw.raft.raftLog;
    this.logView = {
      firstIndex: () => log.firstIndex(),
      lastIndex: () => log.lastIndex(),
      term: (i) => log.term(i),
      slice: (lo, hi) => log.slice(lo, hi, Number.MAX_SAFE_INTEGER),
    };
    host.checkers.durability.observeRestart(
      this.id,
      { commit: this.persistedHardState.commit, applied: this.app.applied },
      { commit: log.committed, applied: log.applied },
    );
    host.checkers.logMatching.forget(this.id);
    this.lastObservedCommit = log.committed;
    this.lastObservedLeaderCommit = log.committed;
    this.ledTerm = 0;
    this.ledCommit = 0;
    this.leaderTermChecked = 0;
  }

  /** Kills the process: memory (the RawNode and any Ready not yet persisted) is lost. */
  crash(): void {
    this.raw = undefined;
    this.logView = undefined;
    this.pending = undefined;
    this.stage = 0;
    this.dirty = false;
  }

  /**
   * The last index where this node's disk holds the same entry as its in-memory log (and so, by
   * log matching, the same prefix): its copy of the log that would survive a crash now.
   */
  stableAgreeIndex(): number {
    const view = this.logView;
    const s = this.storage;
    if (!view) return 0;
    const floor = s.firstIndex() - 1;
    for (let i = Math.min(s.lastIndex(), view.lastIndex()); i > floor; i--) {
      if (i >= view.firstIndex() && s.term(i) === view.term(i)) return i;
    }
    return floor;
  }

  /** Whether a Ready stage can run now. */
  hasWork(): boolean {
    const raw = this.raw;
    if (!raw) return false;
    if (this.stage !== 0) return true;
    if (!this.dirty) return false;
    if (raw.hasReady()) return true;
    this.dirty = false;
    return false;
  }

  readyOutstanding(): boolean {
    return this.stage !== 0;
  }

  /**
   * Runs the next Ready stage (or all three when `split` is false for a new Ready). Returns a
   * short description for traces.
   */
  runReadyStage(host: NodeHost, split: boolean): string {
    const raw = this.raw;
    if (!raw) throw new Error(`node ${this.id} is down`);
    this.dirty = true;
    if (this.stage === 0) {
      this.pending = raw.ready();
      this.stage = 1;
      // A leader's early messages leave as soon as the Ready is taken; a crash before the
      // persist stage below is the case they must survive.
      for (const m of this.pending.earlyMessages) {
        host.checkers.persistBeforeSpeak.observeEarlySend(this.id, m, this.persistedHardState, this.storage.lastIndex());
        host.send(this, m);
      }
      this.splitThisReady = split;
      if (split) return 'take';
    }
    const rd = this.pending as Ready;
    if (this.stage === 1) {
      this.persist(host, rd);
      this.stage = 2;
      if (this.splitThisReady) return 'persist';
    }
    this.apply(host, raw, rd);
    this.pending = undefined;
    this.stage = 0;
    return this.splitThisReady ? 'apply' : 'all';
  }

  private persist(host: NodeHost, rd: Ready): void {
    const c = host.checkers;
    if (rd.snapshot) this.installSnapshot(host, rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState) {
      c.durability.observePersistHardState(this.id, this.persistedHardState, rd.hardState);
      const last = this.storage.lastIndex();
      if (rd.hardState.commit > last) {
        throw new Violation('durability', `node ${this.id} persists commit ${rd.hardState.commit} beyond its stable log (last index ${last})`);
      }
      this.storage.setHardState(rd.hardState);
      this.persistedHardState = rd.hardState;
    }
    const pbs = host.checkers.persistBeforeSpeak;
    const stableLast = this.storage.lastIndex();
    const stableTerm = (i: number): number | undefined => this.storedTerm(i);
    for (const m of rd.messages) {
      pbs.observeSend(this.id, m, this.persistedHardState, stableLast, stableTerm);
      host.send(this, m);
    }
  }

  private installSnapshot(host: NodeHost, snap: Snapshot): void {
    const meta = snap.metadata;
    const data = decodeAppSnapshot(snap.data);
    if (data.index !== meta.index) {
      throw new Violation('state machine safety', `node ${this.id} got a snapshot whose metadata says index ${meta.index} but whose data is at ${data.index}`);
    }
    if (meta.index <= this.app.applied) {
      throw new Violation(
        'durability',
        `node ${this.id} was handed a snapshot at index ${meta.index} to install, which would take its applied index back from ${this.app.applied}`,
      );
    }
    host.checkers.stateMachine.observeSnapshotInstall(this.id, meta.index, meta.term, data.hash);
    this.storage.applySnapshot(snap);
    this.app = { applied: meta.index, hash: data.hash, confState: meta.confState };
    host.onSnapshotInstalled(this, meta.index);
  }

  private storedTerm(i: number): number | undefined {
    const s = this.storage;
    if (i < s.firstIndex() - 1) return undefined;
    if (i > s.lastIndex()) return -1;
    return s.term(i);
  }

  private apply(host: NodeHost, raw: RawNode, rd: Ready): void {
    const c = host.checkers;
    for (const e of rd.committedEntries) {
      c.durability.observeApplyOrder(this.id, this.app.applied, e.index);
      c.durability.observeApplyStable(this.id, e, this.storedTerm(e.index));
      let cc: ConfChange | undefined;
      if (e.type === EntryType.ConfChange) {
        cc = decodeConfChange(e.data);
        const cs = raw.applyConfChange(cc);
        this.storage.setConfState(cs);
        this.app.confState = cs;
      }
      this.app.hash = hashApply(this.app.hash, e);
      this.app.applied = e.index;
      c.stateMachine.observeApply(this.id, e, this.app.hash);
      if (cc) host.onConfChangeApplied(this, e.index, cc, this.app.confState);
      host.onApplied(this, e);
    }
    for (const rs of rd.readStates) c.reads.observeRelease(decodeReadContext(rs.requestContext), this.id, rs.index);
    for (const ctx of rd.droppedReads) c.reads.observeDrop(decodeReadContext(ctx));
    raw.advance(rd);
  }

  /**
   * The application snapshots its state at the applied index and compacts the log, keeping
   * `keepEntries` entries below it. Returns the snapshot index, or 0 if there was nothing to do.
   */
  snapshotAndCompact(keepEntries: number): number {
    if (!this.raw || this.stage !== 0) return 0;
    const applied = this.app.applied;
    if (applied <= this.storage.snapshot().metadata.index) return 0;
    this.storage.createSnapshot(applied, this.app.confState, encodeAppSnapshot(applied, this.app.hash));
    const compactIndex = applied - keepEntries;
    if (compactIndex >= this.storage.firstIndex()) this.storage.compact(compactIndex);
    return applied;
  }

  describe(): string {
    const cs = this.app.confState;
    const conf = `v[${cs.voters.join(',')}] l[${cs.learners.join(',')}]`;
    if (this.retired) return `n${this.id} retired applied=${this.app.applied}`;
    if (!this.raw) {
      return `n${this.id} DOWN term=${this.persistedHardState.term} commit=${this.persistedHardState.commit} applied=${this.app.applied} stable=[${this.storage.firstIndex()},${this.storage.lastIndex()}] ${conf}`;
    }
    const r = this.raw.raft;
    return (
      `n${this.id} ${r.state} term=${r.term} lead=${r.lead} vote=${r.vote} commit=${r.raftLog.committed} applied=${this.app.applied} ` +
      `log=[${r.raftLog.firstIndex()},${r.raftLog.lastIndex()}] stage=${this.stage} ${conf}`
    );
  }
}
