// The gRPC implementation of the Transport seam (the internal rangekv.v1.Raft service).
//
// Sending. One long-lived client stream (SendMessages) per destination node, opened lazily on the
// first flush that has something for that node, on a channel of its own. flush() turns everything
// queued for a node since the last flush into RaftMessageBatches of at most maxBatchBytes
// (estimated upper bound of the encoded size) and writes them in order. Snap messages do not ride
// the stream: each goes through its own SendSnapshot call, in chunks, on a channel of its own (a
// separate TCP connection, so a large snapshot never holds up heartbeats behind it).
//
// Back-pressure: when the stream's write() returns false, further batches wait in a per-peer
// queue until 'drain' (coalesced into full batches meanwhile); past maxQueuedBatchesPerPeer
// waiting batches, a new batch is dropped and reported with handler.unreachable (Raft resends
// what it needs). Memory per peer is bounded by (16 batches in the gRPC stream's buffer +
// maxQueuedBatchesPerPeer) x maxBatchBytes.
//
// Failures. A batch counts as sent once gRPC has handed it to the HTTP/2 connection (its write
// callback ran); an OK status at the end of a stream means the peer read all of it. When a stream
// ends with an error, the batches not sent yet, and those waiting for 'drain', are reported with
// handler.unreachable; the channel is closed, and the next flush opens a fresh one, but not before
// an exponential backoff (with jitter) has passed: flushes during the backoff report their
// messages unreachable at once. Nothing reconnects on a timer. A batch already handed to a
// connection that then broke is lost without a report; Raft recovers it like any lost message:
// unreachable() is a hint, not an acknowledgement protocol. Keepalive pings turn a silent peer
// into a failed stream. Problems are logged at most once per peer per unreachableLogIntervalMs
// (with a count of what was suppressed).
//
// The handler is never called from inside send() or flush(): reports of unreachable peers found
// during a flush are delivered from a later macrotask.
//
// Receiving. The service is added to the server the owner gives us (the owner binds, starts and
// shuts it down; the same server carries the KV and Admin services; create it with
// raftServerOptions() so that its receive limit admits a full batch). Each incoming batch must
// carry our cluster id and our node id, otherwise the stream ends with FAILED_PRECONDITION and a
// warning is logged. SendSnapshot streams are reassembled in memory up to maxSnapshotBytes.
// SnapshotChunk has no cluster id field, so both calls also carry the cluster id and the node ids
// in request metadata (see CLUSTER_ID_METADATA_KEY), which the receiver checks for snapshots.
// stop() ends incoming streams (UNAVAILABLE) so that the owner's server can shut down gracefully.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MessageType } from '../raft';
import { RaftCodecError, SnapshotPayloadUnavailableError, SnapshotTooLargeError, TransportConfigError, TransportStateError } from './errors';
import {
  GRPC_COMMON_OPTIONS,
  RaftAckWire,
  RaftMessageBatchWire,
  RaftMessageWire,
  RaftServiceDefinition,
  SnapshotChunkWire,
  raftServiceDefinition,
} from './proto';
import {
  BATCH_ENVELOPE_BYTES,
  SnapshotAssembler,
  decodeRaftMessage,
  encodeBatch,
  encodeRaftMessage,
  estimateEncodedBytes,
  snapshotChunks,
} from './raft-codec';
import { OutboundQueues } from './outbound';
import type { TransportFailpoints } from './failpoint';
import type { RangeMessage, SnapshotSink, Transport, TransportHandler } from './transport';

const KIB = 1024;
const MIB = 1024 * KIB;

/** Request metadata carried by both calls (SnapshotChunk has no field for the cluster id). */
export const CLUSTER_ID_METADATA_KEY = 'rangekv-cluster-id';
export const FROM_NODE_METADATA_KEY = 'rangekv-from-node-id';
export const TO_NODE_METADATA_KEY = 'rangekv-to-node-id';
/**
 * Set on a SendSnapshot call whose chunks carry a streamed payload (TransportHandler
 * snapshotPayload/snapshotSink) after a header holding the whole Raft snapshot inline.
 */
export const SNAPSHOT_PAYLOAD_METADATA_KEY = 'rangekv-snapshot-payload';

/**
 * Room on the wire above the largest batch or chunk: a single Raft message larger than
 * maxBatchBytes is sent alone, and may use this slack.
 */
const WIRE_SLACK_BYTES = 1 * MIB;

export interface GrpcTransportOptions {
  /** This node's id (positive). */
  readonly nodeId: number;
  /** Batches from another cluster are refused. */
  readonly clusterId: string;
  /** The server the Raft service is added to; the caller binds, starts and shuts it down. */
  readonly server: grpc.Server;
  /** host:port of a node's gRPC server, or undefined when unknown. Called on every (re)connect. */
  readonly resolveAddress: (nodeId: number) => string | undefined;
  readonly logger: Logger;
  /** Upper bound of one RaftMessageBatch's encoded size, in bytes. Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /** Batches that may wait for one peer's stream to drain; more are dropped and reported. Default 64. */
  readonly maxQueuedBatchesPerPeer?: number;
  /** Data bytes per SnapshotChunk. Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /** Largest snapshot this node receives (and sends), in bytes. Default 512 MiB. */
  readonly maxSnapshotBytes?: number;
  /** Snapshots being sent to one peer at a time; more are reported unreachable. Default 2. */
  readonly maxConcurrentSnapshotsPerPeer?: number;
  /** Snapshots being received at a time, from all peers; more are refused. Default 4. */
  readonly maxIncomingSnapshots?: number;
  /** Deadline of one snapshot send, in milliseconds. Default 10 minutes. */
  readonly snapshotTimeoutMs?: number;
  /** HTTP/2 keepalive ping interval on client channels, in milliseconds. Default 10 s. */
  readonly keepaliveTimeMs?: number;
  /** A keepalive ping unanswered this long closes the connection, in milliseconds. Default 5 s. */
  readonly keepaliveTimeoutMs?: number;
  /** First reconnect backoff after a stream failure, in milliseconds. Default 100. */
  readonly reconnectBackoffInitialMs?: number;
  /** Reconnect backoff cap, in milliseconds. Default 5 s. */
  readonly reconnectBackoffMaxMs?: number;
  /** At most one warning per peer (and per problem on the receiving side) this often, in milliseconds. Default 5 s. */
  readonly unreachableLogIntervalMs?: number;
  /** How long stop() waits for outgoing streams to end cleanly before cancelling them, in milliseconds. Default 1 s. */
  readonly stopGraceMs?: number;
  /** Fault injection for tests (kvd --failpoints): delays and drops outgoing messages. Default none. */
  readonly failpoints?: TransportFailpoints;
}

