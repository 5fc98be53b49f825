// Range snapshots that never sit whole in memory.
//
// Sending: the Raft snapshot itself is small (its `data` is the range descriptor); the payload —
// the range's user data and client sessions — is streamed from a LevelDB snapshot taken when the
// Raft snapshot was created, as records [keyLen u32][key][valueLen u32][value] cut into chunks.
//
// Receiving: chunks are written as they arrive to a staging keyspace (0x07), unsynced. When Raft
// hands the snapshot to the application, installation replaces the range's live data with the
// staged records in bounded batches, under a durable install marker (0x08) holding the Raft
// snapshot: a crash mid-install is finished at the next start, before the replica opens, so the
// install is all-or-nothing. The final batch persists the Raft snapshot, clears the marker and the
// staged chunks.

import { HardState, Snapshot } from '../raft';
import { Engine, RaftLogStorage, WriteBatch } from '../storage';
import { decodeSnapshot, encodeSnapshot, openRecord } from '../storage/codec';
import { PREFIX_SESSION, dataKeyRange, dataPrefixOf, installMarkerKey, prefixRange, sessionKeyRange, stagingKey } from '../storage/keys';
import type { SnapshotSink } from '../transport';
import type { RangeBounds } from './kv-state-machine';

/** An explicit LevelDB snapshot (a consistent read view). */
export type DbSnapshot = ReturnType<Engine['db']['snapshot']>;

/** The staging key sequence number of the "payload complete" marker (after every chunk). */
const COMPLETE_SEQ = Number.MAX_SAFE_INTEGER;

/** Deletes and puts per batch while replacing a range's data. */
const INSTALL_BATCH_OPS = 4096;

const stagingChunkKey = (rangeId: number, snapIndex: number, seq: number): Buffer => stagingKey(rangeId, snapIndex, seq);
const stagingPrefix = (rangeId: number, snapIndex?: number): Buffer => stagingKey(rangeId, snapIndex);

// ---------------------------------------------------------------------------------------------
// Sending

