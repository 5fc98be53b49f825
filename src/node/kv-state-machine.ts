// The replicated KV state machine of one range: applies committed commands to the node's shared
// data keyspace and remembers each client's recent results, so a retried write is answered with
// its first result instead of being applied twice.
//
// Determinism: the outcome of applying an entry depends only on the log (and the state it was
// applied to). Time comes from the proposing leader's timestamp inside each command, never from
// this replica's clock, so every replica expires the same sessions at the same index.
//
// Exactly-once: each write carries `answeredBelow`, the client's promise that every lower sequence
// was answered; the range then forgets those results (Raft dissertation §6.3), so a client may
// pipeline writes freely. `sessionWindow` is only a hard cap per client against misbehaving
// clients. A client never retries a write after its deadline, which is far shorter than
// `sessionTtlMs`. A write whose sequence was forgotten is refused as SequenceTooOld (the client
// reports it as indeterminate).

import { CorruptDataError, Engine, WriteBatch } from '../storage';
import { openRecord, sealRecord } from '../storage/codec';
import { readU64, writeU64 } from '../storage/keys';
import { dataKey, dataKeyRange, dataPrefixOf, sessionKey, sessionKeyRange, sessionResultKey, userKeyOf } from '../storage/keys';
import { SnapshotInstallingError } from './errors';
import {
  Command,
  CommandResult,
  CommandStatus,
  OpKind,
  OpResult,
  decodeResult,
  encodeResult,
} from './command';

export interface RangeBounds {
  /** Inclusive start; empty = start of the keyspace. */
  readonly start: Uint8Array;
  /** Exclusive end; empty = end of the keyspace. */
  readonly end: Uint8Array;
  readonly epochVersion: number;
  /** Bumped by every membership change applied (the descriptor's epoch.conf_version). */
  readonly confVersion: number;
}

export interface StateMachineOptions {
  /** Hard cap on results remembered per client (a client's unanswered writes). Default 4096. */
  readonly sessionWindow?: number;
  /** A client session idle this long (by leader timestamps) is forgotten. Default 10 minutes. */
  readonly sessionTtlMs?: number;
  /** Sessions are swept for expiry at entries whose index is a multiple of this. Default 1024. */
  readonly sessionSweepEveryEntries?: number;
}

interface Session {
  lastSeenMs: number;
  /** Sequences below this were forgotten: a retry of one is refused, not re-applied. */
  floor: number;
  /** Results by sequence. */
  readonly results: Map<number, Buffer>;
  /**
   * The remembered sequences in ascending order. Eviction always drops the smallest, so it does
   * not depend on apply order or on whether this replica restarted (which reloads in key order).
   */
  readonly seqs: number[];
}

/** Inserts v into the ascending array a (usually at the end: sequences mostly grow). */
function insertSorted(a: number[], v: number): void {
  let i = a.length;
  while (i > 0 && (a[i - 1] as number) > v) i--;
  a.splice(i, 0, v);
}

export interface StoredValue {
  readonly value: Buffer;
  readonly version: number;
}

/** A stored user value: sealed (CRC-32) [version u64][value], so a flipped bit is an error, never a wrong answer. */
export function encodeValue(value: Uint8Array, version: number): Buffer {
  const b = Buffer.allocUnsafe(8 + value.length);
  writeU64(b, 0, version);
  b.set(value, 8);
  return sealRecord(b);
}

export function decodeValue(raw: Buffer, key?: Uint8Array): StoredValue {
  const p = openRecord(key ? `the value of key ${Buffer.from(key).toString('hex')}` : 'a stored value', raw);
  if (p.length < 8) throw new CorruptDataError('a stored value', `record of ${p.length} bytes is too short`);
  return { version: readU64(p, 0), value: p.subarray(8) };
}

/** Whether `key` lies in `b` (the one test of a key against a range's bounds on the server). */
export function keyInRange(key: Uint8Array, b: RangeBounds): boolean {
  if (Buffer.compare(key, b.start) < 0) return false;
  return b.end.length === 0 || Buffer.compare(key, b.end) < 0;
}

function encodeSession(s: Session): Buffer {
  const b = Buffer.alloc(16);
  writeU64(b, 0, s.lastSeenMs);
  writeU64(b, 8, s.floor);
  return sealRecord(b);
}

/** Ranges with fewer keys count every new key exactly (see KvStateMachine.countIfNew). */
const KEY_COUNT_EXACT_BELOW = 4096;
/** Past that, at most one put in 2^this many is checked (see countIfNew). */
const KEY_COUNT_MAX_SHIFT = 16;

