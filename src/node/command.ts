// Commands replicated through a range's Raft log, and their results, in a compact binary form
// (they are on the hot path: encoded once per proposal, decoded once per replica).
//
// Command layout (all integers big-endian):
//   [kind u8 = 1][version u8 = 2][clientId u64][sequence u64][answeredBelow u64][proposedAtMs u64][epochVersion u64][opCount u32] op*
//   op: [opKind u8][keyLen u32][key] then per kind:
//     PUT     [valueLen u32][value]
//     DELETE  (nothing)
//     CAS     [expect u8: 1 value | 2 absent | 3 version][expected: valueLen u32 + value | nothing | u64]
//             [delete u8][newLen u32][new]
//     GET     (nothing)

import { readU64, writeU64 } from '../storage/keys';

export const ENTRY_KIND_KV = 1;
const COMMAND_VERSION = 2;

export enum OpKind {
  Put = 1,
  Delete = 2,
  Cas = 3,
  Get = 4,
}

export type CasExpectation =
  | { readonly kind: 'value'; readonly value: Uint8Array }
  | { readonly kind: 'absent' }
  | { readonly kind: 'version'; readonly version: number };

export type Op =
  | { readonly kind: OpKind.Put; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly kind: OpKind.Delete; readonly key: Uint8Array }
  | {
      readonly kind: OpKind.Cas;
      readonly key: Uint8Array;
      readonly expected: CasExpectation;
      readonly newValue: Uint8Array;
      readonly delete: boolean;
    }
  | { readonly kind: OpKind.Get; readonly key: Uint8Array };

export interface Command {
  /** Exactly-once: the client's id (0 = no deduplication) and the write's sequence number. */
  readonly clientId: number;
  readonly sequence: number;
  /**
   * Every write of this client with a lower sequence has been answered: the range may forget their
   * results (Raft dissertation §6.3). Lets a client pipeline any number of writes safely.
   */
  readonly answeredBelow: number;
  /** The proposing leader's wall clock (ms); the state machine's only notion of time (session expiry). */
  readonly proposedAtMs: number;
  /** The range epoch version the command was routed with; checked again at apply. */
  readonly epochVersion: number;
  readonly ops: readonly Op[];
}

export type OpResult =
  | { readonly kind: OpKind.Put; readonly version: number }
  | { readonly kind: OpKind.Delete; readonly deleted: boolean; readonly version: number }
  | {
      readonly kind: OpKind.Cas;
      readonly succeeded: boolean;
      readonly previous?: { readonly value: Uint8Array; readonly version: number };
      readonly version: number;
    }
  | { readonly kind: OpKind.Get; readonly found: boolean; readonly value: Uint8Array; readonly version: number };

export enum CommandStatus {
  Ok = 0,
  /** The range's epoch changed between routing and apply (e.g. a split): nothing was applied. */
  EpochNotMatch = 1,
  /** A write whose sequence the range has forgotten (answered, or past the hard cap): it may or may not have applied. */
  SequenceTooOld = 2,
  /** A key is outside the range: nothing was applied. */
  KeyNotInRange = 3,
}

export interface CommandResult {
  readonly status: CommandStatus;
  readonly results: readonly OpResult[];
}

/** A malformed command or result record. */
export class CommandDecodeError extends Error {
  readonly code = 'COMMAND_DECODE';
  constructor(reason: string) {
    super(`cannot decode command: ${reason}`);
    this.name = 'CommandDecodeError';
  }
}

class Writer {
  private buf: Buffer;
  private pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  u64(v: number): void {
    this.ensure(8);
    writeU64(this.buf, this.pos, v);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

class Reader {
  private pos = 0;
  private readonly buf: Buffer;
  constructor(data: Uint8Array) {
    this.buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new CommandDecodeError(`truncated at byte ${this.pos} (need ${n}, have ${this.buf.length - this.pos})`);
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = readU64(this.buf, this.pos);
    this.pos += 8;
    return v;
  }
  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new CommandDecodeError(`${this.buf.length - this.pos} trailing bytes`);
  }
}

function opSize(op: Op): number {
  let n = 1 + 4 + op.key.length;
  if (op.kind === OpKind.Put) n += 4 + op.value.length;
  if (op.kind === OpKind.Cas) n += 1 + 12 + (op.expected.kind === 'value' ? op.expected.value.length : 0) + 1 + 4 + op.newValue.length;
  return n;
}

export function encodeCommand(c: Command): Buffer {
  let size = 2 + 8 * 5 + 4;
  for (const op of c.ops) size += opSize(op);
  const w = new Writer(size);
  w.u8(ENTRY_KIND_KV);
  w.u8(COMMAND_VERSION);
  w.u64(c.clientId);
  w.u64(c.sequence);
  w.u64(c.answeredBelow);
  w.u64(c.proposedAtMs);
  w.u64(c.epochVersion);
  w.u32(c.ops.length);
  for (const op of c.ops) {
    w.u8(op.kind);
    w.bytes(op.key);
    switch (op.kind) {
      case OpKind.Put:
        w.bytes(op.value);
        break;
      case OpKind.Cas:
        switch (op.expected.kind) {
          case 'value':
            w.u8(1);
            w.bytes(op.expected.value);
            break;
          case 'absent':
            w.u8(2);
            break;
          case 'version':
            w.u8(3);
            w.u64(op.expected.version);
            break;
        }
        w.u8(op.delete ? 1 : 0);
        w.bytes(op.newValue);
        break;
      case OpKind.Delete:
      case OpKind.Get:
        break;
    }
  }
  return w.done();
}

export function decodeCommand(data: Uint8Array): Command {
  const r = new Reader(data);
  const kind = r.u8();
  if (kind !== ENTRY_KIND_KV) throw new CommandDecodeError(`entry kind ${kind} is not a KV command`);
  const version = r.u8();
  if (version !== COMMAND_VERSION) throw new CommandDecodeError(`unknown command version ${version}`);
  const clientId = r.u64();
  const sequence = r.u64();
  const answeredBelow = r.u64();
  const proposedAtMs = r.u64();
  const epochVersion = r.u64();
  const n = r.u32();
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const k = r.u8();
    const key = r.bytes();
    switch (k) {
      case OpKind.Put:
        ops.push({ kind: OpKind.Put, key, value: r.bytes() });
        break;
      case OpKind.Delete:
        ops.push({ kind: OpKind.Delete, key });
        break;
      case OpKind.Get:
        ops.push({ kind: OpKind.Get, key });
        break;
      case OpKind.Cas: {
        const e = r.u8();
        let expected: CasExpectation;
        if (e === 1) expected = { kind: 'value', value: r.bytes() };
        else if (e === 2) expected = { kind: 'absent' };
        else if (e === 3) expected = { kind: 'version', version: r.u64() };
        else throw new CommandDecodeError(`unknown CAS expectation ${e}`);
        const del = r.u8() === 1;
        ops.push({ kind: OpKind.Cas, key, expected, delete: del, newValue: r.bytes() });
        break;
      }
      default:
        throw new CommandDecodeError(`unknown op kind ${k}`);
    }
  }
  r.end();
  return { clientId, sequence, answeredBelow, proposedAtMs, epochVersion, ops };
}

