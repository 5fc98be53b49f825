// The placement scheduler with real processes: a range past the key threshold is split
// automatically; nodes that join receive replicas and leaders until counts are balanced; a
// drained node is emptied and removed; a node that stays down has its replicas replaced — all
// while a client writes, with every acknowledged write read back at the end.

import { KvClient } from '../../src/client';
import { PlacementClient, RangeInfoMsg } from '../../src/client/placement-client';
import { ProcessCluster, cleanupClusters, clusterTest, rawCall, waitFor } from './process-cluster';

afterEach(cleanupClusters);

function replicasPerNode(ranges: readonly RangeInfoMsg[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of ranges) for (const x of r.descriptor.replicas) out.set(x.nodeId, (out.get(x.nodeId) ?? 0) + 1);
  return out;
}

describe('the scheduler with real processes', () => {
  clusterTest(
    'automatic splits, rebalancing onto new nodes, drain and remove, and replacement of a dead node, under writes',
    async () => {
      const c = await ProcessCluster.start({
        nodes: 3,
        name: 'scheduler',
        schedule: true,
        extraArgs: [
          '--placement-heartbeat-ms', '200',
          '--schedule-interval-ms', '200',
          '--split-keys', '120',
          '--node-down-after-ms', '2000',
          '--replace-down-after-ms', '1000',
          '--replica-gc-silent-ms', '1500',
        ],
      });
      const placement = new PlacementClient({ endpoints: () => c.endpoints(c.running()), deadlineMs: 5_000 });
      const client = new KvClient({ endpoints: c.endpoints(), deadlineMs: 20_000 });
      const acked = new Map<string, string>();
      let writing = true;
      let n = 0;
      const writer = async (): Promise<void> => {
        while (writing) {
          const key = `k${String(n++ % 2000).padStart(5, '0')}`;
          const value = `v${n}`;
          try {
            await client.put(key, value);
            acked.set(key, value);
          } catch {
            acked.delete(key); // unknown outcome: the key's value is not known any more
          }
        }
      };
      const writers = [writer(), writer(), writer(), writer()];
      try {
        // 1. Automatic splits: the first range passes 120 keys and is split, again and again.
        await waitFor('automatic splits into at least 4 ranges', async () => (await placement.listRanges()).length >= 4, 60_000, 200);

        // 2. Two nodes join; replicas and leaders move onto them until counts are balanced.
        await c.addNode(4);
        await c.addNode(5);
        // Replica counts per node over time, quoted if balancing does not converge.
        const seen: string[] = [];
        let last = '';
        const started = Date.now();
        try {
          await waitFor(
            'replicas balanced over 5 nodes',
            async () => {
              const ranges = await placement.listRanges();
              const per = replicasPerNode(ranges);
              const counts = [1, 2, 3, 4, 5].map((id) => per.get(id) ?? 0);
              const line = `${ranges.length} ranges, replicas per node ${counts.join(' ')}`;
              if (line !== last) seen.push(`+${((Date.now() - started) / 1000).toFixed(1)}s ${line}`);
              last = line;
              return Math.min(...counts) > 0 && Math.max(...counts) - Math.min(...counts) <= 2;
            },
            90_000,
            250,
          );
        } catch (err) {
          const ranges = await placement.listRanges().catch(() => []);
          const detail = ranges.map((r) => {
            const d = r.descriptor;
            const replicas = d.replicas.map((x) => `${x.nodeId}${x.role === 2 ? 'L' : ''}`).join(',');
            return `r${d.rangeId} v${d.epoch.version}/${d.epoch.confVersion} leader ${r.leader?.nodeId ?? '-'} replicas ${replicas}`;
          });
          const ops = c
            .running()
            .flatMap((id) => c.logSinceStart(id).split('\n').filter((l) => l.includes('"component":"scheduler"') && !l.includes('operator step executed')).slice(-15));
          (err as Error).message += `\ncounts seen:\n${seen.join('\n')}\nranges at the end:\n${detail.join('\n')}\nscheduler log:\n${ops.join('\n')}`;
          throw err;
        }

        // 3. Drain node 5, then remove it.
        await placement.drainNode(5);
        await waitFor('node 5 drained', async () => (await placement.drainNode(5)).done, 90_000, 250);
        await c.kill(5, 'SIGTERM');
        await placement.removeNode(5);
        expect((await placement.listNodes()).map((x) => x.nodeId).sort()).toEqual([1, 2, 3, 4]);

        // 4. Node 4 dies; after the down threshold its replicas are replaced on 1..3.
        await c.kill(4, 'SIGKILL');
        await waitFor(
          'no range keeps a replica on dead node 4',
          async () => (await placement.listRanges()).every((r) => r.descriptor.replicas.every((x) => x.nodeId !== 4) && r.descriptor.replicas.length === 3),
          90_000,
          250,
        );

        // 5. Node 4 comes back: the replicas replaced meanwhile are zombies (they never applied
        //    their removal); replica GC asks each range's leader and destroys them.
        await c.restart(4);
        await waitFor('node 4 destroyed its stale replicas', () => c.logSinceStart(4).includes('replica GC: this node was removed from the range'), 60_000, 250);
        await waitFor(
          'every range node 4 hosts lists node 4 as a member',
          async () => {
            const st = await rawCall<{ ranges: Array<{ descriptor: { rangeId: number } }> }>(c.address(4), 'Admin', 'clusterStatus', {});
            const map = new Map((await placement.listRanges()).map((r) => [r.descriptor.rangeId, r]));
            const strays = st.ranges.filter((r) => r.descriptor.rangeId !== 0 && map.get(r.descriptor.rangeId)?.descriptor.replicas.some((x) => x.nodeId === 4) !== true);
            if (strays.length > 0) {
              const gc = c.logSinceStart(4).split('\n').filter((l) => l.includes('replica GC')).slice(-6).join('\n');
              throw new Error(`node 4 hosts ranges placement does not place there: ${JSON.stringify(strays.map((r) => ({ local: r.descriptor, placed: map.get(r.descriptor.rangeId)?.descriptor })))}\n${gc}`);
            }
            return true;
          },
          60_000,
          250,
        );
      } finally {
        writing = false;
        await Promise.all(writers);
      }
      try {
        expect(acked.size).toBeGreaterThan(300);
        for (const [k, v] of acked) expect((await client.get(k)).value.toString()).toBe(v);
        const ranges = await placement.listRanges();
        expect(ranges.length).toBeGreaterThanOrEqual(4);
      } finally {
        client.close();
        placement.close();
      }
    },
    300_000,
  );
});
