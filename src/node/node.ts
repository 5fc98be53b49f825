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
import { ConfChange, ConfChangeType, ConfState, Message, RaftLogger, bootstrapState } from '../raft';
import { CorruptDataError, Engine, RaftLogStorage, WriteBatch } from '../storage';
import {
  dataKeyRange,
  groupKeyRange,
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
import { MessageType } from '../raft';
import { Command, CommandResult } from './command';
import { NodeStoppedError, RangeNotFoundError, ServerBusyError } from './errors';
import { KvStateMachine, RangeBounds } from './kv-state-machine';
import { Replica, StoredDescriptor, encodeDescriptor, snapshotDescriptor } from './replica';

/** A range's descriptor as this node stores it (see replica.ts). */
export type LocalRangeDescriptor = StoredDescriptor;

export interface NodeOptions {
  readonly nodeId: number;
  readonly dataDir: string;
  /** Required when the data directory is new. */
  readonly clusterId?: string;
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
  /** Ranges this node was removed from (persisted): their replicas are never recreated here. */
  private readonly tombstones = new Set<number>();

  private constructor(
    readonly opts: NodeOptions,
    readonly engine: Engine,
    private readonly log: Logger,
  ) {}

  get nodeId(): number {
    return this.opts.nodeId;
  }

  static async open(opts: NodeOptions): Promise<Node> {
    const engine = await Engine.open({ dir: opts.dataDir, nodeId: opts.nodeId, clusterId: opts.clusterId });
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

  /** The address of a node: learned from membership changes, else from configuration. */
  addressOf(nodeId: number): string | undefined {
    return this.learnedAddresses.get(nodeId) ?? this.opts.staticAddresses?.get(nodeId);
  }

  private async loadReplicas(): Promise<void> {
    for await (const [k, v] of this.engine.db.iterator(peerAddressKeyRange())) {
      this.learnedAddresses.set(readU64(k, 1), v.toString('utf8'));
    }
    for await (const k of this.engine.db.keys(tombstoneKeyRange())) {
      const rangeId = readU64(k, 1);
      this.tombstones.add(rangeId);
      // A crash may have cut the clean-up after the tombstone was written: finish it (idempotent).
      await this.engine.deleteRanges([groupKeyRange(rangeId), sessionKeyRange(rangeId), prefixRange(stagingKey(rangeId))]);
    }
    const descs: LocalRangeDescriptor[] = [];
    for await (const [, v] of this.engine.db.iterator(rangeDescriptorKeyRange())) {
      descs.push(JSON.parse(v.toString()) as LocalRangeDescriptor);
    }
    // Bootstrap only a new data directory: a node removed from the first range keeps its tombstone.
    if (descs.length === 0 && this.opts.bootstrap && !this.tombstones.has(this.opts.bootstrap.rangeId)) {
      // A new cluster's first range: its membership goes into the log (see src/raft/bootstrap.ts),
      // written atomically with the range's descriptor.
      const d: LocalRangeDescriptor = { rangeId: this.opts.bootstrap.rangeId, startHex: '', endHex: '', epochVersion: 1 };
      const boot = bootstrapState(this.opts.bootstrap.voters);
      const storage = await RaftLogStorage.load(this.engine, d.rangeId);
      if (storage.lastIndex() !== 0) {
        throw new CorruptDataError(`range ${d.rangeId}`, 'raft log exists but the range descriptor is missing');
      }
      const b = new WriteBatch();
      storage.stageAppend(b, boot.entries);
      storage.stageHardState(b, boot.hardState);
      b.put(rangeDescriptorKey(d.rangeId), Buffer.from(JSON.stringify(d)));
      await this.engine.write(b);
      descs.push(d);
      this.log.info({ rangeId: d.rangeId, voters: this.opts.bootstrap.voters }, 'bootstrapped range');
    }
    for (const d of descs) await this.openReplica(d, true);
  }

  /**
   * Opens a replica. At node start (`recover`), first finishes an interrupted snapshot install and
   * drops stale staged payloads; a replica created on demand must keep what was just staged.
   */
  private async openReplica(d: LocalRangeDescriptor, recover: boolean): Promise<Replica> {
    let bounds: RangeBounds = {
      start: Buffer.from(d.startHex, 'hex'),
      end: Buffer.from(d.endHex, 'hex'),
      epochVersion: d.epochVersion,
      confVersion: d.confVersion ?? 0,
    };
    const recovered = recover ? await recoverSnapshotInstall(this.engine, d.rangeId, bounds) : undefined;
    if (recovered) {
      this.log.warn({ rangeId: d.rangeId, index: recovered.metadata.index }, 'finished a snapshot install that a crash interrupted');
      // The installed snapshot's descriptor is the range's from now on.
      bounds = { ...bounds, confVersion: snapshotDescriptor(d.rangeId, recovered.data).confVersion ?? bounds.confVersion };
      const b = new WriteBatch();
      b.put(rangeDescriptorKey(d.rangeId), encodeDescriptor(d.rangeId, bounds));
      await this.engine.write(b, { sync: true });
    }
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
      },
      storage,
      sm,
      this.engine,
    );
    replica.prepareSnapshotViewAtOpen();
    this.replicas.set(d.rangeId, replica);
    rlog.info({ applied: replica.appliedIndex, lastIndex: storage.lastIndex(), conf: replica.confState }, 'replica loaded');
    return replica;
  }

  /** A membership change that adds a node may carry its address (utf-8 host:port) as context. */
  private learnAddress(batch: WriteBatch, cc: ConfChange): void {
    if (cc.type === ConfChangeType.RemoveNode || cc.context.length === 0) return;
    const address = Buffer.from(cc.context).toString('utf8');
    this.learnedAddresses.set(cc.nodeId, address);
    batch.put(peerAddressKey(cc.nodeId), Buffer.from(address, 'utf8'));
  }

  /** Creates an empty replica for a range a leader told us about (we were added to its group). */
  private async createReplica(rangeId: number): Promise<void> {
    try {
      // TODO(multi-range): take the bounds from the range descriptor carried by the snapshot.
      const d: LocalRangeDescriptor = { rangeId, startHex: '', endHex: '', epochVersion: 1 };
      const b = new WriteBatch();
      b.put(rangeDescriptorKey(rangeId), Buffer.from(JSON.stringify(d)));
      await this.engine.write(b);
      await this.openReplica(d, false);
      this.log.info({ rangeId }, 'created an empty replica: a leader added this node to the range');
    } finally {
      const waiting = this.creating.get(rangeId) ?? [];
      this.creating.delete(rangeId);
      for (const { from, rm } of waiting) this.receive(from, [rm]);
    }
  }

  replica(rangeId: number): Replica {
    const r = this.replicas.get(rangeId);
    if (!r) throw new RangeNotFoundError(rangeId);
    return r;
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
    const p = this.replica(rangeId).propose(cmd);
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
    const p = this.replica(rangeId).proposeConfChange(cc);
    this.schedule();
    return p;
  }

  /** Asks the range's leader to hand leadership to `toNode`. */
  transferLeader(rangeId: number, toNode: number): void {
    this.checkRunning();
    this.replica(rangeId).rawNode.transferLeader(toNode);
    this.schedule();
  }

  /** Waits until reading local state of the range is linearizable; returns the applied index. */
  async readBarrier(rangeId: number): Promise<number> {
    this.checkRunning();
    const r = this.replica(rangeId);
    const max = this.opts.maxPendingProposals ?? 10_000;
    if (r.pendingReads() >= max) throw new ServerBusyError(`${r.pendingReads()} reads pending on range ${rangeId} (limit ${max})`);
    const p = r.readBarrier();
    this.schedule();
    return p;
  }

  // ---------------------------------------------------------------------------------------------
  // Transport

  receive(fromNode: number, messages: readonly RangeMessage[]): void {
    if (this.stopped) return;
    for (const rm of messages) {
      const r = this.replicas.get(rm.rangeId);
      if (!r && this.tombstones.has(rm.rangeId)) {
        this.log.debug({ rangeId: rm.rangeId, from: fromNode, type: rm.message.type }, 'message for a range this node was removed from');
        continue;
      }
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
      if (rm.message.to !== this.opts.nodeId || rm.message.from !== fromNode) {
        this.log.warn({ rangeId: rm.rangeId, from: fromNode, msgFrom: rm.message.from, to: rm.message.to }, 'misaddressed raft message dropped');
        continue;
      }
      try {
        r.rawNode.step(rm.message);
      } catch (err) {
        this.fail(err as Error, `stepping ${rm.message.type} from ${fromNode} on range ${rm.rangeId}`);
        return;
      }
    }
    this.schedule();
  }

  snapshotPayload(rangeId: number, message: Message): AsyncIterable<Uint8Array> {
    if (!message.snapshot) throw new TypeError('snapshotPayload: not a Snap message');
    const p = this.replica(rangeId).snapshotPayload(message.snapshot, this.opts.snapshotChunkBytes ?? 1024 * 1024);
    this.schedule(); // a fresh snapshot may be wanted
    return p;
  }

  snapshotSink(_fromNode: number, rangeId: number, message: Message): SnapshotSink {
    if (!message.snapshot) throw new TypeError('snapshotSink: not a Snap message');
    return new StagingSink(this.engine, rangeId, message.snapshot.metadata.index);
  }

  unreachable(toNode: number, messages: readonly RangeMessage[]): void {
    for (const rm of messages) {
      const r = this.replicas.get(rm.rangeId);
      if (!r) continue;
      r.rawNode.reportUnreachable(toNode);
      if (rm.message.type === MessageType.Snap) r.rawNode.reportSnapshot(toNode, false);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The ready loop

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    // A read round normally completes in one round trip; one that takes an election timeout lost
    // a message (or the leader), so it is asked again.
    const retryMs = (this.opts.tickMs ?? 100) * (this.opts.electionTicks ?? 10);
    for (const r of this.replicas.values()) {
      r.rawNode.tick();
      r.retryStalledReads(now, retryMs);
    }
    this.schedule();
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
    const work: Array<[Replica, ReturnType<Replica['rawNode']['ready']>]> = [];
    for (const r of this.replicas.values()) if (r.rawNode.hasReady()) work.push([r, r.rawNode.ready()]);
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
      if (rd.committedEntries.length > 0) callbacks.push(...r.stageApply(batch, rd.committedEntries));
    }
    await this.engine.write(batch, { sync });
    for (const [r] of work) {
      r.afterPersist();
      r.sm.batchWritten();
    }

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

    // 5. Replicas that applied their own removal go.
    for (const [r] of work) if (r.removedSelf) await this.destroyReplica(r);

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
    this.replicas.delete(r.rangeId);
    this.tombstones.add(r.rangeId);
    r.close(new RangeNotFoundError(r.rangeId));
    const b = new WriteBatch();
    b.put(tombstoneKey(r.rangeId), encodeDescriptor(r.rangeId, r.sm.bounds));
    b.del(rangeDescriptorKey(r.rangeId));
    b.del(installMarkerKey(r.rangeId));
    await this.engine.write(b, { sync: true });
    const bounds = r.sm.bounds;
    const keys = await this.engine.deleteRanges([
      groupKeyRange(r.rangeId),
      sessionKeyRange(r.rangeId),
      prefixRange(stagingKey(r.rangeId)),
      dataKeyRange(bounds.start, bounds.end),
    ]);
    this.log.info({ rangeId: r.rangeId, applied: r.appliedIndex, keysDeleted: keys }, 'removed from the range: replica destroyed, tombstone kept');
  }

  /** Whether a replica of `rangeId` is here or being created (a leader's message asked for it). */
  hostsOrCreating(rangeId: number): boolean {
    return this.replicas.has(rangeId) || this.creating.has(rangeId);
  }

  /** Whether this node was removed from `rangeId` (its replica will not come back here). */
  isTombstoned(rangeId: number): boolean {
    return this.tombstones.has(rangeId);
  }

  /** Log compaction, off the request path but inside the loop, where the database holds exactly the applied state. */
  private async maybeSnapshot(): Promise<void> {
    for (const r of this.replicas.values()) {
      if (!r.wantsSnapshot()) continue;
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