export class KvStateMachine {
  private readonly sessionWindow: number;
  private readonly sessionTtlMs: number;
  private readonly sweepEvery: number;
  /** Writes staged in the current batch, by hex data key (null = deleted): later ops in the batch read them. */
  private overlay = new Map<string, Buffer | null>();
  /**
   * Clients whose session header (last seen, floor) changed in the current batch: written once
   * per batch by flushSessions(), not once per command (a pipelining client has many per batch).
   */
  private dirtySessions = new Set<number>();
  /** The data keyspace prefix of this range (the meta range keeps its keys apart). */
  readonly prefix: number;
  /**
   * Keys in the range, kept up to date by apply (approximate: reset from a count at start, after
   * a snapshot install and after a split; puts into a range past KEY_COUNT_EXACT_BELOW keys are
   * sampled). Reported to placement for split decisions.
   */
  keyCount = 0;

  private constructor(
    private readonly engine: Engine,
    readonly rangeId: number,
    public bounds: RangeBounds,
    private readonly sessions: Map<number, Session>,
    opts: StateMachineOptions,
  ) {
    this.sessionWindow = opts.sessionWindow ?? 4096;
    this.sessionTtlMs = opts.sessionTtlMs ?? 10 * 60 * 1000;
    this.sweepEvery = opts.sessionSweepEveryEntries ?? 1024;
    this.prefix = dataPrefixOf(rangeId);
  }

  static async load(engine: Engine, rangeId: number, bounds: RangeBounds, opts: StateMachineOptions = {}): Promise<KvStateMachine> {
    const sm = new KvStateMachine(engine, rangeId, bounds, new Map(), opts);
    for await (const [key, value] of engine.db.iterator(sessionKeyRange(rangeId))) sm.loadSessionRecord(key, value);
    return sm;
  }

  /** Number of client sessions remembered (for status and tests). */
  sessionCount(): number {
    return this.sessions.size;
  }

  private checkReadable(): void {
    if (this.installing) throw new SnapshotInstallingError(this.rangeId);
  }

  /**
   * Reads a key's current applied value (outside of apply). Synchronous on purpose: a point read
   * is served from LevelDB's memtable or block cache in a few microseconds, while the async get
   * hands every read to the thread pool and back (measured: ~15% of a node's CPU under a read
   * load, most of it waking the pool). A read that misses the OS page cache blocks the event loop
   * for one disk read, as an mmap-based store's reads do.
   */
  get(key: Uint8Array): StoredValue | undefined {
    this.checkReadable();
    const raw = this.engine.getSync(dataKey(key, this.prefix));
    return raw === undefined ? undefined : decodeValue(raw, key);
  }

  /**
   * Reads every user value of the range and checks its checksum (at start: a corrupt data
   * directory is refused, never served). Session records are checked by load().
   */
  async verifyData(): Promise<number> {
    let n = 0;
    for await (const [k, v] of this.engine.db.iterator(dataKeyRange(this.bounds.start, this.bounds.end, this.prefix))) {
      decodeValue(v, userKeyOf(k));
      n++;
    }
    this.keyCount = n;
    return n;
  }

  /** Counts the range's keys again (after a split changed its bounds); returns the count. */
  async recountKeys(): Promise<number> {
    let n = 0;
    for await (const _k of this.engine.db.keys(dataKeyRange(this.bounds.start, this.bounds.end, this.prefix))) n++;
    this.keyCount = n;
    return n;
  }

  /**
   * The key in the middle of the range's keys (an automatic split point), or undefined when the
   * range holds fewer than two keys. Two passes over the keys: one to count, one to the middle.
   */
  async middleKey(): Promise<Buffer | undefined> {
    const n = await this.recountKeys();
    if (n < 2) return undefined;
    let i = 0;
    for await (const k of this.engine.db.keys(dataKeyRange(this.bounds.start, this.bounds.end, this.prefix))) {
      if (i++ === Math.floor(n / 2)) return Buffer.from(userKeyOf(k));
    }
    return undefined; // the range shrank meanwhile; the caller tries again later
  }

  /** Iterates applied keys in [start, end) within the range, in order, up to `limit` (0 = all). */
  async *scan(start: Uint8Array, end: Uint8Array, limit: number): AsyncGenerator<{ key: Buffer } & StoredValue> {
    this.checkReadable();
    const lo = Buffer.compare(start, this.bounds.start) > 0 ? start : this.bounds.start;
    let hi = end;
    if (this.bounds.end.length > 0 && (hi.length === 0 || Buffer.compare(hi, this.bounds.end) > 0)) hi = this.bounds.end;
    const range = dataKeyRange(lo, hi, this.prefix);
    let n = 0;
    for await (const [k, v] of this.engine.db.iterator({ ...range, limit: limit > 0 ? limit : -1 })) {
      this.checkReadable();
      const key = Buffer.from(userKeyOf(k));
      yield { key, ...decodeValue(v, key) };
      if (limit > 0 && ++n >= limit) return;
    }
  }