/** Streams a range's applied state from a LevelDB snapshot, in chunks of about `chunkBytes`. */
export async function* snapshotPayload(
  engine: Engine,
  dbSnapshot: DbSnapshot,
  rangeId: number,
  bounds: RangeBounds,
  chunkBytes: number,
): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  const ranges = [dataKeyRange(bounds.start, bounds.end, dataPrefixOf(rangeId)), sessionKeyRange(rangeId)];
  for (const range of ranges) {
    for await (const [k, v] of engine.db.iterator({ ...range, snapshot: dbSnapshot })) {
      const h = Buffer.allocUnsafe(8);
      h.writeUInt32BE(k.length, 0);
      h.writeUInt32BE(v.length, 4);
      // [keyLen][valueLen][key][value]: both lengths first, so a reader needs 8 bytes to size a record.
      parts.push(h, k, v);
      size += 8 + k.length + v.length;
      if (size >= chunkBytes) {
        yield Buffer.concat(parts, size);
        parts = [];
        size = 0;
      }
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

// ---------------------------------------------------------------------------------------------
// Receiving

/** Writes an incoming payload to the staging keyspace, chunk by chunk. */
export class StagingSink implements SnapshotSink {
  private seq = 0;
  private aborted = false;

  constructor(
    private readonly engine: Engine,
    readonly rangeId: number,
    readonly snapIndex: number,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.aborted) throw new Error('snapshot transfer was aborted');
    const b = new WriteBatch();
    b.put(stagingChunkKey(this.rangeId, this.snapIndex, this.seq++), Buffer.from(chunk));
    // Not synced: the install's marker and final batch are, and LevelDB's log is ordered.
    await this.engine.write(b, { sync: false });
  }

  /** Marks the payload complete (an install refuses an incomplete one); Raft decides whether to install it. */
  async finish(): Promise<void> {
    const b = new WriteBatch();
    b.put(stagingChunkKey(this.rangeId, this.snapIndex, COMPLETE_SEQ), Buffer.alloc(0));
    await this.engine.write(b, { sync: false });
  }

  async abort(): Promise<void> {
    this.aborted = true;
    await deleteStaged(this.engine, this.rangeId, this.snapIndex);
  }
}

async function deleteStaged(engine: Engine, rangeId: number, snapIndex?: number): Promise<void> {
  let b = new WriteBatch();
  for await (const k of engine.db.keys(prefixRange(stagingPrefix(rangeId, snapIndex)))) {
    b.del(k);
    if (b.size >= INSTALL_BATCH_OPS) {
      await engine.write(b, { sync: false });
      b = new WriteBatch();
    }
  }
  await engine.write(b, { sync: false });
}

/** Parses records out of chunk boundaries. */
class RecordParser {
  private carry: Buffer = Buffer.alloc(0);

  *push(chunk: Buffer): Generator<[Buffer, Buffer]> {
    let buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    let o = 0;
    while (buf.length - o >= 8) {
      const kl = buf.readUInt32BE(o);
      const vl = buf.readUInt32BE(o + 4);
      if (buf.length - o - 8 < kl + vl) break;
      const k = buf.subarray(o + 8, o + 8 + kl);
      const v = buf.subarray(o + 8 + kl, o + 8 + kl + vl);
      o += 8 + kl + vl;
      yield [Buffer.from(k), Buffer.from(v)];
    }
    buf = buf.subarray(o);
    this.carry = Buffer.from(buf);
  }

  done(): void {
    if (this.carry.length > 0) throw new Error(`snapshot payload ends inside a record (${this.carry.length} stray bytes)`);
  }
}

/** A snapshot install that was staged: the data is in place; `finalize` stages the last batch. */
export interface InstalledData {
  /** Session records found in the payload (the state machine reloads them). */
  readonly sessionRecords: Array<[Buffer, Buffer]>;
  /** User keys installed. */
  readonly keys: number;
}

/**
 * Replaces the range's live data with the staged payload of `snap`, in bounded batches, under a
 * durable marker. The caller must then persist, in ONE batch, the Raft snapshot
 * (`storage.stageApplySnapshot`) together with `stageInstallDone` — the install is complete only then.
 */
export async function installStagedSnapshot(
  engine: Engine,
  rangeId: number,
  snap: Snapshot,
  oldBounds: RangeBounds | undefined,
  newBounds: RangeBounds,
): Promise<InstalledData> {
  const index = snap.metadata.index;
  if ((await engine.db.get(stagingChunkKey(rangeId, index, COMPLETE_SEQ))) === undefined) {
    // Raft accepted a snapshot whose payload did not fully arrive: a bug, never a silent empty range.
    throw new Error(`range ${rangeId}: no complete payload staged for the snapshot at index ${index}`);
  }
  const marker = new WriteBatch();
  marker.put(installMarkerKey(rangeId), encodeSnapshot(snap));
  await engine.write(marker, { sync: true });

  // 1. Remove the range's current data and sessions, and whatever lies in its new bounds (keys
  //    left behind there by a range this node no longer hosts; no hosted range overlaps them).
  const prefix = dataPrefixOf(rangeId);
  const clear = [dataKeyRange(newBounds.start, newBounds.end, prefix), sessionKeyRange(rangeId)];
  if (oldBounds && !sameBounds(oldBounds, newBounds)) clear.push(dataKeyRange(oldBounds.start, oldBounds.end, prefix));
  await engine.deleteRanges(clear, INSTALL_BATCH_OPS);
  const dataRange = dataKeyRange(newBounds.start, newBounds.end, prefix);
  const sessions = sessionKeyRange(rangeId);
  const within = (k: Buffer, r: { gte: Buffer; lt: Buffer }): boolean => Buffer.compare(k, r.gte) >= 0 && Buffer.compare(k, r.lt) < 0;
  let b = new WriteBatch();
  const flush = async (): Promise<void> => {
    if (b.size === 0) return;
    await engine.write(b, { sync: false });
    b = new WriteBatch();
  };

  // 2. Copy the staged records in (staging stays until the final batch, so a redo can start over).
  const sessionRecords: Array<[Buffer, Buffer]> = [];
  let keys = 0;
  const parser = new RecordParser();
  for await (const [, chunk] of engine.db.iterator(prefixRange(stagingPrefix(rangeId, index)))) {
    for (const [k, v] of parser.push(chunk)) {
      // Every record arrives sealed by the sender; a damaged one stops the install.
      openRecord(`snapshot record ${k.toString('hex')} of range ${rangeId}`, v);
      if (!within(k, dataRange) && !within(k, sessions)) {
        throw new SnapshotPayloadError(rangeId, `record key ${k.toString('hex')} lies outside the range's data and sessions`);
      }
      b.put(k, v);
      if (k[0] === PREFIX_SESSION) sessionRecords.push([k, v]);
      else keys++;
      if (b.size >= INSTALL_BATCH_OPS) await flush();
    }
  }
  parser.done();
  await flush();
  return { sessionRecords, keys };
}

/** Stages, into the final install batch, the removal of the marker and of the staged chunks. */
export async function stageInstallDone(engine: Engine, batch: WriteBatch, rangeId: number, snapIndex: number): Promise<void> {
  batch.del(installMarkerKey(rangeId));
  for await (const k of engine.db.keys(prefixRange(stagingPrefix(rangeId, snapIndex)))) batch.del(k);
}

/**
 * At start, before a replica opens: finishes an install that a crash interrupted (redoing it from
 * the staged payload) and drops staged payloads that were never installed.
 */
export async function recoverSnapshotInstall(
  engine: Engine,
  rangeId: number,
  bounds: RangeBounds | undefined,
  newBoundsOf: (snap: Snapshot) => RangeBounds,
): Promise<Snapshot | undefined> {
  const raw = await engine.db.get(installMarkerKey(rangeId));
  if (raw === undefined) {
    await deleteStaged(engine, rangeId);
    return undefined;
  }
  const snap = decodeSnapshot(`range ${rangeId} snapshot install marker`, raw);
  await installStagedSnapshot(engine, rangeId, snap, bounds, newBoundsOf(snap));
  const storage = await RaftLogStorage.load(engine, rangeId);
  const b = new WriteBatch();
  storage.stageApplySnapshot(b, snap);
  // The snapshot index is committed by definition, and our term is at least the snapshot's.
  const hs = storage.initialState().hardState;
  const fixed: HardState =
    hs.term < snap.metadata.term
      ? { term: snap.metadata.term, vote: 0, commit: Math.max(hs.commit, snap.metadata.index) }
      : { ...hs, commit: Math.max(hs.commit, snap.metadata.index) };
  storage.stageHardState(b, fixed);
  await stageInstallDone(engine, b, rangeId, snap.metadata.index);
  await engine.write(b, { sync: true });
  return snap;
}

function sameBounds(a: RangeBounds, b: RangeBounds): boolean {
  return Buffer.compare(a.start, b.start) === 0 && Buffer.compare(a.end, b.end) === 0;
}

/** A snapshot payload that does not belong to the range it claims (a bug or a damaged sender). */
export class SnapshotPayloadError extends Error {
  readonly code = 'SNAPSHOT_PAYLOAD';
  constructor(readonly rangeId: number, reason: string) {
    super(`range ${rangeId}: bad snapshot payload: ${reason}`);
    this.name = 'SnapshotPayloadError';
  }
}
