// A node-wide cache of applied values (RocksDB calls it a row cache), in front of LevelDB's point
// reads. A LevelDB get of a small value costs a few microseconds (memtable, then a table per
// level: filter, index, block), which was ~40% of a node's CPU serving stale gets (scripts/bench
// profiles); a hit here is one Map lookup.
//
// Coherence is the engine's job (engine.ts): every batch it writes invalidates its data keys here
// when the batch is handed to LevelDB and again when LevelDB has written it, so a value read while
// the batch was in flight (old or new) never outlives it. The cache holds only what LevelDB held
// at some moment; it never decides what a read returns on its own.
//
// Bounded by bytes with two generations, not a strict LRU (a hit costs no list update): entries
// go into `young`; when `young` has used half the budget, it becomes `old` and the previous `old`
// is dropped. A hit in `old` moves the entry to `young`, so what is read keeps being kept.

/** What is cached for a key: its raw stored value, or null when LevelDB had no such key. */
export type CachedRow = Buffer | null;

/** Bytes counted per entry beyond its key and value (Map slot, strings, Buffer object). */
const ENTRY_OVERHEAD_BYTES = 96;

export class RowCache {
  private young = new Map<string, CachedRow>();
  private old = new Map<string, CachedRow>();
  private youngBytes = 0;
  hits = 0;
  misses = 0;

  /** `budgetBytes`: the most both generations hold together (roughly; 0 disables the cache). */
  constructor(private readonly budgetBytes: number) {}

  get enabled(): boolean {
    return this.budgetBytes > 0;
  }

  /** Entries held (for tests and status). */
  get size(): number {
    return this.young.size + this.old.size;
  }

  /** The cached row, or undefined on a miss. */
  get(key: string): CachedRow | undefined {
    const y = this.young.get(key);
    if (y !== undefined) {
      this.hits++;
      return y;
    }
    const o = this.old.get(key);
    if (o === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.old.delete(key);
    this.add(key, o);
    return o;
  }

  set(key: string, row: CachedRow): void {
    if (!this.enabled) return;
    // Whatever was cached for the key goes first: add() may decline the new row (too large).
    this.delete(key);
    this.add(key, row);
  }

  delete(key: string): void {
    this.old.delete(key);
    const prev = this.young.get(key);
    if (prev === undefined) return;
    this.young.delete(key);
    this.youngBytes -= rowBytes(key, prev);
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
    this.youngBytes = 0;
  }

  private add(key: string, row: CachedRow): void {
    const bytes = rowBytes(key, row);
    if (bytes > this.budgetBytes / 2) return; // would not fit a generation
    if (this.youngBytes + bytes > this.budgetBytes / 2) {
      this.old = this.young;
      this.young = new Map();
      this.youngBytes = 0;
    }
    this.young.set(key, row);
    this.youngBytes += bytes;
  }
}

function rowBytes(key: string, row: CachedRow): number {
  return key.length + (row?.length ?? 0) + ENTRY_OVERHEAD_BYTES;
}
