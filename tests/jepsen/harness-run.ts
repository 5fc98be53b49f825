// Runs scripts/jepsen/run.sh as a child process for the jest tests, and reads what it wrote.
// The suite needs root and network namespaces: without them run.sh exits 4 with a message that
// says so, and the tests fail with it (they are never skipped).

import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { jsonlLines, parseObjectLine } from '../../scripts/jepsen/checker/jsonl';

export const REPO = resolve(__dirname, '..', '..');
const RUN_SH = join(REPO, 'scripts', 'jepsen', 'run.sh');

export interface JepsenRun {
  readonly dir: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

export interface Results {
  readonly valid: boolean | 'unknown';
  readonly ops: number;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
  readonly anomalies: ReadonlyArray<{ kind: string; key?: string }>;
}

export interface RunSummary {
  readonly prefix: string;
  readonly recovered: boolean;
  readonly failure: string | null;
  readonly counts: { ok: number; fail: number; info: number };
}

/** Checks that dist/ holds the harness (make build, or `make test`, builds it). */
export function assertHarnessBuilt(): void {
  for (const f of ['scripts/jepsen/run.js', 'scripts/jepsen/checker/cli.js', 'src/cli/kvd.js']) {
    if (!existsSync(join(REPO, 'dist', f))) throw new Error(`dist/${f} is missing: run \`make build\` first`);
  }
}

/**
 * Starts run.sh with `args` (plus --out, a fresh temporary directory). `onStart` gets the child,
 * e.g. to signal it. Resolves when it exits, or rejects after `timeoutMs` (then SIGTERM).
 */
export function jepsenRun(name: string, args: readonly string[], timeoutMs: number, onOutput?: (text: string, child: ChildProcess) => void): Promise<JepsenRun> {
  assertHarnessBuilt();
  const dir = join(mkdtempSync(join(tmpdir(), `rangekv-jepsen-${name}-`)), 'run');
  return new Promise((resolveRun, reject) => {
    const child = spawn(RUN_SH, ['--no-build', ...args, '--out', dir], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`run.sh ${args.join(' ')} did not finish within ${timeoutMs} ms; run directory ${dir}; output:\n${output.slice(-4000)}`));
    }, timeoutMs);
    const take = (d: Buffer): void => {
      output += d.toString('utf8');
      onOutput?.(output, child);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ dir, code, signal, output });
    });
  });
}

export function results(run: JepsenRun): Results {
  const path = join(run.dir, 'results.json');
  if (!existsSync(path)) throw new Error(`no results.json in ${run.dir} (exit ${run.code}); output:\n${run.output.slice(-4000)}`);
  return JSON.parse(readFileSync(path, 'utf8')) as Results;
}

export function summary(run: JepsenRun): RunSummary {
  return JSON.parse(readFileSync(join(run.dir, 'run.json'), 'utf8')) as RunSummary;
}

/** Removes a run's directory (kept when a test fails, for a post-mortem). */
export function removeRun(run: JepsenRun): void {
  rmSync(resolve(run.dir, '..'), { recursive: true, force: true });
}

/** What of a run's network is still there (namespaces and links with its prefix). */
export async function leftovers(prefix: string): Promise<string[]> {
  const list = (args: string[]): Promise<string> =>
    new Promise((res) => {
      const c = spawn('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
      c.on('close', () => res(out));
      c.on('error', () => res(''));
    });
  const names = `${await list(['netns', 'list'])}\n${await list(['-o', 'link', 'show'])}`;
  return names.split('\n').filter((l) => l.includes(`${prefix}-`));
}

/** A range of placement's map as run.json records it (printable bounds; '' end = keyspace end). */
export interface RangeRow {
  readonly rangeId: number;
  readonly start: string;
  readonly end: string;
}

/** The objects of a run's JSON-lines file (history.jsonl, nemesis.jsonl), read with the checker's reader. */
export function jsonlObjects<T>(path: string): T[] {
  return jsonlLines(readFileSync(path, 'utf8')).map((text, i) => parseObjectLine(path, text, i + 1) as unknown as T);
}

/** The ranges of `ranges` (by id) that hold a key of some operation in the run's history. */
export function rangesWithOperations(dir: string, ranges: readonly RangeRow[]): number[] {
  const keys = new Set(jsonlObjects<{ key: string }>(join(dir, 'history.jsonl')).map((o) => o.key));
  const hit = new Set<number>();
  for (const key of keys) {
    const k = Buffer.from(key, 'utf8');
    const r = ranges.find((x) => Buffer.compare(k, Buffer.from(x.start, 'utf8')) >= 0 && (x.end === '' || Buffer.compare(k, Buffer.from(x.end, 'utf8')) < 0));
    if (!r) throw new Error(`no range of placement's map holds key ${key}: ${JSON.stringify(ranges)}`);
    hit.add(r.rangeId);
  }
  return [...hit].sort((a, b) => a - b);
}
