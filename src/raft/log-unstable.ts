// The tail of the log that is not yet in stable storage, plus a snapshot received from the leader
// that is not yet persisted. Entry i lives at entries[i - offset].

import { Entry, Snapshot } from './types';

export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** Index of the first entry that may be unstable, if only a snapshot is pending. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return (this.entries[i - this.offset] as Entry).term;
  }

  /** Entries up to (i, t) reached stable storage: drop them, unless the log changed meanwhile. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    // Only drop if the entry is still the one that was persisted (it may have been overwritten
    // by a newer leader's entries between ready() and advance()), and it is not the snapshot.
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const after = (ents[0] as Entry).index;
    if (after === this.offset + this.entries.length) {
      // Directly after what we have.
      this.entries = this.entries.concat(ents);
    } else if (after <= this.offset) {
      // Replaces everything unstable; the log is truncated from `after` (storage keeps the rest
      // until the application appends over it).
      this.offset = after;
      this.entries = ents.slice();
    } else {
      // Truncate to `after` and append.
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }

  /** Entries in [lo, hi); the caller guarantees offset <= lo <= hi <= offset + entries.length. */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi) throw new RangeError(`unstable.slice: invalid range [${lo}, ${hi})`);
    const upper = this.offset + this.entries.length;
    if (lo < this.offset || hi > upper) {
      throw new RangeError(`unstable.slice: [${lo}, ${hi}) out of bounds [${this.offset}, ${upper})`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
