// The linearizability checker: hand-written histories that are linearizable (concurrency, info
// operations that did or did not take effect, cas chains, deletes) and histories that are not, each
// failing on the right key with a small witness; the step budget giving 'unknown'; a property test
// over histories linearizable by construction, and their mutations that cannot be.

import fc from 'fast-check';
import { Op } from '../../scripts/jepsen/checker/history';
import { checkLinearizability, KeyResult, LinearizabilityOptions } from '../../scripts/jepsen/checker/linearizability';
import { formatOp, opsOf } from '../../scripts/jepsen/checker/notation';
import { simulateRegisterHistory } from '../../scripts/jepsen/checker/simulate';

function check(ops: readonly Op[], options?: LinearizabilityOptions) {
  return checkLinearizability(ops, options);
}

function keyResult(ops: readonly Op[], key: string, options?: LinearizabilityOptions): KeyResult {
  const r = check(ops, options).keys.find((k) => k.key === key);
  if (r === undefined) throw new Error(`no result for key ${key}`);
  return r;
}

/** The anomaly's operations in notation, for readable expectations. */
function witness(ops: readonly Op[], key: string): string[] {
  const r = keyResult(ops, key);
  expect(r.valid).toBe(false);
  return (r.anomaly?.ops ?? []).map(formatOp);
}

describe('linearizability: histories that are linearizable', () => {
  test.each<[string, string[]]>([
    ['empty key reads absent', ['1 ok get x->nil 0-10']],
    ['sequential put then get', ['1 ok put x=a 0-10', '1 ok get x->a 20-30']],
    [
      'concurrent put and gets: one read before, one after',
      ['1 ok put x=a 10-50', '2 ok get x->nil 0-20', '3 ok get x->a 30-40', '2 ok get x->a 60-70'],
    ],
    [
      'two concurrent puts: the reads fix their order',
      ['1 ok put x=a 0-100', '2 ok put x=b 0-100', '3 ok get x->b 10-20', '3 ok get x->a 30-40', '3 ok get x->a 110-120'],
    ],
    ['delete makes the key absent', ['1 ok put x=a 0-10', '1 ok delete x 20-30', '2 ok get x->nil 40-50', '1 ok put x=b 60-70', '2 ok get x->b 80-90']],
    [
      'cas chain',
      ['1 ok cas x nil->a 0-10', '2 ok cas x a->b 20-30', '3 fail cas x a->c 40-50', '1 ok cas x b->c 60-70', '2 ok get x->c 80-90'],
    ],
    ['concurrent cas: exactly one of two racing swaps wins', ['1 ok put x=a 0-10', '2 ok cas x a->b 20-40', '3 fail cas x a->c 20-40', '1 ok get x->b 50-60']],
    ['an info put that took effect, seen later', ['1 ok put x=a 0-10', '2 info put x=b 20', '3 ok get x->b 1000-1010']],
    ['an info put that never took effect', ['1 ok put x=a 0-10', '2 info put x=b 20', '3 ok get x->a 1000-1010', '3 ok get x->a 2000-2010']],
    ['an info put taking effect long after it was invoked', ['2 info put x=b 0', '1 ok get x->nil 100-110', '1 ok put x=a 200-210', '3 ok get x->b 300-310']],
    ['an info cas that swapped', ['1 ok put x=a 0-10', '2 info cas x a->b 20', '3 ok get x->b 100-110', '3 ok cas x b->c 200-210']],
    ['an info delete that took effect', ['1 ok put x=a 0-10', '2 info delete x 20', '3 ok get x->nil 100-110']],
    ['info gets and fail ops are ignored', ['1 ok put x=a 0-10', '2 info get x 5', '3 fail put x=z 6-7', '4 ok get x->a 20-30']],
    ['operations touching at one instant may go either way', ['1 ok put x=a 0-10', '2 ok get x->nil 10-20']],
    ['independent keys', ['1 ok put x=a 0-10', '2 ok put y=b 0-10', '1 ok get y->b 20-30', '2 ok get x->a 20-30']],
  ])('%s', (_name, lines) => {
    const r = check(opsOf(...lines));
    expect(r.keys.filter((k) => k.valid !== true)).toEqual([]);
    expect(r.valid).toBe(true);
  });

  test('a history with no operations is valid', () => {
    expect(check([])).toEqual({ valid: true, keys: [] });
  });
});

