// A node hosts many range replicas over one LevelDB and one transport. Its ready loop is the
// heart of RangeKV's durability (DESIGN.md, "persist before you speak"):
//
//   collect the Ready of every replica that has one
//   → write all of them in ONE batch: each range's log entries, hard state and snapshot, then the
//     effects of its committed entries (data + sessions + applied index); fsynced whenever
//     entries, a snapshot, the term or the vote changed (group commit: one write, at most one
//     fsync, per turn for all ranges)
//   → only then send their messages (a leader's appends and heartbeats, which vouch for nothing
//     unpersisted, leave before the write: Ready.earlyMessages)
//   → resolve proposals and release reads → advance.
//
// A batch that only moves commit and applied indexes is written without fsync: both are functions
// of the durable log, and a crash that loses them re-applies the same entries (the applied index
// moves atomically with the data). LevelDB's log is append-only, so what survives a crash is
// always a prefix of the writes: an unsynced batch never survives while an earlier one is lost.

import type { Logger } from 'pino';
import { ConfChange, ConfChangeType, ConfState, HardState, Message, RaftLogger } from '../raft';
import { CorruptDataError, Engine, RaftLogStorage, WriteBatch } from '../storage';
import {
  dataKeyRange,
  dataPrefixOf,
  groupKeyRange,
  hardStateKey,
  numericKey,
  PREFIX_GROUP,
  PREFIX_INSTALL_MARKER,
  META_RANGE_ID,
  installMarkerKey,
  peerAddressKey,
  prefixRange,
  stagingKey,
  peerAddressKeyRange,
  rangeDescriptorKey,
  rangeDescriptorKeyRange,
  readU64,
  sessionKeyRange,
  tombstoneKey,
  tombstoneKeyRange,
} from '../storage/keys';
import type { RangeMessage, SnapshotSink, Transport, TransportHandler } from '../transport';
import { StagingSink, recoverSnapshotInstall } from './snapshot';
import { MessageType, makeMessage } from '../raft';
import { Command, CommandResult } from './command';
import { NodeStoppedError, RangeNotFoundError, ServerBusyError, SnapshotRefusedError, SplitRefusedError } from './errors';
import { KvStateMachine, RangeBounds, keyInRange } from './kv-state-machine';
import {
  NO_BOUNDS,
  Replica,
  SplitRight,
  StoredDescriptor,
  boundsOf,
  boundsOverlap,
  encodeDescriptor,
  snapshotDescriptor,
} from './replica';
import { decodeHardState, encodeHardState } from '../storage/codec';

/**
 * The log position a range created by a split starts at, on every replica: its log is empty up to
 * this index, as if a snapshot at (index, term) = (5, 5) had been installed, so a replica that
 * learns of the range late is sent a snapshot (TiKV and CockroachDB start split ranges the same way).
 */
export const SPLIT_INIT_INDEX = 5;
export const SPLIT_INIT_TERM = 5;

/**
 * The context of a quiescing leader's last heartbeat round (see Raft.quiesceHeartbeats): a
 * follower that receives it caught up stops ticking the range too.
 */
export const QUIESCE_CONTEXT = Buffer.from('rangekv/quiesce');

/**
 * The pseudo-range of node-to-node liveness beats: one tiny message per peer per heartbeat
 * interval, whatever the number of ranges (heartbeat coalescing). A quiesced follower whose
 * leader's node has not been heard from for an election timeout wakes up (and may elect).
 */
export const NODE_BEAT_RANGE_ID = Number.MAX_SAFE_INTEGER;

/** A snapshot accepted but never installed (Raft found it stale) stops blocking others after this. */
const PENDING_SNAPSHOT_TTL_MS = 60_000;

function isQuiesceMessage(m: Message): boolean {
  return (m.type === MessageType.Heartbeat || m.type === MessageType.HeartbeatResp) && Buffer.compare(Buffer.from(m.context), QUIESCE_CONTEXT) === 0;
}

/** A range's descriptor as this node stores it (see replica.ts). */
export type LocalRangeDescriptor = StoredDescriptor;

export interface NodeOptions {
  readonly nodeId: number;
  readonly dataDir: string;
  /** Required when the data directory is new. */
  readonly clusterId?: string;
  /** Row cache of data values, bytes (see src/storage/row-cache.ts); 0 turns it off. */
  readonly rowCacheBytes?: number;
  readonly transport: Transport;
  readonly logger: Logger;
  /** Raft tick interval. Default 100 ms. */
  readonly tickMs?: number;
  /** Election timeout in ticks (randomised up to twice that). Default 10. */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks. Default 1. */
  readonly heartbeatTicks?: number;
  /** Create this range with these voters if the node hosts no range yet (a new cluster's first range). */
  readonly bootstrap?: { readonly rangeId: number; readonly voters: readonly number[] };
  /** Also create the meta range (id 0, the placement service's group) with these voters, if this node is one. */
  readonly bootstrapMeta?: readonly number[];
  /** Snapshot a range after this many applied entries since its last snapshot. Default 10,000. */
  readonly snapshotEveryEntries?: number;
  /** Entries kept in the log behind a snapshot. Default 1,000. */
  readonly compactionSlackEntries?: number;
  /** Bytes per streamed snapshot payload chunk. Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /** Proposals waiting on this node before it answers ServerBusy. Default 10,000. */
  readonly maxPendingProposals?: number;
  /** Addresses known from configuration (e.g. --initial-cluster); learned addresses add to them. */
  readonly staticAddresses?: ReadonlyMap<number, string>;
  /**
   * Create a replica when a leader contacts this node about a range it does not host (a node
   * added to a range's membership starts empty). Default true.
   */
  readonly createReplicasOnDemand?: boolean;
  /**
   * An idle range (nothing proposed, read or replicated) stops ticking and heartbeating after this
   * many ticks, on its leader and its caught-up followers; 0 = never. Default 2 election timeouts.
   */
  readonly quiesceAfterTicks?: number;
  /**
   * A linearizable read that waits longer than this on a replica (no read index from the leader,
   * or applied state behind it) is refused with ReadTimeoutError, so the client tries another
   * replica instead of spending its deadline here. Default 4 election timeouts (the base timeout).
   */
  readonly readTimeoutMs?: number;
}

