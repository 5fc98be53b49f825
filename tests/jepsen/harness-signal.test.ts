// A run interrupted by SIGTERM in the middle of a fault stops its nodes and removes its network:
// no namespace, link or kvd process of it remains.

import { readFileSync, readdirSync } from 'node:fs';
import { jepsenRun, leftovers, removeRun } from './harness-run';

/** Pids of kvd processes whose command line names the run's subnet. */
function kvdPidsOn(subnet: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes('kvd') && cmd.includes(`${subnet}.`)) pids.push(Number(name));
    } catch {
      // gone
    }
  }
  return pids;
}

test('SIGTERM during a partition: the run stops, and leaves no namespace, link or process behind', async () => {
  let signalled = false;
  const run = await jepsenRun('sigterm', ['--nemesis', 'partition-random-halves', '--time', '120'], 90_000, (out, child) => {
    if (!signalled && / partition-random-halves start /.test(out)) {
      signalled = true;
      child.kill('SIGTERM');
    }
  });
  expect(signalled).toBe(true);
  expect(run.code).not.toBe(0);
  const m = /network (rkj(\d+)):/.exec(run.output);
  expect(m).not.toBeNull();
  const [, prefix, octet] = m as RegExpExecArray;
  expect(await leftovers(prefix as string)).toEqual([]);
  expect(kvdPidsOn(`10.77.${octet}`)).toEqual([]);
  removeRun(run);
}, 120_000);