describe('linearizability: histories that are not, each named by key with a small witness', () => {
  test('stale read: a get returns the value overwritten before it began', () => {
    const ops = opsOf(
      '1 ok put y=q 0-10', // another key, linearizable
      '1 ok put x=a 0-10',
      '2 ok get y->q 15-18',
      '1 ok put x=b 20-30',
      '3 ok get x->b 32-34',
      '2 ok get x->a 40-50',
    );
    const r = check(ops);
    expect(r.valid).toBe(false);
    expect(r.keys.map((k) => [k.key, k.valid])).toEqual([
      ['x', false],
      ['y', true],
    ]);
    // Dropping the later read of b still leaves a ... b ... a impossible; the witness is the two
    // writes and the stale read.
    expect(witness(ops, 'x')).toEqual(['1 ok put x=a 0-10', '1 ok put x=b 20-30', '2 ok get x->a 40-50']);
    expect(keyResult(ops, 'x').anomaly?.minimal).toBe(true);
  });

  test('lost write: an acknowledged put is never visible although it must be', () => {
    const ops = opsOf('1 ok put x=a 0-10', '2 ok put x=b 20-30', '3 ok get x->a 40-50', '3 ok get x->a 60-70');
    expect(witness(ops, 'x')).toEqual(['1 ok put x=a 0-10', '2 ok put x=b 20-30', '3 ok get x->a 40-50']);
  });

  test('read of a value never written', () => {
    const ops = opsOf('1 ok put x=a 0-10', '2 ok put x=b 20-30', '3 ok get x->zzz 40-50', '1 ok put k=v 0-10');
    const r = check(ops);
    expect(r.keys.map((k) => [k.key, k.valid])).toEqual([
      ['k', true],
      ['x', false],
    ]);
    expect(witness(ops, 'x')).toEqual(['3 ok get x->zzz 40-50']);
  });

  test('a cas that applied twice', () => {
    // b is written once, by the swap from a; the swap to c overwrites it; b is read again later:
    // the swap to b must have been applied a second time.
    const ops = opsOf(
      '1 ok put x=a 0-10',
      '2 ok cas x a->b 20-30',
      '3 ok get x->b 35-38',
      '3 ok cas x b->c 40-50',
      '4 ok get x->c 55-58',
      '5 ok get x->b 60-70',
    );
    expect(witness(ops, 'x')).toEqual(['1 ok put x=a 0-10', '2 ok cas x a->b 20-30', '3 ok cas x b->c 40-50', '5 ok get x->b 60-70']);
  });

  test('two successful cas from the same value', () => {
    const ops = opsOf('1 ok put x=a 0-10', '2 ok cas x a->b 20-30', '3 ok cas x a->c 40-50');
    expect(witness(ops, 'x')).toEqual(['1 ok put x=a 0-10', '2 ok cas x a->b 20-30', '3 ok cas x a->c 40-50']);
  });

  test('a read of absent after a put, with no delete', () => {
    const ops = opsOf('1 ok put x=a 0-10', '2 ok get x->nil 20-30');
    expect(witness(ops, 'x')).toEqual(['1 ok put x=a 0-10', '2 ok get x->nil 20-30']);
  });

  test('an info put cannot explain a read before it was invoked', () => {
    const ops = opsOf('1 ok get x->b 0-10', '2 info put x=b 20');
    expect(witness(ops, 'x')).toEqual(['1 ok get x->b 0-10']);
  });

  test('the witness leaves out unrelated operations and later ones', () => {
    const lines: string[] = [];
    for (let i = 0; i < 30; i++) lines.push(`1 ok put x=v${i} ${i * 100}-${i * 100 + 10}`, `2 ok get x->v${i} ${i * 100 + 20}-${i * 100 + 30}`);
    lines.push('3 ok get x->v3 3050-3060'); // stale: v29 was written before it began
    for (let i = 40; i < 60; i++) lines.push(`1 ok put x=v${i} ${i * 100}-${i * 100 + 10}`);
    const ops = opsOf(...lines);
    const w = witness(ops, 'x');
    expect(w).toContain('3 ok get x->v3 3050-3060');
    expect(w).toContain('1 ok put x=v3 300-310');
    expect(w.length).toBeLessThanOrEqual(4);
    const a = keyResult(ops, 'x').anomaly;
    expect(a?.minimal).toBe(true);
    expect(a?.cutNs).toBe(3060);
  });

  test('ops in flight at the cut are treated as possibly not applied', () => {
    // A put concurrent with the stale read completes after it: the cut at the read makes it pending.
    const ops = opsOf('1 ok put x=a 0-10', '2 ok put x=b 20-30', '3 ok get x->a 40-50', '4 ok put x=c 45-90');
    const a = keyResult(ops, 'x').anomaly;
    expect(a?.cutNs).toBe(50);
    expect((a?.ops ?? []).map(formatOp)).toEqual(['1 ok put x=a 0-10', '2 ok put x=b 20-30', '3 ok get x->a 40-50']);
  });
});

