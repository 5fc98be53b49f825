// The short Jepsen pass over many ranges (part of `make test`, like harness.test.ts): the `split`
// nemesis splitting ranges continuously under the register workload, and the register workload
// over 8 ranges made before it starts (--pre-split 8) under partition-random-halves. Each run must
// be valid, recover after healing and leave no network behind, and its history must really span
// several ranges: its keys are mapped to placement's range map at the end of the run (run.json
// `ranges`). Needs root, like the rest of tests/jepsen.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JepsenRun, RangeRow, jepsenRun, jsonlObjects, leftovers, rangesWithOperations, removeRun, results, summary } from './harness-run';

const SECONDS = Number(process.env.KV_JEPSEN_SECONDS ?? 12);

interface SplitRunSummary {
  /** Placement's range map after the final reads, or why it could not be read. */
  readonly ranges?: readonly RangeRow[] | { error: string };
  readonly preSplit?: { keys: string[]; created: number[] };
}

function runJson(run: JepsenRun): SplitRunSummary {
  return JSON.parse(readFileSync(join(run.dir, 'run.json'), 'utf8')) as SplitRunSummary;
}

/** Runs run.sh, checks validity, recovery and cleanup; returns placement's final range map. */
async function validRun(name: string, args: readonly string[]): Promise<{ run: JepsenRun; ranges: readonly RangeRow[]; why: string }> {
  const run = await jepsenRun(name, [...args, '--time', String(SECONDS)], 150_000);
  const why = `run directory ${run.dir} (kept); output:\n${run.output.slice(-3000)}`;
  if (run.code !== 0) throw new Error(`run.sh exited ${run.code}${run.signal ? ` (${run.signal})` : ''}: ${why}`);
  const r = results(run);
  expect({ valid: r.valid, anomalies: r.anomalies.slice(0, 3), why }).toEqual({ valid: true, anomalies: [], why });
  expect(r.ok).toBeGreaterThan(50);
  const s = summary(run);
  expect(s.recovered).toBe(true);
  expect(await leftovers(s.prefix)).toEqual([]);
  const ranges = runJson(run).ranges;
  if (!Array.isArray(ranges)) throw new Error(`run.json has no range map (${JSON.stringify(ranges)}): ${why}`);
  return { run, ranges: ranges as readonly RangeRow[], why };
}

describe('jepsen: short runs over many ranges are linearizable and recover', () => {
  test('split / register: ranges split continuously under the workload', async () => {
    const { run, ranges, why } = await validRun('split-register', ['--nemesis', 'split', '--workload', 'register']);
    const stops = jsonlObjects<{ nemesis: string; event: string; detail: { splits?: number } }>(join(run.dir, 'nemesis.jsonl')).filter(
      (e) => e.nemesis === 'split' && e.event === 'stop',
    );
    expect({ windows: stops.length > 0, why }).toEqual({ windows: true, why });
    const splits = stops.reduce((n, e) => n + (e.detail.splits ?? 0), 0);
    expect({ splits: splits > 0, why }).toEqual({ splits: true, why });
    expect(ranges.length).toBeGreaterThan(1);
    expect({ rangesWithOps: rangesWithOperations(run.dir, ranges).length >= 2, ranges, why }).toEqual({ rangesWithOps: true, ranges, why });
    removeRun(run);
  }, 180_000);

  test('partition-random-halves / register over 8 pre-split ranges', async () => {
    const { run, ranges, why } = await validRun('presplit-register', ['--nemesis', 'partition-random-halves', '--workload', 'register', '--pre-split', '8']);
    expect(runJson(run).preSplit?.keys).toHaveLength(7);
    expect(ranges.length).toBeGreaterThanOrEqual(8);
    const hit = rangesWithOperations(run.dir, ranges);
    expect({ rangesWithOps: hit.length >= 8, hit, ranges, why }).toEqual({ rangesWithOps: true, hit, ranges, why });
    removeRun(run);
  }, 180_000);
});
