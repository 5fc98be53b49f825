import { mkdtempSync, rmSync, writeFileSync, readdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { EntryType, Entry } from '../../src/raft';
import {
  CorruptDataError,
  DataDirMismatchError,
  DataDirMissingError,
  Engine,
  RaftLogStorage,
  WriteBatch,
} from '../../src/storage';
import { logKey } from '../../src/storage/keys';
import { runStorageConformance } from '../raft/storage-conformance';

const dirs: string[] = [];
function freshDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'rangekv-storage-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function ent(index: number, term: number, text = `e${index}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

runStorageConformance('RaftLogStorage (LevelDB)', async () => {
  const engine = await Engine.open({ dir: freshDir(), nodeId: 1, clusterId: 'c1' });
  const storage = await RaftLogStorage.load(engine, 7);
  return { storage, close: () => engine.close() };
});

describe('RaftLogStorage durability', () => {
  it('reloads exactly what was written: log, hard state, snapshot, compaction point, apply state', async () => {
    const dir = freshDir();
    let engine = await Engine.open({ dir, nodeId: 1, clusterId: 'c1' });
    let s = await RaftLogStorage.load(engine, 3, { voters: [1, 2, 3], learners: [] });
    await s.append([1, 2, 3, 4, 5, 6].map((i) => ent(i, i < 4 ? 1 : 2)));
    await s.append([ent(5, 3, 'overwritten'), ent(6, 3)]);
    await s.setHardState({ term: 3, vote: 2, commit: 5 });
    const b = new WriteBatch();
    s.stageApplyState(b, 4, { voters: [1, 2, 3], learners: [4] });
    await engine.write(b);
    await s.createSnapshot(4, { voters: [1, 2, 3], learners: [4] }, new Uint8Array([9, 9]));
    await s.compact(3);
    await engine.close();

    engine = await Engine.open({ dir, nodeId: 1 });
    s = await RaftLogStorage.load(engine, 3);
    expect(s.firstIndex()).toBe(4);
    expect(s.lastIndex()).toBe(6);
    expect(s.term(3)).toBe(1);
    expect(s.entries(4, 7, Infinity).map((e) => [e.index, e.term, new TextDecoder().decode(e.data)])).toEqual([
      [4, 2, 'e4'],
      [5, 3, 'overwritten'],
      [6, 3, 'e6'],
    ]);
    expect(s.initialState()).toEqual({ hardState: { term: 3, vote: 2, commit: 5 }, confState: { voters: [1, 2, 3], learners: [4] } });
    expect(s.snapshot().metadata).toEqual({ index: 4, term: 2, confState: { voters: [1, 2, 3], learners: [4] } });
    expect(Array.from(s.snapshot().data)).toEqual([9, 9]);
    expect(s.appliedState().applied).toBe(4);
    await engine.close();
  });

  it('keeps groups apart in one database', async () => {
    const dir = freshDir();
    const engine = await Engine.open({ dir, nodeId: 1, clusterId: 'c1' });
    const a = await RaftLogStorage.load(engine, 1);
    const b = await RaftLogStorage.load(engine, 2);
    await a.append([ent(1, 1), ent(2, 1)]);
    await b.append([ent(1, 5)]);
    const a2 = await RaftLogStorage.load(engine, 1);
    const b2 = await RaftLogStorage.load(engine, 2);
    expect([a2.lastIndex(), b2.lastIndex(), b2.term(1)]).toEqual([2, 1, 5]);
    await engine.close();
  });

  it('after receiving a snapshot, reloads with the log starting right after it', async () => {
    const dir = freshDir();
    let engine = await Engine.open({ dir, nodeId: 1, clusterId: 'c1' });
    const s = await RaftLogStorage.load(engine, 1);
    await s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    await s.applySnapshot({ metadata: { index: 10, term: 4, confState: { voters: [1], learners: [] } }, data: new Uint8Array([1]) });
    await s.append([ent(11, 4)]);
    await engine.close();
    engine = await Engine.open({ dir, nodeId: 1 });
    const r = await RaftLogStorage.load(engine, 1);
    expect([r.firstIndex(), r.lastIndex(), r.term(10), r.term(11), r.appliedState().applied]).toEqual([11, 11, 4, 4, 10]);
    await engine.close();
  });
});

describe('data directory checks: kvd refuses to start instead of losing data', () => {
  it('refuses an uninitialized directory without a cluster id', async () => {
    await expect(Engine.open({ dir: join(freshDir(), 'absent'), nodeId: 1 })).rejects.toBeInstanceOf(DataDirMissingError);
  });

  it('refuses another node id or cluster id', async () => {
    const dir = freshDir();
    await (await Engine.open({ dir, nodeId: 1, clusterId: 'c1' })).close();
    await expect(Engine.open({ dir, nodeId: 2 })).rejects.toThrow(DataDirMismatchError);
    await expect(Engine.open({ dir, nodeId: 1, clusterId: 'other' })).rejects.toThrow(/cluster id is c1, expected other/);
  });

  it('refuses a directory whose LevelDB files are gone', async () => {
    const dir = freshDir();
    await (await Engine.open({ dir, nodeId: 1, clusterId: 'c1' })).close();
    unlinkSync(join(dir, 'CURRENT'));
    await expect(Engine.open({ dir, nodeId: 1 })).rejects.toBeInstanceOf(CorruptDataError);
  });

  it('refuses a non-empty directory that is not a node database', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    await expect(Engine.open({ dir, nodeId: 1, clusterId: 'c1' })).rejects.toBeInstanceOf(CorruptDataError);
    expect(readdirSync(dir)).toContain('notes.txt');
  });

  it('detects a corrupt log entry (checksum) and a hole in the log', async () => {
    const dir = freshDir();
    let engine = await Engine.open({ dir, nodeId: 1, clusterId: 'c1' });
    const s = await RaftLogStorage.load(engine, 1);
    await s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    await engine.close();

    // Flip a byte of entry 2.
    let db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const v = (await db.get(logKey(1, 2))) as Buffer;
    v[v.length - 1] = (v[v.length - 1] as number) ^ 0xff;
    await db.put(logKey(1, 2), v);
    await db.close();
    engine = await Engine.open({ dir, nodeId: 1 });
    await expect(RaftLogStorage.load(engine, 1)).rejects.toThrow(/group 1 raft log entry 2: checksum mismatch/);
    await engine.close();

    // Remove entry 2 altogether.
    db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.del(logKey(1, 2));
    await db.close();
    engine = await Engine.open({ dir, nodeId: 1 });
    await expect(RaftLogStorage.load(engine, 1)).rejects.toThrow(/entry 2 is missing/);
    await engine.close();
  });

  it('detects a hard state that commits past the end of the log', async () => {
    const dir = freshDir();
    let engine = await Engine.open({ dir, nodeId: 1, clusterId: 'c1' });
    const s = await RaftLogStorage.load(engine, 1);
    await s.append([ent(1, 1)]);
    await s.setHardState({ term: 1, vote: 1, commit: 1 });
    await engine.close();
    const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.del(logKey(1, 1));
    await db.close();
    engine = await Engine.open({ dir, nodeId: 1 });
    await expect(RaftLogStorage.load(engine, 1)).rejects.toThrow(/commit 1 is beyond the last log index 0/);
    await engine.close();
  });
});
