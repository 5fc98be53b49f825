// Three real kvd processes split their keyspace repeatedly while clients write: no acknowledged
// write is lost, every key reads back linearizably through the routing client, scans cross the
// range boundaries in order, and placement's range map ends up covering the keyspace exactly once.

import { KvClient } from '../../src/client';
import { PlacementClient, RangeInfoMsg } from '../../src/client/placement-client';
import { ProcessCluster, cleanupClusters, clusterTest, rawCall, waitFor } from './process-cluster';

afterEach(cleanupClusters);

interface SplitResponse {
  error: { message: string; notLeader?: { leader: { address: string } | null } } | null;
  left: { rangeId: number } | null;
  right: { rangeId: number } | null;
}

/** Splits the range holding `key` at `key`, at its leader (found through placement, then NotLeader hints). */
async function splitAt(c: ProcessCluster, placement: PlacementClient, key: string): Promise<number> {
  return waitFor(
    `a split at ${key}`,
    async () => {
      const info = await placement.lookupRange(Buffer.from(key));
      if (!info) return undefined;
      let address = info.leader?.address || c.address(1);
      for (let hop = 0; hop < 3; hop++) {
        const res = await rawCall<SplitResponse>(address, 'Admin', 'splitRange', { rangeId: info.descriptor.rangeId, splitKey: Buffer.from(key) }, 5_000);
        if (!res.error) return res.right?.rangeId;
        const next = res.error.notLeader?.leader?.address;
        if (!next) return undefined;
        address = next;
      }
      return undefined;
    },
    20_000,
    50,
  );
}

/** Checks that ranges (in key order) tile the keyspace: first starts at '', each starts where the previous ends, last ends at ''. */
function tiles(ranges: readonly RangeInfoMsg[]): boolean {
  if (ranges.length === 0 || ranges[0]?.descriptor.startKey.length !== 0) return false;
  for (let i = 1; i < ranges.length; i++) {
    if (Buffer.compare((ranges[i - 1] as RangeInfoMsg).descriptor.endKey, (ranges[i] as RangeInfoMsg).descriptor.startKey) !== 0) return false;
  }
  return (ranges[ranges.length - 1] as RangeInfoMsg).descriptor.endKey.length === 0;
}

describe('splits with real processes', () => {
  clusterTest(
    'writes while the keyspace splits repeatedly: nothing acknowledged is lost, reads and scans route across the new ranges',
    async () => {
      const c = await ProcessCluster.start({ nodes: 3, name: 'splits', extraArgs: ['--placement-heartbeat-ms', '200'] });
      const endpoints = [1, 2, 3].map((id) => c.address(id));
      const placement = new PlacementClient({ endpoints, deadlineMs: 5_000 });
      const client = new KvClient({ endpoints, deadlineMs: 15_000 });
      try {
        const acked = new Map<string, string>();
        const unknown = new Set<string>();
        let writing = true;
        const writer = async (w: number): Promise<void> => {
          for (let i = 0; writing || i < 20; i++) {
            const key = `w${w}-${String(i).padStart(4, '0')}`;
            const value = `${key}@${Date.now()}`;
            try {
              await client.put(key, value);
              acked.set(key, value);
            } catch {
              unknown.add(key); // indeterminate or failed: may or may not be there
            }
          }
        };
        const writers = [0, 1, 2, 3, 4, 5].map((w) => writer(w));
        const splitKeys = ['w3', 'w1', 'w5', 'w2-0010', 'w4-0005', 'w0-0020'];
        const newIds: number[] = [];
        for (const k of splitKeys) newIds.push(await splitAt(c, placement, k));
        writing = false;
        await Promise.all(writers);

        expect(new Set(newIds).size).toBe(splitKeys.length);
        expect(acked.size).toBeGreaterThan(60);
        // Every acknowledged write reads back (linearizable, routed by key).
        for (const [k, v] of acked) expect((await client.get(k)).value.toString()).toBe(v);
        // One scan over everything: in order, no duplicates, every acknowledged key present.
        const scanned: string[] = [];
        for await (const kv of client.scan('', '')) scanned.push(kv.key.toString());
        expect([...scanned].sort()).toEqual(scanned);
        expect(new Set(scanned).size).toBe(scanned.length);
        for (const k of acked.keys()) expect(scanned).toContain(k);
        for (const k of scanned) expect(acked.has(k) || unknown.has(k)).toBe(true);
        // A bounded scan inside one split range and across two.
        const across: string[] = [];
        for await (const kv of client.scan('w2-0005', 'w3-0003')) across.push(kv.key.toString());
        expect(across).toEqual(scanned.filter((k) => k >= 'w2-0005' && k < 'w3-0003'));

        // Placement's map converges to 1 + splits ranges that tile the keyspace, each with a leader.
        const ranges = await waitFor(
          'placement to list every range',
          async () => {
            const rs = await placement.listRanges();
            return rs.length === splitKeys.length + 1 && tiles(rs) && rs.every((r) => r.leader !== null) ? rs : undefined;
          },
          20_000,
          100,
        );
        expect(ranges.map((r) => r.descriptor.startKey.toString()).slice(1)).toEqual([...splitKeys].sort());
      } finally {
        client.close();
        placement.close();
      }
    },
    180_000,
  );
});
