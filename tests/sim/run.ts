// Command-line runner of the deterministic Raft cluster simulator (tests/sim/cluster.ts).
//
//   node dist/tests/sim/run.js --seeds N [--start S] [--steps N] [--workers W] [--verbose]
//   node dist/tests/sim/run.js --seed S [--steps N] [--verbose]
//
// --seeds N     run seeds start .. start+N-1 (default 1000), spread over W worker threads
// --start S     first seed (default 1)
// --steps N     safety-phase steps per seed (default 2000); the liveness phase adds its own
// --workers W   worker threads (default 2)
// --seed S      replay one seed in this thread, printing its profile and a trace of faults,
//               leader changes and phase changes (with --verbose: every step)
// --verbose     with --seeds: print one line per seed
//
// Every violation prints the seed, the step and the text, and the command that replays it. The
// last line is exactly `seeds=<n> steps=<n> violations=<n>` (steps: all steps executed, both
// phases, all seeds); the line before it gives the rate. Exit status 1 if any violation.

import { Worker, isMainThread, parentPort, workerData } from 'worker_threads';
import { LIVENESS_ELECTION_TIMEOUTS, SeedResult, runSeed } from './cluster';

interface Args {
  seeds: number;
  start: number;
  steps: number;
  workers: number;
  seed: number | undefined;
  verbose: boolean;
}

function usage(msg: string): never {
  process.stderr.write(
    `${msg}\nusage: node dist/tests/sim/run.js --seeds N [--start S] [--steps N] [--workers W] [--verbose]\n` +
      `       node dist/tests/sim/run.js --seed S [--steps N] [--verbose]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { seeds: 1000, start: 1, steps: 2000, workers: 2, seed: undefined, verbose: false };
  const int = (name: string, v: string | undefined, min: number): number => {
    if (v === undefined || !/^\d+$/.test(v)) usage(`${name} needs a non-negative integer, got ${v ?? 'nothing'}`);
    const n = Number(v);
    if (n < min || n > 0xffffffff) usage(`${name} must be in [${min}, 4294967295], got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    switch (k) {
      case '--seeds':
        a.seeds = int(k, argv[++i], 1);
        break;
      case '--start':
        a.start = int(k, argv[++i], 0);
        break;
      case '--steps':
        a.steps = int(k, argv[++i], 1);
        break;
      case '--workers':
        a.workers = int(k, argv[++i], 1);
        break;
      case '--seed':
        a.seed = int(k, argv[++i], 0);
        break;
      case '--verbose':
        a.verbose = true;
        break;
      case '--help':
      case '-h':
        usage('deterministic Raft cluster simulator');
        break;
      default:
        usage(`unknown argument ${k}`);
    }
  }
  return a;
}

function replayCommand(seed: number, steps: number): string {
  return `node dist/tests/sim/run.js --seed ${seed} --steps ${steps}`;
}

function reportViolation(r: SeedResult, steps: number): void {
  const v = r.violation;
  if (!v) return;
  process.stdout.write(
    `VIOLATION seed=${r.seed} step=${v.step} phase=${v.phase} checker=${v.checker}\n  ${v.text.split('\n').join('\n  ')}\n  replay: ${replayCommand(r.seed, steps)}\n`,
  );
}

function summary(seeds: number, steps: number, violations: number, elapsedMs: number, workers: number): void {
  const secs = elapsedMs / 1000;
  process.stdout.write(
    `rate: ${(seeds / secs).toFixed(1)} seeds/s, ${Math.round(steps / secs)} steps/s, ${secs.toFixed(1)} s, ${workers} worker(s)\n`,
  );
  process.stdout.write(`seeds=${seeds} steps=${steps} violations=${violations}\n`);
}

function replayOne(a: Args): void {
  const seed = a.seed as number;
  const t0 = Date.now();
  const r = runSeed({ seed, steps: a.steps, trace: (line) => process.stdout.write(line + '\n'), traceSteps: a.verbose });
  const s = r.stats;
  process.stdout.write(
    `seed ${seed}: ${r.steps} steps, ${s.ticks} ticks (liveness ${s.livenessTicks} ticks/${s.livenessSteps} steps), ` +
      `${s.proposalsAccepted}/${s.proposals} proposals accepted, ${s.acked} acked, reads ${s.readsReleased}/${s.reads} released, ` +
      `leader terms ${s.leaderTerms}, crashes ${s.crashes}, conf changes ${s.confChangesApplied} applied/${s.confChangesProposed} proposed, ` +
      `snapshots ${s.snapshotsTaken} taken/${s.snapshotsInstalled} installed, max index ${s.maxCommitted}\n`,
  );
  reportViolation(r, a.steps);
  summary(1, r.steps, r.violation ? 1 : 0, Date.now() - t0, 1);
  process.exitCode = r.violation ? 1 : 0;
}

/** Totals over all seeds of each statistic, and how many seeds saw it at least once. */
class Coverage {
  private readonly totals = new Map<string, number>();
  private readonly seedsWith = new Map<string, number>();
  private seeds = 0;
  private worstLiveness = 0;
  private worstLivenessSeed = 0;

