// RangeKV benchmark driver (compiled to dist/scripts/bench/bench.js; scripts/bench/run.sh drives it).
//
//   bench.js run --target rangekv|etcd --endpoints H:P,... [workload options] [--jsonl FILE]
//       runs workloads (put, get, get-stale, mix, preload) at each --concurrency; prints a readable
//       line and a JSON line per run; appends the JSON lines to FILE when given.
//   bench.js wait --target rangekv|etcd --endpoints ... [--timeout 30s]
//       waits until the cluster answers a linearizable get (exit 1 on timeout).
//   bench.js etcd-leader --endpoints ...      prints the leader's client endpoint.
//   bench.js compare FILE                      prints the RangeKV vs etcd table from JSON lines.
//   bench.js profile FILE.cpuprofile... [--top N] [--root DIR]
//       summarises V8 CPU profiles (node --cpu-prof): self time by component and by function,
//       inclusive time by function.
//
// Prints figures; it is never a timed test.

import { appendFileSync, readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  BenchTarget,
  PhaseResult,
  RangeKvTarget,
  addSuiteOptions,
  formatResult,
  parseDuration,
  runSuite,
  suiteOptions,
} from '../../src/cli/bench';

type TargetName = 'rangekv' | 'rangekv-unary' | 'etcd';

function endpointsOf(v: string): string[] {
  const eps = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (eps.length === 0) throw new InvalidArgumentError('give at least one host:port');
  for (const e of eps) {
    const host = e.replace(/^https?:\/\//, '').split(':')[0] ?? '';
    // Load goes to this machine only.
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) throw new InvalidArgumentError(`only loopback targets are allowed, got '${e}'`);
  }
  return eps;
}

/** The etcd side loads the `etcd3` devDependency only when asked for. */
async function makeTarget(name: TargetName, endpoints: string[], timeoutMs: number): Promise<BenchTarget> {
  if (name === 'rangekv') return new RangeKvTarget(endpoints, timeoutMs);
  if (name === 'rangekv-unary') return new RangeKvTarget(endpoints, timeoutMs, { multiplex: false });
  const { EtcdTarget } = await import('./etcd-target');
  return new EtcdTarget(endpoints, timeoutMs);
}

const targetOption = (): Option => new Option('--target <name>', 'store to benchmark').choices(['rangekv', 'rangekv-unary', 'etcd']).default('rangekv');
const endpointsOption = (): Option => new Option('--endpoints <list>', 'comma-separated host:port (loopback only)').makeOptionMandatory().argParser(endpointsOf);

// -------------------------------------------------------------------------------------------------
// compare

interface Row {
  readonly workload: string;
  readonly concurrency: number;
  readonly byTarget: Map<string, PhaseResult>;
}

function readResults(file: string): PhaseResult[] {
  const out: PhaseResult[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const r = JSON.parse(line) as PhaseResult;
      if (r.type === 'bench') out.push(r);
    } catch {
      // not one of ours
    }
  }
  return out;
}

