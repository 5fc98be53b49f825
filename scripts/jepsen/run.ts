// The Jepsen-style run: real kvd processes in network namespaces, a nemesis, a workload with an
// honest history, then heal, recover, final reads, and the checker. Started by scripts/jepsen/run.sh
// (which builds first and sweeps leftovers after); `--help` lists the options.
//
// Phases, each bounded in time:
//   1. sweep leftovers of dead runs; build the network (net.ts); start the nodes; wait healthy;
//      with --pre-split N, split the workload's key space into N ranges and wait for their leaders;
//   2. workload + nemesis schedule for --time seconds; then the workload stops (in-flight ops end
//      within the client deadline);
//   3. heal everything (partitions, paused/killed nodes, failpoints, membership, a drain), wait
//      until the cluster is healthy, a quiet period, the final reads (every key of the run);
//      placement's range map goes to run.json (`ranges`);
//   4. stop the nodes, remove the network; the checker writes DIR/results.json and DIR/report.html.
// Exit: 0 valid, 1 invalid, 3 unknown, 2 usage error, 4 the harness failed or the cluster did not
// recover after healing (the checker still runs on the history, and the message says which).
//
// `--nemesis move` runs the placement scheduler (cluster.ts, nemesis.ts): 3 voters per range, so
// "healthy" (at start, after the pre-split, after healing) means every range of placement's map has
// 3 voters and a leader; it pre-splits into 8 ranges unless --pre-split says otherwise; its fault
// windows are longer (7-9 s in short runs, 8-14 s otherwise) so that each drain moves replicas; run.json
// gets `placement` (each node's share of the map when the workload starts and after healing) and
// `scheduler` (the operators and steps the nodes logged).

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { JepsenCluster, REPO } from './cluster';
import { EnvironmentError, JepsenError, UsageError } from './errors';
import { AnsweredOp, Clock, History, NemesisEvent, NemesisLog } from './history';
import { checkEnvironment, Lab, sweepLeftovers } from './net';
import { MOVE_PRE_SPLIT, MOVE_SCHEDULER, Nemesis, NEMESES, NemesisName, needsScheduler, ScheduleOptions } from './nemesis';
import { RangeSummary, Splitter } from './splits';
import { Rng, delay, waitFor } from './wait';
import { createWorkload, ReadMode, WorkloadName } from './workload';

export interface RunOptions {
  readonly nemesis: NemesisName;
  readonly workload: WorkloadName;
  readonly timeSeconds: number;
  readonly outDir: string;
  readonly nodes: number;
  readonly seed: number;
  readonly readMode: ReadMode;
  readonly concurrency: number;
  /** How the workload's clients talk to the nodes. */
  readonly client: 'unary' | 'multiplex';
  /** Ranges the workload's key space is split into before the workload starts (0 or 1: no split). */
  readonly preSplit: number;
}

const USAGE = `usage: scripts/jepsen/run.sh --nemesis NAME --out DIR [options]

  --nemesis NAME          ${NEMESES.join(' | ')}
  --workload NAME         register (default) | set
  --time SECONDS          length of the fault phase (default 30)
  --out DIR               run directory: history.jsonl, nemesis.jsonl, results.json, report.html, nodes/
  --nodes N               kvd nodes, each in its own network namespace (default 5)
  --seed N                seed of the schedule and the workload's choices (default: random, printed)
  --read-mode MODE        linearizable (default) | stale (reads any node's local state: must be caught)
  --concurrency N         logical client processes at once (default 10)
  --client KIND           multiplex (default, as the client comes: KV.Multiplex streams) | unary (one gRPC call per operation)
  --pre-split N           split the workload's key space into N ranges before it starts (default 1:
                          one range; ${MOVE_PRE_SPLIT} with --nemesis move); not with --nemesis membership or mixed
                          (membership changes range 1 only and wipes nodes: the other ranges would
                          lose replicas)

--nemesis move runs the placement scheduler (kvd --replicas ${MOVE_SCHEDULER.replicas}, no --no-schedule) and drains a
random node per fault window; it never combines with membership (nor is it part of mixed).

Exit: 0 valid, 1 invalid, 3 unknown, 2 usage error, 4 harness failure or the cluster did not recover.`;