  private read(key: Uint8Array): StoredValue | undefined {
    const dk = dataKey(key, this.prefix);
    const hex = dk.toString('hex');
    if (this.overlay.has(hex)) {
      const v = this.overlay.get(hex);
      return v ? decodeValue(v) : undefined;
    }
    const raw = this.engine.getSync(dk);
    return raw === undefined ? undefined : decodeValue(raw, key);
  }

  private write(batch: WriteBatch, key: Uint8Array, value: Uint8Array | null, version: number): void {
    const dk = dataKey(key, this.prefix);
    if (value === null) {
      batch.del(dk);
      this.overlay.set(dk.toString('hex'), null);
    } else {
      const enc = encodeValue(value, version);
      batch.put(dk, enc);
      this.overlay.set(dk.toString('hex'), enc);
    }
  }

  /** Call once the batch holding the staged writes is written: later reads go to the database. */
  batchWritten(): void {
    this.overlay = new Map();
  }

  /** Stages the session headers changed by the commands applied into `batch` (call once, after the last). */
  flushSessions(batch: WriteBatch): void {
    for (const clientId of this.dirtySessions) {
      const s = this.sessions.get(clientId);
      if (s) batch.put(sessionKey(this.rangeId, clientId), encodeSession(s));
    }
    this.dirtySessions.clear();
  }

  /**
   * Stages a copy of every client session (header and remembered results) under range `rangeId`
   * (the right side of a split): a write retried after the split, now routed to the new range,
   * must find its first result there. Call after flushSessions().
   */
  copySessionsTo(batch: WriteBatch, rangeId: number): void {
    for (const [clientId, s] of this.sessions) {
      batch.put(sessionKey(rangeId, clientId), encodeSession(s));
      for (const [seq, enc] of s.results) batch.put(sessionResultKey(rangeId, clientId, seq), sealRecord(enc));
    }
  }

  /**
   * Applies one committed command at `index`, staging its effects into `batch`. Returns the
   * result (the first result, for a duplicate).
   */
  apply(batch: WriteBatch, index: number, cmd: Command): CommandResult {
    if (index % this.sweepEvery === 0) this.sweepSessions(batch, cmd.proposedAtMs);
    let session: Session | undefined;
    if (cmd.clientId !== 0) {
      session = this.sessions.get(cmd.clientId);
      if (session) {
        this.forgetAnswered(batch, cmd.clientId, session, cmd.answeredBelow);
        const first = session.results.get(cmd.sequence);
        if (first) return decodeResult(first);
        if (cmd.sequence < session.floor) return { status: CommandStatus.SequenceTooOld, results: [] };
      }
    }
    const result = this.execute(batch, index, cmd);
    // Only a command that took effect is remembered: a refused one (epoch, bounds) changed
    // nothing, and its retry with the same sequence, re-routed, must be able to apply.
    if (cmd.clientId !== 0 && result.status === CommandStatus.Ok) this.remember(batch, cmd, session, result);
    return result;
  }

  /**
   * Counts a put of `key` at `index` if the key is new. A put reads nothing else, and that read
   * costs more than the rest of its apply (a key missing from a large, busy LevelDB is looked for
   * in every level: checking even one put in eight measured 181 µs of server CPU per put through
   * Multiplex, against 115 with no check; the scale below keeps it near the latter). Below
   * KEY_COUNT_EXACT_BELOW keys every put is checked; above, one put in 2^s, where 2^s grows with
   * the count (about count/512: the estimate's relative error stays the same), counts for 2^s.
   * Which puts are checked depends only on the log index (a hash of it, so no period of a
   * workload lines up with it): an unbiased estimate, which is all a split decision needs.
   */
  private countIfNew(key: Uint8Array, index: number): void {
    if (this.keyCount < KEY_COUNT_EXACT_BELOW) {
      if (this.read(key) === undefined) this.keyCount++;
      return;
    }
    const shift = Math.min(KEY_COUNT_MAX_SHIFT, 31 - Math.clz32(Math.floor(this.keyCount / 512)));
    if (Math.imul(index, 0x9e3779b1) >>> (32 - shift) !== 0) return;
    if (this.read(key) === undefined) this.keyCount += 2 ** shift;
  }