const num = (x: number | null | undefined, digits = 0): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (x: number | undefined): string => (x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? '-' : `${(a / b).toFixed(2)}x`;

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_c, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

/**
 * The comparison table(s): RangeKV through the client as it comes ('rangekv': Multiplex streams)
 * and with one unary call per request ('rangekv-unary', as etcd's client), each against etcd
 * from the same run.
 */
export function compare(results: readonly PhaseResult[]): string {
  const names = ['rangekv', 'rangekv-unary'].filter((n) => results.some((r) => r.target === n));
  if (names.length === 0) return compareOne(results, 'rangekv');
  return names.map((n) => `=== ${n === 'rangekv' ? 'RangeKV client as it comes (Multiplex streams)' : 'RangeKV client, one unary call per request'} (target ${n})\n${compareOne(results, n)}`).join('\n');
}

function compareOne(results: readonly PhaseResult[], rkv: string): string {
  const rows = new Map<string, Row>();
  const order = ['preload', 'put', 'get', 'get-stale', 'mix'];
  for (const r of results) {
    const k = `${r.workload}/${r.concurrency}`;
    let row = rows.get(k);
    if (!row) {
      row = { workload: r.workload, concurrency: r.concurrency, byTarget: new Map() };
      rows.set(k, row);
    }
    row.byTarget.set(r.target, r); // the last run of a kind wins
  }
  const sorted = [...rows.values()].sort((a, b) => order.indexOf(a.workload) - order.indexOf(b.workload) || a.concurrency - b.concurrency);
  const head = [
    'workload', 'c',
    'RKV ops/s', 'p50', 'p99', 'p999', 'µs/op',
    'etcd ops/s', 'p50', 'p99', 'p999', 'µs/op',
    'ops ratio', 'p99 ratio', 'cpu ratio', 'other load',
  ];
  const lines: string[][] = [head];
  for (const row of sorted) {
    const a = row.byTarget.get(rkv);
    const b = row.byTarget.get('etcd');
    lines.push([
      row.workload, String(row.concurrency),
      num(a?.opsPerSec), ms(a?.p50Ms), ms(a?.p99Ms), ms(a?.p999Ms), num(a?.serverCpuUsPerOp),
      num(b?.opsPerSec), ms(b?.p50Ms), ms(b?.p99Ms), ms(b?.p999Ms), num(b?.serverCpuUsPerOp),
      ratio(a?.opsPerSec, b?.opsPerSec), ratio(a?.p99Ms, b?.p99Ms), ratio(a?.serverCpuUsPerOp, b?.serverCpuUsPerOp),
      `${num(a?.otherCores, 2)}/${num(b?.otherCores, 2)}`,
    ]);
  }
  const out: string[] = [
    'latencies in ms; µs/op = server CPU (utime+stime of all 3 server processes) per operation',
    'ratios are RangeKV / etcd: ops > 1 is better, p99 and cpu < 1 are better',
    'other load = busy cores on the machine that neither the servers nor the bench client used (RangeKV run / etcd run)',
    '',
    table(lines),
    '',
  ];

  // Stale vs linearizable gets, per target.
  const sl: string[][] = [['target', 'c', 'stale ops/s', 'linearizable ops/s', 'stale/lin']];
  for (const t of [rkv, 'etcd']) {
    for (const row of sorted.filter((r) => r.workload === 'get')) {
      const lin = row.byTarget.get(t);
      const stale = rows.get(`get-stale/${row.concurrency}`)?.byTarget.get(t);
      if (lin && stale) sl.push([t, String(row.concurrency), num(stale.opsPerSec), num(lin.opsPerSec), ratio(stale.opsPerSec, lin.opsPerSec)]);
    }
  }
  if (sl.length > 1) out.push(table(sl), '');

  // The issue's targets.
  const checks: string[] = [];
  for (const row of sorted) {
    const a = row.byTarget.get(rkv);
    const b = row.byTarget.get('etcd');
    if (!a || !b || (row.workload !== 'put' && row.workload !== 'get')) continue;
    const okOps = a.opsPerSec >= b.opsPerSec;
    const okP99 = a.p99Ms <= b.p99Ms;
    checks.push(
      `${okOps && okP99 ? 'PASS' : 'FAIL'}  ${row.workload} c=${row.concurrency}: RangeKV ${num(a.opsPerSec)} ops/s vs etcd ${num(b.opsPerSec)} (${okOps ? '>=' : '<'}), p99 ${ms(a.p99Ms)} vs ${ms(b.p99Ms)} ms (${okP99 ? '<=' : '>'})`,
    );
  }
  for (const row of sorted.filter((r) => r.workload === 'get')) {
    const lin = row.byTarget.get(rkv);
    const stale = rows.get(`get-stale/${row.concurrency}`)?.byTarget.get(rkv);
    if (!lin || !stale) continue;
    const x = stale.opsPerSec / lin.opsPerSec;
    checks.push(`${x >= 1.5 ? 'PASS' : 'FAIL'}  RangeKV stale gets c=${row.concurrency}: ${x.toFixed(2)}x linearizable (target >= 1.5x)`);
  }
  if (checks.length > 0) out.push('issue targets:', ...checks.map((c) => '  ' + c), '');

  const bad = results.filter((r) => r.target === rkv || r.target === 'etcd').filter((r) => r.errors > 0 || r.notFound > 0);
  for (const r of bad) out.push(`WARNING: ${r.target} ${r.workload} c=${r.concurrency}: ${r.errors} errors, ${r.notFound} not found${r.firstError ? ` (first: ${r.firstError})` : ''}`);
  const loads = results.map((r) => r.otherCores).filter((x): x is number => x !== null);
  if (loads.length > 0) {
    out.push(`other load on the machine during runs: max ${Math.max(...loads).toFixed(2)} cores, mean ${(loads.reduce((s, x) => s + x, 0) / loads.length).toFixed(2)} cores (of 2)`);
  }
  const cl = results.filter((r) => r.workload !== 'preload');
  if (cl.length > 0) {
    out.push(`client (this bench process) CPU: ${cl.map((r) => `${r.target} ${r.workload}/${r.concurrency} ${r.clientCores.toFixed(2)}`).join(', ')} cores`);
  }
  return out.join('\n');
}

// -------------------------------------------------------------------------------------------------
// profile

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function component(url: string, fn: string): string {
  if (url === '') {
    if (fn === '(garbage collector)' || fn === '(program)' || fn === '(idle)' || fn === '(root)') return fn;
    return '(native/builtin)';
  }
  if (url.startsWith('node:')) return 'node core';
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (m) return m[1] as string;
  const s = /\/dist\/(src\/[^/]+)\//.exec(url);
  if (s) return s[1] as string;
  return 'other';
}

/**
 * Self and inclusive time of a V8 CPU profile. `fromS`/`toS` (seconds since the profile started)
 * restrict it to a window, e.g. the measured part of a phase, leaving out start-up and warm-up.
 */
export function summarizeProfile(p: CpuProfile, top: number, root: string, fromS = 0, toS = Infinity): string {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode): string => {
    const f = n.callFrame;
    const where = f.url ? `${relative(root, f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'}${where ? ' ' + where : ''}`;
  };
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const comp = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let at = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (at < fromS * 1e6 || at > toS * 1e6) continue;
    const id = p.samples[i] as number;
    const n = byId.get(id);
    if (!n) continue;
    total += dt;
    if (n.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const l = label(n);
    self.set(l, (self.get(l) ?? 0) + dt);
    const c = component(n.callFrame.url, n.callFrame.functionName);
    comp.set(c, (comp.get(c) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cn = byId.get(cur);
      if (!cn) break;
      const cl = label(cn);
      if (seen.has(cl)) continue;
      seen.add(cl);
      incl.set(cl, (incl.get(cl) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const pct = (x: number): string => `${((100 * x) / Math.max(1, busy)).toFixed(1)}%`;
  const list = (m: Map<string, number>, n: number, skip?: (k: string) => boolean): string[] =>
    [...m.entries()]
      .filter(([k]) => !(skip?.(k) ?? false))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${pct(v).padStart(6)}  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  const window = fromS > 0 || toS < Infinity ? `window ${fromS.toFixed(1)}-${Math.min(toS, (p.endTime - p.startTime) / 1e6).toFixed(1)} s of ` : '';
  return [
    `${window}wall ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s: busy (non-idle) ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled; percentages are of busy time`,
    'self time by component:',
    ...list(comp, 40),
    `self time, top ${top} functions:`,
    ...list(self, top),
    `inclusive time, top ${top} functions:`,
    ...list(incl, top, (k) => k.startsWith('(root)') || k.startsWith('(program)')),
  ].join('\n');
}

// -------------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('bench').description('RangeKV / etcd benchmark driver').exitOverride();

  addSuiteOptions(
    program
      .command('run', { isDefault: true })
      .description('run workloads against one cluster')
      .addOption(targetOption())
      .addOption(endpointsOption())
      .option('--jsonl <file>', 'append each JSON line to this file')
      .option('--quiet', 'JSON lines only'),
  ).action(async (_o: unknown, cmd: Command) => {
    const o = cmd.opts<Parameters<typeof suiteOptions>[0] & { target: TargetName; endpoints: string[]; jsonl?: string; quiet?: boolean }>();
    const s = suiteOptions(o);
    const target = await makeTarget(o.target, o.endpoints, s.timeoutMs);
    try {
      const results = await runSuite(target, s, (r) => {
        if (!o.quiet) process.stdout.write(formatResult(r) + '\n');
        process.stdout.write(JSON.stringify(r) + '\n');
        if (o.jsonl) appendFileSync(o.jsonl, JSON.stringify(r) + '\n');
      });
      if (results.some((r) => r.ops === 0)) code = 3;
    } finally {
      await target.close();
    }
  });

  program
    .command('wait')
    .description('wait until the cluster answers a linearizable get')
    .addOption(targetOption())
    .addOption(endpointsOption())
    .addOption(new Option('--timeout <time>', 'give up after').default(30_000, '30s').argParser(parseDuration))
    .action(async (o: { target: TargetName; endpoints: string[]; timeout: number }) => {
      const deadline = Date.now() + o.timeout;
      const target = await makeTarget(o.target, o.endpoints, 2000);
      let last = '';
      try {
        for (;;) {
          try {
            await target.get(Buffer.from('__bench_probe'), false);
            return;
          } catch (err) {
            last = (err as Error).message;
          }
          if (Date.now() >= deadline) {
            process.stderr.write(`bench wait: ${o.target} at ${o.endpoints.join(',')} not ready after ${o.timeout} ms: ${last}\n`);
            code = 1;
            return;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      } finally {
        await target.close();
      }
    });

  program
    .command('etcd-leader')
    .description("print the etcd leader's client endpoint")
    .addOption(endpointsOption())
    .action(async (o: { endpoints: string[] }) => {
      const { etcdLeader } = await import('./etcd-target');
      const l = await etcdLeader(o.endpoints, 2000);
      if (l === undefined) {
        process.stderr.write('bench etcd-leader: no leader found\n');
        code = 1;
      } else process.stdout.write(l + '\n');
    });

  program
    .command('compare')
    .description('RangeKV vs etcd table from a JSON-lines file')
    .argument('<file>')
    .action((file: string) => {
      process.stdout.write(compare(readResults(file)) + '\n');
    });

  program
    .command('profile')
    .description('summarise .cpuprofile files')
    .argument('<files...>')
    .addOption(new Option('--top <n>', 'functions to list').default(25).argParser((v) => Number(v)))
    .option('--root <dir>', 'paths are shown relative to this', process.cwd())
    .addOption(new Option('--from-s <s>', 'only samples from this many seconds after the profile started').default(0).argParser(Number))
    .addOption(new Option('--to-s <s>', 'only samples up to this many seconds after the profile started').default(Infinity).argParser(Number))
    .action((files: string[], o: { top: number; root: string; fromS: number; toS: number }) => {
      for (const f of files) {
        const p = JSON.parse(readFileSync(f, 'utf8')) as CpuProfile;
        process.stdout.write(`=== ${basename(f)}\n${summarizeProfile(p, o.top, o.root, o.fromS, o.toS)}\n\n`);
      }
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return code;
}

main(process.argv).then(
  (c) => {
    process.exitCode = c;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 3;
  },
);
