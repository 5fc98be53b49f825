// The benchmark engine behind `kvctl bench` and scripts/bench/bench.ts: closed-loop workloads with a
// fixed number of requests in flight, latency percentiles, and the server CPU spent per operation
// (read from /proc/<pid>/stat of the server processes, so it does not depend on the client).
//
// Workloads: put (uniform random keys), get (linearizable), get-stale, mix (50% put, 50%
// linearizable get) and preload (every key of the keyspace written once, in order). A benchmark
// prints figures; it is never a timed test.
//
// The client side is kept cheap: keys and the value are allocated once, latencies go into a
// preallocated Float64Array, one client (one connection per server) is shared by all workers.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Consistency, KvClient, UnavailableError } from '../client';

export const WORKLOADS = ['put', 'get', 'get-stale', 'mix', 'preload'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** What a workload needs from a store. */
export interface BenchTarget {
  /** Short name used in reports ("rangekv", "etcd"). */
  readonly name: string;
  put(key: Buffer, value: Buffer): Promise<void>;
  /** Resolves whether the key was found. */
  get(key: Buffer, stale: boolean): Promise<boolean>;
  close(): Promise<void>;
}

/** RangeKV through the TypeScript client library (one KvClient, leader-following). */
export class RangeKvTarget implements BenchTarget {
  readonly name: string;
  private readonly client: KvClient;

  /** `multiplex: false`: one unary call per request (reported as target "rangekv-unary"); the client's default is Multiplex streams. */
  constructor(endpoints: readonly string[], timeoutMs: number, opts: { multiplex?: boolean } = {}) {
    this.name = opts.multiplex === false ? 'rangekv-unary' : 'rangekv';
    this.client = new KvClient({ endpoints, deadlineMs: timeoutMs, multiplex: opts.multiplex });
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    await this.client.put(key, value);
  }

  async get(key: Buffer, stale: boolean): Promise<boolean> {
    const r = await this.client.get(key, stale ? Consistency.Stale : Consistency.Linearizable);
    return r.found;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

export interface PhaseSpec {
  readonly workload: Workload;
  /** Requests in flight. */
  readonly concurrency: number;
  /** Size of the keyspace: keys bench/00000000 .. */
  readonly keys: number;
  readonly valueSize: number;
  /** Measured time (ignored by preload, which runs until every key is written). */
  readonly durationMs: number;
  /** Unmeasured time before the measured window. */
  readonly warmupMs: number;
  /** Server processes whose CPU time is charged to the operations (local pids). */
  readonly serverPids: readonly number[];
  /** Deadline of one operation; also bounds how long the end of a phase waits for stragglers. */
  readonly timeoutMs: number;
  readonly seed: number;
}

export interface ServerCpu {
  readonly pid: number;
  /** CPU seconds (user + system) during the measured window; null when the process was not readable. */
  readonly cpuS: number | null;
}

export interface PhaseResult {
  readonly type: 'bench';
  readonly target: string;
  readonly workload: Workload;
  readonly concurrency: number;
  readonly keys: number;
  readonly valueSize: number;
  readonly durationS: number;
  readonly ops: number;
  readonly errors: number;
  /** Gets that found no value (a get phase without preload measures the wrong thing). */
  readonly notFound: number;
  readonly opsPerSec: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** Server CPU (all given server processes) per completed operation, microseconds. */
  readonly serverCpuUsPerOp: number | null;
  /** Server CPU in cores (CPU seconds per second) during the window. */
  readonly serverCores: number | null;
  readonly servers: readonly ServerCpu[];
  /** The benchmark process's own CPU per operation, microseconds. */
  readonly clientCpuUsPerOp: number;
  readonly clientCores: number;
  /** The whole machine's busy cores during the window (/proc/stat). */
  readonly machineBusyCores: number | null;
  /** Busy cores neither the servers nor this client account for (other load on the machine). */
  readonly otherCores: number | null;
  readonly load1: number;
  /** Operations completed in each second of the measured window (stalls show up here). */
  readonly perSecond: readonly number[];
  readonly startedAt: string;
  readonly firstError?: string;
}

// -------------------------------------------------------------------------------------------------
// Measurement helpers

let clockTicks: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. */
function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds (utime + stime, all threads) of a process, or null when it cannot be read. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may hold spaces: fields after the last ')' start at field 3 (state).
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const utime = Number(f[11]);
    const stime = Number(f[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
    return (utime + stime) / clkTck();
  } catch {
    return null;
  }
}

/** Busy and total CPU seconds of the whole machine (/proc/stat), or null off Linux. */
function machineCpuSeconds(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: (total - idle) / clkTck(), total: total / clkTck() };
  } catch {
    return null;
  }
}

interface CpuSnapshot {
  readonly atMs: number;
  readonly servers: Array<number | null>;
  readonly client: NodeJS.CpuUsage;
  readonly machine: { busy: number; total: number } | null;
}

function cpuSnapshot(pids: readonly number[]): CpuSnapshot {
  return { atMs: performance.now(), servers: pids.map(processCpuSeconds), client: process.cpuUsage(), machine: machineCpuSeconds() };
}

/** Latencies in milliseconds, preallocated and grown by doubling (no allocation per sample). */
class Samples {
  private buf = new Float64Array(1 << 16);
  n = 0;
  sum = 0;

  add(ms: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = ms;
    this.sum += ms;
  }

  percentiles(qs: readonly number[]): number[] {
    if (this.n === 0) return qs.map(() => 0);
    const sorted = this.buf.slice(0, this.n).sort();
    return qs.map((q) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil(q * this.n) - 1))] as number);
  }
}

