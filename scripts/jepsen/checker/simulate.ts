// Histories that are linearizable by construction, for testing the checker: clients run operations
// on registers with random timing; each operation that takes effect does so at a random instant
// within its interval, and the results come from one sequential register per key applied in the
// order of those instants. Some operations end `info` (taking effect or not, at random) and some
// `fail` without effect, as a real run's would.

import type { Op, OpFunction } from './history';
import { SeededRng } from '../../../src/raft/rng';

export interface SimulateOptions {
  /** Seed of the deterministic generator. */
  readonly seed: number;
  /** Operations in the history. */
  readonly ops: number;
  readonly keys: number;
  /** Clients running at once (each runs one operation at a time). */
  readonly concurrency: number;
  /** Share of operations ending `info`, 0..1. Default 0.02. */
  readonly infoRate?: number;
  /** Share of operations ending `fail` without effect, 0..1. Default 0.02. */
  readonly failRate?: number;
  /** Longest operation, in ns; latencies are uniform below it. Default 5 ms. */
  readonly maxLatencyNs?: number;
  /** Longest pause of a client between two operations, in ns. Default 1 ms. */
  readonly maxPauseNs?: number;
  /** Relative weights of get, put, delete and cas. Default 4, 3, 1, 2. */
  readonly weights?: readonly [number, number, number, number];
  /** Key names: `${keyPrefix}${i}`. Default "k". */
  readonly keyPrefix?: string;
}

/** The project's seeded PRNG (src/raft/rng.ts), with an integer draw that accepts n = 0. */
export class SeededRandom extends SeededRng {
  /** Uniform integer in [0, n); 0 when n is 0. */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

interface Planned {
  process: number;
  key: string;
  invoke: number;
  /** The instant it takes effect, if it does. */
  at: number;
  complete: number | null;
  outcome: 'ok' | 'fail' | 'info-applied' | 'info-dropped';
}

/** Generates a linearizable history; lines are numbered 1.. in completion order. */
export function simulateRegisterHistory(o: SimulateOptions): Op[] {
  const rng = new SeededRandom(o.seed);
  const infoRate = o.infoRate ?? 0.02;
  const failRate = o.failRate ?? 0.02;
  const maxLatency = o.maxLatencyNs ?? 5_000_000;
  const maxPause = o.maxPauseNs ?? 1_000_000;
  const weights = o.weights ?? [4, 3, 1, 2];
  const prefix = o.keyPrefix ?? 'k';
  const totalWeight = weights.reduce((a, b) => a + b, 0);

  // Timing first: each client slot runs operations back to back; after an info the slot takes a
  // fresh process id (the format's rule) and waits out the timeout it gave up on.
  const slots = Array.from({ length: o.concurrency }, (_, i) => ({ process: i, free: rng.int(maxPause) }));
  let nextProcess = o.concurrency;
  const planned: Planned[] = [];
  for (let n = 0; n < o.ops; n++) {
    const slot = slots.reduce((a, b) => (b.free < a.free ? b : a));
    const invoke = slot.free + rng.int(maxPause);
    const latency = 1 + rng.int(maxLatency);
    const at = invoke + rng.int(latency + 1);
    const r = rng.next();
    const outcome: Planned['outcome'] = r < infoRate ? (rng.next() < 0.5 ? 'info-applied' : 'info-dropped') : r < infoRate + failRate ? 'fail' : 'ok';
    const isInfo = outcome === 'info-applied' || outcome === 'info-dropped';
    planned.push({ process: slot.process, key: `${prefix}${rng.int(o.keys)}`, invoke, at, complete: isInfo ? null : invoke + latency, outcome });
    slot.free = invoke + latency;
    if (isInfo) slot.process = nextProcess++;
  }

  // Then effects, in the order of the instants at which they happen.
  const current = new Map<string, string | null>();
  const written = new Map<string, string[]>();
  let counter = 0;
  const ops: (Op & { order: number })[] = [];
  const byInstant = planned.slice().sort((a, b) => a.at - b.at);
  for (const p of byInstant) {
    const value = current.get(p.key) ?? null;
    let w = rng.next() * totalWeight;
    let f: OpFunction = 'get';
    for (const [i, name] of (['get', 'put', 'delete', 'cas'] as const).entries()) {
      if (w < (weights[i] as number)) {
        f = name;
        break;
      }
      w -= weights[i] as number;
    }
    const fresh = `v-${p.process}-${counter++}`;
    let expected: string | null = null;
    if (f === 'cas') {
      // Mostly the current value, so that many swaps succeed; otherwise an older one (or absent).
      const older = written.get(p.key) ?? [];
      expected = rng.next() < 0.7 || older.length === 0 ? value : rng.next() < 0.2 ? null : (older[rng.int(older.length)] as string);
    }
    const takesEffect = p.outcome === 'ok' || p.outcome === 'info-applied';
    let type: Op['type'] = p.outcome === 'ok' ? 'ok' : p.outcome === 'fail' ? 'fail' : 'info';
    let result: string | null = null;
    if (takesEffect) {
      if (f === 'get') result = type === 'ok' ? value : null;
      else if (f === 'put' || (f === 'cas' && expected === value)) {
        current.set(p.key, fresh);
        const list = written.get(p.key);
        if (list === undefined) written.set(p.key, [fresh]);
        else list.push(fresh);
      } else if (f === 'delete') current.set(p.key, null);
      else if (type === 'ok') type = 'fail'; // a cas that found something else
    }
    ops.push({
      line: 0,
      order: p.complete ?? p.invoke,
      process: p.process,
      type,
      f,
      key: p.key,
      value: f === 'put' || f === 'cas' ? fresh : null,
      expected,
      result,
      invoke: p.invoke,
      complete: p.complete,
    });
  }
  ops.sort((a, b) => a.order - b.order);
  return ops.map(({ order: _order, ...op }, i) => ({ ...op, line: i + 1 }));
}

/** One JSON line per operation, in the history.jsonl format (times as given). */
export function toJsonl(ops: readonly Op[]): string {
  return ops
    .map((op) =>
      JSON.stringify({
        process: op.process,
        type: op.type,
        f: op.f,
        key: op.key,
        value: op.value,
        expected: op.expected,
        result: op.result,
        invoke: op.invoke,
        complete: op.complete,
      }),
    )
    .map((l) => `${l}\n`)
    .join('');
}