export class Node implements TransportHandler {
  readonly replicas = new Map<number, Replica>();
  private ticker: NodeJS.Timeout | undefined;
  private loopScheduled = false;
  private loopRunning = false;
  private loopAgain = false;
  private loopIdle: Promise<void> = Promise.resolve();
  private stopped = false;
  private pendingProposals = 0;
  /** Ranges whose replica is being created, with the messages that arrived meanwhile. */
  private readonly creating = new Map<number, Array<{ from: number; rm: RangeMessage }>>();
  private fatal: Error | undefined;
  /** Peer addresses learned from applied membership changes (persisted). */
  private readonly learnedAddresses = new Map<number, string>();
  /**
   * Ranges this node was removed from (persisted), with the epoch at the removal: only a snapshot
   * of a later membership (the range added this node again) recreates the replica here.
   */
  private readonly tombstones = new Map<number, { removedAtIndex: number }>();
  /**
   * Hard states of replicas that have no descriptor (created for a leader's message, never
   * initialized), loaded at start: a split that initializes one must keep its term and vote.
   */
  private readonly uninitializedHardStates = new Map<number, HardState>();
  /** Snapshots accepted (payload streaming or staged) and not installed yet, by range. */
  private readonly pendingSnapshots = new Map<number, { bounds: RangeBounds; atMs: number }>();
  /** Ranges whose replica is being destroyed: no replica of them is created until that is done. */
  private readonly destroying = new Set<number>();
  /** Ranges whose uninitialized replica is being loaded (createReplica in flight). */
  private readonly uninitInFlight = new Set<number>();
  /** Of those, the ones a split applied meanwhile creates: the loaded replica is discarded. */
  private readonly splitClaimed = new Set<number>();
  /** Right sides of splits applied in the current turn, opened once its batch is written. */
  private splitsToOpen: Array<{ right: SplitRight; parentLeads: boolean }> = [];
  /** Replicas that may have a Ready: stepped, ticked, proposed to or read since their last turn. */
  private readonly dirty = new Set<Replica>();
  /** Replicas that applied entries or want a fresh snapshot: checked for log compaction. */
  private readonly snapshotCandidates = new Set<Replica>();
  /**
   * The tick at which each peer node was last heard from (any message). Silence is counted in
   * this node's own ticks, as Raft counts election timeouts: a stall of this process (GC, CPU
   * starvation) is one late tick, not a peer's silence (counted in ms, every quiet follower here
   * woke after such a stall and campaigned).
   */
  private readonly lastHeardTick = new Map<number, number>();
  private ticks = 0;
  private beatPeers: number[] = [];

  private constructor(
    readonly opts: NodeOptions,
    readonly engine: Engine,
    private readonly log: Logger,
  ) {}

  get nodeId(): number {
    return this.opts.nodeId;
  }

  static async open(opts: NodeOptions): Promise<Node> {
    const engine = await Engine.open({ dir: opts.dataDir, nodeId: opts.nodeId, clusterId: opts.clusterId, rowCacheBytes: opts.rowCacheBytes });
    const node = new Node(opts, engine, opts.logger.child({ node: opts.nodeId }));
    try {
      await node.loadReplicas();
    } catch (err) {
      await engine.close();
      throw err;
    }
    await opts.transport.start(node);
    node.ticker = setInterval(() => node.tick(), opts.tickMs ?? 100);
    return node;
  }

  /** Every node address this node knows (configured and learned), by node id. */
  knownAddresses(): Map<number, string> {
    const out = new Map(this.opts.staticAddresses ?? []);
    for (const [id, a] of this.learnedAddresses) out.set(id, a);
    return out;
  }

  /** The address of a node: learned from membership changes, else from configuration. */
  addressOf(nodeId: number): string | undefined {
    return this.learnedAddresses.get(nodeId) ?? this.opts.staticAddresses?.get(nodeId);
  }

  private async loadReplicas(): Promise<void> {
    for await (const [k, v] of this.engine.db.iterator(peerAddressKeyRange())) {
      this.learnedAddresses.set(readU64(k, 1), v.toString('utf8'));
    }
    for await (const [k, v] of this.engine.db.iterator(tombstoneKeyRange())) {
      const rangeId = readU64(k, 1);
      const t = JSON.parse(v.toString()) as { removedAtIndex?: number };
      this.tombstones.set(rangeId, { removedAtIndex: t.removedAtIndex ?? Number.MAX_SAFE_INTEGER });
      // A crash may have cut the clean-up after the tombstone was written: finish it (idempotent).
      await this.engine.deleteRanges([...groupKeysButHardState(rangeId), sessionKeyRange(rangeId), prefixRange(stagingKey(rangeId))]);
    }
    const descs: LocalRangeDescriptor[] = [];
    for await (const [, v] of this.engine.db.iterator(rangeDescriptorKeyRange())) {
      descs.push(JSON.parse(v.toString()) as LocalRangeDescriptor);
    }
    const described = new Set(descs.map((d) => d.rangeId));
    // A replica without a descriptor that crashed while installing its first snapshot: finish the
    // install (it carries the descriptor), then the replica opens like any other.
    for await (const k of this.engine.db.keys(prefixRange(Buffer.from([PREFIX_INSTALL_MARKER])))) {
      const rangeId = readU64(k, 1);
      if (described.has(rangeId) || this.tombstones.has(rangeId)) continue;
      const snap = await recoverSnapshotInstall(this.engine, rangeId, undefined, (sn) => boundsOf(snapshotDescriptor(rangeId, sn.data)));
      if (!snap) continue;
      const d = snapshotDescriptor(rangeId, snap.data);
      const b = new WriteBatch();
      b.put(rangeDescriptorKey(rangeId), encodeDescriptor(rangeId, boundsOf(d)));
      await this.engine.write(b, { sync: true });
      descs.push(d);
      described.add(rangeId);
      this.log.warn({ rangeId, index: snap.metadata.index }, 'finished the first snapshot install of a new replica that a crash interrupted');
    }
    await this.loadUninitializedHardStates(described);
    // Bootstrap only a new data directory: a node removed from a first range keeps its tombstone.
    if (descs.length === 0 && this.opts.bootstrap) {
      const first = this.opts.bootstrap;
      if (!this.tombstones.has(first.rangeId)) descs.push(await this.bootstrapRange(first.rangeId, first.voters));
      const meta = this.opts.bootstrapMeta;
      if (meta?.includes(this.opts.nodeId) && !this.tombstones.has(META_RANGE_ID)) descs.push(await this.bootstrapRange(META_RANGE_ID, meta));
    }
    for (const d of descs) await this.openReplica(d, true);
  }