  private execute(batch: WriteBatch, index: number, cmd: Command): CommandResult {
    if (cmd.epochVersion !== this.bounds.epochVersion) return { status: CommandStatus.EpochNotMatch, results: [] };
    for (const op of cmd.ops) {
      if (!keyInRange(op.key, this.bounds)) return { status: CommandStatus.KeyNotInRange, results: [] };
    }
    const results: OpResult[] = [];
    for (const op of cmd.ops) {
      switch (op.kind) {
        case OpKind.Put:
          this.countIfNew(op.key, index);
          this.write(batch, op.key, op.value, index);
          results.push({ kind: OpKind.Put, version: index });
          break;
        case OpKind.Delete: {
          const cur = this.read(op.key);
          if (cur) {
            this.write(batch, op.key, null, index);
            this.keyCount--;
          }
          results.push({ kind: OpKind.Delete, deleted: cur !== undefined, version: index });
          break;
        }
        case OpKind.Get: {
          const cur = this.read(op.key);
          results.push({
            kind: OpKind.Get,
            found: cur !== undefined,
            value: cur ? Buffer.from(cur.value) : Buffer.alloc(0),
            version: cur?.version ?? 0,
          });
          break;
        }
        case OpKind.Cas: {
          const cur = this.read(op.key);
          let ok: boolean;
          switch (op.expected.kind) {
            case 'absent':
              ok = cur === undefined;
              break;
            case 'value':
              ok = cur !== undefined && Buffer.compare(cur.value, op.expected.value) === 0;
              break;
            case 'version':
              ok = cur !== undefined && cur.version === op.expected.version;
              break;
          }
          if (ok) {
            this.write(batch, op.key, op.delete ? null : op.newValue, index);
            if (op.delete && cur) this.keyCount--;
            else if (!op.delete && !cur) this.keyCount++;
          }
          results.push({
            kind: OpKind.Cas,
            succeeded: ok,
            previous: cur ? { value: Buffer.from(cur.value), version: cur.version } : undefined,
            version: ok ? index : cur?.version ?? 0,
          });
          break;
        }
      }
    }
    return { status: CommandStatus.Ok, results };
  }

  /** Drops the results of writes the client says were answered (all sequences below `below`). */
  private forgetAnswered(batch: WriteBatch, clientId: number, s: Session, below: number): void {
    if (below <= s.floor) return;
    s.floor = below;
    while (s.seqs.length > 0 && (s.seqs[0] as number) < below) {
      const seq = s.seqs.shift() as number;
      s.results.delete(seq);
      batch.del(sessionResultKey(this.rangeId, clientId, seq));
    }
    this.dirtySessions.add(clientId);
  }

  private remember(batch: WriteBatch, cmd: Command, existing: Session | undefined, result: CommandResult): void {
    const s: Session = existing ?? { lastSeenMs: 0, floor: 0, results: new Map<number, Buffer>(), seqs: [] };
    if (!existing) {
      this.sessions.set(cmd.clientId, s);
      this.forgetAnswered(batch, cmd.clientId, s, cmd.answeredBelow);
    }
    s.lastSeenMs = Math.max(s.lastSeenMs, cmd.proposedAtMs);
    const enc = encodeResult(result);
    s.results.set(cmd.sequence, enc);
    insertSorted(s.seqs, cmd.sequence);
    batch.put(sessionResultKey(this.rangeId, cmd.clientId, cmd.sequence), sealRecord(enc));
    while (s.seqs.length > this.sessionWindow) {
      const oldest = s.seqs.shift() as number;
      s.results.delete(oldest);
      s.floor = Math.max(s.floor, oldest + 1);
      batch.del(sessionResultKey(this.rangeId, cmd.clientId, oldest));
    }
    this.dirtySessions.add(cmd.clientId);
  }

  /**
   * While a snapshot is being installed the range's live data is being replaced: reads must not
   * look at it (they are refused with SnapshotInstallingError and retried by clients).
   */
  installing = false;

  /** Replaces the in-memory sessions with those of an installed snapshot. */
  resetSessions(records: ReadonlyArray<[Buffer, Buffer]>): void {
    this.sessions.clear();
    this.overlay = new Map();
    this.dirtySessions.clear();
    for (const [k, v] of records) this.loadSessionRecord(k, v);
  }

  private loadSessionRecord(key: Uint8Array, raw: Buffer): void {
    const clientId = readU64(key, 9);
    const value = openRecord(`range ${this.rangeId} session record of client ${clientId}`, raw);
    let s = this.sessions.get(clientId);
    if (!s) {
      s = { lastSeenMs: 0, floor: 0, results: new Map(), seqs: [] };
      this.sessions.set(clientId, s);
    }
    if (key.length === 17) {
      s.lastSeenMs = readU64(value, 0);
      s.floor = readU64(value, 8);
    } else {
      const seq = readU64(key, 17);
      s.results.set(seq, value);
      insertSorted(s.seqs, seq);
    }
  }

  private sweepSessions(batch: WriteBatch, nowMs: number): void {
    for (const [clientId, s] of this.sessions) {
      if (nowMs - s.lastSeenMs <= this.sessionTtlMs) continue;
      for (const seq of s.results.keys()) batch.del(sessionResultKey(this.rangeId, clientId, seq));
      batch.del(sessionKey(this.rangeId, clientId));
      this.sessions.delete(clientId);
      this.dirtySessions.delete(clientId);
    }
  }
}
