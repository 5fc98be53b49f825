// The meta state machine's contents, kept in the meta range (range 0, its own keyspace) as
// ordinary replicated KV commands: the range map, the node registry and the range id counter.
// Only the meta range's leader reads and writes it (reads behind a ReadIndex barrier); writes go
// one at a time through a queue, so a read-check-write (e.g. "is this descriptor newer?") is not
// interleaved with another on the same leader. A new leader's first barrier waits for its term's
// entry to commit, so it reads everything the old leader wrote.
//
// Layout (meta keyspace):
//   'i'                    next free range id (decimal); absent = 2 (range 0 is meta, 1 the first range)
//   'r' 0x01 endKey        a range whose end is endKey: JSON RangeRecord
//   'r' 0x02               the range that ends the keyspace
//   'n' nodeId(8)          a node's registration: JSON NodeRecord
// Keying ranges by end key makes "the range holding k" the first record whose end is above k.
//
// What is not replicated: liveness and load (last heartbeat, bytes, rates) live in the leader's
// memory and are rebuilt from the next heartbeats after a leader change, as PD does.

import type { Logger } from 'pino';
import { CommandStatus, Node, Op, OpKind, Replica } from '../node';
import { META_RANGE_ID } from '../storage/keys';
import { StateType } from '../raft';

export type ReplicaRoleName = 'voter' | 'learner';

/** A range descriptor as placement stores it. */
export interface MetaDescriptor {
  readonly rangeId: number;
  readonly startHex: string;
  readonly endHex: string;
  readonly epochVersion: number;
  readonly confVersion: number;
  readonly replicas: ReadonlyArray<{ readonly nodeId: number; readonly role: ReplicaRoleName }>;
}

export interface RangeRecord {
  readonly descriptor: MetaDescriptor;
  /** The leader last reported (0 = none reported). */
  readonly leaderNodeId: number;
}

export interface NodeRecord {
  readonly nodeId: number;
  readonly address: string;
  readonly zone: string;
  /** Being drained: the scheduler moves everything off it (kvctl node drain). */
  readonly draining?: boolean;
  /** Removed (kvctl node remove): never given a replica again; its heartbeats are ignored. */
  readonly removed?: boolean;
}

/** Load and liveness reported by heartbeats (leader memory only). */
export interface RangeLoad {
  readonly approximateBytes: number;
  readonly approximateKeys: number;
  readonly writesPerSecond: number;
  readonly readsPerSecond: number;
  /** Learners the leader reports close enough to promote. */
  readonly caughtUpLearners: readonly number[];
}

/** This node is not the meta range's leader; `leader` is the one it knows (0 = none). */
export class NotMetaLeaderError extends Error {
  readonly code = 'NOT_META_LEADER';
  constructor(readonly leader: number) {
    super(leader === 0 ? 'the meta range has no leader known here' : `the meta range's leader is node ${leader}`);
    this.name = 'NotMetaLeaderError';
  }
}

/** A meta write that lost a race or was refused; retried by the caller or reported. */
export class MetaWriteError extends Error {
  readonly code = 'META_WRITE';
  constructor(reason: string) {
    super(`meta write failed: ${reason}`);
    this.name = 'MetaWriteError';
  }
}

const NEXT_ID_KEY = Buffer.from('i');
const RANGE_PREFIX = 0x72; // 'r'
const NODE_PREFIX = 0x6e; // 'n'

export function rangeRecordKey(endHex: string): Buffer {
  if (endHex === '') return Buffer.from([RANGE_PREFIX, 0x02]);
  return Buffer.concat([Buffer.from([RANGE_PREFIX, 0x01]), Buffer.from(endHex, 'hex')]);
}

function nodeRecordKey(nodeId: number): Buffer {
  const k = Buffer.alloc(9);
  k[0] = NODE_PREFIX;
  k.writeBigUInt64BE(BigInt(nodeId), 1);
  return k;
}

/** Whether [a.start, a.end) and [b.start, b.end) share a key (hex bounds, '' end = keyspace end). */
export function descriptorsOverlap(a: MetaDescriptor, b: MetaDescriptor): boolean {
  const endsAfter = (endHex: string, keyHex: string): boolean =>
    endHex === '' || Buffer.compare(Buffer.from(keyHex, 'hex'), Buffer.from(endHex, 'hex')) < 0;
  return endsAfter(a.endHex, b.startHex) && endsAfter(b.endHex, a.startHex);
}

