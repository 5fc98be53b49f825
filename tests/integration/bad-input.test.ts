// kvd refuses what it must not run with: a damaged or foreign data directory (it exits non-zero,
// says what is wrong on stderr, and leaves the directory as it found it, so an operator can still
// inspect or repair it), and command-line mistakes (exit code 2 and a message naming the flag).

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { KvClient } from '../../src/client';
import { KVD_BIN, ProcessCluster, ROOT, cleanupClusters, freePort, run, waitFor, withLogs } from './process-cluster';

/**
 * What the directory holds, as LevelDB reads it: a digest of every key and value, read from a
 * copy (opening a LevelDB directory may rewrite it, e.g. fold its write-ahead log into a table,
 * which changes files but not contents). Unreadable directories give the error instead.
 */
async function contents(dir: string): Promise<string> {
  const copy = mkdtempSync(join(tmpdir(), 'rangekv-it-contents-'));
  try {
    cpSync(dir, copy, { recursive: true });
    const db = new Level<Buffer, Buffer>(copy, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
    try {
      await db.open();
    } catch (err) {
      return `unreadable: ${String(((err as { cause?: Error }).cause ?? (err as Error)).message).replace(copy, '<dir>')}`;
    }
    const h = createHash('sha256');
    let n = 0;
    try {
      for await (const [k, v] of db.iterator()) {
        h.update(`${k.length}:`).update(k).update(`${v.length}:`).update(v);
        n++;
      }
    } catch (err) {
      return `unreadable after ${n} records: ${(err as Error).message}`;
    } finally {
      await db.close();
    }
    return `${n} records, sha256 ${h.digest('hex').slice(0, 16)}`;
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

function sha256(file: string): string {
  return existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16) : '<deleted>';
}

/** Byte offsets where `needle` occurs in `hay`. */
function occurrences(hay: Buffer, needle: Buffer): number[] {
  const out: number[] = [];
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) out.push(at);
  return out;
}

function filesEnding(dir: string, suffix: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith(suffix)).map((n) => join(dir, n));
}

/** Inverts `count` bytes of `file` from `offset`. */
function flipBytes(file: string, offset: number, count: number): void {
  const b = readFileSync(file);
  if (offset < 0 || offset + count > b.length) throw new RangeError(`cannot flip [${offset}, ${offset + count}) of ${file} (${b.length} bytes)`);
  for (let i = offset; i < offset + count; i++) b[i] = (b[i] as number) ^ 0xff;
  writeFileSync(file, b);
}

/**
 * Flips bytes in the middle of occurrence `which` ('first' | 'last') of `needle` among the files
 * of `dir` ending in `suffix`; throws unless the needle is found exactly `expectCount` times.
 */
function flipInside(dir: string, suffix: string, needle: Buffer, which: 'first' | 'last', expectCount: number): string {
  const hits: Array<{ file: string; at: number }> = [];
  for (const file of filesEnding(dir, suffix)) for (const at of occurrences(readFileSync(file), needle)) hits.push({ file, at });
  if (hits.length !== expectCount) {
    throw new Error(`test setup: expected the marker ${expectCount} times in ${dir}/*${suffix}, found ${hits.length} (${readdirSync(dir).join(' ')})`);
  }
  const hit = (which === 'first' ? hits[0] : hits[hits.length - 1]) as { file: string; at: number };
  flipBytes(hit.file, hit.at + Math.floor(needle.length / 2), 4);
  return hit.file;
}

interface Fixture {
  root: string;
  /** A node's directory right after a graceful stop: everything still in LevelDB's write-ahead log. */
  walDir: string;
  /** The same node after one more start and stop: LevelDB moved the data into a table (.ldb). */
  tableDir: string;
  markerKey: string;
  markerValue: Buffer;
  /** 32 random bytes from the middle of the marker value: found only where the value is stored. */
  needle: Buffer;
}

let fx: Fixture;

/** A copy of a fixture directory for one case. */
function copyOf(dir: string, name: string): string {
  const to = join(fx.root, `case-${name}-${Math.random().toString(36).slice(2, 8)}`);
  cpSync(dir, to, { recursive: true });
  return to;
}

async function kvdArgs(dataDir: string, id = 1, extra: string[] = []): Promise<string[]> {
  const address = `127.0.0.1:${await freePort()}`;
  return ['--id', String(id), '--listen', address, '--data', dataDir, '--initial-cluster', `${id}=${address}`, '--tick-ms', '20', ...extra];
}

/**
 * Evidence for a report when kvd started on a directory it should have refused: starts it again
 * (on a copy) and reads the marker key.
 */