describe('linearizability: budgets', () => {
  /** Many concurrent writes and reads of one key that no order explains, with a lot to try first. */
  function hardHistory(): Op[] {
    const lines: string[] = [];
    for (let p = 0; p < 14; p++) lines.push(`${p} ok put x=v${p} 0-1000`);
    lines.push('99 ok get x->never 0-1000');
    return opsOf(...lines);
  }

  test('a tiny step budget gives unknown, not an answer', () => {
    const r = check(hardHistory(), { keyStepLimit: 50 });
    expect(r.valid).toBe('unknown');
    expect(r.keys[0]).toMatchObject({ key: 'x', valid: 'unknown', reason: 'step-limit', steps: 50 });
  });

  test('a spent time budget gives unknown', () => {
    let now = 0;
    const r = check(hardHistory(), { keyTimeLimitMs: 5, nowMs: () => (now += 1) });
    expect(r.keys[0]).toMatchObject({ valid: 'unknown', reason: 'time-limit' });
  });

  test('keys left when the total budget is spent are unknown', () => {
    let now = 0;
    const ops = opsOf('1 ok put a=1 0-10', '1 ok put b=1 20-30', '1 ok put c=1 40-50');
    const r = check(ops, { totalTimeLimitMs: 2.5, nowMs: () => (now += 1) });
    expect(r.keys.map((k) => k.valid)).toEqual([true, 'unknown', 'unknown']);
    expect(r.keys[2]?.reason).toBe('total-time-limit');
  });

  test('with enough budget the hard history is decided', () => {
    const r = check(hardHistory());
    expect(r.valid).toBe(false);
    expect(r.keys[0]?.anomaly?.ops.map(formatOp)).toEqual(['99 ok get x->never 0-1000']);
  });

  test('bad options are programmer errors', () => {
    expect(() => check([], { keyStepLimit: -1 })).toThrow(TypeError);
  });
});