type ResolvedOptions = { -readonly [K in keyof Omit<GrpcTransportOptions, 'server' | 'resolveAddress' | 'logger' | 'failpoints'>]-?: NonNullable<GrpcTransportOptions[K]> };

const DEFAULTS: Omit<ResolvedOptions, 'nodeId' | 'clusterId'> = {
  maxBatchBytes: 4 * MIB,
  maxQueuedBatchesPerPeer: 64,
  snapshotChunkBytes: 1 * MIB,
  maxSnapshotBytes: 512 * MIB,
  maxConcurrentSnapshotsPerPeer: 2,
  maxIncomingSnapshots: 4,
  snapshotTimeoutMs: 10 * 60_000,
  keepaliveTimeMs: 10_000,
  keepaliveTimeoutMs: 5_000,
  reconnectBackoffInitialMs: 100,
  reconnectBackoffMaxMs: 5_000,
  unreachableLogIntervalMs: 5_000,
  stopGraceMs: 1_000,
};

function resolveOptions(o: GrpcTransportOptions): ResolvedOptions {
  const r: ResolvedOptions = { ...DEFAULTS, nodeId: o.nodeId, clusterId: o.clusterId };
  for (const key of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
    const v = o[key];
    if (v === undefined) continue;
    if (!(Number.isSafeInteger(v) && v > 0)) throw new TransportConfigError(key, `must be a positive integer, got ${String(v)}`);
    r[key] = v;
  }
  if (!(Number.isSafeInteger(o.nodeId) && o.nodeId > 0)) {
    throw new TransportConfigError('nodeId', `must be a positive integer, got ${String(o.nodeId)}`);
  }
  if (typeof o.clusterId !== 'string' || o.clusterId.length === 0) {
    throw new TransportConfigError('clusterId', 'must be a non-empty string');
  }
  if (r.reconnectBackoffMaxMs < r.reconnectBackoffInitialMs) {
    throw new TransportConfigError('reconnectBackoffMaxMs', `must be at least reconnectBackoffInitialMs (${r.reconnectBackoffInitialMs})`);
  }
  return r;
}

/** The largest gRPC message the transport sends: a full batch or chunk, plus slack. */
export function maxWireMessageBytes(maxBatchBytes = DEFAULTS.maxBatchBytes, snapshotChunkBytes = DEFAULTS.snapshotChunkBytes): number {
  return Math.max(maxBatchBytes, snapshotChunkBytes) + WIRE_SLACK_BYTES;
}

/**
 * Options for the grpc.Server that carries the Raft service. Its receive limit must admit the
 * transport's largest message (gRPC's default, 4 MiB, is below a full default batch). The limit
 * applies to every service on that server.
 */
export function raftServerOptions(
  opts: { maxBatchBytes?: number; snapshotChunkBytes?: number; keepaliveTimeMs?: number; keepaliveTimeoutMs?: number } = {},
): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': maxWireMessageBytes(opts.maxBatchBytes, opts.snapshotChunkBytes),
    'grpc.keepalive_time_ms': opts.keepaliveTimeMs ?? DEFAULTS.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs ?? DEFAULTS.keepaliveTimeoutMs,
  };
}

/** A Raft message batch on its way to one peer, with the messages it carries (for reporting). */
interface OutgoingBatch {
  readonly wires: RaftMessageWire[];
  readonly messages: RangeMessage[];
  /** Estimated encoded size, envelope included. */
  bytes: number;
}

/** One SendMessages call to a peer, on a channel of its own (closed with the call). */
class OutgoingStream {
  call: grpc.ClientWritableStream<RaftMessageBatchWire> | undefined;
  /** Written batches whose write callback has not run yet: not known to have left. */
  readonly unsent = new Map<number, readonly RangeMessage[]>();
  /** Batches waiting for 'drain', in order. */
  readonly waiting: OutgoingBatch[] = [];
  nextSeq = 0;
  blocked = false;
  closed = false;
  /** A batch has been handed to the connection: the peer was reachable. */
  carried = false;
  ended: Promise<void>;
  private resolveEnded!: () => void;

  constructor(
    readonly client: grpc.Client,
    readonly address: string,
    readonly openedAtMs: number,
  ) {
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
  }

  markEnded(): void {
    this.resolveEnded();
  }
}

/** One SendSnapshot call in progress. */
interface OutgoingSnapshot {
  readonly call: grpc.ClientWritableStream<SnapshotChunkWire>;
  readonly client: grpc.Client;
}

