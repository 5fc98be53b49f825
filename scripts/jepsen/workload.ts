// The workloads: many logical client processes (async tasks of this one harness process, one
// operation at a time each) that record every operation in the history.
//
// register: get / put / delete / cas on a few keys at a time (50/20/5/25 %), unique values
//   `v-<process>-<n>`. A key is retired after `opsPerKey` operations and replaced by a fresh one,
//   which keeps every key's history small enough for the linearizability search. cas expects a
//   value recently seen on the key (or absence), so some succeed.
//   Keys are `r0`, `r1`, ... in the order they come into use (registerKey); the `split` nemesis
//   splits at keys of that space and --pre-split cuts it into ranges (splitPoints).
// set: unique adds, in the convention of checker/set.ts: adding element e is a put of key `s:<e>`
//   with value e (elements are unique numbers). After the run the harness heals, waits for a
//   healthy cluster and a quiet period, and reads every element ever attempted back with a
//   linearizable get (finalReads). Every acknowledged add must be there.
//
// Outcomes: an `ok` is an answer; a write whose outcome the client cannot know
// (IndeterminateError, or any unexpected error) is `info`, and its process id is retired; a write
// the client knows did not apply (UnavailableError, InvalidRequestError: `definite`) and a cas
// whose condition did not hold are `fail`; a read that got no answer is `fail` (reads change
// nothing).
//
// Read modes: `linearizable` (the default) reads with ReadIndex through any node. `stale` reads
// each node's local state (Consistency.Stale): every logical client reads through its own home
// node only, so reads keep reaching an isolated node, and writes go through all nodes. This mode
// is not linearizable, and the suite must catch it.

import { ClientError, Consistency, KvClient } from '../../src/client';
import type { History, HistoryOp, OpF } from './history';
import { delay, Rng } from './wait';

export type WorkloadName = 'register' | 'set';
export type ReadMode = 'linearizable' | 'stale';

export interface WorkloadOptions {
  readonly endpoints: readonly string[];
  /** Logical client processes running at once. */
  readonly concurrency: number;
  readonly readMode: ReadMode;
  readonly history: History;
  readonly rng: Rng;
  /** Deadline of one client operation (retries included), milliseconds. */
  readonly deadlineMs: number;
  /** register: keys in use at a time, and operations before a key is retired. */
  readonly activeKeys: number;
  readonly opsPerKey: number;
  /** Pause between two operations of one process, milliseconds (uniform in [0, 2x]). */
  readonly thinkMs: number;
  /** The client sends over KV.Multiplex streams instead of one unary call per operation. */
  readonly multiplex?: boolean;
}

export interface FinalReadSummary {
  readonly keys: number;
  readonly attempts: number;
}

function clientOptions(endpoints: readonly string[], deadlineMs: number, multiplex: boolean): ConstructorParameters<typeof KvClient>[0] {
  return { endpoints, deadlineMs, initialBackoffMs: 20, maxBackoffMs: 250, multiplex };
}