  add(r: SeedResult): void {
    this.seeds++;
    if (r.livenessElectionTimeouts > this.worstLiveness) {
      this.worstLiveness = r.livenessElectionTimeouts;
      this.worstLivenessSeed = r.seed;
    }
    for (const [k, v] of Object.entries(r.stats)) {
      this.totals.set(k, (this.totals.get(k) ?? 0) + v);
      if (v > 0) this.seedsWith.set(k, (this.seedsWith.get(k) ?? 0) + 1);
    }
  }

  describe(): string {
    const keys = ['crashes', 'partitions', 'confChangesApplied', 'retired', 'transfers', 'snapshotsTaken', 'snapshotsInstalled', 'readsReleased', 'acked', 'leaderTerms'];
    const parts = keys.map((k) => `${k} ${this.totals.get(k) ?? 0} (${this.seedsWith.get(k) ?? 0} seeds)`);
    return (
      `coverage over ${this.seeds} seeds: ${parts.join(', ')}\n` +
      `slowest liveness phase: ${this.worstLiveness.toFixed(1)} election timeouts (seed ${this.worstLivenessSeed}; bound ${LIVENESS_ELECTION_TIMEOUTS})`
    );
  }
}

interface WorkerRequest {
  seeds: number[];
}

type WorkerReply = { kind: 'result'; result: SeedResult } | { kind: 'idle' };

function workerMain(): void {
  const { steps } = workerData as { steps: number };
  const port = parentPort;
  if (!port) throw new Error('worker without a parent port');
  port.on('message', (req: WorkerRequest | null) => {
    if (req === null) {
      port.close();
      return;
    }
    for (const seed of req.seeds) {
      const result = runSeed({ seed, steps });
      port.postMessage({ kind: 'result', result } satisfies WorkerReply);
    }
    port.postMessage({ kind: 'idle' } satisfies WorkerReply);
  });
}

async function runMany(a: Args): Promise<void> {
  const t0 = Date.now();
  const seeds: number[] = [];
  for (let k = 0; k < a.seeds; k++) seeds.push((a.start + k) >>> 0);
  const workerCount = Math.max(1, Math.min(a.workers, seeds.length));
  const chunk = Math.max(1, Math.min(16, Math.floor(seeds.length / (workerCount * 8))));
  let next = 0;
  let done = 0;
  let totalSteps = 0;
  const failed: SeedResult[] = [];
  let lastProgress = Date.now();
  const coverage = new Coverage();

  await new Promise<void>((resolve, reject) => {
    let live = workerCount;
    for (let w = 0; w < workerCount; w++) {
      const worker = new Worker(__filename, { workerData: { steps: a.steps } });
      const feed = (): void => {
        if (next >= seeds.length) {
          worker.postMessage(null);
          return;
        }
        const batch = seeds.slice(next, next + chunk);
        next += batch.length;
        worker.postMessage({ seeds: batch } satisfies WorkerRequest);
      };
      worker.on('message', (msg: WorkerReply) => {
        if (msg.kind === 'idle') {
          feed();
          return;
        }
        const r = msg.result;
        done++;
        totalSteps += r.steps;
        coverage.add(r);
        if (r.violation) {
          failed.push(r);
          reportViolation(r, a.steps);
        }
        if (a.verbose) {
          const s = r.stats;
          process.stdout.write(
            `seed ${r.seed}: ${r.violation ? 'VIOLATION' : 'ok'} steps=${r.steps} ticks=${s.ticks} liveTicks=${s.livenessTicks} ` +
              `acked=${s.acked} reads=${s.readsReleased}/${s.reads} terms=${s.leaderTerms} crashes=${s.crashes} ` +
              `conf=${s.confChangesApplied} snaps=${s.snapshotsInstalled} maxIndex=${s.maxCommitted}\n`,
          );
        } else if (Date.now() - lastProgress > 10_000) {
          lastProgress = Date.now();
          process.stderr.write(`... ${done}/${seeds.length} seeds, ${failed.length} violation(s)\n`);
        }
      });
      worker.on('error', reject);
      worker.on('exit', (code) => {
        if (code !== 0) {
          reject(new Error(`worker exited with code ${code}`));
          return;
        }
        if (--live === 0) resolve();
      });
      feed();
    }
  });

  if (failed.length > 0) {
    failed.sort((x, y) => x.seed - y.seed);
    process.stdout.write(`failing seeds: ${failed.map((r) => r.seed).join(' ')}\n`);
  }
  process.stdout.write(coverage.describe() + '\n');
  summary(done, totalSteps, failed.length, Date.now() - t0, workerCount);
  process.exitCode = failed.length > 0 ? 1 : 0;
}

if (!isMainThread) {
  workerMain();
} else {
  const args = parseArgs(process.argv.slice(2));
  if (args.seed !== undefined) replayOne(args);
  else
    runMany(args).catch((err: unknown) => {
      process.stderr.write(`simulator runner failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 2;
    });
}