/** Negative when a is older than b (version first: a split or merge outranks any membership change). */
export function compareDescriptors(a: MetaDescriptor, b: MetaDescriptor): number {
  return a.epochVersion !== b.epochVersion ? a.epochVersion - b.epochVersion : a.confVersion - b.confVersion;
}

function sameRecord(a: RangeRecord, b: RangeRecord): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class MetaStore {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly node: Node,
    private readonly log: Logger,
  ) {}

  /** The local meta replica, if this node hosts one. */
  replica(): Replica | undefined {
    const r = this.node.replicas.get(META_RANGE_ID);
    return r && r.initialized ? r : undefined;
  }

  /** The meta leader as this node knows it (0 = unknown or no local meta replica). */
  leaderId(): number {
    return this.replica()?.rawNode.basicStatus().leader ?? 0;
  }

  isLeader(): boolean {
    return this.replica()?.rawNode.basicStatus().state === StateType.Leader;
  }

  /** Waits until this leader's view of the meta state is linearizable; throws NotMetaLeaderError elsewhere. */
  private async barrier(): Promise<Replica> {
    const r = this.replica();
    if (!r || !this.isLeader()) throw new NotMetaLeaderError(this.leaderId());
    await this.node.readBarrier(META_RANGE_ID);
    return r;
  }

  private serialized<T>(f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(f, f);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async write(ops: Op[]): Promise<void> {
    const r = this.replica();
    if (!r || !this.isLeader()) throw new NotMetaLeaderError(this.leaderId());
    const { result } = await this.node.propose(META_RANGE_ID, {
      clientId: 0,
      sequence: 0,
      answeredBelow: 0,
      proposedAtMs: Date.now(),
      epochVersion: r.sm.bounds.epochVersion,
      ops,
    });
    if (result.status !== CommandStatus.Ok) throw new MetaWriteError(`status ${CommandStatus[result.status]}`);
    for (const res of result.results) {
      if (res.kind === OpKind.Cas && !res.succeeded) throw new MetaWriteError('a concurrent update changed the record');
    }
  }

  /** Reserves `count` consecutive new range ids; returns the first. */
  allocateRangeIds(count: number): Promise<number> {
    return this.serialized(async () => {
      const r = await this.barrier();
      const cur = r.sm.get(NEXT_ID_KEY);
      const first = cur ? Number(cur.value.toString()) : 2;
      if (!Number.isSafeInteger(first) || first < 2) throw new MetaWriteError(`the stored next range id is damaged: ${cur?.value.toString()}`);
      await this.write([
        {
          kind: OpKind.Cas,
          key: NEXT_ID_KEY,
          expected: cur ? { kind: 'version', version: cur.version } : { kind: 'absent' },
          newValue: Buffer.from(String(first + count)),
          delete: false,
        },
      ]);
      return first;
    });
  }

  /** The range holding `key`, if placement knows one. */
  async lookup(key: Uint8Array): Promise<RangeRecord | undefined> {
    const r = await this.barrier();
    const from = Buffer.concat([Buffer.from([RANGE_PREFIX, 0x01]), key, Buffer.from([0])]);
    for await (const kv of r.sm.scan(from, Buffer.from([RANGE_PREFIX, 0x03]), 1)) {
      const rec = JSON.parse(kv.value.toString()) as RangeRecord;
      if (Buffer.compare(Buffer.from(rec.descriptor.startHex, 'hex'), Buffer.from(key)) > 0) return undefined; // a gap
      return rec;
    }
    return undefined;
  }

  /** Ranges in key order from the one holding `startKey`, at most `limit`. */
  async list(startKey: Uint8Array, limit: number): Promise<{ ranges: RangeRecord[]; more: boolean }> {
    const r = await this.barrier();
    const from = Buffer.concat([Buffer.from([RANGE_PREFIX, 0x01]), startKey, Buffer.from([0])]);
    const ranges: RangeRecord[] = [];
    for await (const kv of r.sm.scan(from, Buffer.from([RANGE_PREFIX, 0x03]), limit + 1)) {
      if (ranges.length === limit) return { ranges, more: true };
      ranges.push(JSON.parse(kv.value.toString()) as RangeRecord);
    }
    return { ranges, more: false };
  }

  /**
   * Records range descriptors reported by range leaders. A report older than a stored range it
   * overlaps is ignored (it was overtaken: a later split or membership change is already known);
   * otherwise it replaces every stored range it overlaps, in one command. Returns how many
   * records changed.
   */
  upsertRanges(reports: readonly RangeRecord[]): Promise<number> {
    return this.serialized(async () => {
      let changed = 0;
      // One ReadIndex round for the whole batch: this leader's own writes below are applied
      // before they resolve, so later reports read them.
      const r = await this.barrier();
      for (const rep of reports) {
        if (!this.isLeader()) throw new NotMetaLeaderError(this.leaderId());
        const d = rep.descriptor;
        const from = Buffer.concat([Buffer.from([RANGE_PREFIX, 0x01]), Buffer.from(d.startHex, 'hex'), Buffer.from([0])]);
        const stale: Buffer[] = [];
        let skip = false;
        let same = false;
        for await (const kv of r.sm.scan(from, Buffer.from([RANGE_PREFIX, 0x03]), 0)) {
          const cur = JSON.parse(kv.value.toString()) as RangeRecord;
          if (!descriptorsOverlap(cur.descriptor, d)) break; // records are in key order: the rest lie beyond d
          if (sameRecord(cur, rep)) {
            same = true;
            continue;
          }
          const cmp = compareDescriptors(cur.descriptor, d);
          const newer = cmp > 0 || (cmp === 0 && cur.descriptor.rangeId === d.rangeId && rep.leaderNodeId === 0);
          if (newer) {
            skip = true;
            break;
          }
          stale.push(Buffer.from(kv.key));
        }
        if (skip || (same && stale.length === 0)) continue;
        const ops: Op[] = stale.map((key) => ({ kind: OpKind.Delete, key }));
        ops.push({ kind: OpKind.Put, key: rangeRecordKey(d.endHex), value: Buffer.from(JSON.stringify(rep)) });
        await this.write(ops);
        changed++;
        this.log.debug({ rangeId: d.rangeId, version: d.epochVersion, replaced: stale.length }, 'range map updated');
      }
      return changed;
    });
  }

  /**
   * Registers a node or updates its address and zone (its drain and removal flags are kept).
   * Returns the stored record.
   */
  putNode(rec: { nodeId: number; address: string; zone: string }): Promise<NodeRecord> {
    return this.serialized(async () => {
      const r = await this.barrier();
      const raw = r.sm.get(nodeRecordKey(rec.nodeId));
      const cur = raw ? (JSON.parse(raw.value.toString()) as NodeRecord) : undefined;
      if (cur && (cur.removed || (cur.address === rec.address && cur.zone === rec.zone))) return cur;
      const next: NodeRecord = { ...cur, nodeId: rec.nodeId, address: rec.address, zone: rec.zone };
      await this.write([{ kind: OpKind.Put, key: nodeRecordKey(rec.nodeId), value: Buffer.from(JSON.stringify(next)) }]);
      this.log.info({ node: rec.nodeId, address: rec.address, zone: rec.zone }, 'node registered with placement');
      return next;
    });
  }

  /** Sets a node's drain or removal flag; returns the record, or undefined for an unknown node. */
  setNodeFlags(nodeId: number, flags: { draining?: boolean; removed?: boolean }): Promise<NodeRecord | undefined> {
    return this.serialized(async () => {
      const r = await this.barrier();
      const raw = r.sm.get(nodeRecordKey(nodeId));
      if (!raw) return undefined;
      const next: NodeRecord = { ...(JSON.parse(raw.value.toString()) as NodeRecord), ...flags };
      await this.write([{ kind: OpKind.Put, key: nodeRecordKey(nodeId), value: Buffer.from(JSON.stringify(next)) }]);
      this.log.info({ node: nodeId, ...flags }, 'node state changed');
      return next;
    });
  }

  async nodes(): Promise<NodeRecord[]> {
    const r = await this.barrier();
    const out: NodeRecord[] = [];
    for await (const kv of r.sm.scan(Buffer.from([NODE_PREFIX]), Buffer.from([NODE_PREFIX + 1]), 0)) {
      out.push(JSON.parse(kv.value.toString()) as NodeRecord);
    }
    return out;
  }
}
