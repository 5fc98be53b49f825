// The read side of a replica's persisted Raft state, and an in-memory implementation.
//
// The core only reads through `Storage`; the application writes (what a `Ready` says to persist)
// through the implementation's own methods, before it calls `advance()`. Reads are synchronous:
// durable implementations keep the live tail of the log in memory and write through to disk.

import { CompactedError, SnapshotOutOfDateError, UnavailableError } from './errors';
import {
  ConfState,
  EMPTY_HARD_STATE,
  Entry,
  EntryType,
  HardState,
  Snapshot,
  entrySizeBytes,
} from './types';

export interface InitialState {
  readonly hardState: HardState;
  /** Membership as of the application's applied index (or the snapshot, when nothing else). */
  readonly confState: ConfState;
}

export interface Storage {
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at least one entry if any is in range, and otherwise stopping before the
   * total size would exceed `maxSizeBytes`. Throws `CompactedError` if lo < firstIndex() and
   * `UnavailableError` if hi > lastIndex() + 1; lo >= hi gives [].
   */
  entries(lo: number, hi: number, maxSizeBytes: number): Entry[];
  /**
   * Term of entry i, for i in [firstIndex() - 1, lastIndex()] (firstIndex() - 1 is the snapshot's
   * index, whose term is kept). Throws `CompactedError` below, `UnavailableError` above.
   */
  term(i: number): number;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry in the log (the snapshot index when the log is empty). */
  lastIndex(): number;
  /** The most recent snapshot. May throw `SnapshotTemporarilyUnavailableError`. */
  snapshot(): Snapshot;
}

/**
 * The write side every implementation offers, as used by the application and the conformance
 * suite. Durable implementations may return promises; MemoryStorage completes synchronously.
 */
export interface WritableStorage extends Storage {
  setHardState(hs: HardState): void | Promise<void>;
  /**
   * Appends consecutive entries. Everything from entries[0].index on is replaced (the log ends at
   * the last appended entry); entries at or below the compaction point are ignored; a gap after
   * lastIndex() throws UnavailableError and changes nothing.
   */
  append(entries: readonly Entry[]): void | Promise<void>;
  /** Replaces the whole log with the snapshot (a follower receiving state from its leader). */
  applySnapshot(snap: Snapshot): void | Promise<void>;
  /**
   * Records a snapshot of application state at `index` (<= the applied index). An index at or
   * below the current snapshot's throws SnapshotOutOfDateError; beyond lastIndex(), UnavailableError.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot | Promise<Snapshot>;
  /**
   * Discards entries up to and including `compactIndex`, keeping its term. compactIndex must not
   * pass the snapshot index: a follower that needs the discarded entries gets the snapshot, so a
   * gap between the two would leave it unable to catch up (RangeError).
   */
  compact(compactIndex: number): void | Promise<void>;
}

/** Takes entries from the front of `ents` while the total size stays within `maxSizeBytes` (at least one). */
export function limitSize(ents: Entry[], maxSizeBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySizeBytes(ents[0] as Entry);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySizeBytes(ents[n] as Entry);
    if (size > maxSizeBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/**
 * In-memory Storage. ents[0] is a dummy entry standing for the snapshot point: its index and term
 * are the snapshot's, so entry i lives at ents[i - ents[0].index].
 */
export class MemoryStorage implements WritableStorage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot;
  private ents: Entry[];
  private confState: ConfState;

  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.confState = confState;
    this.snap = { metadata: { index: 0, term: 0, confState }, data: new Uint8Array(0) };
    this.ents = [{ index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  /**
   * Rebuilds a storage from persisted parts (used by durable implementations to load their
   * in-memory mirror). `compacted` is the compaction point: entries[0] must be at compacted.index + 1.
   */
  static restore(parts: {
    hardState: HardState;
    confState: ConfState;
    snapshot: Snapshot;
    compacted: { index: number; term: number };
    entries: readonly Entry[];
  }): MemoryStorage {
    const s = new MemoryStorage(parts.confState);
    s.hardState = parts.hardState;
    s.snap = parts.snapshot;
    s.ents = [{ index: parts.compacted.index, term: parts.compacted.term, type: EntryType.Normal, data: new Uint8Array(0) }];
    s.append(parts.entries);
    return s;
  }

  initialState(): InitialState {
    return { hardState: this.hardState, confState: this.confState };
  }

  /** Records the membership as of the application's applied index (returned by initialState). */
  setConfState(cs: ConfState): void {
    this.confState = cs;
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  private offset(): number {
    return (this.ents[0] as Entry).index;
  }

  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSizeBytes);
  }

  term(i: number): number {
    const offset = this.offset();
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i - offset >= this.ents.length) throw new UnavailableError(i, this.lastIndex());
    return (this.ents[i - offset] as Entry).term;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  applySnapshot(snap: Snapshot): void {
    const cur = this.snap.metadata.index;
    if (cur >= snap.metadata.index) throw new SnapshotOutOfDateError(snap.metadata.index, cur);
    this.snap = snap;
    this.confState = snap.metadata.confState;
    this.ents = [{ index: snap.metadata.index, term: snap.metadata.term, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const cur = this.snap.metadata.index;
    if (index <= cur) throw new SnapshotOutOfDateError(index, cur);
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    const term = this.term(index);
    this.snap = { metadata: { index, term, confState }, data };
    return this.snap;
  }

  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset) throw new CompactedError(compactIndex, offset + 1);
    if (compactIndex > this.lastIndex()) throw new UnavailableError(compactIndex, this.lastIndex());
    if (compactIndex > this.snap.metadata.index) {
      throw new RangeError(`compact index ${compactIndex} is beyond the snapshot index ${this.snap.metadata.index}: take a snapshot first`);
    }
    const i = compactIndex - offset;
    const dummy: Entry = { index: compactIndex, term: (this.ents[i] as Entry).term, type: EntryType.Normal, data: new Uint8Array(0) };
    this.ents = [dummy, ...this.ents.slice(i + 1)];
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = (entries[entries.length - 1] as Entry).index;
    if (last < first) return; // everything is already compacted
    // Drop the part that is already compacted.
    let ents = entries;
    if (first > (ents[0] as Entry).index) ents = ents.slice(first - (ents[0] as Entry).index);
    const start = (ents[0] as Entry).index;
    const offset = this.offset();
    if (start > this.lastIndex() + 1) {
      throw new UnavailableError(start, this.lastIndex());
    }
    // Truncate the existing log at `start` (a conflicting suffix is replaced) and append.
    this.ents = this.ents.slice(0, start - offset).concat(ents);
  }
}
