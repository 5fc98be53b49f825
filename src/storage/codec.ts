// Encoding of the raft records stored in LevelDB. Every value is [crc32 of payload: u32][payload],
// so a flipped bit is reported as corruption instead of being read as a wrong term or index.

import { ConfState, Entry, EntryType, HardState, Snapshot } from '../raft';
import { crc32 } from './crc32';
import { CorruptDataError } from './errors';
import { readU64, writeU64 } from './keys';

/** Prefixes a payload with its CRC-32 (every value RangeKV stores is sealed). */
export function sealRecord(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(crc32(payload), 0);
  out.set(payload, 4);
  return out;
}

/** Checks and strips the CRC-32 of a sealed value; CorruptDataError naming `what` on mismatch. */
export function openRecord(what: string, value: Uint8Array): Buffer {
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buf.length < 4) throw new CorruptDataError(what, `record of ${buf.length} bytes is too short`);
  const payload = buf.subarray(4);
  const want = buf.readUInt32BE(0);
  const got = crc32(payload);
  if (want !== got) throw new CorruptDataError(what, `checksum mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})`);
  return payload;
}

function need(what: string, buf: Buffer, offset: number, n: number): void {
  if (offset + n > buf.length) throw new CorruptDataError(what, `record truncated at byte ${offset} (need ${n} more of ${buf.length})`);
}

export function encodeHardState(hs: HardState): Buffer {
  const p = Buffer.alloc(24);
  writeU64(p, 0, hs.term);
  writeU64(p, 8, hs.vote);
  writeU64(p, 16, hs.commit);
  return sealRecord(p);
}

export function decodeHardState(what: string, v: Uint8Array): HardState {
  const p = openRecord(what, v);
  need(what, p, 0, 24);
  return { term: readU64(p, 0), vote: readU64(p, 8), commit: readU64(p, 16) };
}

function confStateSize(cs: ConfState): number {
  return 8 + 8 * (cs.voters.length + cs.learners.length);
}

function writeConfState(p: Buffer, offset: number, cs: ConfState): number {
  let o = offset;
  p.writeUInt32BE(cs.voters.length, o);
  o += 4;
  for (const id of cs.voters) {
    writeU64(p, o, id);
    o += 8;
  }
  p.writeUInt32BE(cs.learners.length, o);
  o += 4;
  for (const id of cs.learners) {
    writeU64(p, o, id);
    o += 8;
  }
  return o;
}

function readConfState(what: string, p: Buffer, offset: number): { cs: ConfState; end: number } {
  let o = offset;
  const ids = (): number[] => {
    need(what, p, o, 4);
    const n = p.readUInt32BE(o);
    o += 4;
    need(what, p, o, 8 * n);
    const out: number[] = [];
    for (let i = 0; i < n; i++, o += 8) out.push(readU64(p, o));
    return out;
  };
  const voters = ids();
  const learners = ids();
  return { cs: { voters, learners }, end: o };
}

export interface ApplyState {
  readonly applied: number;
  readonly confState: ConfState;
}

export function encodeApplyState(s: ApplyState): Buffer {
  const p = Buffer.alloc(8 + confStateSize(s.confState));
  writeU64(p, 0, s.applied);
  writeConfState(p, 8, s.confState);
  return sealRecord(p);
}

export function decodeApplyState(what: string, v: Uint8Array): ApplyState {
  const p = openRecord(what, v);
  need(what, p, 0, 8);
  return { applied: readU64(p, 0), confState: readConfState(what, p, 8).cs };
}

export function encodeSnapshot(s: Snapshot): Buffer {
  const cs = s.metadata.confState;
  const p = Buffer.alloc(16 + confStateSize(cs) + s.data.length);
  writeU64(p, 0, s.metadata.index);
  writeU64(p, 8, s.metadata.term);
  const o = writeConfState(p, 16, cs);
  p.set(s.data, o);
  return sealRecord(p);
}

export function decodeSnapshot(what: string, v: Uint8Array): Snapshot {
  const p = openRecord(what, v);
  need(what, p, 0, 16);
  const index = readU64(p, 0);
  const term = readU64(p, 8);
  const { cs, end } = readConfState(what, p, 16);
  return { metadata: { index, term, confState: cs }, data: new Uint8Array(p.subarray(end)) };
}

export function encodeEntry(e: Entry): Buffer {
  const p = Buffer.allocUnsafe(9 + e.data.length);
  writeU64(p, 0, e.term);
  p[8] = e.type;
  p.set(e.data, 9);
  return sealRecord(p);
}

export function decodeEntry(what: string, index: number, v: Uint8Array): Entry {
  const p = openRecord(what, v);
  need(what, p, 0, 9);
  const type = p[8] as number;
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
    throw new CorruptDataError(what, `unknown entry type ${type}`);
  }
  return { index, term: readU64(p, 0), type, data: new Uint8Array(p.subarray(9)) };
}

export interface LogPosition {
  readonly index: number;
  readonly term: number;
}

export function encodeLogPosition(p: LogPosition): Buffer {
  const b = Buffer.alloc(16);
  writeU64(b, 0, p.index);
  writeU64(b, 8, p.term);
  return sealRecord(b);
}

export function decodeLogPosition(what: string, v: Uint8Array): LogPosition {
  const p = openRecord(what, v);
  need(what, p, 0, 16);
  return { index: readU64(p, 0), term: readU64(p, 8) };
}