  /**
   * Writes a new cluster's first range (or the meta range) on one of its initial voters: its
   * descriptor (the whole keyspace, version 1) and Raft state starting at SPLIT_INIT_INDEX with
   * the initial voters, exactly as a split starts a range. Every initial voter writes the same, so
   * their logs agree at that position; a replica added later always receives a snapshot, which
   * carries the descriptor (a log that began at index 1 would not).
   */
  private async bootstrapRange(rangeId: number, voters: readonly number[]): Promise<LocalRangeDescriptor> {
    const storage = await RaftLogStorage.load(this.engine, rangeId);
    if (storage.lastIndex() !== 0) {
      throw new CorruptDataError(`range ${rangeId}`, 'raft log exists but the range descriptor is missing');
    }
    const bounds: RangeBounds = { start: Buffer.alloc(0), end: Buffer.alloc(0), epochVersion: 1, confVersion: 0 };
    const b = new WriteBatch();
    RaftLogStorage.stageInitialState(
      b,
      rangeId,
      { metadata: { index: SPLIT_INIT_INDEX, term: SPLIT_INIT_TERM, confState: { voters: [...voters], learners: [] } }, data: encodeDescriptor(rangeId, bounds) },
      { term: SPLIT_INIT_TERM, vote: 0, commit: SPLIT_INIT_INDEX },
    );
    b.put(rangeDescriptorKey(rangeId), encodeDescriptor(rangeId, bounds));
    await this.engine.write(b);
    this.log.info({ rangeId, voters }, rangeId === META_RANGE_ID ? 'bootstrapped the meta range' : 'bootstrapped range');
    return JSON.parse(encodeDescriptor(rangeId, bounds).toString()) as LocalRangeDescriptor;
  }

  /**
   * Opens a replica. At node start (`recover`), first finishes an interrupted snapshot install and
   * drops stale staged payloads; a replica created on demand must keep what was just staged.
   */
  private async openReplica(d: LocalRangeDescriptor | { rangeId: number; uninitialized: true }, recover: boolean): Promise<Replica> {
    if ('uninitialized' in d) return this.buildReplica(d.rangeId, NO_BOUNDS, false, false);
    let bounds: RangeBounds = boundsOf(d);
    const recovered = recover
      ? await recoverSnapshotInstall(this.engine, d.rangeId, bounds, (sn) => boundsOf(snapshotDescriptor(d.rangeId, sn.data)))
      : undefined;
    if (recovered) {
      this.log.warn({ rangeId: d.rangeId, index: recovered.metadata.index }, 'finished a snapshot install that a crash interrupted');
      // The installed snapshot's descriptor is the range's from now on.
      bounds = boundsOf(snapshotDescriptor(d.rangeId, recovered.data));
      const b = new WriteBatch();
      b.put(rangeDescriptorKey(d.rangeId), encodeDescriptor(d.rangeId, bounds));
      await this.engine.write(b, { sync: true });
    }
    return this.buildReplica(d.rangeId, bounds, true, recover);
  }

  private async buildReplica(rangeId: number, bounds: RangeBounds, initialized: boolean, recover: boolean): Promise<Replica> {
    const d = { rangeId };
    const storage = await RaftLogStorage.load(this.engine, d.rangeId);
    const sm = await KvStateMachine.load(this.engine, d.rangeId, bounds);
    if (recover) {
      // Every stored value is checked once at start: a corrupt directory is refused, not served.
      const t0 = Date.now();
      const n = await sm.verifyData();
      this.log.info({ rangeId: d.rangeId, values: n, ms: Date.now() - t0 }, 'verified the checksums of the stored values');
    }
    const rlog = this.log.child({ range: d.rangeId });
    const raftLogger: RaftLogger = {
      debug: (m) => rlog.debug(m),
      info: (m) => rlog.info(m),
      warn: (m) => rlog.warn(m),
    };
    const replica = new Replica(
      {
        rangeId: d.rangeId,
        nodeId: this.opts.nodeId,
        electionTicks: this.opts.electionTicks ?? 10,
        heartbeatTicks: this.opts.heartbeatTicks ?? 1,
        // Election jitter only needs to differ between nodes and restarts.
        seed: (this.opts.nodeId * 7919 + d.rangeId * 104729 + (process.hrtime()[1] >>> 0)) >>> 0,
        logger: raftLogger,
        snapshotEveryEntries: this.opts.snapshotEveryEntries ?? 10_000,
        compactionSlackEntries: this.opts.compactionSlackEntries ?? 1_000,
        onConfChange: (batch, cc) => this.learnAddress(batch, cc),
        onSplit: (batch, parent, right) => this.stageSplitRight(batch, parent, right),
        checkInstall: (id, b) => {
          const other = this.overlapping(id, b);
          if (other) throw new CorruptDataError(`range ${id}`, `a snapshot with bounds overlapping range ${other.rangeId} reached the install`);
        },
        onInstall: (batch, id) => {
          if (this.tombstones.delete(id)) {
            batch.del(tombstoneKey(id));
            this.log.info({ rangeId: id }, 'added back to a range it was removed from: tombstone dropped');
          }
        },
        initialized,
      },
      storage,
      sm,
      this.engine,
    );
    if (!initialized && (this.splitClaimed.has(rangeId) || this.replicas.has(rangeId))) {
      // A split created the range while this uninitialized replica was loading: keep the split's.
      replica.close(new RangeNotFoundError(rangeId));
      return this.replicas.get(rangeId) ?? replica;
    }
    replica.prepareSnapshotViewAtOpen();
    this.replicas.set(d.rangeId, replica);
    this.dirty.add(replica);
    this.snapshotCandidates.add(replica);
    rlog.info({ applied: replica.appliedIndex, lastIndex: storage.lastIndex(), conf: replica.confState, initialized }, 'replica loaded');
    return replica;
  }

  /** A membership change that adds a node may carry its address (utf-8 host:port) as context. */
  private learnAddress(batch: WriteBatch, cc: ConfChange): void {
    if (cc.type === ConfChangeType.RemoveNode || cc.context.length === 0) return;
    const address = Buffer.from(cc.context).toString('utf8');
    this.learnedAddresses.set(cc.nodeId, address);
    batch.put(peerAddressKey(cc.nodeId), Buffer.from(address, 'utf8'));
  }