async function whatItServes(dataDir: string): Promise<string> {
  const copy = copyOf(dataDir, 'evidence');
  const args = await kvdArgs(copy);
  const child = spawn(process.execPath, [KVD_BIN, ...args], { cwd: ROOT, stdio: 'ignore' });
  const client = new KvClient({ endpoints: [args[3] as string], deadlineMs: 3_000 });
  try {
    const got = await waitFor('the restarted copy to answer', async () => client.get(fx.markerKey), 15_000, 200);
    if (!got.found) return `it serves ${fx.markerKey} as absent`;
    return got.value.equals(fx.markerValue)
      ? `it serves ${fx.markerKey} with its correct value`
      : `it serves ${fx.markerKey} with a WRONG value (${got.value.length} bytes, ${countDiff(got.value, fx.markerValue)} bytes differ from what was written)`;
  } catch (err) {
    return `reading ${fx.markerKey} from it failed: ${(err as Error).message}`;
  } finally {
    client.close();
    child.kill('SIGKILL');
  }
}

function countDiff(a: Buffer, b: Buffer): number {
  let n = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) n++;
  return n;
}

beforeAll(() => withLogs(makeFixture), 60_000);

async function makeFixture(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'rangekv-it-badinput-'));
  const c = await ProcessCluster.start({ nodes: 1, name: 'badinput-fixture' });
  const client = new KvClient({ endpoints: c.endpoints() });
  const markerValue = randomBytes(1024);
  try {
    for (let i = 0; i < 50; i++) await client.put(`before/${i}`, `value ${i}`);
    await client.put('marker', markerValue);
    // Enough after the marker that the raft log continues well past it (past LevelDB's 32 KiB log blocks).
    for (let i = 0; i < 300; i++) await client.put(`after/${i}`, `value ${i} ${'.'.repeat(100)}`);
  } finally {
    client.close();
  }
  await c.kill(1, 'SIGTERM');
  const walDir = join(root, 'wal');
  cpSync(c.node(1).dataDir, walDir, { recursive: true });
  await c.restart(1);
  await c.waitForLeader();
  await c.kill(1, 'SIGTERM');
  const tableDir = join(root, 'table');
  cpSync(c.node(1).dataDir, tableDir, { recursive: true });
  await c.destroy();
  fx = { root, walDir, tableDir, markerKey: 'marker', markerValue, needle: markerValue.subarray(496, 528) };
}

afterAll(async () => {
  await cleanupClusters();
  if (fx && process.env.KV_IT_KEEP !== '1') rmSync(fx.root, { recursive: true, force: true });
});

describe('kvd refuses a damaged or foreign data directory, and leaves it as it was', () => {
  interface Case {
    name: string;
    from: () => string;
    /** Damages a copy of the directory; returns the file it damaged, if any. */
    damage: (dir: string) => string | undefined;
    id?: number;
    extra?: string[];
    stderr: RegExp;
  }
  const cases: Case[] = [
    {
      name: 'a flipped byte in a raft log entry in a LevelDB table (.ldb)',
      from: () => fx.tableDir,
      // Key order puts the raft log (prefix 0x02) before user data (0x03): the first copy of the
      // value is inside the raft log entry that wrote it.
      damage: (dir) => flipInside(dir, '.ldb', fx.needle, 'first', 2),
      stderr: /corrupt/i,
    },
    {
      name: 'a flipped byte in a user value in a LevelDB table (.ldb)',
      from: () => fx.tableDir,
      damage: (dir) => flipInside(dir, '.ldb', fx.needle, 'last', 2),
      stderr: /corrupt/i,
    },
    {
      name: 'a flipped byte in LevelDB\'s write-ahead log (.log)',
      from: () => fx.walDir,
      damage: (dir) => flipInside(dir, '.log', fx.needle, 'first', 2),
      stderr: /corrupt/i,
    },
    {
      name: 'flipped bytes in the MANIFEST',
      from: () => fx.tableDir,
      damage: (dir) => {
        const manifest = filesEnding(dir, '').find((f) => /MANIFEST-\d+$/.test(f)) as string;
        flipBytes(manifest, 10, 8);
        return manifest;
      },
      stderr: /corrupt/i,
    },
    {
      name: 'CURRENT deleted',
      from: () => fx.tableDir,
      damage: (dir) => {
        rmSync(join(dir, 'CURRENT'));
        return undefined;
      },
      stderr: /corrupt|CURRENT|does not exist/i,
    },
    {
      name: 'the directory of node 1 started as node 2',
      from: () => fx.tableDir,
      damage: () => undefined,
      id: 2,
      stderr: /node id is 1, expected 2/,
    },
    {
      name: 'the directory of cluster "rangekv" started with --cluster-id other',
      from: () => fx.tableDir,
      damage: () => undefined,
      extra: ['--cluster-id', 'other'],
      stderr: /cluster id is rangekv, expected other/,
    },
  ];

  test.each(cases)('$name', async (k) => {
    const dir = copyOf(k.from(), k.name.replace(/\W+/g, '-').slice(0, 40));
    const damaged = k.damage(dir);
    const before = { contents: await contents(dir), damagedFile: damaged ? sha256(damaged) : 'none' };
    const r = await run(KVD_BIN, await kvdArgs(dir, k.id ?? 1, k.extra ?? []), { timeoutMs: 20_000, stopWhenStdout: '"msg":"kvd started"' });
    if (r.stoppedEarly) {
      throw new Error(`kvd started and served on a data directory with ${k.name}; ${await whatItServes(dir)}.\nkvd stdout:\n${r.stdout.slice(-1500)}`);
    }
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 1, signal: null });
    expect(r.stderr).toMatch(k.stderr);
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    // Intact: the same contents, and the damaged file still there as it was (to inspect or repair).
    const after = { contents: await contents(dir), damagedFile: damaged ? sha256(damaged) : 'none' };
    expect({ ...after, files: readdirSync(dir).join(' ') }).toEqual({ ...before, files: expect.any(String) });
  }, 40_000);
});