/** Per-destination state. */
class PeerLink {
  /** The current stream. */
  stream: OutgoingStream | undefined;
  /** Streams ended gracefully after an address change, until their status arrives. */
  readonly retiring = new Set<OutgoingStream>();
  /** Current backoff, 0 when the last stream did not fail. */
  backoffMs = 0;
  /** No new stream before this time (Date.now() ms). */
  retryAtMs = 0;
  readonly snapshots = new Set<OutgoingSnapshot>();

  constructor(readonly nodeId: number) {}
}

/** Logs a problem at most once per key per interval, counting what it suppressed. */
class RateLimitedLog {
  private readonly last = new Map<string, { atMs: number; suppressed: number }>();
  /** A bound on the keys remembered (keys come from peers' claims). */
  private static readonly MAX_KEYS = 1024;

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    this.write('warn', key, fields, msg);
  }

  error(key: string, fields: Record<string, unknown>, msg: string): void {
    this.write('error', key, fields, msg);
  }

  private write(level: 'warn' | 'error', key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const entry = this.last.get(key);
    if (entry && now - entry.atMs < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    if (!entry && this.last.size >= RateLimitedLog.MAX_KEYS) this.last.clear();
    this.log[level]({ ...fields, suppressed: entry?.suppressed ?? 0 }, msg);
    this.last.set(key, { atMs: now, suppressed: 0 });
  }

  /** Forgets the key, so that the next problem is logged at once; true when there was one. */
  clear(key: string): boolean {
    return this.last.delete(key);
  }
}

/** An incoming call of either kind, so that stop() can end it. */
interface IncomingCall {
  finish(error?: Partial<grpc.StatusObject>): void;
}