function rotate<T>(xs: readonly T[], by: number): T[] {
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

export abstract class Workload {
  protected stopped = false;
  private readonly workers: Array<Promise<void>> = [];
  private readonly clients: KvClient[] = [];
  private valueCounter = 0;

  constructor(protected readonly o: WorkloadOptions) {}

  /** Starts the logical clients. */
  start(): void {
    for (let w = 0; w < this.o.concurrency; w++) {
      const all = rotate(this.o.endpoints, w);
      const writer = this.client(all);
      // Stale mode: reads stay on the worker's home node.
      const reader = this.o.readMode === 'stale' ? this.client([all[0] as string]) : writer;
      this.workers.push(this.worker(writer, reader));
    }
  }

  /** Stops issuing operations and waits for those in flight (bounded by the client deadline). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
  }

  close(): void {
    for (const c of this.clients) c.close();
  }

  protected client(endpoints: readonly string[]): KvClient {
    const c = new KvClient(clientOptions(endpoints, this.o.deadlineMs, this.o.multiplex === true));
    this.clients.push(c);
    return c;
  }

  protected nextValue(process: number): string {
    return `v-${process}-${this.valueCounter++}`;
  }

  private async worker(writer: KvClient, reader: KvClient): Promise<void> {
    let process = this.o.history.freshProcess();
    while (!this.stopped) {
      const outcome = await this.step(process, writer, reader);
      if (outcome === 'info') process = this.o.history.freshProcess();
      await delay(Math.floor(this.o.rng.next() * 2 * this.o.thinkMs));
    }
  }

  /** Runs one operation of `process` and records it; returns its type. */
  protected abstract step(process: number, writer: KvClient, reader: KvClient): Promise<'ok' | 'fail' | 'info'>;

  /**
   * A key of the workload's key space, used so far or about to be (for the `split` nemesis: a
   * split there moves a boundary between keys the clients are using).
   */
  abstract randomKey(rng: Rng): string;

  /** Which keys randomKey picks from now, for the nemesis log. */
  abstract describeKeys(): string;

  /**
   * `n - 1` distinct split keys that cut the workload's first keys into `n` ranges (--pre-split),
   * in key order: every range holds some of the keys the run uses first, so every range sees
   * operations even in a short run; the keys that come later fall in among them.
   */
  abstract splitPoints(n: number): string[];

  /** After the run (healed, healthy): the reads that close the history. */
  abstract finalReads(endpoints: readonly string[], timeoutMs: number): Promise<FinalReadSummary>;

  /** Runs `body` as operation `f` on `key` of `process` and records the outcome. */
  protected async perform(
    process: number,
    f: OpF,
    key: string,
    value: string | null,
    expected: string | null,
    body: () => Promise<{ type: 'ok' | 'fail'; result: string | null }>,
  ): Promise<'ok' | 'fail' | 'info'> {
    const clock = this.o.history.clock;
    const invoke = clock.now();
    let op: HistoryOp;
    let answered = false;
    try {
      const r = await body();
      op = { process, type: r.type, f, key, value, expected, result: r.result, invoke, complete: clock.now() };
      answered = true;
    } catch (err) {
      const definite = f === 'get' || (err instanceof ClientError && err.definite);
      op = definite
        ? { process, type: 'fail', f, key, value, expected, result: null, invoke, complete: clock.now() }
        : { process, type: 'info', f, key, value, expected, result: null, invoke, complete: null };
    }
    this.o.history.record(op, answered);
    return op.type;
  }

  protected read(reader: KvClient, key: string): Promise<{ type: 'ok'; result: string | null }> {
    const consistency = this.o.readMode === 'stale' ? Consistency.Stale : Consistency.Linearizable;
    return reader.get(key, consistency).then((r) => ({ type: 'ok' as const, result: r.found ? r.value.toString('utf8') : null }));
  }

  /**
   * Reads each key with a linearizable get until one answers (every attempt is recorded), with
   * `parallel` readers; gives up on a key when `timeoutMs` has passed since the start.
   */
  protected async readAll(endpoints: readonly string[], keys: readonly string[], timeoutMs: number, parallel = 32): Promise<FinalReadSummary> {
    const deadline = Date.now() + timeoutMs;
    let attempts = 0;
    let unread = 0;
    let next = 0;
    const reader = async (r: number): Promise<void> => {
      const client = this.client(rotate(endpoints, r));
      let process = this.o.history.freshProcess();
      for (;;) {
        const key = keys[next++];
        if (key === undefined) return;
        for (;;) {
          attempts++;
          const t = await this.perform(process, 'get', key, null, null, () =>
            client.get(key, Consistency.Linearizable).then((x) => ({ type: 'ok' as const, result: x.found ? x.value.toString('utf8') : null })),
          );
          if (t === 'ok') break;
          if (t === 'info') process = this.o.history.freshProcess();
          if (Date.now() >= deadline) {
            unread++;
            break;
          }
          await delay(100);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, Math.max(1, keys.length)) }, (_v, r) => reader(r)));
    if (unread > 0) throw new FinalReadError(unread, keys.length);
    return { keys: keys.length, attempts };
  }
}

/** Some final reads found no node to answer them in time: the cluster did not recover. */
export class FinalReadError extends Error {
  readonly code = 'JEPSEN_FINAL_READS';
  constructor(
    readonly unread: number,
    readonly total: number,
  ) {
    super(`${unread} of ${total} final reads got no answer in time: the healed cluster does not serve linearizable reads`);
    this.name = 'FinalReadError';
  }
}

export class RegisterWorkload extends Workload {
  private readonly active: Array<{ key: string; ops: number }> = [];
  private readonly used: string[] = [];
  private nextKey = 0;
  /** Recently seen values per key (written or read), the candidates for cas' expected value. */
  private readonly recent = new Map<string, string[]>();

  constructor(o: WorkloadOptions) {
    super(o);
    for (let i = 0; i < o.activeKeys; i++) this.active.push(this.freshKey());
  }

  private freshKey(): { key: string; ops: number } {
    const key = registerKey(this.nextKey++);
    this.used.push(key);
    return { key, ops: 0 };
  }

  private pickKey(): string {
    const i = Math.floor(this.o.rng.next() * this.active.length);
    const slot = this.active[i] as { key: string; ops: number };
    slot.ops++;
    if (slot.ops >= this.o.opsPerKey) this.active[i] = this.freshKey();
    return slot.key;
  }