describe('kvd command-line mistakes: exit code 2 and a message naming the flag', () => {
  let caseNo = 0;
  let current = '';
  /** A data directory path of this case, which a usage error must not create. */
  const dataDir = (): string => current;
  const usage: Array<{ name: string; args: () => string[]; stderr: RegExp }> = [
    { name: 'missing --data', args: () => ['--id', '1', '--listen', '127.0.0.1:20999', '--initial-cluster', '1=127.0.0.1:20999'], stderr: /--data/ },
    { name: 'missing --id', args: () => ['--data', dataDir(), '--initial-cluster', '1=127.0.0.1:20999'], stderr: /--id/ },
    { name: 'a --listen that is not HOST:PORT', args: () => ['--id', '1', '--listen', 'nonsense', '--data', dataDir(), '--initial-cluster', '1=127.0.0.1:20999'], stderr: /--listen/ },
    { name: 'a --listen port above 65535', args: () => ['--id', '1', '--listen', '127.0.0.1:99999', '--data', dataDir(), '--initial-cluster', '1=127.0.0.1:99999'], stderr: /--listen|99999/ },
    { name: '--tick-ms 0', args: () => ['--id', '1', '--data', dataDir(), '--initial-cluster', '1=127.0.0.1:20999', '--tick-ms', '0'], stderr: /--tick-ms/ },
    { name: 'neither --initial-cluster nor --join', args: () => ['--id', '1', '--data', dataDir()], stderr: /--initial-cluster.*--join/ },
    { name: '--initial-cluster without this node', args: () => ['--id', '4', '--data', dataDir(), '--initial-cluster', '1=127.0.0.1:20999'], stderr: /--initial-cluster/ },
    { name: 'an unknown --log-level', args: () => ['--id', '1', '--data', dataDir(), '--initial-cluster', '1=127.0.0.1:20999', '--log-level', 'loud'], stderr: /--log-level/ },
  ];

  test.each(usage)('$name', async (u) => {
    current = join(fx.root, `usage-${++caseNo}-never-created`);
    const r = await run(KVD_BIN, u.args(), { timeoutMs: 20_000, stopWhenStdout: '"msg":"kvd started"' });
    // A usage error exits 2 with a message, and leaves nothing behind (no data directory).
    expect({ stoppedEarly: r.stoppedEarly, code: r.code, stderr: r.stderr, dataDirCreated: existsSync(current) }).toEqual({
      stoppedEarly: false,
      code: 2,
      stderr: expect.stringMatching(u.stderr),
      dataDirCreated: false,
    });
  }, 30_000);

  test('kvd --help lists every option, with its KV_* variable', async () => {
    const r = await run(KVD_BIN, ['--help'], { timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    // The options kvd defines (read from its source) and the ones the documentation promises.
    const source = readFileSync(join(ROOT, 'src', 'cli', 'kvd.ts'), 'utf8');
    const defined = [...source.matchAll(/new Option\('(--[a-z-]+)/g)].map((m) => m[1] as string);
    const documented = ['--id', '--listen', '--data', '--initial-cluster', '--join', '--tick-ms', '--election-ticks', '--snapshot-entries', '--log-level'];
    expect(defined.length).toBeGreaterThan(documented.length);
    const missing = [...new Set([...documented, ...defined])].filter((flag) => !new RegExp(`(^|\\s)${flag}[\\s,]`, 'm').test(r.stdout));
    expect(missing).toEqual([]);
    const missingEnv = defined
      .map((flag) => `KV_${flag.slice(2).replace(/-/g, '_').toUpperCase()}`)
      .filter((env) => !r.stdout.replace(/\s+/g, ' ').includes(env));
    expect(missingEnv).toEqual([]);
  }, 30_000);
});