/** xorshift32: cheap, seeded, good enough to spread keys uniformly. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function benchKey(i: number): Buffer {
  return Buffer.from(`bench/${String(i).padStart(8, '0')}`);
}

const keyCache = new Map<number, Buffer[]>();

function keysFor(n: number): Buffer[] {
  let ks = keyCache.get(n);
  if (!ks) {
    ks = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) ks[i] = benchKey(i);
    keyCache.set(n, ks);
  }
  return ks;
}

function valueOf(size: number, seed: number): Buffer {
  const next = rng(seed ^ 0x5bd1e995);
  const v = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) v[i] = 0x61 + (next() % 26); // printable, incompressible enough
  return v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// -------------------------------------------------------------------------------------------------
// One phase

export async function runPhase(target: BenchTarget, spec: PhaseSpec): Promise<PhaseResult> {
  const keys = keysFor(spec.keys);
  const value = valueOf(spec.valueSize, spec.seed);
  const nextRand = rng(spec.seed);
  const samples = new Samples();
  const preload = spec.workload === 'preload';
  let measuring = preload;
  let stopped = false;
  let ops = 0;
  let errors = 0;
  let notFound = 0;
  let firstError: string | undefined;
  let preloadNext = 0;
  const perSecond = new Uint32Array(Math.ceil((preload ? 3_600_000 : spec.durationMs) / 1000) + 1);
  let windowStart = performance.now();

  const startedAt = new Date().toISOString();
  const load1 = loadavg()[0] ?? 0;

  const one = async (): Promise<void> => {
    let k: Buffer;
    if (preload) {
      if (preloadNext >= keys.length) {
        stopped = true;
        return;
      }
      k = keys[preloadNext++] as Buffer;
    } else {
      k = keys[nextRand() % keys.length] as Buffer;
    }
    const t0 = performance.now();
    try {
      switch (spec.workload) {
        case 'put':
        case 'preload':
          await target.put(k, value);
          break;
        case 'get':
          if (!(await target.get(k, false))) notFound++;
          break;
        case 'get-stale':
          if (!(await target.get(k, true))) notFound++;
          break;
        case 'mix':
          if (nextRand() & 1) await target.put(k, value);
          else if (!(await target.get(k, false))) notFound++;
          break;
      }
      if (measuring) {
        const now = performance.now();
        samples.add(now - t0);
        ops++;
        const sec = Math.floor((now - windowStart) / 1000);
        if (sec < perSecond.length) perSecond[sec]!++;
      }
    } catch (err) {
      if (measuring) errors++;
      if (firstError === undefined) firstError = (err as Error).message ?? String(err);
      // A failing cluster must not turn into a hot loop.
      await sleep(10);
    }
  };

  const worker = async (): Promise<void> => {
    while (!stopped) await one();
  };

  let before = cpuSnapshot(spec.serverPids);
  const workers: Array<Promise<void>> = [];
  for (let i = 0; i < spec.concurrency; i++) workers.push(worker());

  let after: CpuSnapshot;
  if (preload) {
    // Bounded by the operation deadline per key: a stuck cluster fails every op in turn.
    await Promise.all(workers);
    after = cpuSnapshot(spec.serverPids);
  } else {
    await sleep(spec.warmupMs);
    before = cpuSnapshot(spec.serverPids);
    windowStart = before.atMs;
    measuring = true;
    await sleep(spec.durationMs);
    after = cpuSnapshot(spec.serverPids);
    measuring = false;
    stopped = true;
    // Stragglers finish within their deadline; do not wait longer than that.
    await Promise.race([Promise.all(workers), sleep(spec.timeoutMs + 1000)]);
  }

  const windowS = (after.atMs - before.atMs) / 1000;
  const servers: ServerCpu[] = spec.serverPids.map((pid, i) => {
    const a = after.servers[i];
    const b = before.servers[i];
    return { pid, cpuS: a === null || a === undefined || b === null || b === undefined ? null : round(a - b, 3) };
  });
  const serverCpuS = servers.length > 0 && servers.every((s) => s.cpuS !== null) ? servers.reduce((t, s) => t + (s.cpuS as number), 0) : null;
  const clientCpuS = (after.client.user - before.client.user + after.client.system - before.client.system) / 1e6;
  const machineBusy = after.machine && before.machine ? after.machine.busy - before.machine.busy : null;
  const [p50, p90, p99, p999] = samples.percentiles([0.5, 0.9, 0.99, 0.999]) as [number, number, number, number];
  const max = samples.percentiles([1])[0] as number;

  return {
    type: 'bench',
    target: target.name,
    workload: spec.workload,
    concurrency: spec.concurrency,
    keys: spec.keys,
    valueSize: spec.valueSize,
    durationS: round(windowS, 3),
    ops,
    errors,
    notFound,
    opsPerSec: round(ops / windowS, 1),
    meanMs: round(samples.n > 0 ? samples.sum / samples.n : 0, 3),
    p50Ms: round(p50, 3),
    p90Ms: round(p90, 3),
    p99Ms: round(p99, 3),
    p999Ms: round(p999, 3),
    maxMs: round(max, 3),
    serverCpuUsPerOp: serverCpuS === null || ops === 0 ? null : round((serverCpuS * 1e6) / ops, 1),
    serverCores: serverCpuS === null ? null : round(serverCpuS / windowS, 3),
    servers,
    clientCpuUsPerOp: ops === 0 ? 0 : round((clientCpuS * 1e6) / ops, 1),
    clientCores: round(clientCpuS / windowS, 3),
    machineBusyCores: machineBusy === null ? null : round(machineBusy / windowS, 3),
    otherCores: machineBusy === null || serverCpuS === null ? null : round(Math.max(0, machineBusy - serverCpuS - clientCpuS) / windowS, 3),
    load1: round(load1, 2),
    perSecond: Array.from(perSecond.subarray(0, Math.max(1, Math.floor(windowS)))),
    startedAt,
    ...(firstError !== undefined ? { firstError } : {}),
  };
}

// -------------------------------------------------------------------------------------------------
// Reporting

function fmtInt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

function fmtMs(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** One human-readable line per phase. */
export function formatResult(r: PhaseResult): string {
  const parts = [
    `${r.target.padEnd(7)} ${r.workload.padEnd(9)} c=${String(r.concurrency).padEnd(4)}`,
    `${fmtInt(r.opsPerSec).padStart(7)} ops/s`,
    `p50 ${fmtMs(r.p50Ms)} ms`,
    `p99 ${fmtMs(r.p99Ms)} ms`,
    `p999 ${fmtMs(r.p999Ms)} ms`,
    `server ${r.serverCpuUsPerOp === null ? '?' : fmtInt(r.serverCpuUsPerOp)} µs/op (${r.serverCores === null ? '?' : r.serverCores.toFixed(2)} cores)`,
    `client ${fmtInt(r.clientCpuUsPerOp)} µs/op`,
    `slowest second ${fmtInt(Math.min(...r.perSecond.slice(0, Math.max(1, Math.floor(r.durationS)))))} ops`,
    `other load ${r.otherCores === null ? '?' : r.otherCores.toFixed(2)} cores`,
  ];
  if (r.errors > 0) parts.push(`ERRORS ${r.errors} (first: ${r.firstError ?? '?'})`);
  if (r.notFound > 0) parts.push(`NOT FOUND ${r.notFound}`);
  return parts.join('  ');
}

