// The raft `Storage` of one group, persisted in the node's LevelDB. The live log (from the
// compaction point to the last index) is mirrored in memory so the core's synchronous reads never
// touch the disk; every change is first staged into a WriteBatch (so one ready-loop turn writes
// all groups with one fsync) and applied to the mirror at the same time.
//
// A write failure is fatal for the process: after a failed fsync the mirror may be ahead of the
// disk, and the only safe recovery is to restart from what the disk holds.

import {
  ConfState,
  Entry,
  HardState,
  InitialState,
  MemoryStorage,
  Snapshot,
  UnavailableError,
  WritableStorage,
  EMPTY_HARD_STATE,
} from '../raft';
import {
  ApplyState,
  decodeApplyState,
  decodeEntry,
  decodeHardState,
  decodeLogPosition,
  decodeSnapshot,
  encodeApplyState,
  encodeEntry,
  encodeHardState,
  encodeLogPosition,
  encodeSnapshot,
} from './codec';
import { Engine, WriteBatch } from './engine';
import { CorruptDataError } from './errors';
import {
  applyStateKey,
  compactedKey,
  hardStateKey,
  logIndexOfKey,
  logKey,
  logKeyRange,
  snapshotKey,
} from './keys';

export class RaftLogStorage implements WritableStorage {
  private constructor(
    private readonly engine: Engine,
    readonly groupId: number,
    private mirror: MemoryStorage,
    private applyState: ApplyState,
  ) {}

  /**
   * Loads a group's persisted raft state, checking it for consistency. `initialConfState` is used
   * only when the group has never stored anything (a new group being bootstrapped or joined).
   */
  static async load(engine: Engine, groupId: number, initialConfState?: ConfState): Promise<RaftLogStorage> {
    const db = engine.db;
    const g = `group ${groupId}`;
    const hsRaw = await db.get(hardStateKey(groupId));
    const asRaw = await db.get(applyStateKey(groupId));
    const snapRaw = await db.get(snapshotKey(groupId));
    const compRaw = await db.get(compactedKey(groupId));

    const hardState = hsRaw ? decodeHardState(`${g} hard state`, hsRaw) : EMPTY_HARD_STATE;
    const emptyConf: ConfState = initialConfState ?? { voters: [], learners: [] };
    const snapshot: Snapshot = snapRaw
      ? decodeSnapshot(`${g} snapshot`, snapRaw)
      : { metadata: { index: 0, term: 0, confState: emptyConf }, data: new Uint8Array(0) };
    const compacted = compRaw ? decodeLogPosition(`${g} compaction point`, compRaw) : { index: 0, term: 0 };
    const applyState: ApplyState = asRaw
      ? decodeApplyState(`${g} apply state`, asRaw)
      : { applied: snapshot.metadata.index, confState: snapshot.metadata.index > 0 ? snapshot.metadata.confState : emptyConf };

    if (compacted.index > snapshot.metadata.index) {
      throw new CorruptDataError(g, `log compacted to ${compacted.index}, past the snapshot at ${snapshot.metadata.index}`);
    }
    const entries: Entry[] = [];
    let expected = compacted.index + 1;
    for await (const [key, value] of db.iterator(logKeyRange(groupId))) {
      const index = logIndexOfKey(key);
      if (index !== expected) {
        throw new CorruptDataError(`${g} raft log`, `entry ${expected} is missing (found ${index} next)`);
      }
      entries.push(decodeEntry(`${g} raft log entry ${index}`, index, value));
      expected++;
    }
    const lastIndex = expected - 1;
    if (snapshot.metadata.index > lastIndex && entries.length > 0) {
      throw new CorruptDataError(`${g} raft log`, `log ends at ${lastIndex}, before the snapshot at ${snapshot.metadata.index}`);
    }
    const effectiveLast = Math.max(lastIndex, snapshot.metadata.index);
    if (hardState.commit > effectiveLast) {
      throw new CorruptDataError(g, `hard state commit ${hardState.commit} is beyond the last log index ${effectiveLast}`);
    }
    if (applyState.applied > hardState.commit && applyState.applied > snapshot.metadata.index) {
      throw new CorruptDataError(g, `applied index ${applyState.applied} is beyond the commit index ${hardState.commit}`);
    }
    if (applyState.applied < snapshot.metadata.index) {
      throw new CorruptDataError(g, `applied index ${applyState.applied} is below the snapshot at ${snapshot.metadata.index}`);
    }
    // The log may start at the compaction point or, right after a snapshot was received, at the
    // snapshot (the old log was discarded); in the latter case the dummy entry is the snapshot.
    const dummy = entries.length === 0 && snapshot.metadata.index > compacted.index
      ? { index: snapshot.metadata.index, term: snapshot.metadata.term }
      : compacted;
    if (entries.length > 0 && snapshot.metadata.index > 0 && snapshot.metadata.index >= dummy.index) {
      const e = entries[snapshot.metadata.index - dummy.index - 1];
      if (e && e.term !== snapshot.metadata.term) {
        throw new CorruptDataError(g, `snapshot term ${snapshot.metadata.term} differs from the log's term ${e.term} at ${snapshot.metadata.index}`);
      }
    }
    const mirror = MemoryStorage.restore({
      hardState,
      confState: applyState.confState,
      snapshot,
      compacted: dummy,
      entries,
    });
    return new RaftLogStorage(engine, groupId, mirror, applyState);
  }

