// Checks LevelDB's write-ahead log files (*.log) before LevelDB opens the directory.
//
// LevelDB recovers a log by skipping records whose checksum fails — silently dropping
// acknowledged writes — and then deletes the log. classic-level exposes no paranoid_checks
// option, so kvd reads the logs itself first and refuses to start on damage.
//
// Log format (LevelDB doc/log_format.md): 32 KiB blocks of records; a record header is
// [masked crc32c u32 LE][length u16 LE][type u8] followed by `length` bytes; the crc covers the
// type byte and the data. Fewer than 7 bytes left in a block are zero padding.
//
// A damaged or partial record at the very end of a log is a write torn by a crash: it was never
// acknowledged (acknowledgement waits for fsync), so it is tolerated. Damage followed by an
// intact record is corruption.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptDataError } from './errors';

const BLOCK_BYTES = 32 * 1024;
const HEADER_BYTES = 7;
const TYPE_ZERO = 0;
const TYPE_LAST = 4;

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(data: Uint8Array, start = 0, end = data.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (CRC32C_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** LevelDB stores crc32c values "masked" so that crcs of data containing crcs stay well distributed. */
function unmask(masked: number): number {
  const rot = (masked - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

export interface WalCheckResult {
  readonly records: number;
  /** A torn record at the end of the file (tolerated), with its offset. */
  readonly tornTailAt?: number;
}

/** Checks one log file's bytes; throws CorruptDataError naming the file and offset on damage. */
export function checkWalBytes(name: string, buf: Buffer): WalCheckResult {
  let records = 0;
  let firstBadAt: number | undefined;
  let firstBadReason = '';
  for (let block = 0; block < buf.length; block += BLOCK_BYTES) {
    const blockEnd = Math.min(block + BLOCK_BYTES, buf.length);
    let o = block;
    while (blockEnd - o >= HEADER_BYTES) {
      const masked = buf.readUInt32LE(o);
      const length = buf.readUInt16LE(o + 4);
      const type = buf[o + 6] as number;
      if (type === TYPE_ZERO && length === 0 && masked === 0) break; // preallocated zeros: rest of block unused
      const dataEnd = o + HEADER_BYTES + length;
      let bad: string | undefined;
      if (type === TYPE_ZERO || type > TYPE_LAST) bad = `unknown record type ${type}`;
      else if (dataEnd > blockEnd) bad = `record of ${length} bytes runs past its block`;
      else if (unmask(masked) !== crc32c(buf, o + 6, dataEnd)) bad = 'checksum mismatch';
      if (bad !== undefined) {
        if (firstBadAt === undefined) {
          firstBadAt = o;
          firstBadReason = bad;
        }
        break; // the rest of this block cannot be framed; continue with the next block
      }
      if (firstBadAt !== undefined) {
        throw new CorruptDataError(
          `LevelDB write-ahead log ${name}`,
          `${firstBadReason} at byte ${firstBadAt}, followed by intact records (LevelDB would silently drop data here); restore this node's data directory from a replica or backup`,
        );
      }
      records++;
      o = dataEnd;
    }
  }
  return firstBadAt === undefined ? { records } : { records, tornTailAt: firstBadAt };
}

/** Checks every *.log file of a LevelDB directory. */
export function checkWalFiles(dir: string): Array<{ file: string } & WalCheckResult> {
  const out: Array<{ file: string } & WalCheckResult> = [];
  for (const f of readdirSync(dir).filter((n) => /^\d+\.log$/.test(n)).sort()) {
    out.push({ file: f, ...checkWalBytes(f, readFileSync(join(dir, f))) });
  }
  return out;
}
