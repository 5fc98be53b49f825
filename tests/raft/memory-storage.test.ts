import fc from 'fast-check';
import { CompactedError, UnavailableError } from '../../src/raft/errors';
import { MemoryStorage, limitSize } from '../../src/raft/storage';
import { Entry, EntryType, entrySizeBytes } from '../../src/raft/types';
import { runStorageConformance } from './storage-conformance';

runStorageConformance('MemoryStorage', async () => ({
  storage: new MemoryStorage(),
  close: async () => {},
}));

describe('MemoryStorage', () => {
  it('starts with the membership it was constructed with', () => {
    const storage = new MemoryStorage({ voters: [1, 2, 3], learners: [] });
    expect(storage.initialState().confState).toEqual({ voters: [1, 2, 3], learners: [] });
  });

  it('refuses to compact past its snapshot, which would strand a follower that needs the gap', () => {
    const storage = new MemoryStorage();
    storage.append([1, 2, 3, 4].map((i) => ({ index: i, term: 1, type: EntryType.Normal, data: new Uint8Array(0) })));
    storage.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array(0));
    expect(() => storage.compact(3)).toThrow(RangeError);
    expect(storage.firstIndex()).toBe(1);
    storage.compact(2);
    expect(storage.firstIndex()).toBe(3);
    expect(storage.term(2)).toBe(1);
  });
});

describe('limitSize', () => {
  const ents = (sizes: number[]): Entry[] =>
    sizes.map((n, k) => ({ index: k + 1, term: 1, type: EntryType.Normal, data: new Uint8Array(n) }));

  it('returns an empty list unchanged', () => {
    expect(limitSize([], 0)).toEqual([]);
  });

  it('takes the longest prefix within the limit, but at least one entry', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(40), { maxLength: 12 }), fc.nat(400), (sizes, maxSizeBytes) => {
        const got = limitSize(ents(sizes), maxSizeBytes).length;
        expect(got).toBe(modelLimitCount(sizes.map((n) => n + 24), maxSizeBytes));
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Model-based property test: MemoryStorage against a trivial model under random appends,
// compactions and reads.
//
// The model never discards anything: `log[i - 1]` is the entry at index i, and `compacted` is the
// compaction point (0 when nothing is compacted). Entries at or below `compacted` only exist in the
// model; the storage must refuse them, except the compaction point's term.

interface Model {
  log: Entry[];
  compacted: number;
}

function modelLastIndex(m: Model): number {
  return m.log.length;
}

function modelTerm(m: Model, i: number): number {
  return i === 0 ? 0 : (m.log[i - 1] as Entry).term;
}

/** Number of entries (with these sizes) that a size-limited read returns: >= 1 if any. */
function modelLimitCount(sizes: number[], maxSizeBytes: number): number {
  let total = 0;
  let n = 0;
  for (const size of sizes) {
    total += size;
    if (n > 0 && total > maxSizeBytes) break;
    n++;
  }
  return n;
}

type Op =
  | { kind: 'append'; startPick: number; count: number; terms: number[]; dataBytes: number[] }
  | { kind: 'compact'; pick: number }
  | { kind: 'read'; loPick: number; spanPick: number; maxSizeBytes: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      startPick: fc.nat(),
      count: fc.integer({ min: 0, max: 6 }),
      terms: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 6, maxLength: 6 }),
      dataBytes: fc.array(fc.nat(16), { minLength: 6, maxLength: 6 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      loPick: fc.nat(),
      spanPick: fc.nat(),
      maxSizeBytes: fc.oneof(fc.nat(200), fc.constant(Number.MAX_SAFE_INTEGER)),
    }),
  },
);

/** Picks an integer in [lo, hi] from a raw natural number. */
function pickIn(raw: number, lo: number, hi: number): number {
  return lo + (raw % (hi - lo + 1));
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

function applyOp(storage: MemoryStorage, m: Model, op: Op): void {
  const last = modelLastIndex(m);
  switch (op.kind) {
    case 'append': {
      // From well below the compaction point (partly compacted) to past the end (a gap).
      const start = Math.max(1, pickIn(op.startPick, m.compacted - 2, last + 2));
      const ents: Entry[] = [];
      for (let k = 0; k < op.count; k++) {
        const data = new Uint8Array(op.dataBytes[k] as number).fill(start + k);
        ents.push({ index: start + k, term: op.terms[k] as number, type: EntryType.Normal, data });
      }
      const kept = ents.filter((e) => e.index > m.compacted);
      const gap = kept.length > 0 && (kept[0] as Entry).index > last + 1;
      const err = caught(() => storage.append(ents));
      if (gap) {
        expect(err).toBeInstanceOf(Error);
        return;
      }
      expect(err).toBeUndefined();
      if (kept.length > 0) m.log = m.log.slice(0, (kept[0] as Entry).index - 1).concat(kept);
      return;
    }
    case 'compact': {
      const index = pickIn(op.pick, m.compacted - 1, last + 1);
      // A snapshot at the compaction point first: compaction may not pass the snapshot.
      const err = caught(() => {
        if (index > m.compacted && index <= last) storage.createSnapshot(index, { voters: [1], learners: [] }, new Uint8Array(0));
        storage.compact(index);
      });
      if (index <= m.compacted) {
        expect(err).toBeInstanceOf(CompactedError);
      } else if (index > last) {
        expect(err).toBeInstanceOf(UnavailableError);
      } else {
        expect(err).toBeUndefined();
        m.compacted = index;
      }
      return;
    }
    case 'read': {
      const lo = pickIn(op.loPick, m.compacted, last + 2);
      const hi = lo + (op.spanPick % (last + 3 - lo));
      const err = caught(() => storage.entries(lo, hi, op.maxSizeBytes));
      if (lo <= m.compacted) {
        expect(err).toBeInstanceOf(CompactedError);
      } else if (hi > last + 1) {
        expect(err).toBeInstanceOf(UnavailableError);
      } else {
        expect(err).toBeUndefined();
        const want = m.log.slice(lo - 1, hi - 1);
        const n = modelLimitCount(want.map(entrySizeBytes), op.maxSizeBytes);
        expect(storage.entries(lo, hi, op.maxSizeBytes)).toEqual(want.slice(0, n));
      }
      return;
    }
  }
}

function checkAgainstModel(storage: MemoryStorage, m: Model): void {
  const last = modelLastIndex(m);
  expect(storage.firstIndex()).toBe(m.compacted + 1);
  expect(storage.lastIndex()).toBe(last);
  for (let i = m.compacted; i <= last; i++) expect(storage.term(i)).toBe(modelTerm(m, i));
  expect(caught(() => storage.term(m.compacted - 1))).toBeInstanceOf(CompactedError);
  expect(caught(() => storage.term(last + 1))).toBeInstanceOf(UnavailableError);
  if (last > m.compacted) {
    expect(storage.entries(m.compacted + 1, last + 1, Number.MAX_SAFE_INTEGER)).toEqual(m.log.slice(m.compacted));
  }
}

describe('MemoryStorage against a model', () => {
  it('agrees on firstIndex, lastIndex, term and entries under random append/compact/read sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const storage = new MemoryStorage();
        const m: Model = { log: [], compacted: 0 };
        for (const op of ops) {
          applyOp(storage, m, op);
          checkAgainstModel(storage, m);
        }
      }),
      { numRuns: 500 },
    );
  });
});
