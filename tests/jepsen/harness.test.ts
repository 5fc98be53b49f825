// The short Jepsen pass of `make test`: every nemesis once (register workload; the set workload
// under kill and membership), real kvd processes in network namespaces, each run checked. A run
// must be valid, its cluster must recover after healing, and nothing of its network may remain.
// Needs root (CI is root): otherwise run.sh exits 4 saying so, and these tests fail with it.
//
// Each run's seed is in its output (quoted on failure); `scripts/jepsen/run.sh --seed N ...`
// replays its schedule and choices (timing still differs). A failing run's directory is kept.

import { jepsenRun, leftovers, removeRun, results, summary } from './harness-run';

const SECONDS = Number(process.env.KV_JEPSEN_SECONDS ?? 12);
const RUNS: ReadonlyArray<[string, string]> = [
  ['partition-random-halves', 'register'],
  ['partition-isolate-leader', 'register'],
  ['partition-majorities-ring', 'register'],
  ['partition-one-way', 'register'],
  ['kill', 'register'],
  ['pause', 'register'],
  ['membership', 'register'],
  ['latency', 'register'],
  ['mixed', 'register'],
  ['kill', 'set'],
  ['membership', 'set'],
];
/** The same checks with one unary call per operation (the runs above use the client's default, Multiplex streams). */
const UNARY_RUNS: ReadonlyArray<[string, string]> = [['mixed', 'register']];

describe('jepsen: a short run of every nemesis is linearizable and recovers', () => {
  const cases = [...RUNS.map(([n, w]) => [n, w, 'multiplex'] as const), ...UNARY_RUNS.map(([n, w]) => [n, w, 'unary'] as const)];
  test.each(cases)('%s / %s (%s client)', async (nemesis, workload, client) => {
    const run = await jepsenRun(
      `${nemesis}-${workload}-${client}`,
      ['--nemesis', nemesis, '--workload', workload, '--time', String(SECONDS), '--client', client],
      150_000,
    );
    const why = `run directory ${run.dir} (kept); output:\n${run.output.slice(-3000)}`;
    if (run.code !== 0) throw new Error(`run.sh exited ${run.code}${run.signal ? ` (${run.signal})` : ''}: ${why}`);
    const r = results(run);
    expect({ valid: r.valid, anomalies: r.anomalies.slice(0, 3), why }).toEqual({ valid: true, anomalies: [], why });
    // Enough operations that the run meant something, and some succeeded under faults.
    expect(r.ok).toBeGreaterThan(50);
    const s = summary(run);
    expect(s.recovered).toBe(true);
    expect(await leftovers(s.prefix)).toEqual([]);
    removeRun(run);
  }, 180_000);
});
