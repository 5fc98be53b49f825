// The raft `Storage` contract (src/raft/storage.ts), written once and run against every
// implementation: MemoryStorage now, the LevelDB storage later. Each case opens a fresh, empty
// storage. State is built only through the `WritableStorage` methods, and every write is awaited
// (durable implementations return promises; a write may also throw synchronously).
//
// Index arithmetic used throughout: the log holds entries [firstIndex, lastIndex]; firstIndex - 1
// is the snapshot (or compaction) point, whose term is kept; entries(lo, hi) is half-open.

import { CompactedError, SnapshotOutOfDateError, UnavailableError } from '../../src/raft/errors';
import type { WritableStorage } from '../../src/raft/storage';
import {
  ConfState,
  Entry,
  EntryType,
  HardState,
  Snapshot,
  encodeConfChange,
  ConfChangeType,
  entrySizeBytes,
} from '../../src/raft/types';

export interface OpenedStorage {
  storage: WritableStorage;
  close(): Promise<void>;
}

/** Plain, comparable view of an entry (data as a number array, whatever byte type the storage returns). */
interface EntryView {
  index: number;
  term: number;
  type: EntryType;
  data: number[];
}

export function entry(index: number, term: number, dataBytes = 0, type = EntryType.Normal): Entry {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (index * 31 + i) & 0xff;
  return { index, term, type, data };
}

function view(ents: readonly Entry[]): EntryView[] {
  return ents.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Array.from(e.data) }));
}

function snapshotView(s: Snapshot): unknown {
  return {
    index: s.metadata.index,
    term: s.metadata.term,
    voters: [...s.metadata.confState.voters],
    learners: [...s.metadata.confState.learners],
    data: Array.from(s.data),
  };
}

function hardStateView(hs: HardState): HardState {
  return { term: hs.term, vote: hs.vote, commit: hs.commit };
}

/** Runs `fn` (which may throw or return a rejecting promise) and returns what it threw. */
async function thrownBy(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw, but it completed');
}

function expectCompacted(err: unknown, firstIndex: number): void {
  expect(err).toBeInstanceOf(CompactedError);
  expect((err as CompactedError).code).toBe('RAFT_LOG_COMPACTED');
  expect((err as CompactedError).firstIndex).toBe(firstIndex);
}

function expectUnavailable(err: unknown, lastIndex: number): void {
  expect(err).toBeInstanceOf(UnavailableError);
  expect((err as UnavailableError).code).toBe('RAFT_LOG_UNAVAILABLE');
  expect((err as UnavailableError).lastIndex).toBe(lastIndex);
}

function expectSnapshotOutOfDate(err: unknown): void {
  expect(err).toBeInstanceOf(SnapshotOutOfDateError);
  expect((err as SnapshotOutOfDateError).code).toBe('RAFT_SNAPSHOT_OUT_OF_DATE');
}

const MAX = Number.MAX_SAFE_INTEGER;
const CONF_STATE: ConfState = { voters: [1, 2, 3], learners: [4] };

/**
 * The standard fixture (the etcd-raft storage tests' log): snapshot at index 3, term 3, then
 * entries 4, 5, 6 at terms 4, 5, 6 with data of 10, 20 and 30 bytes; entry 5 is a ConfChange.
 * firstIndex = 4, lastIndex = 6.
 */
const FIXTURE_SNAPSHOT: Snapshot = {
  metadata: { index: 3, term: 3, confState: CONF_STATE },
  data: new Uint8Array([7, 7, 7]),
};
const FIXTURE_ENTRIES: readonly Entry[] = [
  entry(4, 4, 10),
  {
    index: 5,
    term: 5,
    type: EntryType.ConfChange,
    data: encodeConfChange({ type: ConfChangeType.AddVoter, nodeId: 4, context: new Uint8Array([1, 2]) }),
  },
  entry(6, 6, 30),
];

async function loadFixture(s: WritableStorage): Promise<void> {
  await s.applySnapshot(FIXTURE_SNAPSHOT);
  await s.append(FIXTURE_ENTRIES);
}

/** The log as (index, term) pairs from the snapshot point to lastIndex, read through term(). */
function terms(s: WritableStorage): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = s.firstIndex() - 1; i <= s.lastIndex(); i++) out.push([i, s.term(i)]);
  return out;
}

