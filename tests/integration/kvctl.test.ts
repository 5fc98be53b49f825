// The kvctl contract against a running 3-node cluster: commands, output (text and --json), exit
// codes (0 ok, 1 not-found get or failed cas, 2 usage error, 3 cluster error), values from stdin
// and files, and the admin commands (status, transfer-leader, adding a 4th node as a learner and
// promoting it).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KVCTL_BIN, ProcessCluster, RunResult, cleanupClusters, closedPort, clusterTest, run, waitFor, withLogs } from './process-cluster';

let c: ProcessCluster;
let scratch: string;

beforeAll(async () => {
  c = await withLogs(() => ProcessCluster.start({ nodes: 3, name: 'kvctl' }));
  scratch = mkdtempSync(join(tmpdir(), 'rangekv-it-kvctl-files-'));
}, 60_000);

afterAll(async () => {
  await cleanupClusters();
  rmSync(scratch, { recursive: true, force: true });
});

/** kvctl against the cluster (all three endpoints unless given). */
function kvctl(args: string[], opts: { input?: string | Buffer; endpoints?: string[] } = {}): Promise<RunResult> {
  return run(KVCTL_BIN, ['--endpoints', (opts.endpoints ?? c.endpoints([1, 2, 3])).join(','), ...args], { input: opts.input, timeoutMs: 30_000 });
}

/** Compact view of a run for one assertion (a failure then shows everything). */
function outcome(r: RunResult): { code: number | null; stdout: string; stderr: string } {
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

function jsonLines(stdout: string): unknown[] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
}