  private seen(key: string, value: string | null): void {
    if (value === null) return;
    const r = this.recent.get(key) ?? [];
    r.push(value);
    if (r.length > 4) r.shift();
    this.recent.set(key, r);
  }

  protected async step(process: number, writer: KvClient, reader: KvClient): Promise<'ok' | 'fail' | 'info'> {
    const key = this.pickKey();
    const roll = this.o.rng.next();
    if (roll < 0.5) {
      return this.perform(process, 'get', key, null, null, async () => {
        const r = await this.read(reader, key);
        this.seen(key, r.result);
        return r;
      });
    }
    if (roll < 0.55) {
      return this.perform(process, 'delete', key, null, null, async () => {
        await writer.delete(key);
        return { type: 'ok', result: null };
      });
    }
    const value = this.nextValue(process);
    if (roll < 0.75) {
      return this.perform(process, 'put', key, value, null, async () => {
        await writer.put(key, value);
        this.seen(key, value);
        return { type: 'ok', result: null };
      });
    }
    const candidates = this.recent.get(key) ?? [];
    const expected = candidates.length === 0 || this.o.rng.chance(0.1) ? null : this.o.rng.pick(candidates);
    return this.perform(process, 'cas', key, value, expected, async () => {
      const r = await writer.cas(key, expected === null ? { absent: true } : { value: Buffer.from(expected, 'utf8') }, value);
      if (r.succeeded) this.seen(key, value);
      return { type: r.succeeded ? 'ok' : 'fail', result: null };
    });
  }

  randomKey(rng: Rng): string {
    // The keys used so far and the next few fresh ones.
    return registerKey(rng.int(0, this.nextKey + this.o.activeKeys));
  }

  describeKeys(): string {
    return `r0..r${this.nextKey + this.o.activeKeys}`;
  }

  splitPoints(n: number): string[] {
    // Over r0..r(max(n, activeKeys) - 1), the keys of the first few seconds (a healthy run
    // retires about two keys a second): for n <= 10 the splits are r1..r(n-1), so range i holds
    // ri and every later key whose digits start with i (r1 also r10..r19, r100...).
    return quantileKeys(Array.from({ length: Math.max(n, this.o.activeKeys) }, (_v, i) => registerKey(i)), n);
  }

  async finalReads(endpoints: readonly string[], timeoutMs: number): Promise<FinalReadSummary> {
    return this.readAll(endpoints, this.used, timeoutMs);
  }
}

/** The register workload's i-th key: `r0`, `r1`, ... (so in key order r0 < r1 < r10 < r100 < r11 ... < r2). */
export function registerKey(i: number): string {
  return `r${i}`;
}

/**
 * `n - 1` split keys taken at evenly spaced positions of `names` in key (byte) order, never the
 * first: the `n` ranges they make each hold about the same number of these names, at least one.
 */
export function quantileKeys(names: readonly string[], n: number): string[] {
  const sorted = [...new Set(names)].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  if (n < 2) return [];
  if (sorted.length < n) throw new RangeError(`cannot cut ${sorted.length} keys into ${n} ranges`);
  const out: string[] = [];
  for (let i = 1; i < n; i++) out.push(sorted[Math.floor((i * sorted.length) / n)] as string);
  return out;
}

export class SetWorkload extends Workload {
  private nextElement = 0;
  /** Elements whose add was attempted (ok or info): the final read covers them all. */
  private readonly attempted: string[] = [];

  protected async step(process: number, writer: KvClient, _reader: KvClient): Promise<'ok' | 'fail' | 'info'> {
    const value = String(this.nextElement++);
    const key = `s:${value}`;
    this.attempted.push(key);
    return this.perform(process, 'put', key, value, null, async () => {
      await writer.put(key, value);
      return { type: 'ok', result: null };
    });
  }

  randomKey(rng: Rng): string {
    return `s:${rng.int(0, this.nextElement + 100)}`;
  }

  describeKeys(): string {
    return `s:0..s:${this.nextElement + 100}`;
  }

  splitPoints(n: number): string[] {
    // Over the first 10n elements (the first second or so of a healthy run).
    return quantileKeys(Array.from({ length: 10 * n }, (_v, i) => `s:${i}`), n);
  }

  async finalReads(endpoints: readonly string[], timeoutMs: number): Promise<FinalReadSummary> {
    return this.readAll(endpoints, this.attempted, timeoutMs);
  }
}

export function createWorkload(name: WorkloadName, o: WorkloadOptions): Workload {
  return name === 'register' ? new RegisterWorkload(o) : new SetWorkload(o);
}