  /**
   * Creates an uninitialized replica for a range a leader told us about (we were added to its
   * group, or it was split off a range we have not caught up with). It has no descriptor and
   * serves nothing: a snapshot initializes it (its bounds must overlap no range here), or the
   * split that creates the range, once this node applies it.
   */
  private async createReplica(rangeId: number): Promise<void> {
    this.uninitInFlight.add(rangeId);
    try {
      await this.openReplica({ rangeId, uninitialized: true }, false);
      this.uninitializedHardStates.delete(rangeId); // the replica holds it now
      this.log.info({ rangeId }, 'created an uninitialized replica for a leader\'s message');
    } catch (err) {
      // A split that creates the range applied while this load read its state: the split's
      // replica is the range's; what this load read may be half old, half new. Dropped.
      if (!this.splitClaimed.has(rangeId)) throw err;
      this.log.info({ rangeId, err: (err as Error).message }, 'uninitialized replica superseded by the split that creates the range');
    } finally {
      this.uninitInFlight.delete(rangeId);
      this.splitClaimed.delete(rangeId);
      const waiting = this.creating.get(rangeId) ?? [];
      this.creating.delete(rangeId);
      for (const { from, rm } of waiting) this.receive(from, [rm]);
    }
  }

  /** The replica needs the ready loop (and, if it was quiesced, its ticks again). */
  private touch(r: Replica, wake: boolean, active = wake): void {
    if (wake) r.quiesced = false;
    if (active) r.idleTicks = 0;
    this.dirty.add(r);
  }

  /** Replicas to destroy at the end of the next turn (replica GC). */
  private readonly gcRequested = new Set<Replica>();

  /**
   * Replicas that may have been removed from their range while this node was away: initialized,
   * awake, not leading, and silent from any leader for `silentMs`. The caller asks the range's
   * leader for its descriptor and calls `collectReplica` if this node is not in it.
   */
  gcCandidates(silentMs: number, now = Date.now()): Array<{ rangeId: number; start: Buffer; epochVersion: number; confVersion: number }> {
    const out: Array<{ rangeId: number; start: Buffer; epochVersion: number; confVersion: number }> = [];
    for (const r of this.replicas.values()) {
      if (!r.initialized || r.rangeId === META_RANGE_ID || r.quiesced || r.isLeader()) continue;
      if (now - r.lastLeaderContactMs < silentMs) continue;
      const b = r.sm.bounds;
      out.push({ rangeId: r.rangeId, start: Buffer.from(b.start), epochVersion: b.epochVersion, confVersion: b.confVersion });
    }
    return out;
  }

  /**
   * Destroys a replica the range's leader says is no longer a member (its descriptor, newer than
   * ours, lacks this node): the removal happened while this node was away, so it never applied
   * it. Refused (false) if the replica changed since the caller looked: its epoch moved on, or it
   * heard from a leader (then it is not lost).
   */
  collectReplica(rangeId: number, seen: { epochVersion: number; confVersion: number }, leaderEpoch: { version: number; confVersion: number }): boolean {
    const r = this.replicas.get(rangeId);
    if (!r || !r.initialized || r.isLeader() || this.fatal || this.stopped || this.gcRequested.has(r)) return false;
    const b = r.sm.bounds;
    if (b.epochVersion !== seen.epochVersion || b.confVersion !== seen.confVersion) return false;
    const newer = leaderEpoch.version > b.epochVersion || (leaderEpoch.version === b.epochVersion && leaderEpoch.confVersion > b.confVersion);
    if (!newer) return false;
    this.log.warn({ rangeId, local: { version: b.epochVersion, confVersion: b.confVersion }, leader: leaderEpoch }, 'replica GC: this node was removed from the range while away; destroying its replica');
    this.gcRequested.add(r);
    this.dirty.add(r);
    this.schedule();
    return true;
  }

  /** Replicas currently quiesced (for status and tests). */
  quiescedCount(): number {
    let n = 0;
    for (const r of this.replicas.values()) if (r.quiesced) n++;
    return n;
  }

  replica(rangeId: number): Replica {
    const r = this.replicas.get(rangeId);
    if (!r || !r.initialized) throw new RangeNotFoundError(rangeId);
    return r;
  }

  /**
   * A range here, other than `rangeId`, that shares a key with `bounds`: an initialized replica,
   * or a snapshot accepted and not installed yet (two snapshots taken on either side of a split
   * may arrive together; only one of them may go in).
   */
  overlapping(rangeId: number, bounds: RangeBounds): { rangeId: number } | undefined {
    if (rangeId === META_RANGE_ID) return undefined;
    for (const r of this.replicas.values()) {
      if (r.rangeId !== rangeId && r.initialized && r.rangeId !== META_RANGE_ID && boundsOverlap(r.sm.bounds, bounds)) return r;
    }
    const now = Date.now();
    for (const [id, p] of this.pendingSnapshots) {
      if (now - p.atMs > PENDING_SNAPSHOT_TTL_MS) this.pendingSnapshots.delete(id);
      else if (id !== rangeId && boundsOverlap(p.bounds, bounds)) return { rangeId: id };
    }
    return undefined;
  }

  /** The initialized user range here that holds `key`, if any. */
  rangeForKey(key: Uint8Array): Replica | undefined {
    for (const r of this.replicas.values()) {
      if (r.initialized && r.rangeId !== META_RANGE_ID && keyInRange(key, r.sm.bounds)) return r;
    }
    return undefined;
  }

  /**
   * Splits range `rangeId` at `splitKey` (on its leader here): the range keeps the keys below it,
   * a new range `newRangeId` (unique in the cluster: placement allocates it) takes the rest.
   * Resolves once the split is applied here; refused if the range changed since `epochVersion`.
   */
  async split(rangeId: number, splitKey: Uint8Array, newRangeId: number, epochVersion?: number): Promise<{ left: RangeBounds; right: RangeBounds }> {
    this.checkRunning();
    if (rangeId === META_RANGE_ID) throw new SplitRefusedError(rangeId, 'the meta range is never split');
    if (newRangeId === META_RANGE_ID || this.replicas.has(newRangeId) || this.tombstones.has(newRangeId)) {
      throw new SplitRefusedError(rangeId, `range id ${newRangeId} is already in use here`);
    }
    const r = this.replica(rangeId);
    const b = r.sm.bounds;
    const version = epochVersion ?? b.epochVersion;
    if (version !== b.epochVersion) throw new SplitRefusedError(rangeId, `its epoch version is ${b.epochVersion}, not ${version}`);
    if (splitKey.length === 0 || Buffer.compare(splitKey, b.start) <= 0 || !keyInRange(splitKey, b)) {
      throw new SplitRefusedError(rangeId, `split key ${Buffer.from(splitKey).toString('hex')} is not strictly inside the range`);
    }
    this.touch(r, true);
    const p = r.proposeSplit({ epochVersion: version, splitKey, newRangeId });
    this.schedule();
    const res = await p;
    if (res.status !== 0) {
      throw new SplitRefusedError(rangeId, res.status === 1 ? 'the range changed before the split applied' : 'the split key left the range before the split applied');
    }
    const right = this.replicas.get(newRangeId);
    return { left: r.sm.bounds, right: right ? right.sm.bounds : NO_BOUNDS };
  }

