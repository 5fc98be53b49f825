// Durability across crashes of the whole cluster: under continuous writes from several clients,
// every kvd is SIGKILLed at a random moment, all restart, and the cluster must still hold every
// acknowledged write and nothing that was never written. Several rounds per run; the fault
// schedule comes from a seeded PRNG (the seed is printed; KV_IT_SEED=<n> replays the schedule,
// though not the exact interleaving of real processes).

import { Consistency, KvClient } from '../../src/client';
import { ProcessCluster, cleanupClusters, clusterTest, delay, waitFor } from './process-cluster';
import { Workload, chooseSeed, prng, summary, verifyHistory } from './workload';

afterEach(cleanupClusters);

const ROUNDS = Number(process.env.KV_IT_CRASH_ROUNDS ?? 3);
const NODES = [1, 2, 3];

/** Fisher-Yates, with the seeded PRNG. */
function shuffle<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('crash durability', () => {
  clusterTest(
    `SIGKILL of every node at random moments under load, ${ROUNDS} rounds: no acknowledged write is lost, no unwritten value appears`,
    async () => {
      const seed = chooseSeed();
      const rand = prng(seed);
      // Printed up front so that a run that hangs still tells its seed.
      process.stdout.write(`crash-durability: seed ${seed} (replay the fault schedule with KV_IT_SEED=${seed})\n`);
      const context = (round: number): string => `seed ${seed}, round ${round}`;

      // Small snapshot interval: crashes also hit snapshotting and log compaction.
      const c = await ProcessCluster.start({ nodes: 3, name: 'crash', snapshotEntries: 100 });
      // Half the workers use compare-and-swap chains: a retry that applied twice would show.
      const w = new Workload({ endpoints: c.endpoints(), workers: 8, casWorkers: 4, prefix: 'crash', writesPerKey: 4, deadlineMs: 3_000 });

      for (let round = 1; round <= ROUNDS; round++) {
        w.start();
        await w.waitAcked(w.acked + 50, 30_000);

        // Faults at random moments: a random wait, then each node killed after its own random gap.
        await delay(Math.floor(rand() * 1_000));
        const order = shuffle(NODES, rand);
        const gaps: number[] = [];
        for (const id of order) {
          const gap = Math.floor(rand() * 300);
          gaps.push(gap);
          await delay(gap);
          await c.kill(id, 'SIGKILL');
        }
        const downMs = Math.floor(rand() * 500);
        await delay(downMs);
        process.stdout.write(`crash-durability: ${context(round)}: killed ${order.join(',')} after gaps ${gaps.join(',')} ms, restart after ${downMs} ms; ${summary(w)}\n`);

        await Promise.all(NODES.map((id) => c.restart(id)));
        await c.waitForLeader();
        // The cluster serves again, and the clients that were waiting through the crash went on.
        await w.waitAcked(w.acked + 30, 30_000);
        await w.stop();
        expect({ context: context(round), anomalies: w.anomalies }).toEqual({ context: context(round), anomalies: [] });

        const client = new KvClient({ endpoints: c.endpoints(), deadlineMs: 20_000 });
        try {
          const { violations } = await verifyHistory(client, w);
          expect({ context: context(round), summary: summary(w), violations }).toEqual({ context: context(round), summary: summary(w), violations: [] });
        } finally {
          client.close();
        }
      }

      // State machine safety after all that: every replica, once caught up, holds the same data.
      const leader = await c.waitForLeader();
      const commit = (await c.rangeStatus(leader)).commitIndex;
      for (const id of NODES) {
        await waitFor(`node ${id} to apply up to ${commit}`, async () => (await c.rangeStatus(id)).appliedIndex >= commit);
      }
      const contents: string[][] = [];
      for (const id of NODES) {
        const local = new KvClient({ endpoints: [c.address(id)], routing: false }); // this node's own state
        try {
          const rows: string[] = [];
          for await (const kv of local.scan('', '', { consistency: Consistency.Stale })) rows.push(`${kv.key.toString()}=${kv.value.toString()}`);
          contents.push(rows);
        } finally {
          local.close();
        }
      }
      expect(contents[0]!.length).toBeGreaterThan(0);
      expect(contents[1]).toEqual(contents[0]);
      expect(contents[2]).toEqual(contents[0]);
    },
    150_000,
  );
});
