// A write workload over KvClient (puts, and compare-and-swap chains) that records an honest history, and the checker of what a
// cluster must hold afterwards.
//
// Each worker has its own client (its own exactly-once identity) and writes its own keys, one
// operation at a time. A worker writes a key again only after its previous write to it was
// acknowledged, and moves to a fresh key after any write whose outcome is not `ok`; so the
// writes to one key are totally ordered by the worker, and at most the last one is uncertain.
//
// Outcomes, as in Jepsen: `ok` (acknowledged), `info` (IndeterminateError or anything unknown:
// may or may not have applied), `fail` (UnavailableError, or a compare-and-swap whose condition
// did not hold: the write certainly did not apply). The checker allows, for each key, exactly the value of the last acknowledged write (or
// absence if none) or the value of an `info` write after it.

import { Consistency, IndeterminateError, InvalidRequestError, KvClient, UnavailableError } from '../../src/client';

// ------------------------------------------------------------------------------------------------
// Seeded randomness (the seed is printed, and KV_IT_SEED=<n> replays it).

/** mulberry32: a small, fast PRNG; returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** KV_IT_SEED if set, else a fresh seed. */
export function chooseSeed(): number {
  const env = process.env.KV_IT_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0) throw new TypeError(`KV_IT_SEED must be a non-negative integer, got '${env}'`);
    return n;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

// ------------------------------------------------------------------------------------------------
// History

export type Outcome = 'ok' | 'info' | 'fail';

export interface Attempt {
  readonly key: string;
  readonly value: string;
  readonly worker: number;
  readonly startMs: number;
  outcome: Outcome | 'pending';
  endMs?: number;
  detail?: string;
}

export interface WorkloadOptions {
  readonly endpoints: readonly string[];
  readonly workers: number;
  /** Every key starts with this (and '/'). */
  readonly prefix: string;
  /** Stop after this many writes were started, in total (default: run until stop()). */
  readonly maxWrites?: number;
  /** Writes to one key (each after the previous was acknowledged) before a fresh key. Default 1. */
  readonly writesPerKey?: number;
  /** The clients' deadline per operation, retries included. Default 10 s. */
  readonly deadlineMs?: number;
  /** Pad values to this many bytes. Default 0 (no padding). */
  readonly valueBytes?: number;
  /**
   * How many of the workers write with compare-and-swap instead of put (default 0): the first
   * write to a key expects it absent, each next one expects the previous value. No one else
   * writes those keys, so a condition that does not hold means a write applied that the worker
   * was not told about, e.g. a retry applied twice (exactly-once broken).
   */
  readonly casWorkers?: number;
}

export class Workload {
  /** Every attempt, per key, in the order its worker made them. */
  readonly byKey = new Map<string, Attempt[]>();
  readonly attempts: Attempt[] = [];
  /** Errors no write should ever get (the request was refused as invalid). */
  readonly anomalies: string[] = [];
  acked = 0;
  /** The most recently acknowledged write (in acknowledgement order). */
  lastAcked: Attempt | undefined;
  private started = 0;
  private stopping = false;
  private runs: Array<Promise<void>> = [];
  private generation = 0;

  constructor(readonly opts: WorkloadOptions) {}

  count(outcome: Outcome | 'pending'): number {
    return this.attempts.filter((a) => a.outcome === outcome).length;
  }

  /** Starts the workers (again, after stop(): new clients, new keys). */
  start(): this {
    this.stopping = false;
    const gen = ++this.generation;
    this.runs = Array.from({ length: this.opts.workers }, (_v, w) => this.worker(gen, w));
    return this;
  }

  /** Asks the workers to stop after their current write, and waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.runs);
  }

  /** Waits until the workers stopped on their own (maxWrites reached). */
  async finished(): Promise<void> {
    await Promise.all(this.runs);
  }

  private async worker(gen: number, w: number): Promise<void> {
    const client = new KvClient({ endpoints: this.opts.endpoints, deadlineMs: this.opts.deadlineMs ?? 10_000 });
    const perKey = this.opts.writesPerKey ?? 1;
    let keyNo = 0;
    let key = this.keyName(gen, w, keyNo);
    let onKey = 0;
    /** The value of the last (acknowledged) write to `key`, if any. */
    let previous: string | undefined;
    try {
      while (!this.stopping && (this.opts.maxWrites === undefined || this.started < this.opts.maxWrites)) {
        this.started++;
        const value = this.valueFor(key, onKey);
        const a: Attempt = { key, value, worker: w, startMs: Date.now(), outcome: 'pending' };
        this.attempts.push(a);
        let list = this.byKey.get(key);
        if (!list) this.byKey.set(key, (list = []));
        list.push(a);
        try {
          if (w < (this.opts.casWorkers ?? 0)) {
            const expected = previous === undefined ? { absent: true as const } : { value: Buffer.from(previous) };
            const r = await client.cas(key, expected, value);
            if (!r.succeeded) {
              a.outcome = 'fail'; // the condition did not hold: this write did not apply
              a.detail = `cas condition did not hold: current ${r.previous ? JSON.stringify(r.previous.value.toString('utf8').slice(0, 60)) : 'absent'}`;
              this.anomalies.push(`${key}: ${a.detail}, expected ${previous === undefined ? 'absent' : JSON.stringify(previous.slice(0, 60))}`);
            }
          } else {
            await client.put(key, value);
          }
          if (a.outcome === 'pending') {
            a.outcome = 'ok';
            this.acked++;
            this.lastAcked = a;
          }
        } catch (err) {
          a.detail = `${(err as Error).name}: ${(err as Error).message}`;
          if (err instanceof UnavailableError) a.outcome = 'fail';
          else {
            a.outcome = 'info';
            if (err instanceof InvalidRequestError) this.anomalies.push(`${key}: ${a.detail}`);
            else if (!(err instanceof IndeterminateError)) this.anomalies.push(`${key}: unexpected error ${a.detail}`);
          }
        }
        a.endMs = Date.now();
        previous = a.outcome === 'ok' ? value : undefined;
        if (a.outcome !== 'ok' || ++onKey >= perKey) {
          key = this.keyName(gen, w, ++keyNo);
          onKey = 0;
          previous = undefined;
        }
      }
    } finally {
      client.close();
    }
  }