  /**
   * Stages the right side of a split that the parent's replica is applying, into the batch that
   * applies it: its descriptor, its Raft state (an empty log at SPLIT_INIT_INDEX with the parent's
   * membership; the term and vote of an uninitialized replica of it, if one voted already), and a
   * copy of the parent's client sessions (a write retried after the split must still find its
   * first result). Skipped when this node is not in the parent's membership any more or was
   * removed from the new range already: the range lives on elsewhere.
   */
  private stageSplitRight(batch: WriteBatch, parent: Replica, right: SplitRight): void {
    const me = this.opts.nodeId;
    const member = right.confState.voters.includes(me) || right.confState.learners.includes(me);
    const existing = this.replicas.get(right.rangeId);
    if (!member || this.tombstones.has(right.rangeId)) {
      // Expected when a replica removed from the parent applies entries it had not applied yet.
      this.log.info({ rangeId: parent.rangeId, right: right.rangeId, member }, 'split applied; the new range is not created here');
      return;
    }
    if (existing?.initialized) {
      // A snapshot of the new range can only be installed once no local range overlaps it.
      throw new CorruptDataError(`range ${right.rangeId}`, 'initialized before the split that creates it applied here');
    }
    const prior = existing ? existing.rawNode.status() : this.uninitializedHardStates.get(right.rangeId);
    const hs: HardState =
      prior && prior.term > SPLIT_INIT_TERM
        ? { term: prior.term, vote: prior.vote, commit: SPLIT_INIT_INDEX }
        : { term: SPLIT_INIT_TERM, vote: 0, commit: SPLIT_INIT_INDEX };
    RaftLogStorage.stageInitialState(batch, right.rangeId, {
      metadata: { index: SPLIT_INIT_INDEX, term: SPLIT_INIT_TERM, confState: right.confState },
      data: encodeDescriptor(right.rangeId, right.bounds),
    }, hs);
    batch.put(rangeDescriptorKey(right.rangeId), encodeDescriptor(right.rangeId, right.bounds));
    parent.sm.copySessionsTo(batch, right.rangeId);
    if (existing) {
      // Replaced by the initialized replica once the batch is written; until then, messages wait.
      this.replicas.delete(right.rangeId);
      existing.close(new RangeNotFoundError(right.rangeId));
    }
    if (this.uninitInFlight.has(right.rangeId)) this.splitClaimed.add(right.rangeId);
    this.uninitializedHardStates.delete(right.rangeId);
    if (!this.creating.has(right.rangeId)) this.creating.set(right.rangeId, []);
    this.splitsToOpen.push({ right, parentLeads: parent.isLeader() });
  }

  /** Opens the right sides of the splits applied in this turn (their state is written). */
  private async openSplitRights(): Promise<void> {
    const todo = this.splitsToOpen;
    this.splitsToOpen = [];
    for (const { right, parentLeads } of todo) {
      try {
        const r = await this.openReplica(
          { rangeId: right.rangeId, startHex: Buffer.from(right.bounds.start).toString('hex'), endHex: Buffer.from(right.bounds.end).toString('hex'), epochVersion: right.bounds.epochVersion, confVersion: right.bounds.confVersion },
          false,
        );
        r.takeSnapshotView();
        // Both sides count their keys again (the split moved an unknown number of them).
        const parent = this.replicas.get(right.parentId);
        for (const x of [r, parent]) if (x) x.sm.recountKeys().catch(() => undefined);
        // The parent's leader starts the new range's first election at once, instead of leaving
        // the range without a leader for an election timeout.
        if (parentLeads) r.rawNode.campaign();
        this.log.info({ rangeId: right.rangeId, start: Buffer.from(right.bounds.start).toString('hex'), end: Buffer.from(right.bounds.end).toString('hex'), campaign: parentLeads }, 'created the right side of a split');
      } finally {
        const waiting = this.creating.get(right.rangeId) ?? [];
        this.creating.delete(right.rangeId);
        for (const { from, rm } of waiting) this.receive(from, [rm]);
      }
    }
  }

  /**
   * Finds the groups that have Raft state but no descriptor (uninitialized replicas from before
   * a restart) and remembers their hard state: one seek per group, not a scan of their logs.
   */
  private async loadUninitializedHardStates(described: ReadonlySet<number>): Promise<void> {
    let cursor = numericKey(PREFIX_GROUP, 0);
    const end = Buffer.from([PREFIX_GROUP + 1]);
    for (;;) {
      let groupId: number | undefined;
      for await (const k of this.engine.db.keys({ gte: cursor, lt: end, limit: 1 })) groupId = readU64(k, 1);
      if (groupId === undefined) return;
      if (!described.has(groupId)) {
        const raw = await this.engine.db.get(hardStateKey(groupId));
        if (raw !== undefined) this.uninitializedHardStates.set(groupId, decodeHardState(`group ${groupId} hard state`, raw));
      }
      if (groupId >= Number.MAX_SAFE_INTEGER - 1) return;
      cursor = numericKey(PREFIX_GROUP, groupId + 1);
    }
  }

  private checkRunning(): void {
    if (this.stopped) throw new NodeStoppedError();
    if (this.fatal) throw new NodeStoppedError();
  }

  /** Proposes a write on the range's leader replica here; resolves once it is applied. */
  async propose(rangeId: number, cmd: Command): Promise<{ result: CommandResult; index: number }> {
    this.checkRunning();
    const max = this.opts.maxPendingProposals ?? 10_000;
    if (this.pendingProposals >= max) throw new ServerBusyError(`${this.pendingProposals} proposals pending (limit ${max})`);
    const r = this.replica(rangeId);
    this.touch(r, true);
    const p = r.propose(cmd);
    this.pendingProposals++;
    this.schedule();
    try {
      return await p;
    } finally {
      this.pendingProposals--;
    }
  }

  /** Proposes a membership change of the range (on its leader); resolves once applied here. */
  async proposeConfChange(rangeId: number, cc: ConfChange): Promise<ConfState> {
    this.checkRunning();
    const r = this.replica(rangeId);
    this.touch(r, true);
    const p = r.proposeConfChange(cc);
    this.schedule();
    return p;
  }