// -------------------------------------------------------------------------------------------------
// Options shared by `kvctl bench` and scripts/bench/bench.ts

export interface SuiteOptions {
  readonly workloads: readonly Workload[];
  readonly concurrency: readonly number[];
  readonly keys: number;
  readonly valueSize: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly preload: boolean;
  readonly preloadConcurrency: number;
  readonly serverPids: readonly number[];
  readonly timeoutMs: number;
  readonly seed: number;
}

/** "10s", "500ms", "2m" or a plain number of seconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration like 10s, 500ms or 2m, got '${v}'`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  if (!(ms > 0)) throw new InvalidArgumentError(`must be positive, got '${v}'`);
  return Math.round(ms);
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`must be a positive integer, got '${v}'`);
  return n;
}

function intList(v: string): number[] {
  return v.split(',').map((s) => positiveInt(s.trim()));
}

function workloadList(v: string): Workload[] {
  return v.split(',').map((s) => {
    const w = s.trim() as Workload;
    if (!WORKLOADS.includes(w)) throw new InvalidArgumentError(`'${s}' is not one of ${WORKLOADS.join(', ')}`);
    return w;
  });
}

/** Adds the workload options to a command. */
export function addSuiteOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--workload <list>', `comma-separated, run in order: ${WORKLOADS.join(', ')}`).default(['put', 'get', 'get-stale', 'mix'], 'put,get,get-stale,mix').argParser(workloadList))
    .addOption(new Option('--concurrency <list>', 'requests in flight, comma-separated (one run each)').default([64, 256], '64,256').argParser(intList))
    .addOption(new Option('--keys <n>', 'key space').default(100_000).argParser(positiveInt))
    .addOption(new Option('--value-size <bytes>', 'value size').default(256).argParser(positiveInt))
    .addOption(new Option('--duration <time>', 'measured time per run (10s, 500ms, 2m)').default(10_000, '10s').argParser(parseDuration))
    .addOption(new Option('--warmup <time>', 'unmeasured time before each run').default(2_000, '2s').argParser(parseDuration))
    .option('--no-preload', 'do not write the key space before the first get or mix run')
    .addOption(new Option('--preload-concurrency <n>', 'requests in flight while preloading').default(256).argParser(positiveInt))
    .addOption(new Option('--server-pids <list>', 'local server pids whose CPU is charged to the operations').default([] as number[], 'none').argParser(intList))
    .addOption(new Option('--op-timeout <time>', 'deadline of one operation').default(10_000, '10s').argParser(parseDuration))
    .addOption(new Option('--seed <n>', 'random seed').default(1).argParser(positiveInt));
}