export function encodeResult(res: CommandResult): Buffer {
  const w = new Writer(16 + 32 * res.results.length);
  w.u8(res.status);
  w.u32(res.results.length);
  for (const r of res.results) {
    w.u8(r.kind);
    switch (r.kind) {
      case OpKind.Put:
        w.u64(r.version);
        break;
      case OpKind.Delete:
        w.u8(r.deleted ? 1 : 0);
        w.u64(r.version);
        break;
      case OpKind.Cas:
        w.u8(r.succeeded ? 1 : 0);
        w.u64(r.version);
        w.u8(r.previous ? 1 : 0);
        if (r.previous) {
          w.bytes(r.previous.value);
          w.u64(r.previous.version);
        }
        break;
      case OpKind.Get:
        w.u8(r.found ? 1 : 0);
        w.bytes(r.value);
        w.u64(r.version);
        break;
    }
  }
  return w.done();
}

export function decodeResult(data: Uint8Array): CommandResult {
  const r = new Reader(data);
  const status = r.u8() as CommandStatus;
  const n = r.u32();
  const results: OpResult[] = [];
  for (let i = 0; i < n; i++) {
    const k = r.u8();
    switch (k) {
      case OpKind.Put:
        results.push({ kind: OpKind.Put, version: r.u64() });
        break;
      case OpKind.Delete: {
        const deleted = r.u8() === 1;
        results.push({ kind: OpKind.Delete, deleted, version: r.u64() });
        break;
      }
      case OpKind.Cas: {
        const succeeded = r.u8() === 1;
        const version = r.u64();
        const hasPrev = r.u8() === 1;
        const previous = hasPrev ? { value: r.bytes(), version: r.u64() } : undefined;
        results.push({ kind: OpKind.Cas, succeeded, version, previous });
        break;
      }
      case OpKind.Get: {
        const found = r.u8() === 1;
        const value = r.bytes();
        results.push({ kind: OpKind.Get, found, value, version: r.u64() });
        break;
      }
      default:
        throw new CommandDecodeError(`unknown result kind ${k}`);
    }
  }
  r.end();
  return { status, results };
}

// ---------------------------------------------------------------------------------------------
// Split: a replicated command of the parent range (the left side keeps the parent's id).
//
//   [kind u8 = 2][version u8 = 1][epochVersion u64][newRangeId u64][splitKey: len u32 + bytes]
//
// At apply, on every replica: if the range's epoch version still equals `epochVersion` and the
// split key lies strictly inside the range, the range becomes [start, splitKey) and a new range
// `newRangeId` = [splitKey, end) is created with the same replicas; both get version + 1.

export const ENTRY_KIND_SPLIT = 2;
const SPLIT_VERSION = 1;

export interface SplitCommand {
  /** The epoch version the split was decided at; a range that changed since refuses it. */
  readonly epochVersion: number;
  readonly splitKey: Uint8Array;
  readonly newRangeId: number;
}

export function encodeSplit(s: SplitCommand): Buffer {
  const w = new Writer(2 + 16 + 4 + s.splitKey.length);
  w.u8(ENTRY_KIND_SPLIT);
  w.u8(SPLIT_VERSION);
  w.u64(s.epochVersion);
  w.u64(s.newRangeId);
  w.bytes(s.splitKey);
  return w.done();
}

export function decodeSplit(data: Uint8Array): SplitCommand {
  const r = new Reader(data);
  const kind = r.u8();
  if (kind !== ENTRY_KIND_SPLIT) throw new CommandDecodeError(`entry kind ${kind} is not a split`);
  const version = r.u8();
  if (version !== SPLIT_VERSION) throw new CommandDecodeError(`unknown split version ${version}`);
  const epochVersion = r.u64();
  const newRangeId = r.u64();
  const splitKey = r.bytes();
  r.end();
  return { epochVersion, newRangeId, splitKey };
}