export function parseArgs(argv: readonly string[]): RunOptions | 'help' {
  const v: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') return 'help';
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument '${a}'`);
    const name = m[1] as string;
    const known = ['nemesis', 'workload', 'time', 'out', 'nodes', 'seed', 'read-mode', 'concurrency', 'client', 'pre-split'];
    if (!known.includes(name)) throw new UsageError(`unknown option --${name}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    v[name] = value;
  }
  const int = (name: string, dflt: number, lo: number, hi: number): number => {
    const s = v[name];
    if (s === undefined) return dflt;
    const n = Number(s);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new UsageError(`--${name} must be an integer from ${lo} to ${hi}, got '${s}'`);
    return n;
  };
  const nemesis = v.nemesis;
  if (nemesis === undefined) throw new UsageError('--nemesis is required');
  const named = nemesis.split(/[,+\s]+/);
  if (named.includes('move') && (named.includes('membership') || named.includes('mixed'))) {
    throw new UsageError(`--nemesis move does not combine with ${named.includes('membership') ? 'membership' : 'mixed'}: move runs the placement scheduler (${MOVE_SCHEDULER.replicas} voters per range), membership needs every node a voter of range 1 and the scheduler off`);
  }
  if (!(NEMESES as readonly string[]).includes(nemesis)) throw new UsageError(`--nemesis must be one of ${NEMESES.join(', ')}; got '${nemesis}'`);
  const workload = v.workload ?? 'register';
  if (workload !== 'register' && workload !== 'set') throw new UsageError(`--workload must be register or set, got '${workload}'`);
  const readMode = v['read-mode'] ?? 'linearizable';
  if (readMode !== 'linearizable' && readMode !== 'stale') throw new UsageError(`--read-mode must be linearizable or stale, got '${readMode}'`);
  const client = v.client ?? 'multiplex';
  if (client !== 'unary' && client !== 'multiplex') throw new UsageError(`--client must be unary or multiplex, got '${client}'`);
  if (v.out === undefined) throw new UsageError('--out DIR is required');
  const preSplit = int('pre-split', nemesis === 'move' ? MOVE_PRE_SPLIT : 1, 0, 64);
  if (preSplit > 1 && (nemesis === 'membership' || nemesis === 'mixed')) {
    throw new UsageError(`--pre-split does not combine with --nemesis ${nemesis}: membership changes range 1 only and wipes the node it removes, so the other ranges would lose that replica for good`);
  }
  return {
    nemesis: nemesis as NemesisName,
    workload,
    readMode,
    timeSeconds: int('time', 30, 1, 3600),
    outDir: resolve(v.out),
    nodes: int('nodes', 5, 1, 15),
    seed: int('seed', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31 - 1),
    concurrency: int('concurrency', 10, 1, 200),
    client,
    preSplit,
  };
}

// -------------------------------------------------------------------------------------------------
// Availability: the share of operations the cluster answered (ok, or a cas whose condition did not
// hold) while a fault was on, and outside the fault windows. `ok` counts only ok operations.

interface Share {
  ops: number;
  ok: number;
  answered: number;
  availability: number | null;
}

function share(ops: readonly AnsweredOp[]): Share {
  const ok = ops.filter((o) => o.op.type === 'ok').length;
  const answered = ops.filter((o) => o.answered).length;
  return { ops: ops.length, ok, answered, availability: ops.length === 0 ? null : Math.round((answered / ops.length) * 1000) / 1000 };
}

export function availability(ops: readonly AnsweredOp[], events: readonly NemesisEvent[]): { during: Record<string, Share>; outside: Share } {
  const windows: Array<{ name: string; from: number; to: number }> = [];
  const open = new Map<string, number>();
  for (const e of events) {
    if (e.event === 'start') open.set(e.nemesis, e.time);
    else {
      const from = open.get(e.nemesis);
      if (from !== undefined) windows.push({ name: e.nemesis, from, to: e.time });
      open.delete(e.nemesis);
    }
  }
  for (const [name, from] of open) windows.push({ name, from, to: Number.MAX_SAFE_INTEGER });
  const during = new Map<string, AnsweredOp[]>();
  const outside: AnsweredOp[] = [];
  for (const op of ops) {
    const w = windows.find((x) => op.op.invoke >= x.from && op.op.invoke < x.to);
    if (!w) {
      outside.push(op);
      continue;
    }
    const list = during.get(w.name);
    if (list) list.push(op);
    else during.set(w.name, [op]);
  }
  const out: Record<string, Share> = {};
  for (const [name, list] of during) out[name] = share(list);
  return { during: out, outside: share(outside) };
}