interface RawSuiteOptions {
  workload: Workload[];
  concurrency: number[];
  keys: number;
  valueSize: number;
  duration: number;
  warmup: number;
  preload: boolean;
  preloadConcurrency: number;
  serverPids: number[];
  opTimeout: number;
  seed: number;
}

export function suiteOptions(o: RawSuiteOptions): SuiteOptions {
  return {
    workloads: o.workload,
    concurrency: o.concurrency,
    keys: o.keys,
    valueSize: o.valueSize,
    durationMs: o.duration,
    warmupMs: o.warmup,
    preload: o.preload,
    preloadConcurrency: o.preloadConcurrency,
    serverPids: o.serverPids,
    timeoutMs: o.opTimeout,
    seed: o.seed,
  };
}

/**
 * Runs every workload at every concurrency (preloading the key space first when a get or mix
 * run needs it and the list does not start with an explicit preload). `report` gets each result.
 */
export async function runSuite(target: BenchTarget, s: SuiteOptions, report: (r: PhaseResult) => void): Promise<PhaseResult[]> {
  const out: PhaseResult[] = [];
  const base = { keys: s.keys, valueSize: s.valueSize, durationMs: s.durationMs, warmupMs: s.warmupMs, serverPids: s.serverPids, timeoutMs: s.timeoutMs, seed: s.seed };
  let loaded = false;
  for (const w of s.workloads) {
    if (w === 'preload' || (!loaded && s.preload && (w === 'get' || w === 'get-stale' || w === 'mix'))) {
      const r = await runPhase(target, { ...base, workload: 'preload', concurrency: s.preloadConcurrency });
      report(r);
      out.push(r);
      loaded = true;
      if (w === 'preload') continue;
    }
    for (const c of s.concurrency) {
      const r = await runPhase(target, { ...base, workload: w, concurrency: c, seed: s.seed + c });
      report(r);
      out.push(r);
    }
  }
  return out;
}

// -------------------------------------------------------------------------------------------------
// `kvctl bench`

/**
 * Registers `kvctl bench` on kvctl's program (global --endpoints, --timeout-ms and --json apply).
 * Without --json it prints a readable line and a JSON line per run; with --json, JSON lines only.
 */
export function addBenchCommand(program: Command): void {
  const cmd = program
    .command('bench')
    .description('closed-loop benchmark: ops/s, p50/p99/p999 latency, server CPU per op (--server-pids)');
  cmd.option('--unary', "one unary gRPC call per request instead of the client's Multiplex streams (many requests per gRPC message)");
  addSuiteOptions(cmd).action(async (_opts: unknown, self: Command) => {
    const g = self.optsWithGlobals<RawSuiteOptions & { endpoints: string; json: boolean; unary?: boolean }>();
    const endpoints = g.endpoints.split(',').map((x) => x.trim()).filter(Boolean);
    if (endpoints.length === 0) self.error('kvctl bench: --endpoints: give at least one host:port', { exitCode: 2 });
    const target = new RangeKvTarget(endpoints, g.opTimeout, { multiplex: g.unary !== true });
    try {
      const results = await runSuite(target, suiteOptions(g), (r) => {
        if (!g.json) process.stdout.write(formatResult(r) + '\n');
        process.stdout.write(JSON.stringify(r) + '\n');
      });
      if (results.length > 0 && results.every((r) => r.ops === 0 && r.workload !== 'preload')) {
        throw new UnavailableError(`bench: no operation succeeded (first error: ${results.find((r) => r.firstError)?.firstError ?? 'none'})`);
      }
    } finally {
      await target.close();
    }
  });
}