  /** Asks the range's leader to hand leadership to `toNode`. */
  transferLeader(rangeId: number, toNode: number): void {
    this.checkRunning();
    const r = this.replica(rangeId);
    this.touch(r, true);
    r.rawNode.transferLeader(toNode);
    this.schedule();
  }

  /** Waits until reading local state of the range is linearizable; returns the applied index. */
  async readBarrier(rangeId: number): Promise<number> {
    this.checkRunning();
    const r = this.replica(rangeId);
    const max = this.opts.maxPendingProposals ?? 10_000;
    if (r.pendingReads() >= max) throw new ServerBusyError(`${r.pendingReads()} reads pending on range ${rangeId} (limit ${max})`);
    this.touch(r, true);
    const p = r.readBarrier();
    this.schedule();
    return p;
  }

  // ---------------------------------------------------------------------------------------------
  // Transport

  receive(fromNode: number, messages: readonly RangeMessage[]): void {
    if (this.stopped) return;
    this.lastHeardTick.set(fromNode, this.ticks);
    for (const rm of messages) {
      if (rm.rangeId === NODE_BEAT_RANGE_ID) continue; // a liveness beat: hearing it is all it does
      const r = this.replicas.get(rm.rangeId);
      if (!r && this.destroying.has(rm.rangeId)) continue; // its old state is being deleted; the sender retries
      // A range this node was removed from may have added it again: an uninitialized replica
      // (keeping the old term and vote) answers, and only a snapshot of a later membership than
      // the tombstone's initializes it (snapshotSink).
      if (!r) {
        const t = rm.message.type;
        const fromLeader = t === MessageType.App || t === MessageType.Heartbeat || t === MessageType.Snap;
        const waiting = this.creating.get(rm.rangeId);
        if (waiting) {
          if (waiting.length < 1024) waiting.push({ from: fromNode, rm });
        } else if (fromLeader && (this.opts.createReplicasOnDemand ?? true)) {
          // Messages that arrive while the replica is being created are stepped once it exists
          // (a snapshot, in particular, is not resent until the leader hears back).
          this.creating.set(rm.rangeId, [{ from: fromNode, rm }]);
          this.createReplica(rm.rangeId).catch((err: unknown) => this.fail(err as Error, `creating replica of range ${rm.rangeId}`));
        } else {
          this.log.debug({ rangeId: rm.rangeId, from: fromNode, type: t }, 'message for a range not hosted here');
        }
        continue;
      }
      if (rm.message.type === MessageType.Snap && rm.message.snapshot) {
        // A snapshot may only (re)define a range's bounds where no other range here lives: one
        // that overlaps a range this node has not split yet waits until it has.
        let d: StoredDescriptor;
        try {
          d = snapshotDescriptor(rm.rangeId, rm.message.snapshot.data);
        } catch (err) {
          this.log.warn({ rangeId: rm.rangeId, from: fromNode, err }, 'snapshot with an unreadable descriptor dropped');
          continue;
        }
        const other = this.overlapping(rm.rangeId, boundsOf(d));
        if (other) {
          this.log.error({ rangeId: rm.rangeId, from: fromNode, overlaps: other.rangeId }, 'snapshot overlaps a local range (after its payload was accepted): dropped');
          continue;
        }
      }
      if (rm.message.to !== this.opts.nodeId || rm.message.from !== fromNode) {
        this.log.warn({ rangeId: rm.rangeId, from: fromNode, msgFrom: rm.message.from, to: rm.message.to }, 'misaddressed raft message dropped');
        continue;
      }
      const quiesce = isQuiesceMessage(rm.message);
      // A leader's heartbeat wakes a quiet follower (the leader is ticking again); heartbeat
      // replies never wake a quiet leader (they ask nothing of it). Neither is activity: an idle
      // range keeps counting towards quiet.
      const t = rm.message.type;
      this.touch(r, !quiesce && t !== MessageType.HeartbeatResp, t !== MessageType.Heartbeat && t !== MessageType.HeartbeatResp);
      let msg = rm.message;
      if (!r.initialized && msg.type === MessageType.Heartbeat && msg.commit > r.storage.lastIndex()) {
        // A leader that has not applied this node's removal yet still counts the old replica's
        // log; the new, empty one must not be told to commit past what it holds.
        msg = { ...msg, commit: r.storage.lastIndex() };
      }
      try {
        r.rawNode.step(msg);
      } catch (err) {
        this.fail(err as Error, `stepping ${rm.message.type} from ${fromNode} on range ${rm.rangeId}`);
        return;
      }
      if ((t === MessageType.App || t === MessageType.Heartbeat || t === MessageType.Snap) && r.rawNode.basicStatus().leader === fromNode) {
        r.lastLeaderContactMs = Date.now();
      }
      if (quiesce && rm.message.type === MessageType.Heartbeat) {
        // The leader is going quiet: follow it if we hold everything it has.
        const st = r.rawNode.basicStatus();
        // Not while reads wait here: a quiet replica does not tick, so a read round whose answer
        // was lost would never be asked again.
        if (st.leader === fromNode && st.term === rm.message.term && r.storage.lastIndex() === rm.message.commit && r.pendingReads() === 0) {
          r.quiesced = true;
          r.quiescedLeader = fromNode;
        }
      }
    }
    this.schedule();
  }

  snapshotPayload(rangeId: number, message: Message): AsyncIterable<Uint8Array> {
    if (!message.snapshot) throw new TypeError('snapshotPayload: not a Snap message');
    const r = this.replica(rangeId);
    this.snapshotCandidates.add(r); // a fresh snapshot may be wanted
    this.touch(r, true);
    const p = r.snapshotPayload(message.snapshot, this.opts.snapshotChunkBytes ?? 1024 * 1024);
    this.schedule();
    return p;
  }