// -------------------------------------------------------------------------------------------------
// Ranges: --pre-split, and placement's range map at the end (run.json `ranges`).

/**
 * Splits at each key (each must end as a range boundary), then waits until every range
 * the splits made has a leader by its own account, so the workload does not start against ranges
 * still electing. Bounded by `timeoutMs` in all.
 */
async function preSplit(
  cluster: JepsenCluster,
  keys: readonly string[],
  timeoutMs: number,
): Promise<{ keys: string[]; created: number[]; splitMs: number; settleMs: number; ranges: RangeSummary[] }> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  const splitter = new Splitter(cluster.endpoints(), 5_000);
  try {
    const created: number[] = [];
    // From the last key down: each split cuts the range that starts the key space (range 1, whose
    // leader is long elected), never a range that a split has just made.
    for (const key of [...keys].reverse()) {
      const out = await splitter.splitAt(key, Math.max(1_000, deadline - Date.now()));
      if (out.kind === 'split' && out.right !== null) created.push(out.right);
    }
    const splitMs = Date.now() - started;
    const ranges = await waitFor(
      `placement to list ${keys.length + 1} ranges, each with a leader`,
      async () => {
        const list = await splitter.ranges();
        const starts = new Set(list.map((r) => r.start));
        if (!keys.every((k) => starts.has(k))) return undefined;
        const led = new Set<number>();
        for (const v of await cluster.views()) {
          for (const r of v.status.ranges) if (r.leaderNodeId === v.nodeId) led.add(Number(r.descriptor.rangeId));
        }
        return list.every((r) => led.has(r.rangeId)) ? list : undefined;
      },
      Math.max(1_000, deadline - Date.now()),
      200,
    );
    return { keys: [...keys], created, splitMs, settleMs: Date.now() - started - splitMs, ranges };
  } finally {
    splitter.close();
  }
}

/** Placement's range map, or the error that kept it from answering (the run goes on either way). */
async function finalRanges(cluster: JepsenCluster, timeoutMs: number): Promise<RangeSummary[] | { error: string }> {
  const splitter = new Splitter(cluster.endpoints(), timeoutMs);
  try {
    return await splitter.ranges();
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    splitter.close();
  }
}

/**
 * What the placement scheduler did, from the node logs (src/placement/driver.ts logs every
 * operator issued, step executed or failed, operator complete, aborted or dropped): counts by
 * purpose and by step kind. `replicaMoves` counts executed remove-replica steps of drain and
 * balance operators (a replica moved = learner added, promoted, old replica removed).
 */