  /**
   * Stages the state of a group that starts from `snap` with an empty log (a range created by a
   * split): its snapshot, compaction point, apply state and hard state. The group must have no
   * log entries (a replica of it that is not initialized has none).
   */
  static stageInitialState(batch: WriteBatch, groupId: number, snap: Snapshot, hs: HardState): void {
    const { index, term } = snap.metadata;
    batch.put(snapshotKey(groupId), encodeSnapshot(snap));
    batch.put(compactedKey(groupId), encodeLogPosition({ index, term }));
    batch.put(applyStateKey(groupId), encodeApplyState({ applied: index, confState: snap.metadata.confState }));
    batch.put(hardStateKey(groupId), encodeHardState(hs));
  }

  // ---------------------------------------------------------------------------------------------
  // Read side (synchronous, from the mirror)

  initialState(): InitialState {
    return this.mirror.initialState();
  }

  entries(lo: number, hi: number, maxSizeBytes: number): Entry[] {
    return this.mirror.entries(lo, hi, maxSizeBytes);
  }

  term(i: number): number {
    return this.mirror.term(i);
  }

  firstIndex(): number {
    return this.mirror.firstIndex();
  }

  lastIndex(): number {
    return this.mirror.lastIndex();
  }

  snapshot(): Snapshot {
    return this.mirror.snapshot();
  }

  /** The applied index and membership persisted with the applied state. */
  appliedState(): ApplyState {
    return this.applyState;
  }

  // ---------------------------------------------------------------------------------------------
  // Staging: validate against the mirror, update it, and add the matching operations to `batch`.

  stageHardState(batch: WriteBatch, hs: HardState): void {
    this.mirror.setHardState(hs);
    batch.put(hardStateKey(this.groupId), encodeHardState(hs));
  }

  stageAppend(batch: WriteBatch, entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const oldLast = this.mirror.lastIndex();
    this.mirror.append(entries); // validates (gap → UnavailableError) before anything is staged
    const first = this.mirror.firstIndex();
    for (const e of entries) {
      if (e.index < first) continue;
      batch.put(logKey(this.groupId, e.index), encodeEntry(e));
    }
    const newLast = this.mirror.lastIndex();
    for (let i = newLast + 1; i <= oldLast; i++) batch.del(logKey(this.groupId, i));
  }

  /** The application applied entries up to `applied`; stage it with the state machine's own writes. */
  stageApplyState(batch: WriteBatch, applied: number, confState: ConfState): void {
    this.applyState = { applied, confState };
    this.mirror.setConfState(confState);
    batch.put(applyStateKey(this.groupId), encodeApplyState(this.applyState));
  }

  stageApplySnapshot(batch: WriteBatch, snap: Snapshot): void {
    const oldFirst = this.mirror.firstIndex();
    const oldLast = this.mirror.lastIndex();
    this.mirror.applySnapshot(snap); // throws SnapshotOutOfDateError before anything is staged
    for (let i = oldFirst; i <= oldLast; i++) batch.del(logKey(this.groupId, i));
    batch.put(snapshotKey(this.groupId), encodeSnapshot(snap));
    batch.put(compactedKey(this.groupId), encodeLogPosition({ index: snap.metadata.index, term: snap.metadata.term }));
    this.applyState = { applied: snap.metadata.index, confState: snap.metadata.confState };
    batch.put(applyStateKey(this.groupId), encodeApplyState(this.applyState));
  }

  stageCreateSnapshot(batch: WriteBatch, index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const snap = this.mirror.createSnapshot(index, confState, data);
    batch.put(snapshotKey(this.groupId), encodeSnapshot(snap));
    return snap;
  }

  stageCompact(batch: WriteBatch, compactIndex: number): void {
    const oldFirst = this.mirror.firstIndex();
    this.mirror.compact(compactIndex);
    for (let i = oldFirst; i <= compactIndex; i++) batch.del(logKey(this.groupId, i));
    batch.put(compactedKey(this.groupId), encodeLogPosition({ index: compactIndex, term: this.mirror.term(compactIndex) }));
  }

  // ---------------------------------------------------------------------------------------------
  // WritableStorage: each call is its own synced batch.

  private async writeOne(stage: (b: WriteBatch) => void): Promise<void> {
    const b = new WriteBatch();
    stage(b);
    await this.engine.write(b);
  }

  setHardState(hs: HardState): Promise<void> {
    return this.writeOne((b) => this.stageHardState(b, hs));
  }

  append(entries: readonly Entry[]): Promise<void> {
    return this.writeOne((b) => this.stageAppend(b, entries));
  }

  applySnapshot(snap: Snapshot): Promise<void> {
    return this.writeOne((b) => this.stageApplySnapshot(b, snap));
  }

  async createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    let snap: Snapshot | undefined;
    await this.writeOne((b) => {
      snap = this.stageCreateSnapshot(b, index, confState, data);
    });
    if (!snap) throw new UnavailableError(index, this.lastIndex());
    return snap;
  }

  compact(compactIndex: number): Promise<void> {
    return this.writeOne((b) => this.stageCompact(b, compactIndex));
  }
}