  snapshotSink(_fromNode: number, rangeId: number, message: Message): SnapshotSink {
    if (!message.snapshot) throw new TypeError('snapshotSink: not a Snap message');
    if (this.destroying.has(rangeId)) throw new SnapshotRefusedError(rangeId, 'its previous replica here is still being deleted');
    // A snapshot from before this node's removal would replay the removal; the sender makes a
    // fresh one when this one is refused (see unreachable()).
    const tomb = this.tombstones.get(rangeId);
    if (tomb && message.snapshot.metadata.index <= tomb.removedAtIndex) {
      throw new SnapshotRefusedError(rangeId, `this node was removed from the range at index ${tomb.removedAtIndex}; the snapshot at ${message.snapshot.metadata.index} is from before that`);
    }
    // Refused before any payload moves: the sender reports the snapshot failed and retries later.
    const bounds = boundsOf(snapshotDescriptor(rangeId, message.snapshot.data));
    const other = this.overlapping(rangeId, bounds);
    if (other) throw new SnapshotRefusedError(rangeId, `its bounds overlap range ${other.rangeId} here, which has not applied the split or removal that separates them yet`);
    this.pendingSnapshots.set(rangeId, { bounds, atMs: Date.now() });
    const sink = new StagingSink(this.engine, rangeId, message.snapshot.metadata.index);
    const abort = sink.abort.bind(sink);
    sink.abort = async (): Promise<void> => {
      if (this.pendingSnapshots.get(rangeId)?.bounds === bounds) this.pendingSnapshots.delete(rangeId);
      await abort();
    };
    return sink;
  }

