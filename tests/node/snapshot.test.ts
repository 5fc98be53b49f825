// Streamed range snapshots: payload from a LevelDB view, staged chunk by chunk, installed
// all-or-nothing (a crash mid-install is finished at the next start).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, RaftLogStorage, WriteBatch } from '../../src/storage';
import { dataKey, sessionKey } from '../../src/storage/keys';
import { sealRecord } from '../../src/storage/codec';
import { StagingSink, installStagedSnapshot, recoverSnapshotInstall, snapshotPayload } from '../../src/node/snapshot';
import { RangeBounds, encodeValue } from '../../src/node/kv-state-machine';
import { Snapshot, bootstrapState } from '../../src/raft';

const FULL: RangeBounds = { start: Buffer.alloc(0), end: Buffer.alloc(0), epochVersion: 1, confVersion: 0 };
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
async function engine(): Promise<Engine> {
  const dir = mkdtempSync(join(tmpdir(), 'rangekv-snap-'));
  dirs.push(dir);
  return Engine.open({ dir, nodeId: 1, clusterId: 'c' });
}

async function fill(e: Engine, n: number, prefix: string, valueBytes: number): Promise<void> {
  let b = new WriteBatch();
  for (let i = 0; i < n; i++) {
    b.put(dataKey(Buffer.from(`${prefix}${String(i).padStart(6, '0')}`)), encodeValue(Buffer.alloc(valueBytes, i % 251), i + 1));
    if (b.size >= 1000) {
      await e.write(b);
      b = new WriteBatch();
    }
  }
  b.put(sessionKey(1, 77), sealRecord(Buffer.alloc(16, 1)));
  await e.write(b);
}

async function liveKeys(e: Engine): Promise<string[]> {
  const out: string[] = [];
  for await (const k of e.db.keys({ gte: Buffer.from([0x03]), lt: Buffer.from([0x05]) })) out.push(k.toString('hex'));
  return out;
}

/** Streams `src`'s range 1 into a staging sink of `dst`, returning the number of chunks. */
async function transfer(src: Engine, dst: Engine, snapIndex: number, chunkBytes: number): Promise<number> {
  const view = src.db.snapshot();
  const sink = new StagingSink(dst, 1, snapIndex);
  let chunks = 0;
  for await (const chunk of snapshotPayload(src, view, 1, FULL, chunkBytes)) {
    expect(chunk.length).toBeLessThan(chunkBytes + 2048); // bounded: one chunk (plus one record) at a time
    await sink.write(chunk);
    chunks++;
  }
  await sink.finish();
  await view.close();
  return chunks;
}

function snap(index: number): Snapshot {
  return { metadata: { index, term: 3, confState: { voters: [1, 2, 3], learners: [] } }, data: Buffer.from('{}') };
}

describe('streamed range snapshots', () => {
  it('a payload streams in bounded chunks and installs exactly the source state, replacing the old', async () => {
    const src = await engine();
    const dst = await engine();
    await fill(src, 3000, 'k', 300);
    await fill(dst, 500, 'old', 10); // stale data that must disappear
    const chunks = await transfer(src, dst, 50, 64 * 1024);
    expect(chunks).toBeGreaterThan(10);
    const installed = await installStagedSnapshot(dst, 1, snap(50), FULL, FULL);
    expect(installed.sessionRecords).toHaveLength(1);
    expect(await liveKeys(dst)).toEqual(await liveKeys(src));
    await src.close();
    await dst.close();
  });

  it('refuses to install a payload that did not fully arrive', async () => {
    const src = await engine();
    const dst = await engine();
    await fill(src, 10, 'k', 10);
    const sink = new StagingSink(dst, 1, 9);
    const view = src.db.snapshot();
    for await (const chunk of snapshotPayload(src, view, 1, FULL, 1024)) await sink.write(chunk);
    await view.close();
    // no finish(): the transfer broke
    await expect(installStagedSnapshot(dst, 1, snap(9), FULL, FULL)).rejects.toThrow(/no complete payload staged for the snapshot at index 9/);
    await src.close();
    await dst.close();
  });

  it('a crash in the middle of an install is finished at the next start: all or nothing', async () => {
    const src = await engine();
    const dst = await engine();
    await fill(src, 2000, 'new', 50);
    // The destination replica: bootstrapped, some applied data of its own.
    const storage = await RaftLogStorage.load(dst, 1);
    const boot = bootstrapState([1, 2, 3]);
    const b = new WriteBatch();
    storage.stageAppend(b, boot.entries);
    storage.stageHardState(b, boot.hardState);
    await dst.write(b);
    await fill(dst, 300, 'old', 10);
    await transfer(src, dst, 100, 16 * 1024);
    // Install runs (marker written, data replaced) but the process dies before the final batch.
    await installStagedSnapshot(dst, 1, snap(100), FULL, FULL);
    const dir = dst.dir;
    await dst.close();

    const again = await Engine.open({ dir, nodeId: 1 });
    const recovered = await recoverSnapshotInstall(again, 1, FULL, () => FULL);
    expect(recovered?.metadata.index).toBe(100);
    expect(await liveKeys(again)).toEqual(await liveKeys(src));
    const reloaded = await RaftLogStorage.load(again, 1);
    expect(reloaded.snapshot().metadata.index).toBe(100);
    expect(reloaded.appliedState().applied).toBe(100);
    expect(reloaded.initialState().hardState.commit).toBeGreaterThanOrEqual(100);
    expect(reloaded.initialState().hardState.term).toBeGreaterThanOrEqual(3);
    // Nothing staged or marked is left behind; a second recovery is a no-op.
    expect(await recoverSnapshotInstall(again, 1, FULL, () => FULL)).toBeUndefined();
    let leftovers = 0;
    for await (const _k of again.db.keys({ gte: Buffer.from([0x07]), lt: Buffer.from([0x09]) })) leftovers++;
    expect(leftovers).toBe(0);
    await src.close();
    await again.close();
  });
});

describe('stored values are sealed', () => {
  it('a flipped bit in a stored value is reported as corruption, never returned', async () => {
    const { decodeValue } = await import('../../src/node/kv-state-machine');
    const raw = encodeValue(Buffer.from('hello world'), 7);
    expect(decodeValue(raw).value.toString()).toBe('hello world');
    const bad = Buffer.from(raw);
    bad[bad.length - 2] = (bad[bad.length - 2] as number) ^ 0x10;
    expect(() => decodeValue(bad, Buffer.from('k'))).toThrow(/corrupt data directory: the value of key 6b: checksum mismatch/);
  });
});