export function schedulerActivity(nodesDir: string): Record<string, unknown> {
  const issued: Record<string, number> = {};
  const executed: Record<string, number> = {};
  const failed: Record<string, number> = {};
  let completed = 0;
  let aborted = 0;
  let dropped = 0;
  let noQuorum = 0;
  const issuedPurpose = new Map<string, string>();
  const removesByPurpose: Record<string, number> = {};
  const abortReasons: string[] = [];
  let files: string[];
  try {
    files = readdirSync(nodesDir).filter((f) => f.endsWith('.log'));
  } catch (err) {
    return { error: (err as Error).message };
  }
  for (const f of files) {
    for (const line of readFileSync(join(nodesDir, f), 'utf8').split('\n')) {
      if (!line.startsWith('{') || !line.includes('operator') && !line.includes('quorum')) continue;
      let e: { msg?: string; op?: string; purpose?: string; step?: { kind?: string }; reason?: string };
      try {
        e = JSON.parse(line) as typeof e;
      } catch {
        continue;
      }
      const kind = e.step?.kind ?? '?';
      switch (e.msg) {
        case 'operator issued':
          issued[e.purpose ?? '?'] = (issued[e.purpose ?? '?'] ?? 0) + 1;
          if (e.op) issuedPurpose.set(e.op, e.purpose ?? '?');
          break;
        case 'operator step executed': {
          executed[kind] = (executed[kind] ?? 0) + 1;
          if (kind === 'remove-replica') {
            const p = (e.op && issuedPurpose.get(e.op)) ?? '?';
            removesByPurpose[p] = (removesByPurpose[p] ?? 0) + 1;
          }
          break;
        }
        case 'operator step failed':
          failed[kind] = (failed[kind] ?? 0) + 1;
          break;
        case 'operator complete':
          completed++;
          break;
        case 'operator aborted':
          aborted++;
          if (abortReasons.length < 10 && e.reason) abortReasons.push(e.reason);
          break;
        case 'operator dropped: its step waited too long':
          dropped++;
          break;
        case 'ranges without a quorum: left alone':
          noQuorum++;
          break;
        default:
      }
    }
  }
  return { issued, executed, failed, completed, aborted, dropped, roundsWithRangesWithoutQuorum: noQuorum, removeReplicaByPurpose: removesByPurpose, abortReasons };
}

// -------------------------------------------------------------------------------------------------

interface Verdict {
  readonly valid: boolean | 'unknown' | null;
  readonly exitCode: number;
}

/** Runs the checker's CLI on the run directory (results.json + report.html). */
function runChecker(dir: string, timeoutMs: number): Promise<Verdict> {
  const cli = join(REPO, 'dist', 'scripts', 'jepsen', 'checker', 'cli.js');
  if (!existsSync(cli)) throw new EnvironmentError(`the checker is not built: ${cli} is missing (make build)`);
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [cli, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      let valid: boolean | 'unknown' | null = null;
      try {
        valid = (JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { valid: boolean | 'unknown' }).valid;
      } catch {
        // no results: the checker failed
      }
      resolveRun({ valid, exitCode: code ?? 4 });
    });
  });
}