describe('kvctl against a 3-node cluster', () => {
  clusterTest('put, get and delete: output and exit codes', async () => {
    expect(outcome(await kvctl(['put', 'greeting', 'hello world']))).toEqual({ code: 0, stdout: expect.stringMatching(/^OK version=\d+\n$/), stderr: '' });
    expect(outcome(await kvctl(['get', 'greeting']))).toEqual({ code: 0, stdout: 'hello world\n', stderr: '' });
    expect(outcome(await kvctl(['get', 'no-such-key']))).toEqual({ code: 1, stdout: '', stderr: expect.stringMatching(/not found/) });
    expect(outcome(await kvctl(['delete', 'greeting']))).toEqual({ code: 0, stdout: expect.stringMatching(/^deleted version=\d+\n$/), stderr: '' });
    expect((await kvctl(['get', 'greeting'])).code).toBe(1);
    expect(outcome(await kvctl(['delete', 'greeting']))).toEqual({ code: 0, stdout: 'not found (nothing deleted)\n', stderr: '' });
    // A stale read from one replica, once it has applied the write.
    await kvctl(['put', 'stale-key', 'v']);
    await waitFor('node 3 to serve stale-key (STALE)', async () => (await kvctl(['get', '--stale', 'stale-key'], { endpoints: [c.address(3)] })).stdout === 'v\n');
  }, 60_000);

  clusterTest('--json output parses, for every data command', async () => {
    const put = await kvctl(['--json', 'put', 'j', 'one']);
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout)).toEqual({ key: 'j', version: expect.any(Number) });

    const get = await kvctl(['--json', 'get', 'j']);
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toEqual({ key: 'j', found: true, value: 'one', version: expect.any(Number), appliedIndex: expect.any(Number), node: expect.any(Number) });

    const missing = await kvctl(['--json', 'get', 'j-missing']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toEqual(expect.objectContaining({ key: 'j-missing', found: false, value: null }));

    const cas = await kvctl(['--json', 'cas', 'j', 'one', 'two']);
    expect(cas.code).toBe(0);
    expect(JSON.parse(cas.stdout)).toEqual(expect.objectContaining({ key: 'j', succeeded: true }));

    const failedCas = await kvctl(['--json', 'cas', 'j', 'one', 'three']);
    expect(failedCas.code).toBe(1);
    expect(JSON.parse(failedCas.stdout)).toEqual(expect.objectContaining({ succeeded: false, previous: { value: 'two', version: expect.any(Number) } }));

    for (const k of ['js/a', 'js/b']) await kvctl(['put', k, `${k}-value`]);
    const scan = await kvctl(['--json', 'scan', 'js/', 'js0']);
    expect(scan.code).toBe(0);
    expect(jsonLines(scan.stdout)).toEqual([
      { key: 'js/a', value: 'js/a-value', version: expect.any(Number) },
      { key: 'js/b', value: 'js/b-value', version: expect.any(Number) },
    ]);

    const del = await kvctl(['--json', 'delete', 'j']);
    expect(del.code).toBe(0);
    expect(JSON.parse(del.stdout)).toEqual({ key: 'j', deleted: true, version: expect.any(Number) });

    // Global options may also follow the command.
    const after = await kvctl(['get', 'js/a', '--json']);
    expect(JSON.parse(after.stdout)).toEqual(expect.objectContaining({ key: 'js/a', found: true }));

    const status = await kvctl(['--json', 'status']);
    expect(status.code).toBe(0);
    const views = JSON.parse(status.stdout) as Array<{ endpoint: string; status?: { clusterId: string; ranges: unknown[] } }>;
    expect(views.map((v) => v.endpoint).sort()).toEqual(c.endpoints([1, 2, 3]).sort());
    // Each node hosts the meta range (0, the placement service) and the first data range (1).
    const led = expect.objectContaining({ leaderNodeId: expect.any(Number) });
    for (const v of views) expect(v.status).toEqual(expect.objectContaining({ clusterId: 'rangekv', ranges: [led, led] }));
  }, 60_000);

  clusterTest('values from stdin ("-") and from --file, byte for byte', async () => {
    const text = 'line one\nline two: ünïcödé\ttab\n';
    expect((await kvctl(['put', 'from-stdin', '-'], { input: text })).code).toBe(0);
    expect(outcome(await kvctl(['get', 'from-stdin']))).toEqual({ code: 0, stdout: `${text}\n`, stderr: '' });

    const file = join(scratch, 'value.txt');
    writeFileSync(file, 'from a file\n');
    expect((await kvctl(['put', 'from-file', '--file', file])).code).toBe(0);
    expect((await kvctl(['get', 'from-file'])).stdout).toBe('from a file\n\n');

    // Both a value and --file, or a file that does not exist: usage errors.
    expect(outcome(await kvctl(['put', 'from-file', 'x', '--file', file]))).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(/either|not both/) });
    expect(outcome(await kvctl(['put', 'from-file', '--file', join(scratch, 'absent.txt')]))).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(/absent\.txt/) });
    expect((await kvctl(['get', 'from-file'])).stdout).toBe('from a file\n\n');
  }, 60_000);

  clusterTest('scan: ranges, --limit, --keys-only, in key order', async () => {
    for (const k of ['s/c', 's/a', 's/e', 's/b', 's/d']) expect((await kvctl(['put', k, `v-${k}`])).code).toBe(0);
    expect(outcome(await kvctl(['scan', 's/', 's0']))).toEqual({ code: 0, stdout: 's/a\tv-s/a\ns/b\tv-s/b\ns/c\tv-s/c\ns/d\tv-s/d\ns/e\tv-s/e\n', stderr: '' });
    expect((await kvctl(['scan', 's/b', 's/d'])).stdout).toBe('s/b\tv-s/b\ns/c\tv-s/c\n');
    expect((await kvctl(['scan', 's/', 's0', '--limit', '2'])).stdout).toBe('s/a\tv-s/a\ns/b\tv-s/b\n');
    expect((await kvctl(['scan', 's/', 's0', '--keys-only'])).stdout).toBe('s/a\ns/b\ns/c\ns/d\ns/e\n');
    expect(outcome(await kvctl(['scan', 'zzz/', 'zzz0']))).toEqual({ code: 0, stdout: '', stderr: '' });
  }, 60_000);

  clusterTest('cas: by value, --absent, --version, --delete; a failed condition exits 1', async () => {
    expect(outcome(await kvctl(['cas', 'c', '--absent', 'first']))).toEqual({ code: 0, stdout: expect.stringMatching(/^OK version=\d+\n$/), stderr: '' });
    expect(outcome(await kvctl(['cas', 'c', '--absent', 'again']))).toEqual({ code: 1, stdout: expect.stringMatching(/^FAILED: current 'first' version=\d+\n$/), stderr: '' });
    expect((await kvctl(['cas', 'c', 'first', 'second'])).code).toBe(0);
    expect(outcome(await kvctl(['cas', 'c', 'first', 'third']))).toEqual({ code: 1, stdout: expect.stringMatching(/^FAILED: current 'second'/), stderr: '' });
    const version = (JSON.parse((await kvctl(['--json', 'get', 'c'])).stdout) as { version: number }).version;
    expect((await kvctl(['cas', 'c', '--version', String(version + 100), 'nope'])).code).toBe(1);
    expect((await kvctl(['cas', 'c', '--version', String(version), 'third'])).code).toBe(0);
    expect((await kvctl(['get', 'c'])).stdout).toBe('third\n');
    expect((await kvctl(['cas', 'c', 'third', '--delete'])).code).toBe(0);
    expect((await kvctl(['get', 'c'])).code).toBe(1);
  }, 60_000);

  describe('usage errors exit 2 with a message', () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['no command', [], /Usage|command/i],
      ['an unknown command', ['frobnicate'], /unknown command/],
      ['get without a key', ['get'], /missing required argument/],
      ['put without a value', ['put', 'k'], /missing VALUE/],
      ['a --timeout-ms that is not a number', ['--timeout-ms', 'abc', 'get', 'k'], /--timeout-ms/],
      ['a negative --limit', ['scan', '--limit', '-1'], /--limit/],
      ['cas with --absent and --version', ['cas', 'k', '--absent', '--version', '1', 'v'], /exclude/],
      ['cas without a new value', ['cas', 'k', 'old'], /NEW/],
      ['transfer-leader with a range that is not a number', ['transfer-leader', 'one', '1'], /RANGE/],
      ['range add-learner without --address', ['range', 'add-learner', '1', '9'], /--address/],
    ];
    test.each(cases)('%s', async (_name, args, message) => {
      const r = await kvctl(args);
      expect(outcome(r)).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(message) });
    }, 30_000);
  });

  clusterTest('an unreachable cluster exits 3, within the --timeout-ms', async () => {
    const nowhere = [`127.0.0.1:${await closedPort()}`];
    for (const args of [['get', 'k'], ['put', 'k', 'v'], ['delete', 'k'], ['scan'], ['cas', 'k', '--absent', 'v'], ['status']]) {
      const started = Date.now();
      const r = await kvctl(['--timeout-ms', '500', ...args], { endpoints: nowhere });
      const elapsedMs = Date.now() - started;
      expect({ args, code: r.code, stdout: r.stdout, hasMessage: r.stderr.length > 0 || r.stdout.includes('unreachable') }).toEqual({
        args,
        code: 3,
        stdout: args[0] === 'status' ? expect.stringMatching(/unreachable/) : '',
        hasMessage: true,
      });
      // Node startup plus the 500 ms deadline, with room for a loaded machine.
      expect(elapsedMs).toBeLessThan(10_000);
    }
  }, 90_000);

  clusterTest('status shows the range, its leader and its replicas', async () => {
    const leader = await c.waitForLeader();
    const r = await kvctl(['status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^cluster rangekv$/m);
    expect(r.stdout).toMatch(/^RANGE\s+LEADER\s+TERM\s+COMMIT\s+APPLIED\s+REPLICAS$/m);
    expect(r.stdout).toMatch(new RegExp(`^1\\s+${leader}\\s+\\d+\\s+\\d+\\s+\\d+\\s+.*1\\(voter.*2\\(voter.*3\\(voter`, 'm'));
  }, 60_000);

  clusterTest('transfer-leader moves the leadership to the named voter', async () => {
    const leader = await c.waitForLeader();
    const target = [1, 2, 3].find((id) => id !== leader) as number;
    expect(outcome(await kvctl(['transfer-leader', '1', String(target)]))).toEqual({ code: 0, stdout: expect.stringMatching(/^range 1: replicas /), stderr: '' });
    await waitFor(`node ${target} to lead`, async () => (await c.leader()) === target);
    expect((await kvctl(['put', 'after-transfer', 'ok'])).code).toBe(0);
    // A node that is not a voter of the range cannot take it: refused, not retried until the deadline.
    expect(outcome(await kvctl(['transfer-leader', '1', '9']))).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(/not a voter/) });
  }, 60_000);

  clusterTest('a 4th node started with --join: range add-learner, catch-up, range promote, reads and writes through it alone', async () => {
    expect((await kvctl(['put', 'before-4', 'written before node 4 existed'])).code).toBe(0);
    const n4 = await c.addNode(4);
    const viaFour = { endpoints: [n4.address] };

    const add = await kvctl(['range', 'add-learner', '1', '4', '--address', n4.address]);
    expect(outcome(add)).toEqual({ code: 0, stdout: expect.stringMatching(/4\(learner\)/), stderr: '' });
    // The learner catches up and serves its own (STALE) reads.
    await waitFor('node 4 to serve before-4 (STALE)', async () => (await kvctl(['get', '--stale', 'before-4'], viaFour)).stdout === 'written before node 4 existed\n', 30_000, 200);

    const promote = await kvctl(['range', 'promote', '1', '4']);
    expect(outcome(promote)).toEqual({ code: 0, stdout: expect.stringMatching(/4\(voter\)/), stderr: '' });
    const status = JSON.parse((await kvctl(['--json', 'status'], viaFour)).stdout) as Array<{ status: { ranges: Array<{ descriptor: { replicas: Array<{ nodeId: number; role: number }> } }> } }>;
    expect(status[0]!.status.ranges[0]!.descriptor.replicas).toEqual(expect.arrayContaining([{ nodeId: 4, role: 1 }]));

    // Through node 4 alone: a linearizable read, and a write (led to the leader).
    expect(outcome(await kvctl(['get', 'before-4'], viaFour))).toEqual({ code: 0, stdout: 'written before node 4 existed\n', stderr: '' });
    expect((await kvctl(['put', 'via-4', 'through the new voter'], viaFour)).code).toBe(0);
    expect((await kvctl(['get', 'via-4'], viaFour)).stdout).toBe('through the new voter\n');
    expect((await kvctl(['get', 'via-4'])).stdout).toBe('through the new voter\n');
  }, 90_000);
});
