// Proof that the suite has teeth: STALE reads (any replica's local state, no ReadIndex — a real,
// documented mode of the store) are not linearizable, and a default-length run under
// partition-isolate-leader must say so. Every logical client reads through its own home node,
// so reads keep reaching the isolated old leader while the majority moves on.

import { jepsenRun, leftovers, removeRun, results, summary } from './harness-run';

test('stale reads under partition-isolate-leader are caught (valid: false)', async () => {
  const run = await jepsenRun('stale', ['--nemesis', 'partition-isolate-leader', '--read-mode', 'stale'], 200_000);
  const why = `run directory ${run.dir}; output:\n${run.output.slice(-3000)}`;
  const r = results(run);
  expect({ valid: r.valid, why }).toEqual({ valid: false, why });
  expect(run.code).toBe(1);
  expect(r.anomalies.length).toBeGreaterThan(0);
  expect(r.anomalies.some((a) => a.kind === 'nonlinearizable')).toBe(true);
  expect(await leftovers(summary(run).prefix)).toEqual([]);
  removeRun(run);
}, 230_000);