export function runStorageConformance(name: string, open: () => Promise<OpenedStorage>): void {
  describe(`raft Storage conformance: ${name}`, () => {
    let opened: OpenedStorage | undefined;
    let s: WritableStorage;

    beforeEach(async () => {
      opened = await open();
      s = opened.storage;
    });

    afterEach(async () => {
      const o = opened;
      opened = undefined;
      if (o !== undefined) await o.close();
    });

    describe('a fresh storage', () => {
      it('has an empty log: firstIndex 1, lastIndex 0, term(0) = 0', () => {
        expect(s.firstIndex()).toBe(1);
        expect(s.lastIndex()).toBe(0);
        expect(s.term(0)).toBe(0);
        expect(s.entries(1, 1, MAX)).toEqual([]);
      });

      it('has an empty hard state, empty membership and an empty snapshot', () => {
        const st = s.initialState();
        expect(hardStateView(st.hardState)).toEqual({ term: 0, vote: 0, commit: 0 });
        expect([...st.confState.voters]).toEqual([]);
        expect([...st.confState.learners]).toEqual([]);
        expect(s.snapshot().metadata.index).toBe(0);
        expect(s.snapshot().metadata.term).toBe(0);
      });

      it('throws UnavailableError past the end and CompactedError at index 0', () => {
        expectUnavailable(thrownSync(() => s.term(1)), 0);
        expectUnavailable(thrownSync(() => s.entries(1, 2, MAX)), 0);
        expectCompacted(thrownSync(() => s.entries(0, 1, MAX)), 1);
      });
    });

    describe('initialState', () => {
      it('returns the hard state last set', async () => {
        await s.append([entry(1, 1), entry(2, 1), entry(3, 2)]);
        await s.setHardState({ term: 2, vote: 1, commit: 1 });
        expect(hardStateView(s.initialState().hardState)).toEqual({ term: 2, vote: 1, commit: 1 });
        await s.setHardState({ term: 3, vote: 0, commit: 3 });
        expect(hardStateView(s.initialState().hardState)).toEqual({ term: 3, vote: 0, commit: 3 });
      });

      it('reports the snapshot membership after applySnapshot', async () => {
        await loadFixture(s);
        const cs = s.initialState().confState;
        expect([...cs.voters]).toEqual([1, 2, 3]);
        expect([...cs.learners]).toEqual([4]);
      });
    });

    describe('term', () => {
      // Fixture: snapshot point 3, entries 4..6.
      it.each([
        [3, 3],
        [4, 4],
        [5, 5],
        [6, 6],
      ])('term(%i) = %i for i in [firstIndex - 1, lastIndex]', async (i, want) => {
        await loadFixture(s);
        expect(s.term(i)).toBe(want);
      });

      it('throws CompactedError below firstIndex - 1', async () => {
        await loadFixture(s);
        expectCompacted(thrownSync(() => s.term(2)), 4);
        expectCompacted(thrownSync(() => s.term(0)), 4);
      });

      it('throws UnavailableError above lastIndex', async () => {
        await loadFixture(s);
        expectUnavailable(thrownSync(() => s.term(7)), 6);
        expectUnavailable(thrownSync(() => s.term(100)), 6);
      });
    });

    describe('entries', () => {
      const size4 = entrySizeBytes(FIXTURE_ENTRIES[0] as Entry);
      const size5 = entrySizeBytes(FIXTURE_ENTRIES[1] as Entry);
      const size6 = entrySizeBytes(FIXTURE_ENTRIES[2] as Entry);

      it.each([
        ['[4, 5)', 4, 5, MAX, [4]],
        ['[4, 6)', 4, 6, MAX, [4, 5]],
        ['[4, 7) (up to lastIndex + 1)', 4, 7, MAX, [4, 5, 6]],
        ['[5, 7)', 5, 7, MAX, [5, 6]],
        ['[6, 7)', 6, 7, MAX, [6]],
        ['[5, 5) (empty range)', 5, 5, MAX, []],
        ['[7, 7) (empty range at lastIndex + 1)', 7, 7, MAX, []],
      ])('returns %s', async (_label, lo, hi, maxSizeBytes, want) => {
        await loadFixture(s);
        expect(s.entries(lo, hi, maxSizeBytes).map((e) => e.index)).toEqual(want);
      });

      it('returns entries byte for byte as appended, ConfChange type included', async () => {
        await loadFixture(s);
        expect(view(s.entries(4, 7, MAX))).toEqual(view(FIXTURE_ENTRIES));
      });

      it.each([
        ['0: at least one entry is always returned', () => 0, [4]],
        ['just below the first entry: still one entry', () => size4 - 1, [4]],
        ['exactly the first entry', () => size4, [4]],
        ['between one and two entries', () => size4 + Math.floor(size5 / 2), [4]],
        ['exactly two entries', () => size4 + size5, [4, 5]],
        ['one byte short of three entries', () => size4 + size5 + size6 - 1, [4, 5]],
        ['exactly three entries', () => size4 + size5 + size6, [4, 5, 6]],
      ])('respects maxSizeBytes = %s', async (_label, limit, want) => {
        await loadFixture(s);
        expect(s.entries(4, 7, limit()).map((e) => e.index)).toEqual(want);
      });

      it('throws CompactedError when lo <= the snapshot index', async () => {
        await loadFixture(s);
        expectCompacted(thrownSync(() => s.entries(3, 5, MAX)), 4);
        expectCompacted(thrownSync(() => s.entries(2, 6, MAX)), 4);
      });

      it('throws UnavailableError when hi > lastIndex + 1', async () => {
        await loadFixture(s);
        expectUnavailable(thrownSync(() => s.entries(4, 8, MAX)), 6);
        expectUnavailable(thrownSync(() => s.entries(8, 8, MAX)), 6);
      });
    });

    describe('append', () => {
      it('extends an empty log from index 1', async () => {
        await s.append([entry(1, 1), entry(2, 1), entry(3, 2)]);
        expect(s.firstIndex()).toBe(1);
        expect(s.lastIndex()).toBe(3);
        expect(terms(s)).toEqual([[0, 0], [1, 1], [2, 1], [3, 2]]);
      });

      it('of nothing changes nothing', async () => {
        await loadFixture(s);
        await s.append([]);
        expect(terms(s)).toEqual([[3, 3], [4, 4], [5, 5], [6, 6]]);
      });

      it('extends the log at lastIndex + 1', async () => {
        await loadFixture(s);
        await s.append([entry(7, 6), entry(8, 7)]);
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(8);
        expect(terms(s)).toEqual([[3, 3], [4, 4], [5, 5], [6, 6], [7, 6], [8, 7]]);
      });

      it('truncates a conflicting suffix and replaces it', async () => {
        await loadFixture(s);
        await s.append([entry(5, 7, 3), entry(6, 7), entry(7, 7)]);
        expect(s.lastIndex()).toBe(7);
        expect(terms(s)).toEqual([[3, 3], [4, 4], [5, 7], [6, 7], [7, 7]]);
        expect(view(s.entries(5, 6, MAX))).toEqual(view([entry(5, 7, 3)]));
      });

      it('replaces everything from entries[0].index on: a tail beyond the appended entries is dropped', async () => {
        // Raft hands storage an authoritative tail: whatever storage held at or after
        // entries[0].index is superseded, even past the last appended entry.
        await loadFixture(s);
        await s.append([entry(4, 4, 10), entry(5, 6)]);
        expect(s.lastIndex()).toBe(5);
        expect(terms(s)).toEqual([[3, 3], [4, 4], [5, 6]]);
        expectUnavailable(thrownSync(() => s.term(6)), 5);
      });

      it('can truncate down to a single entry right after the snapshot', async () => {
        await loadFixture(s);
        await s.append([entry(4, 5)]);
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(4);
        expect(terms(s)).toEqual([[3, 3], [4, 5]]);
      });

      it('ignores the part of the entries at or below the snapshot point', async () => {
        await loadFixture(s);
        await s.append([entry(2, 3), entry(3, 3), entry(4, 5), entry(5, 5)]);
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(5);
        // The snapshot point keeps its term; entries from firstIndex on are replaced.
        expect(terms(s)).toEqual([[3, 3], [4, 5], [5, 5]]);
      });

      it('is a no-op when every entry is at or below the snapshot point', async () => {
        await loadFixture(s);
        await s.append([entry(1, 1), entry(2, 2), entry(3, 3)]);
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(6);
        expect(terms(s)).toEqual([[3, 3], [4, 4], [5, 5], [6, 6]]);
      });

      it('throws on a gap after lastIndex and leaves the log unchanged', async () => {
        await loadFixture(s);
        const err = await thrownBy(() => s.append([entry(8, 6), entry(9, 6)]));
        expect(err).toBeInstanceOf(Error);
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(6);
        expect(view(s.entries(4, 7, MAX))).toEqual(view(FIXTURE_ENTRIES));
      });

      it('throws on a gap in an empty log', async () => {
        const err = await thrownBy(() => s.append([entry(2, 1)]));
        expect(err).toBeInstanceOf(Error);
        expect(s.lastIndex()).toBe(0);
      });
    });

    describe('createSnapshot', () => {
      const newConf: ConfState = { voters: [1, 2, 4], learners: [] };

      it('records a snapshot at an index in the log, with that entry\'s term', async () => {
        await loadFixture(s);
        const data = new Uint8Array([9, 8, 7, 6]);
        const snap = await s.createSnapshot(5, newConf, data);
        const want = { index: 5, term: 5, voters: [1, 2, 4], learners: [], data: [9, 8, 7, 6] };
        expect(snapshotView(snap)).toEqual(want);
        expect(snapshotView(s.snapshot())).toEqual(want);
      });

      it('does not compact the log', async () => {
        await loadFixture(s);
        await s.createSnapshot(6, newConf, new Uint8Array(0));
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(6);
        expect(view(s.entries(4, 7, MAX))).toEqual(view(FIXTURE_ENTRIES));
      });

      it('can be called repeatedly with increasing indexes', async () => {
        await loadFixture(s);
        await s.createSnapshot(4, newConf, new Uint8Array([1]));
        await s.createSnapshot(6, newConf, new Uint8Array([2]));
        expect(s.snapshot().metadata.index).toBe(6);
        expect(s.snapshot().metadata.term).toBe(6);
        expect(Array.from(s.snapshot().data)).toEqual([2]);
      });

      it('throws SnapshotOutOfDateError for an index older than the current snapshot, keeping it', async () => {
        await loadFixture(s);
        await s.createSnapshot(5, newConf, new Uint8Array([1]));
        expectSnapshotOutOfDate(await thrownBy(() => s.createSnapshot(4, newConf, new Uint8Array([2]))));
        expect(snapshotView(s.snapshot())).toEqual({ index: 5, term: 5, voters: [1, 2, 4], learners: [], data: [1] });
      });

      it('throws SnapshotOutOfDateError for the current snapshot index', async () => {
        await loadFixture(s);
        expectSnapshotOutOfDate(await thrownBy(() => s.createSnapshot(3, newConf, new Uint8Array(0))));
        expect(snapshotView(s.snapshot())).toEqual(snapshotView(FIXTURE_SNAPSHOT));
      });

      it('throws UnavailableError beyond lastIndex, keeping the current snapshot', async () => {
        await loadFixture(s);
        expectUnavailable(await thrownBy(() => s.createSnapshot(7, newConf, new Uint8Array(0))), 6);
        expect(snapshotView(s.snapshot())).toEqual(snapshotView(FIXTURE_SNAPSHOT));
      });
    });

    describe('compact', () => {
      // Compaction happens at or below a snapshot the application has taken.
      async function fixtureWithSnapshotAt6(): Promise<void> {
        await loadFixture(s);
        await s.append([entry(7, 6), entry(8, 7)]);
        await s.createSnapshot(6, CONF_STATE, new Uint8Array([6]));
      }

      it('discards entries up to and including compactIndex, keeping its term', async () => {
        await fixtureWithSnapshotAt6();
        await s.compact(5);
        expect(s.firstIndex()).toBe(6);
        expect(s.lastIndex()).toBe(8);
        expect(terms(s)).toEqual([[5, 5], [6, 6], [7, 6], [8, 7]]);
        expectCompacted(thrownSync(() => s.term(4)), 6);
        expectCompacted(thrownSync(() => s.entries(5, 7, MAX)), 6);
        expect(s.entries(6, 9, MAX).map((e) => e.index)).toEqual([6, 7, 8]);
      });

      it('can compact up to the snapshot index, leaving the snapshot in place', async () => {
        await fixtureWithSnapshotAt6();
        await s.compact(4);
        await s.compact(6);
        expect(s.firstIndex()).toBe(7);
        expect(s.lastIndex()).toBe(8);
        expect(s.term(6)).toBe(6);
        expect(s.snapshot().metadata.index).toBe(6);
        expect(Array.from(s.snapshot().data)).toEqual([6]);
      });

      it('leaves an empty log when compacting the last entry', async () => {
        await loadFixture(s);
        await s.createSnapshot(6, CONF_STATE, new Uint8Array(0));
        await s.compact(6);
        expect(s.firstIndex()).toBe(7);
        expect(s.lastIndex()).toBe(6);
        expect(s.term(6)).toBe(6);
        expect(s.entries(7, 7, MAX)).toEqual([]);
        await s.append([entry(7, 7)]);
        expect(terms(s)).toEqual([[6, 6], [7, 7]]);
      });

      it('throws CompactedError at or below the current compaction point, changing nothing', async () => {
        await fixtureWithSnapshotAt6();
        await s.compact(5);
        expectCompacted(await thrownBy(() => s.compact(5)), 6);
        expectCompacted(await thrownBy(() => s.compact(2)), 6);
        expect(s.firstIndex()).toBe(6);
        expect(s.lastIndex()).toBe(8);
      });

      it('throws UnavailableError beyond lastIndex, changing nothing', async () => {
        await fixtureWithSnapshotAt6();
        expectUnavailable(await thrownBy(() => s.compact(9)), 8);
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(8);
      });
    });

    describe('applySnapshot', () => {
      const snapAt = (index: number, term: number): Snapshot => ({
        metadata: { index, term, confState: { voters: [1, 2], learners: [3] } },
        data: new Uint8Array([index & 0xff, term & 0xff]),
      });

      it('replaces the log with a snapshot beyond it', async () => {
        await loadFixture(s);
        await s.applySnapshot(snapAt(10, 8));
        expect(s.firstIndex()).toBe(11);
        expect(s.lastIndex()).toBe(10);
        expect(s.term(10)).toBe(8);
        expectCompacted(thrownSync(() => s.term(9)), 11);
        expectUnavailable(thrownSync(() => s.term(11)), 10);
        expect(s.entries(11, 11, MAX)).toEqual([]);
        expect(snapshotView(s.snapshot())).toEqual(snapshotView(snapAt(10, 8)));
        const cs = s.initialState().confState;
        expect([...cs.voters]).toEqual([1, 2]);
        expect([...cs.learners]).toEqual([3]);
      });

      it('replaces the whole log even when the snapshot falls inside it', async () => {
        await loadFixture(s);
        await s.applySnapshot(snapAt(5, 5));
        expect(s.firstIndex()).toBe(6);
        expect(s.lastIndex()).toBe(5);
        expectUnavailable(thrownSync(() => s.term(6)), 5);
      });

      it('accepts appends right after the snapshot', async () => {
        await loadFixture(s);
        await s.applySnapshot(snapAt(10, 8));
        await s.append([entry(11, 8), entry(12, 9)]);
        expect(terms(s)).toEqual([[10, 8], [11, 8], [12, 9]]);
        const err = await thrownBy(() => s.append([entry(14, 9)]));
        expect(err).toBeInstanceOf(Error);
        expect(s.lastIndex()).toBe(12);
      });

      it('throws SnapshotOutOfDateError for an older snapshot, leaving the log unchanged', async () => {
        await loadFixture(s);
        expectSnapshotOutOfDate(await thrownBy(() => s.applySnapshot(snapAt(2, 2))));
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(6);
        expect(view(s.entries(4, 7, MAX))).toEqual(view(FIXTURE_ENTRIES));
        expect(snapshotView(s.snapshot())).toEqual(snapshotView(FIXTURE_SNAPSHOT));
      });

      it('throws SnapshotOutOfDateError for a snapshot at the current snapshot index', async () => {
        await loadFixture(s);
        expectSnapshotOutOfDate(await thrownBy(() => s.applySnapshot(snapAt(3, 3))));
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(6);
      });

      it('throws SnapshotOutOfDateError for a snapshot older than one created locally', async () => {
        await loadFixture(s);
        await s.createSnapshot(6, CONF_STATE, new Uint8Array(0));
        expectSnapshotOutOfDate(await thrownBy(() => s.applySnapshot(snapAt(5, 5))));
        expect(s.snapshot().metadata.index).toBe(6);
        expect(s.lastIndex()).toBe(6);
      });
    });
  });
}

/** Runs a synchronous read and returns what it threw (reads are synchronous by contract). */
function thrownSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw, but it returned');
}