  unreachable(toNode: number, messages: readonly RangeMessage[]): void {
    for (const rm of messages) {
      const r = this.replicas.get(rm.rangeId);
      if (!r) continue;
      this.touch(r, true);
      r.rawNode.reportUnreachable(toNode);
      if (rm.message.type === MessageType.Snap) {
        r.rawNode.reportSnapshot(toNode, false);
        // The receiver may have refused it as too old (a node added back after a removal): the
        // next attempt sends one taken now.
        if ((rm.message.snapshot?.metadata.index ?? 0) < r.appliedIndex) {
          r.wantFreshSnapshot();
          this.snapshotCandidates.add(r);
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The ready loop

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    const electionTicks = this.opts.electionTicks ?? 10;
    // A read round normally completes in one round trip; one that takes an election timeout lost
    // a message (or the leader), so it is asked again.
    const electionMs = (this.opts.tickMs ?? 100) * electionTicks;
    const quiesceAfter = this.opts.quiesceAfterTicks ?? 2 * electionTicks;
    this.ticks++;
    for (const r of this.replicas.values()) {
      if (r.quiesced) {
        // A quiet follower wakes when its leader's node falls silent (it may have died).
        const leader = r.quiescedLeader;
        // A quiet replica with reads waiting (none should be) wakes too: only ticks retry them.
        if (r.pendingReads() > 0 || (leader !== this.opts.nodeId && this.ticks - (this.lastHeardTick.get(leader) ?? 0) > electionTicks)) this.touch(r, true);
        else continue;
      }
      this.dirty.add(r);
      if (quiesceAfter > 0 && ++r.idleTicks >= quiesceAfter && r.initialized && r.pendingReads() === 0 && !r.hasPendingProposals()) {
        // Instead of this tick's heartbeat, the last one, telling the followers to go quiet too.
        if (r.rawNode.quiesceHeartbeats(QUIESCE_CONTEXT)) {
          r.quiesced = true;
          r.quiescedLeader = this.opts.nodeId;
          continue;
        }
      }
      r.rawNode.tick();
      r.retryStalledReads(now, electionMs);
      if (r.pendingReads() > 0) {
        this.logSlowReads(r, now, 2 * electionMs);
        r.expireReads(now, this.opts.readTimeoutMs ?? 4 * electionMs);
      }
      if (r.isLeader()) r.lastLeaderContactMs = now;
    }
    this.sendBeats();
    this.schedule();
  }

  /** Warns once per read round that has waited more than `afterMs`, with what the replica knows. */
  private logSlowReads(r: Replica, now: number, afterMs: number): void {
    const slow = r.slowReads(now, afterMs);
    if (slow.length === 0) return;
    const st = r.rawNode.status();
    const progress = st.progress ? Object.fromEntries([...st.progress].map(([id, p]) => [id, `${p.state}:${p.match}`])) : undefined;
    for (const s of slow) {
      this.log.warn(
        { rangeId: r.rangeId, ...s, applied: r.appliedIndex, commit: st.commit, lastIndex: r.storage.lastIndex(), term: st.term, state: st.state, leader: st.leader, progress },
        'slow linearizable read: still waiting',
      );
    }
  }

  /** One liveness beat to every node this node shares a range with, per heartbeat interval. */
  private sendBeats(): void {
    if (this.ticks % 10 === 1) {
      const peers = new Set<number>();
      for (const r of this.replicas.values()) {
        for (const id of r.confState.voters) peers.add(id);
        for (const id of r.confState.learners) peers.add(id);
      }
      peers.delete(this.opts.nodeId);
      this.beatPeers = [...peers];
    }
    if (this.ticks % (this.opts.heartbeatTicks ?? 1) !== 0 || this.beatPeers.length === 0) return;
    for (const to of this.beatPeers) {
      this.opts.transport.send(to, [{ rangeId: NODE_BEAT_RANGE_ID, message: makeMessage({ type: MessageType.Heartbeat, from: this.opts.nodeId, to }) }]);
    }
    this.opts.transport.flush();
  }

  private schedule(): void {
    if (this.loopRunning) {
      this.loopAgain = true;
      return;
    }
    if (this.loopScheduled || this.stopped || this.fatal) return;
    this.loopScheduled = true;
    setImmediate(() => {
      this.loopScheduled = false;
      this.loopIdle = this.runLoop();
    });
  }

  private async runLoop(): Promise<void> {
    if (this.loopRunning) return;
    this.loopRunning = true;
    try {
      do {
        this.loopAgain = false;
        while (await this.turn()) {
          // keep going while there is work
        }
      } while (this.loopAgain && !this.stopped);
    } catch (err) {
      this.fail(err as Error, 'ready loop');
    } finally {
      this.loopRunning = false;
    }
  }

  /** One turn: returns false when no replica had anything to do. */
  private async turn(): Promise<boolean> {
    if (this.stopped || this.fatal) return false;
    // Replicas found to be left out of their range (replica GC) go first, between two turns.
    for (const r of [...this.gcRequested]) {
      this.gcRequested.delete(r);
      if (this.replicas.get(r.rangeId) === r) await this.destroyReplica(r);
    }
    const work: Array<[Replica, ReturnType<Replica['rawNode']['ready']>]> = [];
    const candidates = [...this.dirty];
    this.dirty.clear();
    for (const r of candidates) {
      if (this.replicas.get(r.rangeId) === r && r.rawNode.hasReady()) work.push([r, r.rawNode.ready()]);
    }
    if (work.length === 0) {
      await this.maybeSnapshot();
      return false;
    }

    // 0. A leader's appends and heartbeats that vouch for nothing unpersisted leave now, so the
    //    followers' disks work while ours does (see Ready.earlyMessages).
    let early = false;
    for (const [r, rd] of work) {
      for (const m of rd.earlyMessages) {
        this.opts.transport.send(m.to, [{ rangeId: r.rangeId, message: m }]);
        early = true;
      }
    }
    if (early) this.opts.transport.flush();

    // 1. Persist and apply, in ONE batch for every range: the log, hard state and snapshot each
    //    Ready hands over, then the effects of its committed entries with the applied index.
    //    Synced when something durable changed (entries, snapshot, term or vote); a batch that
    //    only moves the commit and applied indexes needs no fsync (see the header).
    const batch = new WriteBatch();
    const callbacks: Array<() => void> = [];
    let sync = false;
    for (const [r, rd] of work) {
      await r.stagePersist(batch, rd);
      if (rd.mustSync) sync = true;
    }
    for (const [r, rd] of work) {
      if (rd.committedEntries.length > 0) {
        callbacks.push(...r.stageApply(batch, rd.committedEntries));
        this.snapshotCandidates.add(r);
      }
      if (rd.entries.length > 0 || rd.committedEntries.length > 0 || rd.snapshot) r.idleTicks = 0;
    }
    await this.engine.write(batch, { sync });
    for (const [r, rd] of work) {
      r.afterPersist();
      r.sm.batchWritten();
      if (rd.snapshot) this.pendingSnapshots.delete(r.rangeId);
    }
    if (this.splitsToOpen.length > 0) await this.openSplitRights();

    // 2. Speak.
    for (const [r, rd] of work) {
      for (const m of rd.messages) this.opts.transport.send(m.to, [{ rangeId: r.rangeId, message: m }]);
    }
    this.opts.transport.flush();

    // 3. Answer the proposals that were applied.
    for (const cb of callbacks) cb();

    // 4. Advance, release reads.
    for (const [r, rd] of work) {
      r.rawNode.advance(rd);
      r.afterReady(rd);
    }

    // 5. Replicas that applied their own removal go; the others may have more to do.
    for (const [r] of work) {
      if (r.removedSelf) await this.destroyReplica(r);
      else this.dirty.add(r);
    }


    await this.maybeSnapshot();
    return true;
  }

  /**
   * Removes a replica whose removal from the range it applied: a durable tombstone (and the
   * descriptor gone) first, in one synced write, so it is never loaded or recreated again; then
   * its Raft state, sessions and data (the data keys in its bounds are its own: ranges on a node
   * never overlap). A crash in between is finished at the next start.
   */
  private async destroyReplica(r: Replica): Promise<void> {
    this.destroying.add(r.rangeId);
    try {
      await this.destroyReplicaState(r);
    } finally {
      this.destroying.delete(r.rangeId);
    }
  }

  private async destroyReplicaState(r: Replica): Promise<void> {
    this.replicas.delete(r.rangeId);
    this.tombstones.set(r.rangeId, { removedAtIndex: r.appliedIndex });
    r.close(new RangeNotFoundError(r.rangeId));
    const b = new WriteBatch();
    const last = JSON.parse(encodeDescriptor(r.rangeId, r.sm.bounds).toString()) as StoredDescriptor;
    b.put(tombstoneKey(r.rangeId), Buffer.from(JSON.stringify({ ...last, removedAtIndex: r.appliedIndex })));
    b.del(rangeDescriptorKey(r.rangeId));
    b.del(installMarkerKey(r.rangeId));
    // The term and vote outlive the replica (commit 0: its log goes): if the range adds this node
    // again, the new replica must not vote twice in a term it already voted in.
    const st = r.rawNode.status();
    b.put(hardStateKey(r.rangeId), encodeHardState({ term: st.term, vote: st.vote, commit: 0 }));
    await this.engine.write(b, { sync: true });
    const bounds = r.sm.bounds;
    const keys = await this.engine.deleteRanges([
      ...groupKeysButHardState(r.rangeId),
      sessionKeyRange(r.rangeId),
      prefixRange(stagingKey(r.rangeId)),
      dataKeyRange(bounds.start, bounds.end, dataPrefixOf(r.rangeId)),
    ]);
    this.log.info({ rangeId: r.rangeId, applied: r.appliedIndex, keysDeleted: keys }, 'removed from the range: replica destroyed, tombstone kept');
  }

  /** Whether a replica of `rangeId` is here or being created (a leader's message asked for it). */
  hostsOrCreating(rangeId: number): boolean {
    return this.replicas.has(rangeId) || this.creating.has(rangeId);
  }

  /** Whether this node was removed from `rangeId` (and not added back since). */
  isTombstoned(rangeId: number): boolean {
    return this.tombstones.has(rangeId);
  }

  /** Log compaction, off the request path but inside the loop, where the database holds exactly the applied state. */
  private async maybeSnapshot(): Promise<void> {
    if (this.snapshotCandidates.size === 0) return;
    const candidates = [...this.snapshotCandidates];
    this.snapshotCandidates.clear();
    for (const r of candidates) {
      if (this.replicas.get(r.rangeId) !== r || !r.wantsSnapshot()) continue;
      const b = new WriteBatch();
      r.snapshotAndCompact(b);
      await this.engine.write(b, { sync: true });
      this.log.info({ rangeId: r.rangeId, index: r.appliedIndex, firstIndex: r.storage.firstIndex() }, 'snapshot taken, log compacted');
    }
  }

  private fail(err: Error, where: string): void {
    if (this.fatal) return;
    this.fatal = err;
    this.log.fatal({ err, where }, 'node failed: stopping all replicas (restart recovers from disk)');
    for (const r of this.replicas.values()) r.close(new NodeStoppedError());
  }

  /** The error that stopped the node, if any. */
  failure(): Error | undefined {
    return this.fatal;
  }

  /** Stops ticking, finishes the current ready-loop turn, fails pending waiters, closes the database. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.opts.transport.stop();
    await this.loopIdle;
    for (const r of this.replicas.values()) r.close(new NodeStoppedError());
    await this.engine.close();
  }
}

/** Every key of a group but its hard state (kept by a tombstone). */
function groupKeysButHardState(groupId: number): Array<{ gte: Buffer; lt: Buffer }> {
  const all = groupKeyRange(groupId);
  const hs = hardStateKey(groupId);
  return [
    { gte: all.gte, lt: hs },
    { gte: Buffer.concat([hs, Buffer.from([0])]), lt: all.lt },
  ];
}
