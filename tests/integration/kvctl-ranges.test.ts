// kvctl's placement commands against a 3-node cluster: `ranges` and `nodes` (text and --json) and
// `split KEY` (output, exit codes: 0 split, 2 usage error, 3 refused by the cluster), with data
// written before a split readable on both sides of it afterwards.

import { KVCTL_BIN, ProcessCluster, RunResult, cleanupClusters, clusterTest, run, waitFor, withLogs } from './process-cluster';

let c: ProcessCluster;

beforeAll(async () => {
  // Frequent heartbeats: placement learns leaders and liveness within a fraction of a second.
  c = await withLogs(() => ProcessCluster.start({ nodes: 3, name: 'kvctl-ranges', extraArgs: ['--placement-heartbeat-ms', '200'] }));
}, 60_000);

afterAll(cleanupClusters);

function kvctl(args: string[]): Promise<RunResult> {
  return run(KVCTL_BIN, ['--endpoints', c.endpoints([1, 2, 3]).join(','), ...args], { timeoutMs: 30_000 });
}

function outcome(r: RunResult): { code: number | null; stdout: string; stderr: string } {
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

interface KeyJson {
  hex: string;
  printable: string;
}

interface RangeJson {
  rangeId: number;
  startKey: KeyJson;
  endKey: KeyJson;
  epoch: { version: number; confVersion: number };
  replicas: Array<{ nodeId: number; role: string }>;
  leader: { nodeId: number; address: string } | null;
  approximateBytes: number;
  writesPerSecond: number;
  readsPerSecond: number;
}

interface NodeJson {
  nodeId: number;
  address: string;
  zone: string;
  state: string;
  lastHeartbeatAgeMs: number;
  replicaCount: number;
  leaderCount: number;
}

/** `kvctl --json ranges`, parsed; throws (so waitFor polls again) unless it exits 0. */
async function ranges(): Promise<RangeJson[]> {
  const r = await kvctl(['ranges', '--json']);
  if (r.code !== 0) throw new Error(`kvctl ranges exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as RangeJson[];
}

async function nodes(): Promise<NodeJson[]> {
  const r = await kvctl(['nodes', '--json']);
  if (r.code !== 0) throw new Error(`kvctl nodes exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as NodeJson[];
}

const VOTERS_1_2_3 = [1, 2, 3].map((nodeId) => ({ nodeId, role: 'voter' }));

describe('kvctl ranges, nodes and split against a 3-node cluster', () => {
  clusterTest('ranges: range 1 covers the whole keyspace and has a leader', async () => {
    const list = await waitFor('placement to list range 1 with a leader', async () => {
      const rs = await ranges();
      return rs.length === 1 && rs[0]!.leader !== null ? rs : undefined;
    }, 20_000, 200);
    expect(list).toEqual([
      {
        rangeId: 1,
        startKey: { hex: '', printable: '' },
        endKey: { hex: '', printable: '' },
        epoch: { version: expect.any(Number), confVersion: expect.any(Number) },
        replicas: VOTERS_1_2_3,
        leader: { nodeId: expect.any(Number), address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
        approximateBytes: expect.any(Number),
        approximateKeys: expect.any(Number),
        writesPerSecond: expect.any(Number),
        readsPerSecond: expect.any(Number),
      },
    ]);
    expect(c.endpoints([1, 2, 3])).toContain(list[0]!.leader!.address);

    const text = await kvctl(['ranges']);
    expect(text.code).toBe(0);
    expect(text.stderr).toBe('');
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^RANGE\s+START\s+END\s+VERSION\s+LEADER\s+REPLICAS\s+KEYS\s+SIZE\s+W\/S\s+R\/S$/);
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^1\s+-inf\s+\+inf\s+\d+\.\d+\s+[123]\s+1,2,3\s+\d+\s+\d+(\.\d)? (B|KiB|MiB)\s+\d+\.\d\s+\d+\.\d$/)]);
  }, 40_000);

  clusterTest('nodes: all three nodes are up', async () => {
    const list = await waitFor('placement to see 3 nodes up', async () => {
      const ns = await nodes();
      return ns.length === 3 && ns.every((n) => n.state === 'up') ? ns : undefined;
    }, 20_000, 200);
    expect(list.map((n) => ({ nodeId: n.nodeId, address: n.address }))).toEqual([1, 2, 3].map((id) => ({ nodeId: id, address: c.address(id) })));
    for (const n of list) expect(n).toEqual(expect.objectContaining({ lastHeartbeatAgeMs: expect.any(Number), replicaCount: expect.any(Number), leaderCount: expect.any(Number) }));

    const text = await kvctl(['nodes']);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+ADDRESS\s+ZONE\s+STATE\s+LAST-HEARTBEAT\s+REPLICAS\s+LEADERS$/);
    expect(lines.slice(1)).toEqual(
      [1, 2, 3].map((id) => expect.stringMatching(new RegExp(`^${id}\\s+${c.address(id).replace(/\./g, '\\.')}\\s+\\S+\\s+up\\s+\\d+(ms|\\.\\ds)\\s+\\d+\\s+\\d+$`))),
    );
  }, 40_000);

  clusterTest('split m: two ranges [,m) and [m,); data on both sides still readable; splitting at m again is refused', async () => {
    expect((await kvctl(['put', 'a', 'left side'])).code).toBe(0);
    expect((await kvctl(['put', 'z', 'right side'])).code).toBe(0);

    const split = await kvctl(['split', 'm']);
    expect(outcome(split)).toEqual({ code: 0, stdout: expect.stringMatching(/^split range 1 at m: left 1 \[-inf, m\) right \d+ \[m, \+inf\)\n$/), stderr: '' });
    const rightId = Number(/right (\d+)/.exec(split.stdout)![1]);
    expect(rightId).toBeGreaterThan(1);

    const after = await waitFor('placement to list [,m) and [m,)', async () => {
      const rs = await ranges();
      const shape = rs.map((r) => [r.rangeId, r.startKey.printable, r.endKey.printable]);
      return JSON.stringify(shape) === JSON.stringify([[1, '', 'm'], [rightId, 'm', '']]) ? rs : undefined;
    }, 20_000, 200);
    expect(after.map((r) => ({ start: r.startKey.hex, end: r.endKey.hex, replicas: r.replicas }))).toEqual([
      { start: '', end: '6d', replicas: VOTERS_1_2_3 },
      { start: '6d', end: '', replicas: VOTERS_1_2_3 },
    ]);
    // Both halves get a leader reported (the right one starts with the split).
    await waitFor('both ranges to have a leader in placement', async () => (await ranges()).every((r) => r.leader !== null), 20_000, 200);
    const text = await kvctl(['ranges']);
    expect(text.stdout).toMatch(/^1\s+-inf\s+m\s+/m);
    expect(text.stdout).toMatch(new RegExp(`^${rightId}\\s+m\\s+\\+inf\\s+`, 'm'));

    // Written before the split, read through the routing client after it: one key on each side.
    expect(outcome(await kvctl(['get', 'a']))).toEqual({ code: 0, stdout: 'left side\n', stderr: '' });
    expect(outcome(await kvctl(['get', 'z']))).toEqual({ code: 0, stdout: 'right side\n', stderr: '' });

    // m now starts a range: the server refuses (FAILED_PRECONDITION), kvctl exits 3 with its message.
    expect(outcome(await kvctl(['split', 'm']))).toEqual({ code: 3, stdout: '', stderr: expect.stringMatching(/^kvctl: .*split refused: .*not strictly inside the range/) });
    expect((await ranges()).map((r) => r.rangeId)).toEqual([1, rightId]);
  }, 60_000);

  clusterTest('split --json with a key that is not printable ASCII', async () => {
    const r = await kvctl(['--json', 'split', 'q\x01']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      splitKey: { hex: '7101', printable: '0x7101' },
      left: expect.objectContaining({ startKey: { hex: '6d', printable: 'm' }, endKey: { hex: '7101', printable: '0x7101' } }),
      right: expect.objectContaining({ rangeId: expect.any(Number), startKey: { hex: '7101', printable: '0x7101' }, endKey: { hex: '', printable: '' } }),
    });
    await waitFor('placement to list the range from 0x7101', async () => (await ranges()).some((x) => x.startKey.hex === '7101'), 20_000, 200);
    expect((await kvctl(['ranges'])).stdout).toMatch(/^\d+\s+m\s+0x7101\s+/m);
    expect(outcome(await kvctl(['get', 'z']))).toEqual({ code: 0, stdout: 'right side\n', stderr: '' });
  }, 40_000);

  describe('split usage errors exit 2', () => {
    test.each<[string, string[], RegExp]>([
      ['an empty key', ['split', ''], /KEY must not be empty/],
      ['no key', ['split'], /missing required argument/],
    ])('%s', async (_name, args, message) => {
      expect(outcome(await kvctl(args))).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(message) });
    }, 30_000);
  });
});