describe('linearizability: property tests', () => {
  const params = fc.record({
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    ops: fc.integer({ min: 1, max: 250 }),
    keys: fc.integer({ min: 1, max: 4 }),
    concurrency: fc.integer({ min: 1, max: 8 }),
    infoRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
    failRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
  });

  test('histories of a sequential register with random concurrency are linearizable', () => {
    fc.assert(
      fc.property(params, (p) => {
        const ops = simulateRegisterHistory(p);
        const r = checkLinearizability(ops);
        return r.valid === true;
      }),
      { numRuns: 150 },
    );
  });

  /**
   * A stale read: an ok get made to return the value of an ok write w that a later ok write w2
   * overwrote, where w completed before w2 began and w2 completed before the get began. With unique
   * values no linearization can return w's value after w2.
   */
  function staleRead(ops: readonly Op[], pick: number): { ops: Op[]; changed: Op } | null {
    const writes = ops.filter((op) => op.type === 'ok' && op.f !== 'get');
    const candidates: [Op, string][] = [];
    for (const g of ops) {
      if (g.type !== 'ok' || g.f !== 'get') continue;
      for (const w2 of writes) {
        if (w2.key !== g.key || (w2.complete as number) >= g.invoke) continue;
        for (const w of writes) {
          if (w.key !== g.key || w.f === 'delete' || (w.complete as number) >= w2.invoke || w.value === g.result) continue;
          candidates.push([g, w.value as string]);
        }
      }
    }
    if (candidates.length === 0) return null;
    const [g, stale] = candidates[pick % candidates.length] as [Op, string];
    const changed = { ...g, result: stale };
    return { ops: ops.map((op) => (op === g ? changed : op)), changed };
  }

  test('a stale read planted in such a history is caught, on its key, with the read in the witness', () => {
    let planted = 0;
    fc.assert(
      fc.property(params, fc.nat(), (p, pick) => {
        const mutation = staleRead(simulateRegisterHistory({ ...p, ops: Math.max(p.ops, 40) }), pick);
        if (mutation === null) return true;
        planted++;
        const { ops, changed } = mutation;
        const r = checkLinearizability(ops);
        const bad = r.keys.filter((k) => k.valid !== true);
        return r.valid === false && bad.length === 1 && bad[0]?.key === changed.key && (bad[0].anomaly?.ops ?? []).includes(changed);
      }),
      { numRuns: 100 },
    );
    expect(planted).toBeGreaterThan(50);
  });

  test('a read of a value never written, planted anywhere, is caught on its key', () => {
    fc.assert(
      fc.property(params, fc.nat(), (p, pick) => {
        const ops = simulateRegisterHistory(p);
        const gets = ops.filter((op) => op.type === 'ok' && op.f === 'get');
        if (gets.length === 0) return true;
        const g = gets[pick % gets.length] as Op;
        const mutated = ops.map((op) => (op === g ? { ...op, result: 'never-written' } : op));
        const r = checkLinearizability(mutated);
        const bad = r.keys.filter((k) => k.valid !== true);
        return r.valid === false && bad.length === 1 && bad[0]?.key === g.key && bad[0].anomaly?.ops.length === 1;
      }),
      { numRuns: 100 },
    );
  });

  test('the failing operation marks the first failing cut; every witness is itself non-linearizable, and (shrinking not cut short) minimal', () => {
    fc.assert(
      fc.property(params, fc.nat(), (p, pick) => {
        const mutation = staleRead(simulateRegisterHistory({ ...p, ops: Math.max(p.ops, 40) }), pick);
        if (mutation === null) return true;
        const r = checkLinearizability(mutation.ops);
        for (const k of r.keys) {
          if (k.anomaly === undefined) continue;
          // The first failing cut: the failing operation's completion. Cut just before it (at the
          // previous ok completion), the history is linearizable.
          const failOp = mutation.ops.find((op) => op.line === k.anomaly?.failLine) as Op;
          const earlier = Math.max(-1, ...mutation.ops.filter((op) => op.type === 'ok' && (op.complete as number) < (failOp.complete as number)).map((op) => op.complete as number));
          const cutAt = (t: number): Op[] =>
            mutation.ops
              .filter((op) => op.invoke <= t)
              .map((op) => (op.type === 'ok' && (op.complete as number) > t ? { ...op, type: 'info' as const, result: null, complete: null } : op));
          if (checkLinearizability(cutAt(failOp.complete as number)).valid !== false) return false;
          if (checkLinearizability(cutAt(earlier)).valid !== true) return false;
          // Alone, with the in-flight operations as info ones, the witness fails again.
          const pending = new Set(k.anomaly.pendingLines);
          const alone = k.anomaly.ops.map((op) => (pending.has(op.line) ? { ...op, type: 'info' as const, complete: null } : op));
          if (checkLinearizability(alone).valid !== false) return false;
          if (!k.anomaly.minimal) continue;
          // Dropping any single read leaves a linearizable set.
          for (const g of alone.filter((op) => op.f === 'get')) {
            if (checkLinearizability(alone.filter((op) => op !== g)).valid !== true) return false;
          }
        }
        return true;
      }),
      { numRuns: 60 },
    );
  });
});

