// Helpers of scripts/bench/ranges.sh (compiled to dist/scripts/bench/ranges.js). Prints figures; it
// is never a timed test.
//
//   ranges.js split --endpoints H:P,... --ranges N [--keys K] [--concurrency 16] [--max 1h]
//       splits the range holding the bench key space into N ranges at keys spread evenly over the
//       bench's keys (bench/00000000 .. bench/<K-1>, see benchKey in src/cli/bench.ts), through
//       Admin.SplitRange on the leaders; bisects, so up to --concurrency splits run at once, each on
//       a range nobody else splits; starts no split after --max. Prints progress, then one JSON line {type:"split",...}.
//   ranges.js cpu --pids P,... [--names n1,...] [--window 30s] [--label L]
//       CPU of each process over the window (/proc/<pid>/stat utime+stime) as % of one core, RSS;
//       a table and one JSON line {type:"idle-cpu",...}.
//   ranges.js wait-idle --pids P,... [--window 5s] [--max 180s]
//       waits until the processes' summed CPU over a window stops falling (bounded by --max).
//   ranges.js leaders --endpoints ... [--expect N]   ranges per leader node (placement's range map;
//       waits up to 30 s for it to list N user ranges).
//   ranges.js report --files 1=A.jsonl,64=B.jsonl   the 1 vs N ranges table of bench.js JSON lines,
//       then one JSON line per measurement (the bench.js line with `ranges` added).

import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { AdminClient, ClientError } from '../../src/client';
import { PlacementClient } from '../../src/client/placement-client';
import type { RangeDescriptorMsg } from '../../src/api/messages';
import { benchKey, processCpuSeconds, parseDuration, type PhaseResult } from '../../src/cli/bench';

function fail(msg: string): never {
  process.stderr.write(`ranges: ${msg}\n`);
  process.exit(2);
}

/** --name value pairs. */
function args(argv: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) fail(`unexpected argument '${a}'`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) fail(`${a} needs a value`);
    m.set(a.slice(2), v);
    i++;
  }
  return m;
}