export async function runJepsen(o: RunOptions): Promise<number> {
  const started = Date.now();
  const log = (msg: string): void => {
    process.stdout.write(`[jepsen ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}\n`);
  };
  log(`nemesis=${o.nemesis} workload=${o.workload} time=${o.timeSeconds}s nodes=${o.nodes} seed=${o.seed} read-mode=${o.readMode} client=${o.client} pre-split=${o.preSplit} out=${o.outDir}`);
  await checkEnvironment();
  const swept = await sweepLeftovers();
  if (swept.length > 0) log(`removed leftovers of earlier runs: ${swept.join(', ')}`);
  mkdirSync(o.outDir, { recursive: true });
  for (const f of ['history.jsonl', 'nemesis.jsonl', 'results.json', 'report.html']) {
    if (existsSync(join(o.outDir, f))) throw new UsageError(`${o.outDir} already holds a run (${f}); give a new --out directory`);
  }

  const rng = new Rng(o.seed);
  const lab = await Lab.create(o.nodes, o.outDir);
  let cluster: JepsenCluster | undefined;
  const cleanup = async (): Promise<void> => {
    await cluster?.stopAll();
    await lab.destroy();
  };
  onInterrupt = cleanup;
  emergencyState = { lab, cluster: () => cluster };

  const short = o.timeSeconds <= 20;
  const summary: Record<string, unknown> = { options: o, subnet: `10.77.${lab.subnet}.0/24`, prefix: lab.prefix };
  let recovered = false;
  let failure: string | undefined;
  try {
    log(`network ${lab.prefix}: bridge ${lab.bridge} ${lab.bridgeAddress}/24, nodes ${lab.allSlots().map((s) => lab.address(s)).join(' ')}`);
    cluster = new JepsenCluster(lab, {
      runDir: o.outDir,
      tickMs: 50,
      electionTicks: 10,
      snapshotEntries: 1_000,
      compactionSlackEntries: 200,
      logLevel: 'info',
      schedule: needsScheduler(o.nemesis) ? MOVE_SCHEDULER : undefined,
    });
    await cluster.startAll();
    await cluster.waitHealthy(60_000);
    log(cluster.schedule ? `cluster healthy (placement scheduler on: every range ${cluster.schedule.replicas} voters and a leader)` : 'cluster healthy');

    const clock = new Clock();
    const history = new History(join(o.outDir, 'history.jsonl'), clock);
    const nemesisLog = new NemesisLog(join(o.outDir, 'nemesis.jsonl'), clock);
    const workload = createWorkload(o.workload, {
      endpoints: cluster.endpoints(),
      concurrency: o.concurrency,
      readMode: o.readMode,
      multiplex: o.client === 'multiplex',
      history,
      rng: new Rng(rng.int(0, 2 ** 31 - 1)),
      deadlineMs: 2_000,
      activeKeys: 5,
      opsPerKey: 150,
      thinkMs: 10,
    });
    if (o.preSplit > 1) {
      summary.preSplit = await preSplit(cluster, workload.splitPoints(o.preSplit), 60_000);
      log(`pre-split into ${o.preSplit} ranges: ${JSON.stringify(summary.preSplit)}`);
    }
    if (cluster.schedule) {
      // The ranges the split made start with range 1's voters: let the scheduler bring each to its
      // voter count (and a leader) before the drains begin.
      const settleStart = Date.now();
      await cluster.waitHealthy(60_000);
      const health = await cluster.placementHealth();
      summary.placement = { votersPerRange: cluster.schedule.replicas, atStart: { ranges: health.ranges, settledMs: Date.now() - settleStart, perNode: health.perNode } };
      log(`placement settled: ${health.ranges} ranges, ${cluster.schedule.replicas} voters each; per node ${JSON.stringify(health.perNode)}`);
    }
    log('workload and nemesis start');
    const nemesis = new Nemesis(cluster, new Rng(rng.int(0, 2 ** 31 - 1)), nemesisLog, workload);
    const untilMs = Date.now() + o.timeSeconds * 1000;
    workload.start();
    // A drain moves a replica in about 3-6 s (add learner, caught up, promote, remove, each seen
    // through placement's heartbeats), so `move` windows are longer: replicas really move in each.
    const schedule: ScheduleOptions =
      o.nemesis === 'move'
        ? short
          ? { quietMs: [1_000, 2_500], faultMs: [7_000, 9_000] }
          : { quietMs: [3_000, 6_000], faultMs: [8_000, 14_000] }
        : short
          ? { quietMs: [1_000, 2_500], faultMs: [3_000, 5_000] }
          : { quietMs: [2_000, 5_000], faultMs: [4_000, 9_000] };
    await nemesis.run(o.nemesis, untilMs, schedule, () => Date.now() >= untilMs);
    await delay(Math.max(0, untilMs - Date.now()));
    log(`fault phase over: stopping the workload (${history.counts.ok} ok, ${history.counts.fail} fail, ${history.counts.info} info so far)`);
    await workload.stop();
    const faultPhaseEnd = clock.now();

    try {
      const healStart = nemesisLog.now();
      const healed = await nemesis.healAll(60_000);
      nemesisLog.record('heal', 'start', {}, healStart);
      nemesisLog.record('heal', 'stop', healed);
      await cluster.waitHealthy(60_000);
      // A quiet period: let every replica apply what was committed before reading.
      await delay(1_000);
      log('healed and healthy: final reads');
      const finals = await workload.finalReads(cluster.endpoints(), 60_000);
      log(`final reads: ${finals.keys} keys, ${finals.attempts} attempts`);
      recovered = true;
      summary.ranges = await finalRanges(cluster, 10_000);
      log(`placement's range map: ${Array.isArray(summary.ranges) ? `${summary.ranges.length} ranges` : JSON.stringify(summary.ranges)}`);
      if (cluster.schedule) {
        const health = await cluster.placementHealth();
        summary.placement = { ...(summary.placement as object), atEnd: { ok: health.ok, why: health.why, ranges: health.ranges, perNode: health.perNode } };
      }
    } catch (err) {
      failure = `the cluster did not recover after healing: ${(err as Error).message}`;
      log(failure);
    }
    nemesis.close();
    workload.close();
    await history.close();
    await nemesisLog.close();
    summary.counts = history.counts;
    // Availability of the fault phase (the final reads after healing are not part of it).
    summary.availability = availability(
      history.ops.filter((o) => o.op.invoke < faultPhaseEnd),
      nemesisLog.events.filter((e) => e.nemesis !== 'heal'),
    );
  } catch (err) {
    failure = `harness: ${(err as Error).stack ?? String(err)}`;
    log(failure);
  } finally {
    await cleanup();
    onInterrupt = undefined;
    emergencyState = undefined;
  }
  log('nodes stopped, network removed');
  if (needsScheduler(o.nemesis)) {
    summary.scheduler = schedulerActivity(join(o.outDir, 'nodes'));
    log(`scheduler (from the node logs): ${JSON.stringify(summary.scheduler)}`);
  }

  summary.recovered = recovered;
  summary.failure = failure ?? null;
  const writeSummary = (): void => writeFileSync(join(o.outDir, 'run.json'), `${JSON.stringify(summary, null, 2)}\n`);
  writeSummary();
  let verdict: Verdict = { valid: null, exitCode: 4 };
  if (existsSync(join(o.outDir, 'history.jsonl'))) {
    log('checking the history');
    try {
      verdict = await runChecker(o.outDir, 10 * 60_000);
    } catch (err) {
      failure = `${failure ? `${failure}; ` : ''}checker: ${(err as Error).message}`;
    }
  }
  summary.valid = verdict.valid;
  summary.failure = failure ?? null;
  summary.seconds = Math.round((Date.now() - started) / 100) / 10;
  writeSummary();
  if (verdict.valid === true && recovered) cluster?.removeData();

  const av = summary.availability as ReturnType<typeof availability> | undefined;
  if (av) {
    const parts = Object.entries(av.during).map(([n, s]) => `${n} ${s.answered}/${s.ops}`);
    log(`availability (operations answered): during faults: ${parts.join(', ') || 'no fault window'}; outside: ${av.outside.answered}/${av.outside.ops}`);
  }
  log(`report: ${join(o.outDir, 'report.html')}`);
  log(`verdict: valid=${String(verdict.valid)}${failure ? ` (${failure.split('\n')[0]})` : ''} — seed ${o.seed}`);
  if (failure) return 4;
  if (verdict.valid === true) return 0;
  if (verdict.valid === false) return 1;
  if (verdict.valid === 'unknown') return 3;
  return 4;
}

