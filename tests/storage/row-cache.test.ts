// The row cache (src/storage/row-cache.ts) and its coherence with LevelDB through the engine
// (Engine.getSync / Engine.write in src/storage/engine.ts): hits and misses, the byte budget and
// its two generations, which keys are cached, and that no cached value outlives a write — one
// that is in flight while the key is read, or one that fails.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, FORMAT_VERSION, WriteBatch } from '../../src/storage';
import { PREFIX_DATA, PREFIX_META_DATA, hardStateKey, metaKey } from '../../src/storage/keys';
import { RowCache } from '../../src/storage/row-cache';

/** Bytes row-cache.ts counts per entry besides its key and value (ENTRY_OVERHEAD_BYTES there). */
const OVERHEAD = 96;

const dirs: string[] = [];
const engines: Engine[] = [];

async function openEngine(rowCacheBytes?: number): Promise<Engine> {
  const dir = mkdtempSync(join(tmpdir(), 'rangekv-rowcache-'));
  dirs.push(dir);
  const engine = await Engine.open({ dir, nodeId: 1, clusterId: 'c1', rowCacheBytes });
  engines.push(engine);
  return engine;
}

afterEach(async () => {
  jest.restoreAllMocks();
  for (const e of engines.splice(0)) if (e.db.status === 'open') await e.close();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataKey(name: string, prefix = PREFIX_DATA): Buffer {
  return Buffer.concat([Buffer.from([prefix]), Buffer.from(name, 'utf8')]);
}

function val(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

async function put(engine: Engine, key: Buffer, value: Buffer): Promise<void> {
  const b = new WriteBatch();
  b.put(key, value);
  await engine.write(b);
}

async function del(engine: Engine, key: Buffer): Promise<void> {
  const b = new WriteBatch();
  b.del(key);
  await engine.write(b);
}

/** An engine with a 1 MiB row cache holding data key `name` = `value` (written, then read once). */
async function engineHolding(name: string, value: string): Promise<{ engine: Engine; k: Buffer }> {
  const engine = await openEngine(1024 * 1024);
  const k = dataKey(name);
  await put(engine, k, val(value));
  expect(read(engine, k)).toBe(value);
  return { engine, k };
}

/** What getSync returned, as a string (undefined for an absent key). */
function read(engine: Engine, key: Buffer): string | undefined {
  return engine.getSync(key)?.toString('utf8');
}

/** What LevelDB itself holds, bypassing the row cache. */
function stored(engine: Engine, key: Buffer): string | undefined {
  return engine.db.getSync(key)?.toString('utf8');
}

/** The part of a LevelDB chained batch that Engine.write uses last. */
interface WritableBatch {
  write(options?: { sync?: boolean }): Promise<void>;
}

/**
 * Makes the engine's next writes go through `around`, which gets the real LevelDB write to call
 * (or not) — so a test can read while a batch is deterministically in flight, or fail a write.
 */
function interceptWrites(engine: Engine, around: (realWrite: () => Promise<void>) => Promise<void>): void {
  const db = engine.db as unknown as { batch(): WritableBatch };
  const realBatch = db.batch.bind(db);
  jest.spyOn(db, 'batch').mockImplementation(() => {
    const chained = realBatch();
    const realWrite = chained.write.bind(chained);
    chained.write = (options) => around(() => realWrite(options));
    return chained;
  });
}

describe('RowCache', () => {
  it('returns undefined on a miss, the value after set, and null (not a miss) for a key known absent', () => {
    const c = new RowCache(10_000);
    expect(c.enabled).toBe(true);
    expect(c.get('a')).toBeUndefined();
    c.set('a', val('one'));
    c.set('b', null);
    expect(c.get('a')?.toString()).toBe('one');
    expect(c.get('b')).toBeNull();
    expect(c.get('c')).toBeUndefined();
    expect(c.size).toBe(2);
  });

  it('replaces the value of a key that is set again', () => {
    const c = new RowCache(10_000);
    c.set('a', val('one'));
    c.set('a', val('two'));
    c.set('b', val('x'));
    c.set('b', null);
    expect(c.get('a')?.toString()).toBe('two');
    expect(c.get('b')).toBeNull();
    expect(c.size).toBe(2);
  });

  it('counts hits (including cached absence) and misses', () => {
    const c = new RowCache(10_000);
    c.get('a');
    c.set('a', val('1'));
    c.set('n', null);
    c.get('a');
    c.get('a');
    c.get('n');
    c.get('zz');
    expect(c.hits).toBe(3);
    expect(c.misses).toBe(2);
  });

  it('delete removes a key from the young and from the old generation', () => {
    // Entries of 1 + 4 + 96 = 101 bytes; a generation holds 2 of them (half of 404).
    const c = new RowCache(404);
    c.set('a', val('aaaa'));
    c.set('b', val('bbbb'));
    c.set('c', val('cccc')); // young was full: {a, b} became old, c starts the new young
    expect(c.size).toBe(3);
    c.delete('a'); // in old
    c.delete('c'); // in young
    c.delete('q'); // in neither: no effect
    expect(c.get('a')).toBeUndefined();
    expect(c.get('c')).toBeUndefined();
    expect(c.get('b')?.toString()).toBe('bbbb');
    expect(c.size).toBe(1);
  });

  it('clear drops every entry', () => {
    const c = new RowCache(404);
    for (const k of ['a', 'b', 'c']) c.set(k, val('vvvv'));
    c.clear();
    expect(c.size).toBe(0);
    expect(c.get('a')).toBeUndefined();
    expect(c.get('c')).toBeUndefined();
  });

  it('stays within its byte budget however many entries are set', () => {
    const budget = 64 * 1024;
    const c = new RowCache(budget);
    const entryBytes = 8 + 100 + OVERHEAD;
    let maxSize = 0;
    for (let i = 0; i < 5000; i++) {
      c.set(`k${String(i).padStart(7, '0')}`, Buffer.alloc(100, i & 0xff));
      maxSize = Math.max(maxSize, c.size);
    }
    expect(5000 * entryBytes).toBeGreaterThan(10 * budget); // far beyond the budget
    expect(maxSize * entryBytes).toBeLessThanOrEqual(budget);
    expect(c.size).toBeGreaterThan(0);
    // The most recent entries are kept, the earliest are gone.
    expect(c.get('k0004999')?.[0]).toBe(4999 & 0xff);
    expect(c.get('k0000000')).toBeUndefined();
  });

  it('keeps an entry that is read repeatedly through generation turnover, and drops one that is not', () => {
    const budget = 8 * 1024;
    const c = new RowCache(budget);
    c.set('hot', val('H'));
    c.set('cold', val('C'));
    const entryBytes = 6 + 50 + OVERHEAD;
    const inserts = Math.ceil((3 * budget) / entryBytes); // more than the budget's worth, 3 times over
    for (let i = 0; i < inserts; i++) {
      c.set(`o${String(i).padStart(5, '0')}`, Buffer.alloc(50));
      expect(c.get('hot')?.toString()).toBe('H');
    }
    expect(c.get('hot')?.toString()).toBe('H');
    expect(c.get('cold')).toBeUndefined();
  });

  it('does not cache an entry larger than half the budget', () => {
    const c = new RowCache(1000);
    // 'k' + 403 bytes + overhead = 500 bytes: exactly half the budget, cached.
    c.set('k', Buffer.alloc(1000 / 2 - 1 - OVERHEAD));
    expect(c.get('k')).toBeDefined();
    // One byte more does not fit a generation.
    c.set('big', Buffer.alloc(1000 / 2 - 3 - OVERHEAD + 1));
    expect(c.get('big')).toBeUndefined();
    c.set('huge', Buffer.alloc(10_000));
    expect(c.get('huge')).toBeUndefined();
    expect(c.size).toBe(1);
  });

  it('a row too large to cache replaces what was cached for its key (the old value is not served)', () => {
    const c = new RowCache(1000);
    c.set('k', val('small'));
    c.set('k', Buffer.alloc(600));
    expect(c.get('k')).toBeUndefined();
    expect(c.size).toBe(0);
    // The byte count stayed true: the budget still holds as many small rows as before.
    for (let i = 0; i < 100; i++) c.set(`k${i}`, val('x'));
    expect(c.size * (3 + 1 + OVERHEAD)).toBeLessThanOrEqual(1000);
  });

  it('is disabled with a budget of 0 and caches nothing', () => {
    const c = new RowCache(0);
    expect(c.enabled).toBe(false);
    c.set('a', val('1'));
    c.set('n', null);
    expect(c.size).toBe(0);
    expect(c.get('a')).toBeUndefined();
    expect(c.get('n')).toBeUndefined();
  });
});

describe('Engine row cache coherence', () => {
  it('serves a repeated read of a data key from the cache', async () => {
    const { engine, k } = await engineHolding('user/1', 'v1');
    const hits = engine.rows.hits;
    expect(engine.rows.size).toBe(1);
    expect(read(engine, k)).toBe('v1');
    expect(engine.rows.hits).toBe(hits + 1);
  });

  it('returns the new value after an overwrite and undefined after a delete', async () => {
    const { engine, k } = await engineHolding('user/1', 'v1');
    expect(read(engine, k)).toBe('v1'); // cached now
    await put(engine, k, val('v2'));
    expect(read(engine, k)).toBe('v2');
    expect(read(engine, k)).toBe('v2');
    await del(engine, k);
    expect(read(engine, k)).toBeUndefined();
    expect(read(engine, k)).toBeUndefined();
  });

  it('forgets a cached absence when the key is written', async () => {
    const engine = await openEngine(1024 * 1024);
    const k = dataKey('later');
    expect(read(engine, k)).toBeUndefined();
    expect(read(engine, k)).toBeUndefined();
    expect(engine.rows.size).toBe(1); // the absence is cached
    await put(engine, k, val('now'));
    expect(read(engine, k)).toBe('now');
  });

  it('invalidates every data key of a multi-key batch, including meta-range data keys', async () => {
    const engine = await openEngine(1024 * 1024);
    const keys = [dataKey('a'), dataKey('b'), dataKey('m', PREFIX_META_DATA)];
    const b1 = new WriteBatch();
    for (const k of keys) b1.put(k, val('old'));
    await engine.write(b1);
    for (const k of keys) expect(read(engine, k)).toBe('old');
    expect(engine.rows.size).toBe(3); // both data keyspaces are cached
    const b2 = new WriteBatch();
    b2.put(keys[0] as Buffer, val('new'));
    b2.del(keys[1] as Buffer);
    b2.put(keys[2] as Buffer, val('new'));
    await engine.write(b2);
    expect(keys.map((k) => read(engine, k))).toEqual(['new', undefined, 'new']);
  });

  it('never caches keys outside the data keyspaces', async () => {
    const engine = await openEngine(1024 * 1024);
    const hs = hardStateKey(7);
    await put(engine, hs, val('hard'));
    expect(read(engine, metaKey('format'))).toBe(String(FORMAT_VERSION));
    expect(read(engine, metaKey('cluster'))).toBe('c1');
    expect(read(engine, hs)).toBe('hard');
    expect(read(engine, hardStateKey(8))).toBeUndefined();
    expect(engine.rows.size).toBe(0);
    expect(engine.rows.hits + engine.rows.misses).toBe(0);
    await put(engine, hs, val('hard2'));
    expect(read(engine, hs)).toBe('hard2');
  });

  it('returns the new value after a write that a read raced (200 writes, not awaited before the read)', async () => {
    const engine = await openEngine(1024 * 1024);
    const k = dataKey('raced');
    const other = dataKey('other');
    let current: string | undefined;
    for (let i = 0; i < 200; i++) {
      const next = i % 5 === 4 ? undefined : `v${i}`;
      const b = new WriteBatch();
      if (next === undefined) b.del(k);
      else b.put(k, val(next));
      b.put(other, val(`o${i}`));
      const writing = engine.write(b);
      const during = read(engine, k); // may populate the cache while the batch is in flight
      expect([current, next]).toContain(during);
      read(engine, other);
      await writing;
      expect(read(engine, k)).toBe(next);
      expect(read(engine, k)).toBe(next); // a hit: the next write starts with the key cached
      expect(read(engine, other)).toBe(`o${i}`);
      current = next;
    }
    expect(engine.rows.hits).toBeGreaterThanOrEqual(200);
  });

  it('does not keep a value read while the batch is in flight, before LevelDB applied it', async () => {
    const { engine, k } = await engineHolding('window', 'old');
    const during: Array<string | undefined> = [];
    interceptWrites(engine, async (realWrite) => {
      during.push(read(engine, k)); // before LevelDB has the batch: caches 'old'
      await realWrite();
      during.push(read(engine, k)); // LevelDB has it, write() has not returned yet
    });
    await put(engine, k, val('new'));
    expect(during[0]).toBe('old');
    expect(['old', 'new']).toContain(during[1]);
    expect(read(engine, k)).toBe('new');
    expect(stored(engine, k)).toBe('new');
  });

  it('agrees with LevelDB after concurrent writes to one key settle, whatever order LevelDB applied them in', async () => {
    const engine = await openEngine(1024 * 1024);
    const k = dataKey('contended');
    for (let round = 0; round < 50; round++) {
      const writes: Array<Promise<void>> = [];
      for (let j = 0; j < 4; j++) {
        const b = new WriteBatch();
        if ((round + j) % 3 === 2) b.del(k);
        else b.put(k, val(`r${round}w${j}`));
        writes.push(engine.write(b, { sync: j % 2 === 0 }));
        read(engine, k);
      }
      await Promise.all(writes);
      expect(read(engine, k)).toBe(stored(engine, k));
    }
  });

  it('behaves the same with the cache disabled (rowCacheBytes 0)', async () => {
    const engine = await openEngine(0);
    expect(engine.rows.enabled).toBe(false);
    const k = dataKey('nocache');
    expect(read(engine, k)).toBeUndefined();
    await put(engine, k, val('v1'));
    expect(read(engine, k)).toBe('v1');
    expect(read(engine, k)).toBe('v1');
    for (let i = 0; i < 50; i++) {
      const b = new WriteBatch();
      b.put(k, val(`v${i + 2}`));
      const writing = engine.write(b);
      expect([`v${i + 1}`, `v${i + 2}`]).toContain(read(engine, k));
      await writing;
      expect(read(engine, k)).toBe(`v${i + 2}`);
    }
    await del(engine, k);
    expect(read(engine, k)).toBeUndefined();
    expect(engine.rows.size).toBe(0);
  });
});

describe('Engine row cache after close', () => {
  it('a closed engine serves no cached read', async () => {
    const { engine, k } = await engineHolding('user/closed', 'v');
    await engine.close();
    expect(() => engine.getSync(k)).toThrow();
  });
});

describe('Engine row cache after a failed write', () => {
  it('drops a value cached during a write that LevelDB applied but then failed', async () => {
    const { engine, k } = await engineHolding('failing', 'old');
    interceptWrites(engine, async (realWrite) => {
      expect(read(engine, k)).toBe('old'); // cached while the batch is in flight
      await realWrite(); // the memtable has the batch...
      throw new Error('injected: log sync failed'); // ...but the write reports failure
    });
    await expect(put(engine, k, val('new'))).rejects.toThrow('injected: log sync failed');
    expect(stored(engine, k)).toBe('new');
    expect(read(engine, k)).toBe('new');
  });

  it('drops a value cached during a write that failed without being applied', async () => {
    const { engine, k } = await engineHolding('failing', 'old');
    interceptWrites(engine, async () => {
      expect(read(engine, k)).toBe('old'); // cached while the batch is in flight
      throw new Error('injected: write failed');
    });
    await expect(put(engine, k, val('new'))).rejects.toThrow('injected: write failed');
    jest.restoreAllMocks();
    const size = engine.rows.size;
    const misses = engine.rows.misses;
    expect(read(engine, k)).toBe('old'); // LevelDB still has the old value...
    expect(engine.rows.misses).toBe(misses + 1); // ...read from LevelDB, not the cache
    expect(engine.rows.size).toBe(size + 1);
  });
});
