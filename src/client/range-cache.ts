// The client's map from keys to ranges: which range holds a key, its epoch, its replicas and the
// leader last seen. Filled from placement lookups and from the descriptors that routing errors
// carry (EpochNotMatch lists the current ones), and corrected the same way; it is only a cache:
// a wrong entry costs one redirect, never a wrong answer, because every request carries the range
// id and epoch it was routed with and the range refuses a mismatch.
//
// Entries never overlap. A range's `version` grows with every split and merge, and a range made by
// a split or merge has a higher version than every range it was made from; so of two overlapping
// descriptors the one with the higher version is the newer. Inserting a descriptor evicts the
// cached ranges it overlaps, unless one of them is at least as new (then the insert is a reply
// that was overtaken: it is not cached, but still evicts the older ranges it proves stale); a
// descriptor older than the cached entry of the same range is ignored.

/** Ranges are [start, end); an empty end means the end of the keyspace. */
export interface RangeEpoch {
  readonly version: number;
  readonly confVersion: number;
}

export interface RangeReplica {
  readonly nodeId: number;
  readonly role: 'voter' | 'learner';
}

export interface CachedRange {
  readonly rangeId: number;
  readonly start: Buffer;
  readonly end: Buffer;
  readonly epoch: RangeEpoch;
  readonly replicas: readonly RangeReplica[];
  /** The leader last seen (from a NotLeader hint or a successful reply), if any. */
  leader?: { readonly nodeId: number; readonly address: string };
}

/** Compares epochs: negative when a is older than b. */
export function compareEpochs(a: RangeEpoch, b: RangeEpoch): number {
  return a.version !== b.version ? a.version - b.version : a.confVersion - b.confVersion;
}

function endsAfter(end: Buffer, key: Buffer): boolean {
  return end.length === 0 || Buffer.compare(key, end) < 0;
}

/** Whether [aStart, aEnd) and [bStart, bEnd) share a key. */
function overlaps(aStart: Buffer, aEnd: Buffer, bStart: Buffer, bEnd: Buffer): boolean {
  return endsAfter(aEnd, bStart) && endsAfter(bEnd, aStart);
}

export class RangeCache {
  /** Sorted by start key; never overlapping. */
  private ranges: CachedRange[] = [];

  size(): number {
    return this.ranges.length;
  }

  /** Every cached range, in key order. */
  all(): readonly CachedRange[] {
    return this.ranges;
  }

  /** Index of the last range whose start is <= key, or -1. */
  private floorIndex(key: Buffer): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare((this.ranges[mid] as CachedRange).start, key) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** The cached range holding `key`, if any. */
  lookup(key: Buffer): CachedRange | undefined {
    const i = this.floorIndex(key);
    if (i < 0) return undefined;
    const r = this.ranges[i] as CachedRange;
    return endsAfter(r.end, key) ? r : undefined;
  }

  byId(rangeId: number): CachedRange | undefined {
    return this.ranges.find((r) => r.rangeId === rangeId);
  }

  /**
   * Caches a descriptor a server returned. Returns false (and changes nothing) when the cache
   * already holds a newer epoch of the same range or a newer range over some of its keys.
   */
  insert(d: CachedRange): boolean {
    if (d.end.length > 0 && Buffer.compare(d.start, d.end) >= 0) {
      throw new RangeError(`range ${d.rangeId}: start ${d.start.toString('hex')} is not below end ${d.end.toString('hex')}`);
    }
    const same = this.byId(d.rangeId);
    if (same && compareEpochs(d.epoch, same.epoch) < 0) return false;
    // What d proves stale goes in any case: overlapping ranges of a lower version.
    const superseded = (r: CachedRange): boolean =>
      r.rangeId === d.rangeId
        ? compareEpochs(r.epoch, d.epoch) < 0
        : r.epoch.version < d.epoch.version && overlaps(r.start, r.end, d.start, d.end);
    const newer = this.ranges.some((r) => r.rangeId !== d.rangeId && r.epoch.version >= d.epoch.version && overlaps(r.start, r.end, d.start, d.end));
    if (newer) {
      this.ranges = this.ranges.filter((r) => !superseded(r));
      return false;
    }
    const leader = same && compareEpochs(d.epoch, same.epoch) === 0 ? (d.leader ?? same.leader) : d.leader;
    const kept = this.ranges.filter((r) => r.rangeId !== d.rangeId && !overlaps(r.start, r.end, d.start, d.end));
    const entry: CachedRange = { ...d, leader };
    const at = kept.findIndex((r) => Buffer.compare(r.start, d.start) > 0);
    if (at < 0) kept.push(entry);
    else kept.splice(at, 0, entry);
    this.ranges = kept;
    return true;
  }

  /** Forgets a range (RangeNotFound, or a stale route with no replacement known). */
  invalidate(rangeId: number): void {
    this.ranges = this.ranges.filter((r) => r.rangeId !== rangeId);
  }

  /** Records the leader of a cached range (a NotLeader hint, or the node that answered). */
  setLeader(rangeId: number, leader: { nodeId: number; address: string } | undefined): void {
    const r = this.byId(rangeId);
    if (r) r.leader = leader;
  }

  /**
   * The cached ranges that cover [start, end) in key order, stopping at the first key not
   * covered (a scan then looks that key up and continues).
   */
  covering(start: Buffer, end: Buffer): CachedRange[] {
    const out: CachedRange[] = [];
    let key = start;
    for (;;) {
      const r = this.lookup(key);
      if (!r) return out;
      out.push(r);
      if (r.end.length === 0 || (end.length > 0 && Buffer.compare(r.end, end) >= 0)) return out;
      key = r.end;
    }
  }
}