// -------------------------------------------------------------------------------------------------
// Interruption and last-resort cleanup

let onInterrupt: (() => Promise<void>) | undefined;
let emergencyState: { lab: Lab; cluster: () => JepsenCluster | undefined } | undefined;

function installSignalHandlers(): void {
  let interrupted = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      process.stderr.write(`jepsen: ${sig}: stopping the nodes and removing the network\n`);
      const done = onInterrupt ? onInterrupt() : Promise.resolve();
      const bound = delay(20_000);
      void Promise.race([done, bound]).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
  // Last resort (an exit we did not plan): kill the nodes and remove the network synchronously.
  process.on('exit', () => {
    const st = emergencyState;
    if (!st) return;
    const c = st.cluster();
    for (const s of c?.slots.values() ?? []) {
      if (s.pid === undefined) continue;
      try {
        process.kill(s.pid, 'SIGCONT');
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const slot of st.lab.allSlots()) {
      try {
        execFileSync('ip', ['netns', 'del', st.lab.namespace(slot)], { stdio: 'ignore' });
      } catch {
        // gone
      }
    }
    try {
      execFileSync('ip', ['link', 'del', st.lab.bridge], { stdio: 'ignore' });
    } catch {
      // gone
    }
  });
}

async function main(): Promise<void> {
  let opts: RunOptions | 'help';
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`jepsen: ${err.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  installSignalHandlers();
  let code: number;
  try {
    code = await runJepsen(opts);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`jepsen: ${err.message}\n`);
      code = 2;
    } else if (err instanceof JepsenError) {
      process.stderr.write(`jepsen: ${err.code}: ${err.message}\n`);
      code = 4;
    } else throw err;
  }
  // Explicitly: client channels of the workload must not keep the process alive.
  process.exit(code);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`jepsen: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(4);
  });
}
