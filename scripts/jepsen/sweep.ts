// `node dist/scripts/jepsen/sweep.js`: removes the namespaces, links, processes and locks left by
// Jepsen runs whose harness is gone (run.sh calls it after every run, however the run ended).
// Runs still alive keep theirs.

import { sweepLeftovers } from './net';

sweepLeftovers().then(
  (removed) => {
    if (removed.length > 0) process.stdout.write(`jepsen sweep: removed ${removed.join(', ')}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`jepsen sweep: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