function errorDetails(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class GrpcTransport implements Transport {
  private readonly opts: ResolvedOptions;
  private readonly server: grpc.Server;
  private readonly resolveAddress: (nodeId: number) => string | undefined;
  private readonly log: Logger;
  private readonly problems: RateLimitedLog;
  private readonly service: RaftServiceDefinition;
  private readonly wireLimitBytes: number;
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly failpoints: TransportFailpoints | undefined;
  /** Batches held back by the failpoint's delay (cleared by stop()). */
  private readonly delayed = new Set<NodeJS.Timeout>();

  private handler: TransportHandler | undefined;
  private started = false;
  private stopped = false;
  private readonly outbound = new OutboundQueues();
  private readonly links = new Map<number, PeerLink>();
  private readonly incoming = new Set<IncomingCall>();
  private incomingSnapshots = 0;

  constructor(options: GrpcTransportOptions) {
    this.opts = resolveOptions(options);
    this.server = options.server;
    this.resolveAddress = options.resolveAddress;
    this.failpoints = options.failpoints;
    this.log = options.logger.child({ component: 'raft-transport', node: this.opts.nodeId });
    this.problems = new RateLimitedLog(this.log, this.opts.unreachableLogIntervalMs);
    this.service = raftServiceDefinition();
    this.wireLimitBytes = maxWireMessageBytes(this.opts.maxBatchBytes, this.opts.snapshotChunkBytes);
    this.channelOptions = {
      ...GRPC_COMMON_OPTIONS,
      'grpc.keepalive_time_ms': this.opts.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': this.opts.keepaliveTimeoutMs,
      'grpc.max_send_message_length': this.wireLimitBytes,
      'grpc.max_receive_message_length': 64 * KIB,
      'grpc.initial_reconnect_backoff_ms': this.opts.reconnectBackoffInitialMs,
      'grpc.max_reconnect_backoff_ms': this.opts.reconnectBackoffMaxMs,
      // Each channel gets its own connection: the snapshot channels must not share (and stall)
      // the connection of the message stream, and a closed channel must take its connection along.
      'grpc.use_local_subchannel_pool': 1,
      // The transport decides about retries; gRPC's would buffer messages behind our back.
      'grpc.enable_retries': 0,
    };
  }

  get nodeId(): number {
    return this.opts.nodeId;
  }

  async start(handler: TransportHandler): Promise<void> {
    if (this.stopped) throw new TransportStateError('start() after stop()');
    if (this.started) throw new TransportStateError('start() called twice');
    this.started = true;
    this.handler = handler;
    const impl: grpc.UntypedServiceImplementation = {
      SendMessages: (call: grpc.ServerReadableStream<RaftMessageBatchWire, RaftAckWire>, cb: grpc.sendUnaryData<RaftAckWire>) =>
        this.handleSendMessages(call, cb),
      SendSnapshot: (call: grpc.ServerReadableStream<SnapshotChunkWire, RaftAckWire>, cb: grpc.sendUnaryData<RaftAckWire>) =>
        this.handleSendSnapshot(call, cb),
    };
    this.server.addService(this.service, impl);
    this.log.debug('raft service added');
  }

  send(toNode: number, messages: readonly RangeMessage[]): void {
    if (this.stopped) return;
    this.outbound.add(toNode, messages);
  }

  flush(): void {
    const queued = this.outbound.take();
    if (this.stopped) return;
    for (const [to, msgs] of queued) {
      const plan = this.failpoints?.plan(to, msgs);
      if (plan === undefined) this.flushPeer(to, msgs);
      else if (plan.delayMs === 0) this.flushPeer(to, plan.messages);
      else {
        const timer = setTimeout(() => {
          this.delayed.delete(timer);
          if (!this.stopped) this.flushPeer(to, plan.messages);
        }, plan.delayMs);
        this.delayed.add(timer);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.handler = undefined;
    this.outbound.clear();
    for (const timer of this.delayed) clearTimeout(timer);
    this.delayed.clear();

    for (const call of [...this.incoming]) {
      call.finish({ code: grpc.status.UNAVAILABLE, details: `raft transport of node ${this.opts.nodeId} stopped` });
    }

    const ending: Array<Promise<void>> = [];
    for (const link of this.links.values()) {
      for (const s of link.snapshots) s.call.cancel();
      const stream = link.stream;
      if (stream?.call && !stream.closed) {
        stream.waiting.length = 0;
        stream.call.end();
        ending.push(stream.ended);
      }
    }
    if (ending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(ending),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.opts.stopGraceMs);
        }),
      ]);
      if (timer) clearTimeout(timer);
    }
    for (const link of this.links.values()) {
      for (const stream of [link.stream, ...link.retiring]) {
        if (!stream) continue;
        stream.call?.cancel();
        stream.client.close();
      }
      for (const s of link.snapshots) s.client.close();
    }
    this.links.clear();
    this.log.debug('raft transport stopped');
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  private link(nodeId: number): PeerLink {
    let l = this.links.get(nodeId);
    if (!l) {
      l = new PeerLink(nodeId);
      this.links.set(nodeId, l);
    }
    return l;
  }

  /** Reports messages as undeliverable, from a later macrotask (never inside send/flush). */
  private reportUnreachable(toNode: number, messages: readonly RangeMessage[]): void {
    if (messages.length === 0) return;
    setImmediate(() => {
      const h = this.handler;
      if (!h) return;
      try {
        h.unreachable(toNode, messages);
      } catch (err) {
        this.log.error({ err, peer: toNode }, 'transport handler threw in unreachable()');
      }
    });
  }

  private flushPeer(to: number, msgs: readonly RangeMessage[]): void {
    const link = this.link(to);
    const regular: RangeMessage[] = [];
    for (const rm of msgs) {
      if (rm.message.type === MessageType.Snap) this.sendSnapshot(link, rm);
      else regular.push(rm);
    }
    if (regular.length === 0) return;

    const now = Date.now();
    if (link.stream === undefined && now < link.retryAtMs) {
      this.reportUnreachable(to, regular);
      this.problems.warn(`peer:${to}`, { peer: to, retryInMs: link.retryAtMs - now }, 'raft peer unreachable: backing off');
      return;
    }
    const stream = this.ensureStream(link);
    if (!stream) {
      this.reportUnreachable(to, regular);
      return;
    }
    for (const batch of this.cutBatches(to, regular)) this.enqueue(link, stream, batch);
  }

  /** Cuts messages into batches whose estimated encoded size stays within maxBatchBytes. */
  private cutBatches(to: number, msgs: readonly RangeMessage[]): OutgoingBatch[] {
    const batches: OutgoingBatch[] = [];
    let wires: RaftMessageWire[] = [];
    let carried: RangeMessage[] = [];
    let bytes = BATCH_ENVELOPE_BYTES;
    const cut = (): void => {
      if (wires.length === 0) return;
      batches.push({ wires, messages: carried, bytes });
      wires = [];
      carried = [];
      bytes = BATCH_ENVELOPE_BYTES;
    };
    for (const rm of msgs) {
      const size = estimateEncodedBytes(rm.message);
      if (size + BATCH_ENVELOPE_BYTES > this.wireLimitBytes) {
        this.problems.error(
          `oversized:${to}`,
          { peer: to, rangeId: rm.rangeId, type: rm.message.type, estimatedBytes: size, limitBytes: this.wireLimitBytes },
          'raft message larger than the transport carries: dropped (lower raft maxSizePerMsgBytes or raise maxBatchBytes)',
        );
        this.reportUnreachable(to, [rm]);
        continue;
      }
      let wire: RaftMessageWire;
      try {
        wire = encodeRaftMessage(rm);
      } catch (err) {
        this.problems.error(`encode:${to}`, { err, peer: to, rangeId: rm.rangeId, type: rm.message.type }, 'raft message cannot be encoded: dropped');
        this.reportUnreachable(to, [rm]);
        continue;
      }
      if (bytes + size > this.opts.maxBatchBytes) cut();
      wires.push(wire);
      carried.push(rm);
      bytes += size;
    }
    cut();
    return batches;
  }

  private enqueue(link: PeerLink, stream: OutgoingStream, batch: OutgoingBatch): void {
    if (!stream.blocked) {
      this.write(link, stream, batch);
      return;
    }
    // While the peer is slow, what waits is coalesced into full batches: fewer, larger writes.
    const last = stream.waiting[stream.waiting.length - 1];
    if (last && last.bytes + batch.bytes - BATCH_ENVELOPE_BYTES <= this.opts.maxBatchBytes) {
      last.wires.push(...batch.wires);
      last.messages.push(...batch.messages);
      last.bytes += batch.bytes - BATCH_ENVELOPE_BYTES;
      return;
    }
    if (stream.waiting.length >= this.opts.maxQueuedBatchesPerPeer) {
      this.reportUnreachable(link.nodeId, batch.messages);
      this.problems.warn(
        `peer:${link.nodeId}`,
        { peer: link.nodeId, waitingBatches: stream.waiting.length },
        'raft peer not draining: batch dropped',
      );
      return;
    }
    stream.waiting.push(batch);
  }

  private write(link: PeerLink, stream: OutgoingStream, batch: OutgoingBatch): void {
    const call = stream.call;
    if (!call || stream.closed) {
      this.reportUnreachable(link.nodeId, batch.messages);
      return;
    }
    const seq = stream.nextSeq++;
    stream.unsent.set(seq, batch.messages);
    const wire = encodeBatch(this.opts.nodeId, link.nodeId, this.opts.clusterId, batch.wires);
    const more = call.write(wire, (err: Error | null | undefined) => {
      if (err) return; // the stream's callback reports what was not sent
      stream.unsent.delete(seq);
      if (!stream.carried) {
        stream.carried = true;
        if (this.problems.clear(`peer:${link.nodeId}`)) this.log.info({ peer: link.nodeId, address: stream.address }, 'raft peer reachable again');
      }
    });
    if (!more) stream.blocked = true;
  }

  private onDrain(link: PeerLink, stream: OutgoingStream): void {
    if (stream.closed) return;
    stream.blocked = false;
    while (!stream.blocked && !stream.closed) {
      const next = stream.waiting.shift();
      if (!next) break;
      this.write(link, stream, next);
    }
  }

  /** The peer's address, or undefined when it is unknown. */
  private addressOf(link: PeerLink): string | undefined {
    try {
      const address = this.resolveAddress(link.nodeId);
      return address === '' ? undefined : address;
    } catch (err) {
      this.problems.warn(`resolve:${link.nodeId}`, { err, peer: link.nodeId }, 'resolveAddress threw');
      return undefined;
    }
  }

  private warnNoAddress(nodeId: number): void {
    this.problems.warn(`peer:${nodeId}`, { peer: nodeId }, 'raft peer has no known address: messages dropped');
  }

  private callMetadata(toNode: number): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set(CLUSTER_ID_METADATA_KEY, this.opts.clusterId);
    md.set(FROM_NODE_METADATA_KEY, String(this.opts.nodeId));
    md.set(TO_NODE_METADATA_KEY, String(toNode));
    return md;
  }

  /**
   * The stream to the peer's current address, opened when needed; undefined when the address is
   * unknown. A stream to an address the peer no longer has is ended gracefully (what it carries
   * still arrives) and replaced.
   */
  private ensureStream(link: PeerLink): OutgoingStream | undefined {
    const address = this.addressOf(link);
    const current = link.stream;
    if (current && !current.closed) {
      if (current.address === address || address === undefined) return current;
      this.log.info({ peer: link.nodeId, from: current.address, to: address }, 'raft peer address changed: reconnecting');
      this.retire(link, current);
    }
    if (address === undefined) {
      this.warnNoAddress(link.nodeId);
      return undefined;
    }
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), this.channelOptions);
    const method = this.service.SendMessages;
    const stream = new OutgoingStream(client, address, Date.now());
    // Current before the call exists: if gRPC reported the end synchronously, onStreamClosed
    // would find it and unset it.
    link.stream = stream;
    const call = client.makeClientStreamRequest<RaftMessageBatchWire, RaftAckWire>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      this.callMetadata(link.nodeId),
      {},
      (err: grpc.ServiceError | null) => this.onStreamClosed(link, stream, err),
    );
    stream.call = call;
    call.on('drain', () => this.onDrain(link, stream));
    // Status arrives through the callback; an 'error' event would only repeat it.
    call.on('error', (err: Error) => this.log.debug({ err, peer: link.nodeId }, 'raft stream error event'));
    return stream;
  }

  /** Ends a stream gracefully; it is no longer the peer's current stream. */
  private retire(link: PeerLink, stream: OutgoingStream): void {
    if (link.stream === stream) link.stream = undefined;
    link.retiring.add(stream);
    const waiting = stream.waiting.splice(0).flatMap((b) => b.messages);
    this.reportUnreachable(link.nodeId, waiting);
    stream.call?.end();
  }

  private onStreamClosed(link: PeerLink, stream: OutgoingStream, err: grpc.ServiceError | null): void {
    if (stream.closed) return;
    stream.closed = true;
    stream.markEnded();
    stream.client.close();
    link.retiring.delete(stream);
    const wasCurrent = link.stream === stream;
    if (wasCurrent) link.stream = undefined;
    // An OK status means the peer read the stream to its end: everything written arrived.
    const lost: RangeMessage[] = [];
    if (err !== null) for (const msgs of stream.unsent.values()) lost.push(...msgs);
    for (const b of stream.waiting) lost.push(...b.messages);
    stream.unsent.clear();
    stream.waiting.length = 0;
    if (this.stopped) return;
    this.reportUnreachable(link.nodeId, lost);
    if (!wasCurrent || err === null) return;

    // The next stream gets a fresh channel (this one is closed): it connects at once, after our
    // own backoff rather than gRPC's.
    const now = Date.now();
    const refused = err.code === grpc.status.FAILED_PRECONDITION || err.code === grpc.status.INVALID_ARGUMENT;
    const healthy = stream.carried && now - stream.openedAtMs >= this.opts.reconnectBackoffMaxMs;
    if (refused) link.backoffMs = this.opts.reconnectBackoffMaxMs;
    else if (healthy || link.backoffMs === 0) link.backoffMs = this.opts.reconnectBackoffInitialMs;
    else link.backoffMs = Math.min(this.opts.reconnectBackoffMaxMs, link.backoffMs * 2);
    // Jitter (up to +20%) so that nodes do not reconnect in lockstep.
    link.retryAtMs = now + Math.round(link.backoffMs * (1 + 0.2 * Math.random()));
    this.problems.warn(
      `peer:${link.nodeId}`,
      {
        peer: link.nodeId,
        address: stream.address,
        code: err.code,
        details: err.details,
        lostMessages: lost.length,
        retryInMs: link.retryAtMs - now,
      },
      'raft stream to peer closed',
    );
  }

  private sendSnapshot(link: PeerLink, rm: RangeMessage): void {
    const to = link.nodeId;
    const snapshot = rm.message.snapshot;
    if (!snapshot) {
      this.log.error({ peer: to, rangeId: rm.rangeId }, 'Snap message without a snapshot: dropped');
      this.reportUnreachable(to, [rm]);
      return;
    }
    const payload = this.handler?.snapshotPayload?.bind(this.handler);
    if (!payload && snapshot.data.length > this.opts.maxSnapshotBytes) {
      const err = new SnapshotTooLargeError(snapshot.data.length, this.opts.maxSnapshotBytes, rm.rangeId);
      this.log.error({ err, peer: to, rangeId: rm.rangeId }, 'snapshot not sent');
      this.reportUnreachable(to, [rm]);
      return;
    }
    if (link.snapshots.size >= this.opts.maxConcurrentSnapshotsPerPeer) {
      this.problems.warn(
        `snapshot:${to}`,
        { peer: to, rangeId: rm.rangeId, inFlight: link.snapshots.size },
        'too many snapshots in flight to peer: snapshot deferred',
      );
      this.reportUnreachable(to, [rm]);
      return;
    }
    const address = this.addressOf(link);
    if (address === undefined) {
      this.warnNoAddress(to);
      this.reportUnreachable(to, [rm]);
      return;
    }
    let chunks: Iterator<SnapshotChunkWire> | AsyncIterator<SnapshotChunkWire>;
    /** The payload being read, released (return()) however the transfer ends. */
    let source: AsyncIterator<Uint8Array> | undefined;
    try {
      if (payload) {
        source = payload(rm.rangeId, rm.message)[Symbol.asyncIterator]();
        chunks = this.payloadChunks(rm, source);
      } else {
        chunks = snapshotChunks(rm, this.opts.snapshotChunkBytes);
      }
    } catch (err) {
      this.reportUnreachable(to, [rm]);
      if (err instanceof SnapshotPayloadUnavailableError) {
        // Normal while snapshots are replaced: Raft sends the newer one once it is ready.
        this.log.debug({ peer: to, rangeId: rm.rangeId, index: snapshot.metadata.index }, 'snapshot payload not available yet: deferred');
        return;
      }
      this.log.error({ err, peer: to, rangeId: rm.rangeId }, 'snapshot cannot be encoded: dropped');
      return;
    }
    // A channel (and connection) of its own, closed when the snapshot is done.
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), this.channelOptions);
    const method = this.service.SendSnapshot;
    const startedAtMs = Date.now();
    let finished = false;
    let sentBytes = 0;
    let outgoing: OutgoingSnapshot | undefined;
    const finish = (err: grpc.ServiceError | null): void => {
      if (finished) return;
      finished = true;
      if (outgoing) link.snapshots.delete(outgoing);
      client.close();
      source?.return?.().catch((e: unknown) => this.log.debug({ err: e, rangeId: rm.rangeId }, 'snapshot payload release failed'));
      if (err) {
        if (this.stopped) return;
        this.reportUnreachable(to, [rm]);
        this.problems.warn(
          `snapshot:${to}`,
          { peer: to, rangeId: rm.rangeId, index: snapshot.metadata.index, code: err.code, details: err.details },
          'snapshot send failed',
        );
        return;
      }
      this.log.info(
        { peer: to, rangeId: rm.rangeId, index: snapshot.metadata.index, bytes: sentBytes, ms: Date.now() - startedAtMs },
        'snapshot sent',
      );
    };
    const metadata = this.callMetadata(to);
    if (payload) metadata.set(SNAPSHOT_PAYLOAD_METADATA_KEY, '1');
    const call = client.makeClientStreamRequest<SnapshotChunkWire, RaftAckWire>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      metadata,
      { deadline: Date.now() + this.opts.snapshotTimeoutMs },
      (err: grpc.ServiceError | null) => finish(err),
    );
    outgoing = { call, client };
    if (!finished) link.snapshots.add(outgoing);
    call.on('error', (err: Error) => this.log.debug({ err, peer: to }, 'snapshot stream error event'));
    // Chunks are pulled one at a time (the payload may be read from disk as it goes), and the
    // next one only once the stream has room: memory stays bounded by a chunk or two.
    const pump = async (): Promise<void> => {
      while (!finished) {
        const next = await chunks.next();
        if (finished) return;
        if (next.done) {
          call.end();
          return;
        }
        sentBytes += next.value.data.length;
        if (sentBytes > this.opts.maxSnapshotBytes) {
          throw new SnapshotTooLargeError(sentBytes, this.opts.maxSnapshotBytes, rm.rangeId);
        }
        if (!call.write(next.value)) await new Promise<void>((resolve) => call.once('drain', () => resolve()));
      }
    };
    pump().catch((err: unknown) => {
      // After the transfer ended (refused, failed, stopping) a read cut short is expected.
      if (finished) {
        this.log.debug({ err, peer: to, rangeId: rm.rangeId }, 'snapshot payload read ended with the transfer');
        return;
      }
      this.log.error({ err, peer: to, rangeId: rm.rangeId }, 'snapshot payload failed: transfer cancelled');
      call.cancel();
      finish({ code: grpc.status.CANCELLED, details: errorDetails(err), metadata: new grpc.Metadata(), name: 'Error', message: errorDetails(err) });
    });
  }

  /** A header with the whole Raft snapshot inline, then the payload re-cut to the chunk size, then an empty last chunk. */
  private async *payloadChunks(rm: RangeMessage, payload: AsyncIterator<Uint8Array>): AsyncGenerator<SnapshotChunkWire> {
    yield { header: encodeRaftMessage(rm, { inlineSnapshotData: true }), data: Buffer.alloc(0), last: false };
    const max = this.opts.snapshotChunkBytes;
    for (;;) {
      const next = await payload.next();
      if (next.done) break;
      const piece = next.value;
      const b = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      for (let o = 0; o < b.length; o += max) yield { header: null, data: b.subarray(o, Math.min(o + max, b.length)), last: false };
    }
    yield { header: null, data: Buffer.alloc(0), last: true };
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  /** Wraps a server call so that it is answered exactly once and stop() can end it. */
  private trackIncoming(cb: grpc.sendUnaryData<RaftAckWire>, onFinish?: () => void): IncomingCall & { done: boolean } {
    const entry = {
      done: false,
      finish: (error?: Partial<grpc.StatusObject>): void => {
        if (entry.done) return;
        entry.done = true;
        this.incoming.delete(entry);
        onFinish?.();
        if (error) cb(error);
        else cb(null, {});
      },
    };
    this.incoming.add(entry);
    return entry;
  }

  private refuseIfStopped(cb: grpc.sendUnaryData<RaftAckWire>): boolean {
    if (this.handler && !this.stopped) return false;
    cb({ code: grpc.status.UNAVAILABLE, details: `raft transport of node ${this.opts.nodeId} is not running` });
    return true;
  }

  private handleSendMessages(
    call: grpc.ServerReadableStream<RaftMessageBatchWire, RaftAckWire>,
    cb: grpc.sendUnaryData<RaftAckWire>,
  ): void {
    if (this.refuseIfStopped(cb)) return;
    const entry = this.trackIncoming(cb);
    const peer = call.getPeer();
    call.on('data', (batch: RaftMessageBatchWire) => {
      if (entry.done) return;
      if (batch.clusterId !== this.opts.clusterId) {
        this.problems.warn(
          `cluster:${batch.fromNodeId}`,
          { from: batch.fromNodeId, peer, clusterId: batch.clusterId, expected: this.opts.clusterId },
          'raft batch from another cluster refused',
        );
        entry.finish({
          code: grpc.status.FAILED_PRECONDITION,
          details: `cluster id mismatch: node ${this.opts.nodeId} belongs to cluster "${this.opts.clusterId}", the batch to "${batch.clusterId}"`,
        });
        return;
      }
      if (batch.toNodeId !== this.opts.nodeId) {
        this.problems.warn(
          `misrouted:${batch.fromNodeId}`,
          { from: batch.fromNodeId, peer, to: batch.toNodeId },
          'raft batch for another node refused (stale address?)',
        );
        entry.finish({
          code: grpc.status.FAILED_PRECONDITION,
          details: `node id mismatch: this is node ${this.opts.nodeId}, the batch is for node ${batch.toNodeId}`,
        });
        return;
      }
      let msgs: RangeMessage[];
      try {
        if (!(Number.isSafeInteger(batch.fromNodeId) && batch.fromNodeId > 0)) {
          throw new RaftCodecError('from_node_id', `must be a positive node id, got ${String(batch.fromNodeId)}`);
        }
        msgs = batch.messages.map((w) => decodeRaftMessage(w));
      } catch (err) {
        this.problems.warn(`invalid:${batch.fromNodeId}`, { from: batch.fromNodeId, peer, err }, 'invalid raft batch refused');
        entry.finish({ code: grpc.status.INVALID_ARGUMENT, details: `invalid raft batch: ${errorDetails(err)}` });
        return;
      }
      this.deliver(batch.fromNodeId, msgs);
    });
    call.on('end', () => entry.finish());
    call.on('error', (err: Error) => {
      this.log.debug({ err, peer }, 'incoming raft stream failed');
      entry.finish({ code: grpc.status.CANCELLED, details: errorDetails(err) });
    });
    call.on('cancelled', () => entry.finish({ code: grpc.status.CANCELLED, details: 'cancelled by the client' }));
  }

  private handleSendSnapshot(
    call: grpc.ServerReadableStream<SnapshotChunkWire, RaftAckWire>,
    cb: grpc.sendUnaryData<RaftAckWire>,
  ): void {
    if (this.refuseIfStopped(cb)) return;
    const peer = call.getPeer();
    const clusterId = call.metadata.get(CLUSTER_ID_METADATA_KEY)[0];
    if (clusterId !== this.opts.clusterId) {
      this.problems.warn(`cluster-snapshot:${peer}`, { peer, clusterId, expected: this.opts.clusterId }, 'snapshot from another cluster refused');
      cb({
        code: grpc.status.FAILED_PRECONDITION,
        details: `cluster id mismatch: node ${this.opts.nodeId} belongs to cluster "${this.opts.clusterId}", the snapshot to "${String(clusterId)}"`,
      });
      return;
    }
    if (this.incomingSnapshots >= this.opts.maxIncomingSnapshots) {
      this.problems.warn('snapshots-busy', { peer, limit: this.opts.maxIncomingSnapshots }, 'too many incoming snapshots: refused');
      cb({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `node ${this.opts.nodeId} is already receiving ${this.incomingSnapshots} snapshots (limit ${this.opts.maxIncomingSnapshots})`,
      });
      return;
    }
    this.incomingSnapshots++;
    const entry = this.trackIncoming(cb, () => {
      this.incomingSnapshots--;
    });
    if (call.metadata.get(SNAPSHOT_PAYLOAD_METADATA_KEY)[0] === '1') {
      this.receiveSnapshotPayload(call, entry, peer);
      return;
    }
    const assembler = new SnapshotAssembler(this.opts.maxSnapshotBytes);
    call.on('data', (chunk: SnapshotChunkWire) => {
      if (entry.done) return;
      let whole: RangeMessage | undefined;
      try {
        const hadHeader = assembler.header !== undefined;
        whole = assembler.push(chunk);
        const header = assembler.header;
        if (!hadHeader && header && header.message.to !== this.opts.nodeId) {
          this.problems.warn(`misrouted-snapshot:${header.message.from}`, { from: header.message.from, peer, to: header.message.to }, 'snapshot for another node refused');
          entry.finish({
            code: grpc.status.FAILED_PRECONDITION,
            details: `node id mismatch: this is node ${this.opts.nodeId}, the snapshot is for node ${header.message.to}`,
          });
          return;
        }
      } catch (err) {
        const tooLarge = err instanceof SnapshotTooLargeError;
        this.problems.warn(`invalid-snapshot:${peer}`, { peer, err }, tooLarge ? 'snapshot too large: refused' : 'invalid snapshot stream refused');
        entry.finish({
          code: tooLarge ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INVALID_ARGUMENT,
          details: errorDetails(err),
        });
        return;
      }
      if (!whole) return;
      this.log.info(
        { from: whole.message.from, rangeId: whole.rangeId, index: whole.message.snapshot?.metadata.index, bytes: assembler.bytes },
        'snapshot received',
      );
      this.deliver(whole.message.from, [whole]);
      entry.finish();
    });
    call.on('end', () => {
      if (entry.done) return;
      entry.finish({
        code: grpc.status.INVALID_ARGUMENT,
        details: `snapshot stream ended before its last chunk (${assembler.bytes} bytes received)`,
      });
    });
    call.on('error', (err: Error) => {
      this.log.debug({ err, peer }, 'incoming snapshot stream failed');
      entry.finish({ code: grpc.status.CANCELLED, details: errorDetails(err) });
    });
    call.on('cancelled', () => entry.finish({ code: grpc.status.CANCELLED, details: 'cancelled by the client' }));
  }

  /**
   * A snapshot whose payload is streamed: the first chunk's header is the whole Snap message; the
   * data of every later chunk goes to the handler's sink as it arrives (the stream is paused while
   * the sink writes), and the message is delivered once the sink has everything.
   */
  private receiveSnapshotPayload(
    call: grpc.ServerReadableStream<SnapshotChunkWire, RaftAckWire>,
    entry: IncomingCall & { done: boolean },
    peer: string,
  ): void {
    let header: RangeMessage | undefined;
    let sink: SnapshotSink | undefined;
    let bytes = 0;
    let last = false;
    let chain = Promise.resolve();
    const fail = (code: grpc.status, err: unknown): void => {
      if (entry.done) return;
      this.problems.warn(`invalid-snapshot:${peer}`, { peer, err }, 'snapshot transfer failed');
      entry.finish({ code, details: errorDetails(err) });
      const s = sink;
      sink = undefined;
      if (s) s.abort(err instanceof Error ? err : new Error(String(err))).catch(() => undefined);
    };
    const onChunk = async (chunk: SnapshotChunkWire): Promise<void> => {
      if (entry.done) return;
      if (last) throw new RaftCodecError('last', 'a chunk arrived after the last one');
      if (!header) {
        if (!chunk.header) throw new RaftCodecError('header', 'the first snapshot chunk has no header');
        const decoded = decodeRaftMessage(chunk.header);
        if (decoded.message.type !== MessageType.Snap || !decoded.message.snapshot) {
          throw new RaftCodecError('header', `the header must be a Snap message, got ${decoded.message.type}`);
        }
        if (decoded.message.to !== this.opts.nodeId) {
          throw new TransportStateError(`node id mismatch: this is node ${this.opts.nodeId}, the snapshot is for node ${decoded.message.to}`);
        }
        const h = this.handler;
        if (!h?.snapshotSink) throw new TransportStateError(`node ${this.opts.nodeId} does not accept streamed snapshot payloads`);
        header = decoded;
        sink = h.snapshotSink(decoded.message.from, decoded.rangeId, decoded.message);
      } else if (chunk.header) {
        throw new RaftCodecError('header', 'only the first snapshot chunk may carry a header');
      }
      const data = chunk.data ?? Buffer.alloc(0);
      bytes += data.length;
      if (bytes > this.opts.maxSnapshotBytes) throw new SnapshotTooLargeError(bytes, this.opts.maxSnapshotBytes, header.rangeId);
      if (data.length > 0) await (sink as SnapshotSink).write(data);
      if (!chunk.last) return;
      last = true;
      await (sink as SnapshotSink).finish();
      sink = undefined;
      this.log.info({ from: header.message.from, rangeId: header.rangeId, index: header.message.snapshot?.metadata.index, bytes }, 'snapshot received');
      this.deliver(header.message.from, [header]);
      entry.finish();
    };
    call.on('data', (chunk: SnapshotChunkWire) => {
      call.pause();
      chain = chain
        .then(() => onChunk(chunk))
        .then(
          () => {
            call.resume();
          },
          (err: unknown) => fail(err instanceof SnapshotTooLargeError ? grpc.status.RESOURCE_EXHAUSTED : grpc.status.INVALID_ARGUMENT, err),
        );
    });
    call.on('end', () => {
      void chain.then(() => {
        if (!last) fail(grpc.status.INVALID_ARGUMENT, new RaftCodecError('last', `snapshot stream ended before its last chunk (${bytes} bytes received)`));
      });
    });
    call.on('error', (err: Error) => fail(grpc.status.CANCELLED, err));
    call.on('cancelled', () => fail(grpc.status.CANCELLED, new Error('cancelled by the client')));
  }

  private deliver(fromNode: number, msgs: readonly RangeMessage[]): void {
    const h = this.handler;
    if (!h || msgs.length === 0) return;
    try {
      h.receive(fromNode, msgs);
    } catch (err) {
      this.log.error({ err, from: fromNode }, 'transport handler threw in receive()');
    }
  }
}