function int(m: Map<string, string>, name: string, def?: number): number {
  const v = m.get(name);
  if (v === undefined) {
    if (def === undefined) fail(`--${name} is required`);
    return def;
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) fail(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

function dur(m: Map<string, string>, name: string, def: number): number {
  const v = m.get(name);
  return v === undefined ? def : parseDuration(v);
}

function list(m: Map<string, string>, name: string): string[] {
  const v = m.get(name);
  if (v === undefined) fail(`--${name} is required`);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const uptimeLoad = (): string => loadavg().map((x) => x.toFixed(2)).join(', ');

function holds(d: RangeDescriptorMsg, key: Buffer): boolean {
  return Buffer.compare(key, d.startKey) >= 0 && (d.endKey.length === 0 || Buffer.compare(key, d.endKey) < 0);
}

function rssKb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// -------------------------------------------------------------------------------------------------
// split

/** A counting semaphore: at most `n` holders. */
class Gate {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

async function split(m: Map<string, string>): Promise<number> {
  const endpoints = list(m, 'endpoints');
  const ranges = int(m, 'ranges');
  const keys = Math.max(int(m, 'keys', 100_000), ranges);
  const concurrency = int(m, 'concurrency', 16);
  const timeoutMs = int(m, 'timeout-ms', 30_000);
  // Stop starting splits after this long (the ranges created so far stay; the JSON line says so).
  const maxMs = dur(m, 'max', 3_600_000);
  let stopped = false;
  const admin = new AdminClient(endpoints, timeoutMs);
  const placement = new PlacementClient({ endpoints, deadlineMs: timeoutMs });
  const gate = new Gate(concurrency);
  // Split points: the bench keys at i * keys / ranges, i = 1 .. ranges - 1 (sorted, distinct).
  const points: Buffer[] = [];
  for (let i = 1; i < ranges; i++) points.push(benchKey(Math.floor((i * keys) / ranges)));

  /** Among the nodes' own views, the newest descriptor of the range holding `key`, and its leader. */
  const resolve = async (key: Buffer): Promise<{ d: RangeDescriptorMsg; leader?: string }> => {
    for (let attempt = 0; ; attempt++) {
      if (performance.now() - t0 > maxMs) throw new Error(`past --max while looking for the range holding ${key.toString()}`);
      let best: { d: RangeDescriptorMsg; leader?: string } | undefined;
      for (const view of await admin.clusterStatus()) {
        for (const r of view.status?.ranges ?? []) {
          const d = r.descriptor;
          if (d.rangeId === 0 || !holds(d, key)) continue;
          if (best && (best.d.epoch?.version ?? 0) >= (d.epoch?.version ?? 0)) continue;
          const leader = view.status!.nodes.find((n) => n.nodeId === r.leaderNodeId && r.leaderNodeId !== 0);
          best = { d, leader: leader?.address || undefined };
        }
      }
      if (best) return best;
      if (attempt >= 20) throw new Error(`no range holding ${key.toString()} found on any node`);
      await sleep(500);
    }
  };

  const t0 = performance.now();
  let done = 0;
  let retries = 0;
  let abandoned = 0;
  const errors: string[] = [];
  let lastReport = t0;
  const progress = (): void => {
    const now = performance.now();
    if (now - lastReport < 5000 && done < points.length) return;
    lastReport = now;
    const s = (now - t0) / 1000;
    process.stderr.write(`  ${done}/${points.length} splits in ${s.toFixed(1)} s (${(done / s).toFixed(1)}/s), load ${uptimeLoad()}\n`);
  };

  /** Splits `d` (leader hint `leader`) at every point of [lo, hi), bisecting. */
  const splitAll = async (d: RangeDescriptorMsg, leader: string | undefined, lo: number, hi: number): Promise<void> => {
    if (lo >= hi) return;
    if (performance.now() - t0 > maxMs) {
      stopped = true;
      return;
    }
    const mid = (lo + hi) >> 1;
    const key = points[mid] as Buffer;
    let left: RangeDescriptorMsg | undefined;
    let right: RangeDescriptorMsg | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await gate.run(() => admin.splitRange(d.rangeId, key, d.epoch?.version || undefined, leader));
        left = res.left;
        right = res.right ?? undefined;
        break;
      } catch (err) {
        const msg = `split of range ${d.rangeId} at ${key.toString()} (attempt ${attempt + 1}): ${(err as Error).name}: ${(err as Error).message}`;
        if (performance.now() - t0 > maxMs) {
          // Past --max: give this subtree up (the split may or may not have applied).
          abandoned++;
          stopped = true;
          return;
        }
        if (attempt >= 4 || !(err instanceof ClientError)) {
          errors.push(msg);
          throw new Error(msg);
        }
        retries++;
        process.stderr.write(`  retrying: ${msg}\n`);
        // The split may have applied (its answer lost): look at what the nodes hold now.
        const now = await resolve(key);
        if (Buffer.compare(now.d.startKey, key) === 0) {
          right = now.d;
          left = (await resolve(d.startKey)).d;
          leader = now.leader ?? leader;
          break;
        }
        d = now.d;
        leader = now.leader ?? leader;
      }
    }
    if (!right) right = (await resolve(key)).d; // the answering leader did not host it yet
    done++;
    progress();
    // The parent's leader makes the new range campaign at once: the same node leads both.
    await Promise.all([splitAll(left, leader, lo, mid), splitAll(right, leader, mid + 1, hi)]);
  };

  try {
    process.stderr.write(`splitting into ${ranges} ranges (${points.length} splits over ${keys} bench keys, ${concurrency} at a time), load ${uptimeLoad()}\n`);
    const first = points.length > 0 ? await placement.lookupRange(points[0] as Buffer) : undefined;
    let root: { d: RangeDescriptorMsg; leader?: string } | undefined = first ? { d: first.descriptor, leader: first.leader?.address || undefined } : undefined;
    const show = (d: RangeDescriptorMsg): string => `range ${d.rangeId} [${d.startKey.toString()}, ${d.endKey.toString()}) version ${d.epoch?.version}`;
    if (root && points.some((p) => !holds(root!.d, p))) {
      process.stderr.write(`  placement's view: ${show(root.d)} (leader ${root.leader}) does not hold every split point; asking the nodes\n`);
      root = undefined;
    }
    if (!root && points.length > 0) root = await resolve(points[0] as Buffer);
    if (root && points.some((p) => !holds(root!.d, p))) throw new Error(`${show(root.d)} does not hold every split point: split an unsplit cluster`);
    if (root) await splitAll(root.d, root.leader, 0, points.length);
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(
      JSON.stringify({ type: 'split', ranges, rangesCreated: done + 1, ...(stopped ? { stoppedAtMax: true, abandonedAtMax: abandoned } : {}), splits: done, concurrency, seconds: Math.round(seconds * 10) / 10, splitsPerSec: Math.round((done / Math.max(seconds, 0.001)) * 10) / 10, retries, loadAfter: uptimeLoad() }) + '\n',
    );
    return 0;
  } catch (err) {
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(JSON.stringify({ type: 'split', ranges, splits: done, failed: true, seconds: Math.round(seconds * 10) / 10, retries, errors: errors.slice(0, 5), error: (err as Error).message }) + '\n');
    return 1;
  } finally {
    admin.close();
    placement.close();
  }
}

// -------------------------------------------------------------------------------------------------
// cpu, wait-idle

function totalCpu(pids: readonly number[]): number[] {
  return pids.map((p) => {
    const c = processCpuSeconds(p);
    if (c === null) fail(`process ${p} is gone`);
    return c;
  });
}

async function cpu(m: Map<string, string>): Promise<number> {
  const pids = list(m, 'pids').map(Number);
  const names = m.has('names') ? list(m, 'names') : pids.map((p) => String(p));
  const windowMs = dur(m, 'window', 30_000);
  const label = m.get('label') ?? '';
  const load1Before = uptimeLoad();
  const t0 = performance.now();
  const before = totalCpu(pids);
  await sleep(windowMs);
  const after = totalCpu(pids);
  const s = (performance.now() - t0) / 1000;
  const nodes = pids.map((pid, i) => ({
    node: names[i] ?? String(pid),
    pid,
    cpuPctOfOneCore: Math.round((((after[i] as number) - (before[i] as number)) / s) * 1000) / 10,
    rssMiB: Math.round((rssKb(pid) ?? 0) / 102.4) / 10,
  }));
  const rows = [['node', 'pid', 'CPU % of one core', 'RSS MiB'], ...nodes.map((n) => [n.node, String(n.pid), n.cpuPctOfOneCore.toFixed(1), n.rssMiB.toFixed(1)])];
  const w = (rows[0] ?? []).map((_c, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  process.stdout.write(`${label ? label + ': ' : ''}CPU over ${s.toFixed(1)} s (target: under 10 % of one core per node)\n`);
  for (const r of rows) process.stdout.write('  ' + r.map((c, i) => (i === 0 ? c.padEnd(w[i] ?? 0) : c.padStart(w[i] ?? 0))).join('  ') + '\n');
  const max = Math.max(...nodes.map((n) => n.cpuPctOfOneCore));
  process.stdout.write(`  max ${max.toFixed(1)} % of one core: ${max < 10 ? 'under' : 'NOT under'} 10 %\n`);
  process.stdout.write(JSON.stringify({ type: 'idle-cpu', label, windowS: Math.round(s * 10) / 10, nodes, maxCpuPct: max, loadBefore: load1Before, loadAfter: uptimeLoad() }) + '\n');
  return 0;
}

async function waitIdle(m: Map<string, string>): Promise<number> {
  const pids = list(m, 'pids').map(Number);
  const windowMs = dur(m, 'window', 5_000);
  const maxMs = dur(m, 'max', 180_000);
  const t0 = performance.now();
  let prev = Infinity;
  for (let n = 1; ; n++) {
    const a = totalCpu(pids).reduce((x, y) => x + y, 0);
    const ta = performance.now();
    await sleep(windowMs);
    const b = totalCpu(pids).reduce((x, y) => x + y, 0);
    const cores = (b - a) / ((performance.now() - ta) / 1000);
    const elapsed = (performance.now() - t0) / 1000;
    process.stderr.write(`  wait-idle window ${n}: the ${pids.length} processes use ${(cores * 100).toFixed(1)} % of one core (sum), load ${uptimeLoad()}\n`);
    // Idle: no longer falling by more than 10 % (or a tenth of a percent of a core).
    if (n >= 2 && cores >= prev * 0.9 - 0.001) {
      process.stderr.write(`  idle after ${elapsed.toFixed(0)} s\n`);
      return 0;
    }
    if (elapsed * 1000 >= maxMs) {
      process.stderr.write(`  still falling after ${elapsed.toFixed(0)} s (--max): measuring anyway\n`);
      return 0;
    }
    prev = Math.min(prev, cores);
  }
}

// -------------------------------------------------------------------------------------------------
// leaders, report

async function leaders(m: Map<string, string>): Promise<number> {
  const p = new PlacementClient({ endpoints: list(m, 'endpoints'), deadlineMs: 30_000 });
  const expect = m.has('expect') ? int(m, 'expect') : 0;
  try {
    // Placement learns of new ranges from the leaders' heartbeats: wait (bounded) until it has them all.
    const t0 = performance.now();
    let rs = await p.listRanges();
    while (expect > 0 && rs.length < expect && performance.now() - t0 < 30_000) {
      await sleep(1000);
      rs = await p.listRanges();
    }
    const by = new Map<string, number>();
    for (const r of rs) {
      const k = r.leader && r.leader.nodeId !== 0 ? `node ${r.leader.nodeId}` : 'unknown';
      by.set(k, (by.get(k) ?? 0) + 1);
    }
    process.stdout.write(`${rs.length} ranges in placement's map; leaders: ${[...by.entries()].sort().map(([k, v]) => `${k}: ${v}`).join(', ')}\n`);
    return 0;
  } finally {
    p.close();
  }
}

function report(m: Map<string, string>): number {
  const rows: Array<PhaseResult & { ranges: number }> = [];
  for (const spec of list(m, 'files')) {
    const [count, file] = spec.split('=') as [string, string | undefined];
    if (file === undefined || !(Number(count) > 0)) fail(`--files: expected RANGES=FILE, got '${spec}'`);
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      const r = JSON.parse(line) as PhaseResult;
      if (r.type === 'bench' && r.workload !== 'preload') rows.push({ ...r, ranges: Number(count) });
    }
  }
  const counts = [...new Set(rows.map((r) => r.ranges))].sort((a, b) => a - b);
  const lo = counts[0];
  const hi = counts[counts.length - 1];
  const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const n = (x: number | null): string => (x === null ? '-' : Math.round(x).toLocaleString('en-US'));
  const t: string[][] = [['workload', 'c', 'ranges', 'ops/s', 'p50 ms', 'p99 ms', 'p999 ms', 'server µs/op', 'other load', `ops ${hi}/${lo}`, `µs/op ${hi}/${lo}`]];
  const order = ['put', 'get', 'get-stale', 'mix'];
  rows.sort((a, b) => order.indexOf(a.workload) - order.indexOf(b.workload) || a.concurrency - b.concurrency || a.ranges - b.ranges);
  for (const r of rows) {
    const base = rows.find((x) => x.workload === r.workload && x.concurrency === r.concurrency && x.ranges === lo);
    const showRatio = r.ranges === hi && base !== undefined && hi !== lo;
    t.push([
      r.workload, String(r.concurrency), String(r.ranges), n(r.opsPerSec), ms(r.p50Ms), ms(r.p99Ms), ms(r.p999Ms), n(r.serverCpuUsPerOp),
      r.otherCores === null ? '-' : r.otherCores.toFixed(2),
      showRatio ? `${(r.opsPerSec / base.opsPerSec).toFixed(2)}x` : '',
      showRatio && r.serverCpuUsPerOp !== null && base.serverCpuUsPerOp ? `${(r.serverCpuUsPerOp / base.serverCpuUsPerOp).toFixed(2)}x` : '',
    ]);
  }
  const w = (t[0] ?? []).map((_c, i) => Math.max(...t.map((r) => (r[i] ?? '').length)));
  process.stdout.write('latencies in ms; server µs/op = utime+stime of the 3 kvd processes over the measured window / ops; other load = busy cores neither kvd nor the bench client used\n');
  for (const r of t) process.stdout.write(r.map((c, i) => (i < 2 ? c.padEnd(w[i] ?? 0) : c.padStart(w[i] ?? 0))).join('  ') + '\n');
  for (const r of rows) process.stdout.write(JSON.stringify({ ...r, type: 'ranges-bench' }) + '\n');
  for (const r of rows) if (r.errors > 0 || r.notFound > 0) process.stdout.write(`WARNING: ${r.workload} c=${r.concurrency} ranges=${r.ranges}: ${r.errors} errors, ${r.notFound} not found${r.firstError ? ` (first: ${r.firstError})` : ''}\n`);
  return 0;
}

// -------------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const m = args(rest);
  switch (cmd) {
    case 'split':
      return split(m);
    case 'cpu':
      return cpu(m);
    case 'wait-idle':
      return waitIdle(m);
    case 'leaders':
      return leaders(m);
    case 'report':
      return report(m);
    default:
      fail('usage: ranges.js split|cpu|wait-idle|leaders|report [--options] (see scripts/bench/ranges.ts)');
  }
}

main(process.argv.slice(2)).then(
  (c) => {
    process.exitCode = c;
  },
  (err: unknown) => {
    process.stderr.write(`ranges: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 3;
  },
);
