import fc from 'fast-check';
import { CachedRange, RangeCache, compareEpochs } from '../../src/client/range-cache';

const b = (s: string): Buffer => Buffer.from(s);
function range(rangeId: number, start: string, end: string, version: number, confVersion = 1): CachedRange {
  return { rangeId, start: b(start), end: b(end), epoch: { version, confVersion }, replicas: [{ nodeId: 1, role: 'voter' }] };
}

/** No two entries overlap and they are sorted by start. */
function checkShape(c: RangeCache): void {
  const all = c.all();
  for (let i = 1; i < all.length; i++) {
    const prev = all[i - 1] as CachedRange;
    const cur = all[i] as CachedRange;
    expect(prev.end.length).toBeGreaterThan(0);
    expect(Buffer.compare(prev.end, cur.start)).toBeLessThanOrEqual(0);
  }
}

describe('range cache', () => {
  it('looks keys up by range bounds, with an empty end meaning the end of the keyspace', () => {
    const c = new RangeCache();
    c.insert(range(1, '', 'm', 2));
    c.insert(range(2, 'm', '', 2));
    expect(c.lookup(b(''))?.rangeId).toBe(1);
    expect(c.lookup(b('l\xff'))?.rangeId).toBe(1);
    expect(c.lookup(b('m'))?.rangeId).toBe(2);
    expect(c.lookup(b('zzzz'))?.rangeId).toBe(2);
    expect(c.covering(b('a'), b('')).map((r) => r.rangeId)).toEqual([1, 2]);
    expect(c.covering(b('a'), b('c')).map((r) => r.rangeId)).toEqual([1]);
  });

  it('a split replaces the parent; a reply that was overtaken cannot bring the parent back', () => {
    const c = new RangeCache();
    c.insert(range(1, '', '', 1));
    c.insert(range(2, 'm', '', 2)); // the right side of the split evicts the whole parent
    expect(c.lookup(b('a'))).toBeUndefined();
    expect(c.insert(range(1, '', 'm', 2))).toBe(true);
    // A late answer still carrying range 1 before the split is older than what we hold.
    expect(c.insert(range(1, '', '', 1))).toBe(false);
    expect(c.all().map((r) => [r.rangeId, r.start.toString(), r.end.toString()])).toEqual([
      [1, '', 'm'],
      [2, 'm', ''],
    ]);
  });

  it('keeps the known leader across a same-epoch refresh, not across a new epoch', () => {
    const c = new RangeCache();
    c.insert(range(1, '', '', 1));
    c.setLeader(1, { nodeId: 3, address: 'n3' });
    c.insert(range(1, '', '', 1));
    expect(c.byId(1)?.leader?.nodeId).toBe(3);
    c.insert(range(1, '', '', 1, 2));
    expect(c.byId(1)?.leader).toBeUndefined();
    c.invalidate(1);
    expect(c.size()).toBe(0);
  });

  it('refuses a descriptor whose start is not below its end', () => {
    expect(() => new RangeCache().insert(range(1, 'm', 'a', 1))).toThrow(RangeError);
  });

  it('stays non-overlapping, never lets an older descriptor evict a newer one, and converges to the truth, under any order of current and stale descriptors (property)', () => {
    // A keyspace history: start with one range, then random splits (each bumps both sides'
    // version) and merges of neighbours (the left survives with a bumped version).
    const keys = 'bcdefghijklmnopqrstuvwxy'.split('');
    const history = fc.array(fc.tuple(fc.boolean(), fc.nat(1000), fc.nat(1000)), { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(history, fc.array(fc.nat(10_000), { maxLength: 120 }), (steps, feed) => {
        let truth: CachedRange[] = [range(1, '', '', 1)];
        let nextId = 2;
        const seen: CachedRange[] = [...truth];
        for (const [split, a, k] of steps) {
          const i = a % truth.length;
          const r = truth[i] as CachedRange;
          if (split) {
            const candidates = keys.filter((x) => Buffer.compare(b(x), r.start) > 0 && (r.end.length === 0 || Buffer.compare(b(x), r.end) < 0));
            if (candidates.length === 0) continue;
            const at = candidates[k % candidates.length] as string;
            const left = range(r.rangeId, r.start.toString(), at, r.epoch.version + 1);
            const right = range(nextId++, at, r.end.toString(), r.epoch.version + 1);
            truth.splice(i, 1, left, right);
            seen.push(left, right);
          } else if (i + 1 < truth.length) {
            const right = truth[i + 1] as CachedRange;
            const merged = range(r.rangeId, r.start.toString(), right.end.toString(), Math.max(r.epoch.version, right.epoch.version) + 1);
            truth.splice(i, 2, merged);
            seen.push(merged);
          }
        }
        truth = [...truth];
        const c = new RangeCache();
        for (const f of feed) {
          const d = seen[f % seen.length] as CachedRange;
          const before = [...c.all()];
          c.insert(d);
          checkShape(c);
          // Nothing newer is ever evicted by something older: each entry that went was of the same
          // range at an epoch no newer than d's, or overlapped d at a version no higher than d's.
          for (const e of before.filter((x) => !c.all().includes(x))) {
            if (e.rangeId === d.rangeId) expect(compareEpochs(e.epoch, d.epoch)).toBeLessThanOrEqual(0);
            else {
              const over = (d.end.length === 0 || Buffer.compare(e.start, d.end) < 0) && (e.end.length === 0 || Buffer.compare(d.start, e.end) < 0);
              expect(over && e.epoch.version <= d.epoch.version).toBe(true);
            }
          }
          for (const key of ['', 'a', 'g', 'm', 'x', 'zz']) {
            const hit = c.lookup(b(key));
            if (hit) expect(Buffer.compare(hit.start, b(key)) <= 0 && (hit.end.length === 0 || Buffer.compare(b(key), hit.end) < 0)).toBe(true);
          }
        }
        // Once every current descriptor has been seen, the cache is exactly the truth.
        for (const d of truth) c.insert(d);
        checkShape(c);
        expect(c.all().map((r) => [r.rangeId, r.start.toString(), r.end.toString(), r.epoch.version])).toEqual(
          truth.map((r) => [r.rangeId, r.start.toString(), r.end.toString(), r.epoch.version]),
        );
      }),
      { numRuns: 300 },
    );
  });
});