  private keyName(gen: number, w: number, n: number): string {
    return `${this.opts.prefix}/g${gen}/w${String(w).padStart(2, '0')}/k${String(n).padStart(5, '0')}`;
  }

  private valueFor(key: string, n: number): string {
    const v = `${key}#${n}`;
    const pad = (this.opts.valueBytes ?? 0) - v.length;
    return pad > 0 ? `${v}:${'x'.repeat(pad - 1)}` : v;
  }

  /** Waits until at least `n` writes were acknowledged in total. */
  async waitAcked(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.acked < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.acked} of ${n} writes acknowledged within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Checker

export interface Observed {
  readonly found: boolean;
  readonly value: string;
}

const ABSENT = '<absent>';

function show(o: Observed): string {
  return o.found ? JSON.stringify(o.value.length > 80 ? `${o.value.slice(0, 80)}...` : o.value) : ABSENT;
}

/**
 * The values `key` may hold: the last acknowledged write's (or absence if none), or that of an
 * `info` write made after it. Returns undefined when the observation is allowed, else why not.
 */
export function checkKey(key: string, attempts: readonly Attempt[], observed: Observed): string | undefined {
  let lastOk = -1;
  attempts.forEach((a, i) => {
    if (a.outcome === 'ok') lastOk = i;
  });
  const allowed = new Set<string>([lastOk >= 0 ? (attempts[lastOk] as Attempt).value : ABSENT]);
  for (let i = lastOk + 1; i < attempts.length; i++) {
    const a = attempts[i] as Attempt;
    if (a.outcome === 'info' || a.outcome === 'pending') allowed.add(a.value);
  }
  const got = observed.found ? observed.value : ABSENT;
  if (allowed.has(got)) return undefined;
  const story = attempts.map((a) => `${a.outcome}${a.detail ? ` (${a.detail.slice(0, 160)})` : ''}: ${JSON.stringify(a.value.slice(0, 60))}`).join('; ');
  const lost = lastOk >= 0 && !observed.found ? 'LOST ACKNOWLEDGED WRITE: ' : '';
  return `${lost}${key} holds ${show(observed)}; allowed ${[...allowed].map((v) => (v === ABSENT ? v : JSON.stringify(v.slice(0, 60)))).join(' or ')}; writes: ${story}`;
}

/** Linearizable gets of `keys` through `client`, `concurrency` at a time. */
export async function readKeys(client: KvClient, keys: readonly string[], concurrency = 16, consistency = Consistency.Linearizable): Promise<Map<string, Observed>> {
  const out = new Map<string, Observed>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keys.length) {
        const key = keys[next++] as string;
        const r = await client.get(key, consistency);
        out.set(key, { found: r.found, value: r.value.toString('utf8') });
      }
    }),
  );
  return out;
}

/**
 * Checks the cluster's contents against the workload's history: every key written reads back an
 * allowed value (linearizable gets), and a scan of the prefix finds no key or value that was
 * never written. Returns the violations (empty = fine).
 */
export async function verifyHistory(client: KvClient, w: Workload): Promise<{ violations: string[]; checked: number }> {
  const pending = w.attempts.filter((a) => a.outcome === 'pending');
  if (pending.length > 0) throw new Error(`verifyHistory: ${pending.length} writes still in flight; stop the workload first`);
  const keys = [...w.byKey.keys()];
  const reads = await readKeys(client, keys);
  const violations: string[] = [];
  for (const key of keys) {
    const v = checkKey(key, w.byKey.get(key) as Attempt[], reads.get(key) as Observed);
    if (v) violations.push(v);
  }
  const prefix = `${w.opts.prefix}/`;
  const end = `${w.opts.prefix}0`; // '0' follows '/'
  for await (const kv of client.scan(prefix, end)) {
    const key = kv.key.toString('utf8');
    const value = kv.value.toString('utf8');
    const attempts = w.byKey.get(key);
    if (!attempts) violations.push(`scan found ${key} = ${JSON.stringify(value.slice(0, 60))}, a key never written`);
    else if (!attempts.some((a) => a.value === value)) violations.push(`scan found ${key} = ${JSON.stringify(value.slice(0, 60))}, a value never written to it`);
    else if (checkKey(key, attempts, { found: true, value }) !== undefined) violations.push(`scan: ${checkKey(key, attempts, { found: true, value })}`);
  }
  return { violations, checked: keys.length };
}

/** Counts of outcomes, for messages. */
export function summary(w: Workload): string {
  const pending = w.count('pending');
  return `${w.attempts.length} writes: ${w.count('ok')} ok, ${w.count('info')} indeterminate, ${w.count('fail')} failed${pending ? `, ${pending} in flight` : ''}`;
}