/**
 * An independent oracle for small histories: depth-first search over sequential orders, where the
 * next operation may be any one invoked no later than every unplaced ok operation completed.
 */
function bruteForceLinearizable(ops: readonly Op[]): boolean {
  const byKey = new Map<string, Op[]>();
  for (const op of ops) {
    if (op.type === 'fail' || (op.type === 'info' && op.f === 'get')) continue;
    byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
  }
  for (const list of byKey.values()) {
    const definite = list.filter((op) => op.type === 'ok').length;
    const seen = new Set<string>();
    const placed = new Array<boolean>(list.length).fill(false);
    const place = (state: string | null, placedDefinite: number): boolean => {
      if (placedDefinite === definite) return true;
      const memo = `${placed.map(Number).join('')}|${state}`;
      if (seen.has(memo)) return false;
      seen.add(memo);
      let deadline = Infinity;
      list.forEach((op, i) => {
        if (!placed[i] && op.type === 'ok') deadline = Math.min(deadline, op.complete as number);
      });
      for (let i = 0; i < list.length; i++) {
        const op = list[i] as Op;
        if (placed[i] || op.invoke > deadline) continue;
        let next: string | null;
        if (op.f === 'get') {
          if (op.result !== state) continue;
          next = state;
        } else if (op.f === 'cas') {
          if (op.expected !== state) continue;
          next = op.value;
        } else next = op.f === 'put' ? op.value : null;
        placed[i] = true;
        const found = place(next, placedDefinite + (op.type === 'ok' ? 1 : 0));
        placed[i] = false;
        if (found) return true;
      }
      return false;
    };
    if (!place(null, 0)) return false;
  }
  return true;
}

describe('linearizability: agreement with a brute-force oracle', () => {
  test('small random histories, mutated or not, get the same verdict', () => {
    let invalid = 0;
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          ops: fc.integer({ min: 1, max: 12 }),
          keys: fc.integer({ min: 1, max: 2 }),
          concurrency: fc.integer({ min: 1, max: 6 }),
          infoRate: fc.double({ min: 0, max: 0.4, noNaN: true }),
          failRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
        }),
        fc.nat(),
        fc.nat(),
        fc.constantFrom('result', 'expected', 'type', 'none'),
        (p, pick, choice, mutation) => {
          const ops = simulateRegisterHistory(p);
          const values = [null, ...ops.map((op) => op.value).filter((v): v is string => v !== null)];
          const targets = ops.filter((op) => (mutation === 'result' ? op.f === 'get' && op.type === 'ok' : mutation === 'expected' ? op.f === 'cas' : op.type !== 'info'));
          let mutated: Op[] = ops;
          const t = targets[pick % Math.max(1, targets.length)];
          if (mutation !== 'none' && t !== undefined) {
            const v = values[choice % values.length] as string | null;
            const changed: Op =
              mutation === 'result' ? { ...t, result: v } : mutation === 'expected' ? { ...t, expected: v } : { ...t, type: t.type === 'ok' ? 'fail' : 'ok', result: null, complete: t.complete };
            mutated = ops.map((op) => (op === t ? changed : op));
          }
          const verdict = checkLinearizability(mutated).valid;
          if (verdict === false) invalid++;
          return verdict === (bruteForceLinearizable(mutated) ? true : false);
        },
      ),
      { numRuns: 600 },
    );
    expect(invalid).toBeGreaterThan(100);
  });
});

describe('linearizability: performance sanity', () => {
  test('10k operations over 20 keys with 10 concurrent clients', () => {
    const ops = simulateRegisterHistory({ seed: 42, ops: 10_000, keys: 20, concurrency: 10, infoRate: 0.01, failRate: 0.02 });
    const started = process.hrtime.bigint();
    const r = checkLinearizability(ops);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const steps = r.keys.reduce((s, k) => s + k.steps, 0);
    process.stdout.write(`checker performance: 10k ops, 20 keys, 10 clients: ${ms.toFixed(0)} ms, ${steps} steps\n`);
    expect(r.valid).toBe(true);
  });
});
