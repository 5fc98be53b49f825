import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { CorruptDataError, Engine } from '../../src/storage';
import { checkWalFiles, crc32c } from '../../src/storage/wal-check';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A LevelDB directory whose data is still in the write-ahead log (never compacted). */
async function dirWithLog(records: number): Promise<{ dir: string; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rangekv-wal-'));
  dirs.push(dir);
  const db = new Level<string, string>(dir);
  await db.open();
  for (let i = 0; i < records; i++) await db.put(`key-${i}`, `value-${i}-${'x'.repeat(200)}`, { sync: true });
  await db.close();
  const log = readdirSync(dir).find((f) => f.endsWith('.log')) as string;
  return { dir, log: join(dir, log) };
}

describe('write-ahead log check', () => {
  it('computes crc32c (Castagnoli) as LevelDB does', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('accepts an intact log', async () => {
    const { dir } = await dirWithLog(300);
    const [r] = checkWalFiles(dir);
    expect(r?.records).toBeGreaterThanOrEqual(300);
    expect(r?.tornTailAt).toBeUndefined();
  });

  it('refuses a log with a flipped byte followed by intact records, naming file and offset', async () => {
    const { dir, log } = await dirWithLog(300);
    const buf = readFileSync(log);
    const at = buf.indexOf('value-100-');
    buf[at + 3] = (buf[at + 3] as number) ^ 0x01;
    writeFileSync(log, buf);
    expect(() => checkWalFiles(dir)).toThrow(CorruptDataError);
    expect(() => checkWalFiles(dir)).toThrow(/write-ahead log \d+\.log: checksum mismatch at byte \d+, followed by intact records/);
  });

  it('tolerates a record torn at the end of the log (a crash mid-write, never acknowledged)', async () => {
    const { dir, log } = await dirWithLog(50);
    const size = readFileSync(log).length;
    truncateSync(log, size - 40);
    const [r] = checkWalFiles(dir);
    expect(r?.tornTailAt).toBeDefined();
  });

  it('makes the engine refuse to open, before LevelDB touches the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rangekv-wal-engine-'));
    dirs.push(dir);
    const e = await Engine.open({ dir, nodeId: 1, clusterId: 'c' });
    for (let i = 0; i < 200; i++) await e.db.put(Buffer.from(`k${i}`), Buffer.alloc(300, i), { sync: true });
    await e.close();
    const log = join(dir, readdirSync(dir).find((f) => f.endsWith('.log')) as string);
    const buf = readFileSync(log);
    buf[Math.floor(buf.length / 2)] = (buf[Math.floor(buf.length / 2)] as number) ^ 0xff;
    writeFileSync(log, buf);
    const before = readFileSync(log);
    await expect(Engine.open({ dir, nodeId: 1 })).rejects.toThrow(/corrupt data directory: LevelDB write-ahead log/);
    expect(readFileSync(log).equals(before)).toBe(true); // the evidence is intact
  });
});

describe('crc32', () => {
  it('the native and the JavaScript implementations agree (values stored by either read back with the other)', async () => {
    const { crc32, crc32Js } = await import('../../src/storage/crc32');
    for (const n of [0, 1, 7, 255, 4096]) {
      const data = Buffer.alloc(n, 0);
      for (let i = 0; i < n; i++) data[i] = (i * 131 + 7) & 0xff;
      expect(crc32(data)).toBe(crc32Js(data));
    }
    expect(crc32Js(Buffer.from('123456789'))).toBe(0xcbf43926);
  });
});
