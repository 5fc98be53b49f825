// The KV gRPC service: validates input, routes to the local replica, maps outcomes to the wire.
// No business logic lives here: writes become Commands proposed through the node layer, reads
// go through the replica's read barrier (LINEARIZABLE) or straight to local state (STALE).

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  Command,
  CommandResult,
  CommandStatus,
  Node,
  NodeError,
  NodeStoppedError,
  Op,
  OpKind,
  OpResult,
  ProposalLostError,
  RangeNotFoundError,
  ReadIndexDroppedError,
  ReadTimeoutError,
  Replica,
  ServerBusyError,
  keyInRange,
} from '../node';
import { NotLeaderError, ProposalDroppedError } from '../raft';
import { META_RANGE_ID } from '../storage/keys';
import {
  BatchRequestMsg,
  CompareAndSwapRequestMsg,
  DeleteRequestMsg,
  GetRequestMsg,
  MultiplexItemMsg,
  MultiplexMethod,
  MultiplexRequestMsg,
  MultiplexResultMsg,
  PutRequestMsg,
  ReadConsistencyValue,
  RequestHeaderMsg,
  ResponseHeaderMsg,
  RoutingErrorMsg,
  ScanRequestMsg,
  RangeDescriptorMsg,
} from './messages';
import { MalformedRequest, isMalformed, tolerantServiceDefinition } from './proto';
import { descriptorOf, notLeaderError } from './routing';
import {
  InvalidArgumentError,
  Limits,
  checkBound,
  checkEnum,
  checkKey,
  checkRequestSize,
  checkScanLimit,
  checkValue,
} from './validate';

/** Resolves a node id to its client-facing address (for NotLeader hints). */
export type AddressBook = (nodeId: number) => string | undefined;

export interface KvServiceOptions {
  readonly node: Node;
  readonly addresses: AddressBook;
  readonly limits: Limits;
  readonly logger: Logger;
  /** Requests in flight on one Multiplex stream; more are answered RESOURCE_EXHAUSTED. Default 4096. */
  readonly multiplexInflight?: number;
  /** Key-values per Scan stream message. Default 256. */
  readonly scanChunkKeys?: number;
  /** Bytes per Scan stream message (approximate). Default 1 MiB. */
  readonly scanChunkBytes?: number;
}

/** A failure that becomes a gRPC status (not a routing error). */
class StatusError extends Error {
  constructor(
    readonly status: grpc.status,
    message: string,
  ) {
    super(message);
    this.name = 'StatusError';
  }
}

/** A routing failure: answered inside the response header so clients in any language can act on it. */
class RoutingFailure extends Error {
  constructor(
    readonly rangeId: number,
    readonly routing: RoutingErrorMsg,
  ) {
    super(routing.message);
    this.name = 'RoutingFailure';
  }
}

const CONSISTENCIES = [0, 1, 2, 3] as const;
const CONSISTENCY_NAMES = 'READ_CONSISTENCY_UNSPECIFIED, LINEARIZABLE, LEASE, STALE';

/**
 * Gets of one Multiplex message started per turn of the event loop (see multiplex()): a quarter
 * of them, at least 8 and at most 32 (scripts/bench: slices of 8, 16, 32 and 64 tried at 256 gets
 * in flight, 32 best; 16 and 32 at 64 in flight, 16 best).
 */
function muxReadSlice(reads: number): number {
  return Math.min(32, Math.max(8, Math.ceil(reads / 4)));
}

export class KvService {
  private readonly node: Node;
  private readonly chunkKeys: number;
  private readonly chunkBytes: number;
  private inflightCalls = 0;

  constructor(private readonly o: KvServiceOptions) {
    this.node = o.node;
    this.chunkKeys = o.scanChunkKeys ?? 256;
    this.chunkBytes = o.scanChunkBytes ?? 1024 * 1024;
  }

  /** Requests being served (a shutting-down server waits for them to drain). */
  inflight(): number {
    return this.inflightCalls;
  }

  /** Adds the KV service to a gRPC server. */
  register(server: grpc.Server): void {
    server.addService(tolerantServiceDefinition('rangekv.v1.KV'), {
      get: this.unary('Get', (req: GetRequestMsg) => this.get(req)),
      put: this.unary('Put', (req: PutRequestMsg) => this.put(req)),
      delete: this.unary('Delete', (req: DeleteRequestMsg) => this.del(req)),
      compareAndSwap: this.unary('CompareAndSwap', (req: CompareAndSwapRequestMsg) => this.cas(req)),
      batch: this.unary('Batch', (req: BatchRequestMsg) => this.batch(req)),
      scan: (call: grpc.ServerWritableStream<ScanRequestMsg | MalformedRequest, unknown>) => {
        this.inflightCalls++;
        void this.scan(call).finally(() => this.inflightCalls--);
      },
      multiplex: (call: grpc.ServerDuplexStream<MultiplexRequestMsg | MalformedRequest, unknown>) => this.multiplex(call),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Multiplex: many requests over one stream

  private handlerOf(method: MultiplexMethod, req: object): Promise<object> {
    switch (method) {
      case 'get':
        return this.get(req as GetRequestMsg);
      case 'put':
        return this.put(req as PutRequestMsg);
      case 'delete':
        return this.del(req as DeleteRequestMsg);
      case 'compareAndSwap':
        return this.cas(req as CompareAndSwapRequestMsg);
      case 'batch':
        return this.batch(req as BatchRequestMsg);
    }
  }

  /**
   * Serves a Multiplex stream: each item runs as its unary call would; results that complete in
   * the same turn of the event loop leave in one message (gets start in slices, see below).
   * Writes respect the stream's flow control (results wait while it is full), and in-flight items
   * are bounded per stream.
   */
  private multiplex(call: grpc.ServerDuplexStream<MultiplexRequestMsg | MalformedRequest, unknown>): void {
    const limit = this.o.multiplexInflight ?? 4096;
    let inflight = 0;
    let ended = false;
    let closed = false;
    let ready: MultiplexResultMsg[] = [];
    let flushScheduled = false;
    let blocked = false;
    const finishIfDone = (): void => {
      if (ended && inflight === 0 && waitingReads.length === 0 && ready.length === 0 && !closed) {
        closed = true;
        call.end();
      }
    };
    const flush = (): void => {
      flushScheduled = false;
      if (closed || blocked || ready.length === 0) return finishIfDone();
      const results = ready;
      ready = [];
      if (!call.write({ results })) {
        blocked = true;
        call.once('drain', () => {
          blocked = false;
          flush();
        });
        return;
      }
      finishIfDone();
    };
    const answer = (r: MultiplexResultMsg): void => {
      if (closed) return;
      ready.push(r);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    };
    const fail = (id: number, code: grpc.status, message: string): void => answer({ id, code, message });
    /** An item's failure: a routing error travels in its response, anything else as its status. */
    const failWith = (id: number, method: MultiplexMethod, err: unknown): void => {
      const mapped = this.mapError(err);
      if (mapped.response) answer({ id, code: grpc.status.OK, message: '', [method]: mapped.response });
      else fail(id, mapped.status, mapped.message);
    };
    const run = (item: MultiplexItemMsg): void => {
      const id = item.id;
      const method = item.request;
      const req = method ? item[method] : undefined;
      if (!method || !req) {
        fail(id, grpc.status.INVALID_ARGUMENT, 'items[].request: exactly one of get, put, delete, compare_and_swap, batch must be set');
        return;
      }
      if (inflight >= limit) {
        fail(id, grpc.status.RESOURCE_EXHAUSTED, `${inflight} requests in flight on this stream (limit ${limit}); a write was not applied`);
        return;
      }
      if (method === 'get' && (req as GetRequestMsg).consistency === ReadConsistencyValue.Stale) {
        // Nothing to wait for: answered now, without the promises and the deadline timer of the
        // path below (scripts/bench, stale gets at 256 in flight, back-to-back runs: server CPU
        // 13-14 -> 10-12 us per get, 62-67k -> 70-79k gets/s).
        try {
          answer({ id, code: grpc.status.OK, message: '', get: this.staleGet(req as GetRequestMsg) });
        } catch (err) {
          failWith(id, method, err);
        }
        return;
      }
      inflight++;
      this.inflightCalls++;
      const deadline = item.timeoutMs > 0 ? Date.now() + item.timeoutMs : call.getDeadline();
      this.withDeadline(deadline, this.handlerOf(method, req))
        .then(
          (res) => answer({ id, code: grpc.status.OK, message: '', [method]: res }),
          (err: unknown) => failWith(id, method, err),
        )
        .finally(() => {
          inflight--;
          this.inflightCalls--;
          if (ended) setImmediate(flush);
        });
    };
    // Writes start at once, so that all of a message's writes share one Raft turn (one fsync).
    // Gets start a slice at a time (muxReadSlice): the results of one slice are written before
    // the next slice starts, in the next turn of the event loop, so the client works on them
    // while this node serves the rest. Served all at once, the client and this node took turns,
    // each idle while the other worked (scripts/bench, 256 gets in flight, back-to-back runs:
    // 23-38k/s all at once, 40-45k/s in slices of 32; stale gets 28-42k/s against 61-70k/s;
    // slices of writes cost puts 13 %).
    let waitingReads: MultiplexItemMsg[] = [];
    let slice = 0;
    let sliceScheduled = false;
    const startSlice = (): void => {
      const now = waitingReads.slice(0, slice);
      waitingReads = waitingReads.slice(slice);
      for (const item of now) run(item);
      if (waitingReads.length > 0 && !sliceScheduled) {
        sliceScheduled = true;
        setImmediate(nextSlice);
      }
    };
    const nextSlice = (): void => {
      sliceScheduled = false;
      if (closed) return;
      flush(); // the last slice's answers (those complete already) leave first
      startSlice();
    };
    const runAll = (items: readonly MultiplexItemMsg[]): void => {
      let reads = 0;
      for (const item of items) {
        if (item.request === 'get') {
          waitingReads.push(item);
          reads++;
        } else {
          run(item);
        }
      }
      if (reads === 0) return;
      slice = muxReadSlice(waitingReads.length);
      if (!sliceScheduled) startSlice();
    };
    call.on('data', (msg: MultiplexRequestMsg | MalformedRequest) => {
      if (closed) return;
      if (isMalformed(msg)) {
        // The ids inside are unreadable: no item can be answered, so the stream fails.
        closed = true;
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: msg.malformed });
        return;
      }
      runAll(msg.items);
    });
    call.on('end', () => {
      ended = true;
      setImmediate(flush);
    });
    const stop = (): void => {
      closed = true;
    };
    call.on('cancelled', stop);
    call.on('error', stop);
  }

  // ---------------------------------------------------------------------------------------------
  // Plumbing

  private unary<Req extends { header?: RequestHeaderMsg | null }>(
    method: string,
    handler: (req: Req) => Promise<object>,
  ): grpc.handleUnaryCall<Req | MalformedRequest, unknown> {
    return (call, callback) => {
      const req = call.request;
      if (isMalformed(req)) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: req.malformed });
        return;
      }
      this.inflightCalls++;
      this.withDeadline(call.getDeadline(), handler(req), () => this.logUnanswered(method, req.header?.rangeId ?? 0))
        .finally(() => this.inflightCalls--)
        .then(
          (res) => callback(null, res),
          (err: unknown) => {
            const mapped = this.mapError(err);
            if (mapped.response) callback(null, mapped.response);
            else callback({ code: mapped.status, details: mapped.message });
          },
        );
    };
  }

  /**
   * A request that reached its deadline here unanswered: logged with what the range's replica
   * knows (a request should be answered, or refused, well before any client deadline).
   */
  private logUnanswered(method: string, rangeId: number): void {
    const r = this.node.replicas.get(rangeId);
    const st = r?.rawNode.basicStatus();
    this.o.logger.warn(
      { method, rangeId, hosted: r !== undefined, initialized: r?.initialized, quiesced: r?.quiesced, pendingReads: r?.pendingReads(), applied: r?.appliedIndex, raft: st ? { state: st.state, leader: st.leader, term: st.term } : undefined },
      'request reached its deadline unanswered',
    );
  }

  private withDeadline<T>(deadline: grpc.Deadline, p: Promise<T>, onExpire?: () => void): Promise<T> {
    const ms = typeof deadline === 'number' ? deadline - Date.now() : deadline.getTime() - Date.now();
    if (!Number.isFinite(ms)) return p;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        onExpire?.();
        reject(new StatusError(grpc.status.DEADLINE_EXCEEDED, 'deadline exceeded; a write may or may not have applied'));
      }, Math.max(0, ms));
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  private mapError(err: unknown): { status: grpc.status; message: string; response?: object } {
    if (err instanceof RoutingFailure) {
      return { status: grpc.status.OK, message: '', response: { header: this.errorHeader(err.rangeId, err.routing) } };
    }
    if (err instanceof InvalidArgumentError) return { status: grpc.status.INVALID_ARGUMENT, message: err.message };
    if (err instanceof StatusError) return { status: err.status, message: err.message };
    if (err instanceof NodeStoppedError) return { status: grpc.status.UNAVAILABLE, message: err.message };
    if (err instanceof ProposalLostError) return { status: grpc.status.ABORTED, message: `${err.message}; retry` };
    if (err instanceof NodeError) return { status: grpc.status.UNAVAILABLE, message: err.message };
    this.o.logger.error({ err }, 'unexpected error in KV handler');
    return { status: grpc.status.INTERNAL, message: `internal error: ${(err as Error).message}` };
  }

  private errorHeader(rangeId: number, error: RoutingErrorMsg): ResponseHeaderMsg {
    return { rangeId, nodeId: this.node.nodeId, appliedIndex: 0, error };
  }

  private header(r: Replica): ResponseHeaderMsg {
    return { rangeId: r.rangeId, nodeId: this.node.nodeId, appliedIndex: r.appliedIndex, error: null };
  }

  /**
   * The descriptors an EpochNotMatch carries: the range's own and, when a split made it, its right
   * neighbour here (the client's stale route covered both), so the client re-routes without a lookup.
   */
  private currentDescriptors(r: Replica): RangeDescriptorMsg[] {
    const out = [descriptorOf(r)];
    const end = r.sm.bounds.end;
    if (end.length > 0) {
      const right = this.node.rangeForKey(end);
      if (right && Buffer.compare(right.sm.bounds.start, end) === 0) out.push(descriptorOf(right));
    }
    return out;
  }

  private notLeader(r: Replica, leader: number): RoutingFailure {
    return new RoutingFailure(r.rangeId, notLeaderError(r, leader, this.o.addresses));
  }

  /** Finds the replica a request is for and checks its route: range, epoch, key bounds. */
  private route(header: RequestHeaderMsg | null, keys: readonly Buffer[]): Replica {
    let rangeId = header?.rangeId ?? 0;
    if (rangeId === 0) {
      // Unrouted request (e.g. a hand-written stub): use the local range holding the first key.
      const first = keys[0] ?? Buffer.alloc(0);
      const local = this.node.rangeForKey(first);
      if (!local) {
        throw new RoutingFailure(0, { message: `no range on node ${this.node.nodeId} holds the key; look it up in placement`, rangeNotFound: { rangeId: 0 } });
      }
      rangeId = local.rangeId;
    }
    const r = this.node.replicas.get(rangeId);
    if (!r || !r.initialized || rangeId === META_RANGE_ID) {
      throw new RoutingFailure(rangeId, { message: `range ${rangeId} is not on node ${this.node.nodeId}`, rangeNotFound: { rangeId } });
    }
    const epoch = header?.epoch;
    if (epoch && epoch.version !== 0 && epoch.version !== r.sm.bounds.epochVersion) {
      throw new RoutingFailure(r.rangeId, {
        message: `range ${r.rangeId}: epoch version ${epoch.version} is stale (current ${r.sm.bounds.epochVersion})`,
        epochNotMatch: { current: this.currentDescriptors(r) },
      });
    }
    for (const k of keys) {
      if (!keyInRange(k, r.sm.bounds)) {
        throw new RoutingFailure(r.rangeId, {
          message: `key is outside range ${r.rangeId}`,
          keyNotInRange: { key: k, rangeId: r.rangeId, startKey: Buffer.from(r.sm.bounds.start), endKey: Buffer.from(r.sm.bounds.end) },
        });
      }
    }
    return r;
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  private async propose(r: Replica, header: RequestHeaderMsg | null, ops: Op[]): Promise<CommandResult> {
    const status = r.rawNode.basicStatus();
    if (status.state !== 'Leader') throw this.notLeader(r, status.leader);
    const cmd: Command = {
      clientId: header?.clientId ?? 0,
      sequence: header?.sequence ?? 0,
      answeredBelow: header?.answeredBelow ?? 0,
      proposedAtMs: Date.now(),
      epochVersion: r.sm.bounds.epochVersion,
      ops,
    };
    if (cmd.clientId !== 0 && cmd.sequence === 0) throw new InvalidArgumentError('header.sequence', 'must be positive when header.client_id is set');
    let res: CommandResult;
    try {
      res = (await this.node.propose(r.rangeId, cmd)).result;
    } catch (err) {
      if (err instanceof NotLeaderError) throw this.notLeader(r, err.leader);
      if (err instanceof ProposalDroppedError || err instanceof ServerBusyError) {
        throw new RoutingFailure(r.rangeId, { message: err.message, serverBusy: { reason: err.message, retryAfterMs: 50 } });
      }
      if (err instanceof RangeNotFoundError) {
        throw new RoutingFailure(r.rangeId, { message: err.message, rangeNotFound: { rangeId: r.rangeId } });
      }
      throw err;
    }
    switch (res.status) {
      case CommandStatus.Ok:
        return res;
      case CommandStatus.EpochNotMatch:
        throw new RoutingFailure(r.rangeId, { message: `range ${r.rangeId} changed before the write applied`, epochNotMatch: { current: this.currentDescriptors(r) } });
      case CommandStatus.KeyNotInRange:
        throw new RoutingFailure(r.rangeId, {
          message: `a key left range ${r.rangeId} before the write applied`,
          keyNotInRange: { key: Buffer.alloc(0), rangeId: r.rangeId, startKey: Buffer.from(r.sm.bounds.start), endKey: Buffer.from(r.sm.bounds.end) },
        });
      case CommandStatus.SequenceTooOld:
        throw new StatusError(
          grpc.status.FAILED_PRECONDITION,
          `sequence ${cmd.sequence} of client ${cmd.clientId} is older than the range remembers: the write may or may not have applied`,
        );
    }
  }

  private async put(req: PutRequestMsg): Promise<object> {
    const key = checkKey('key', req.key, this.o.limits);
    const value = checkValue('value', req.value, this.o.limits);
    checkRequestSize(key.length + value.length, this.o.limits);
    const r = this.route(req.header, [key]);
    const res = await this.propose(r, req.header, [{ kind: OpKind.Put, key, value }]);
    const op = res.results[0] as OpResult & { kind: OpKind.Put };
    return { header: this.header(r), version: op.version };
  }

  private async del(req: DeleteRequestMsg): Promise<object> {
    const key = checkKey('key', req.key, this.o.limits);
    const r = this.route(req.header, [key]);
    const res = await this.propose(r, req.header, [{ kind: OpKind.Delete, key }]);
    const op = res.results[0] as OpResult & { kind: OpKind.Delete };
    return { header: this.header(r), deleted: op.deleted, version: op.version };
  }

  private casOp(req: CompareAndSwapRequestMsg, field: string): Op {
    const key = checkKey(`${field}key`, req.key, this.o.limits);
    const newValue = checkValue(`${field}new_value`, req.newValue, this.o.limits);
    let expected: Extract<Op, { kind: OpKind.Cas }>['expected'];
    switch (req.expected) {
      case 'expectedValue':
        expected = { kind: 'value', value: checkValue(`${field}expected_value`, req.expectedValue, this.o.limits) };
        break;
      case 'expectedAbsent':
        expected = { kind: 'absent' };
        break;
      case 'expectedVersion':
        expected = { kind: 'version', version: req.expectedVersion ?? 0 };
        break;
      default:
        throw new InvalidArgumentError(`${field}expected`, 'one of expected_value, expected_absent or expected_version must be set');
    }
    return { kind: OpKind.Cas, key, expected, newValue, delete: req.delete };
  }

  private casResult(op: OpResult): object {
    const c = op as OpResult & { kind: OpKind.Cas };
    return {
      succeeded: c.succeeded,
      previous: c.previous ? { key: Buffer.alloc(0), value: Buffer.from(c.previous.value), version: c.previous.version } : null,
      version: c.version,
    };
  }

  private async cas(req: CompareAndSwapRequestMsg): Promise<object> {
    const op = this.casOp(req, '');
    checkRequestSize(opBytes(op), this.o.limits);
    const r = this.route(req.header, [op.key as Buffer]);
    const res = await this.propose(r, req.header, [op]);
    const out = this.casResult(res.results[0] as OpResult) as { previous: { key: Buffer } | null };
    if (out.previous) out.previous.key = op.key as Buffer;
    return { header: this.header(r), ...out };
  }

  private async batch(req: BatchRequestMsg): Promise<object> {
    if (req.ops.length === 0) throw new InvalidArgumentError('ops', 'must hold at least one op');
    if (req.ops.length > this.o.limits.maxBatchOps) {
      throw new InvalidArgumentError('ops', `holds ${req.ops.length} ops, over the limit of ${this.o.limits.maxBatchOps}`);
    }
    const ops: Op[] = req.ops.map((o, i) => {
      const f = `ops[${i}].`;
      switch (o.op) {
        case 'get':
          return { kind: OpKind.Get, key: checkKey(`${f}get.key`, o.get?.key, this.o.limits) };
        case 'put':
          return { kind: OpKind.Put, key: checkKey(`${f}put.key`, o.put?.key, this.o.limits), value: checkValue(`${f}put.value`, o.put?.value, this.o.limits) };
        case 'delete':
          return { kind: OpKind.Delete, key: checkKey(`${f}delete.key`, o.delete?.key, this.o.limits) };
        case 'compareAndSwap':
          return this.casOp(o.compareAndSwap as CompareAndSwapRequestMsg, `${f}compare_and_swap.`);
        default:
          throw new InvalidArgumentError(`ops[${i}]`, 'no operation set');
      }
    });
    checkRequestSize(ops.reduce((n, op) => n + opBytes(op), 0), this.o.limits);
    const r = this.route(req.header, ops.map((o) => o.key as Buffer));
    const res = await this.propose(r, req.header, ops);
    const header = this.header(r);
    return {
      header,
      results: res.results.map((op, i) => {
        const key = (ops[i] as Op).key as Buffer;
        switch (op.kind) {
          case OpKind.Get:
            return { get: { header, found: op.found, kv: op.found ? { key, value: Buffer.from(op.value), version: op.version } : null } };
          case OpKind.Put:
            return { put: { header, version: op.version } };
          case OpKind.Delete:
            return { delete: { header, deleted: op.deleted, version: op.version } };
          case OpKind.Cas:
            return { compareAndSwap: { header, ...this.casResult(op) } };
        }
      }),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /** Waits until local state may be read at the requested consistency. */
  private async readable(r: Replica, consistency: number): Promise<void> {
    checkEnum('consistency', consistency, CONSISTENCIES, CONSISTENCY_NAMES);
    if (consistency === ReadConsistencyValue.Stale) return;
    if (consistency === ReadConsistencyValue.Lease) {
      throw new StatusError(grpc.status.UNIMPLEMENTED, 'consistency LEASE is not supported yet; use LINEARIZABLE or STALE');
    }
    try {
      await this.node.readBarrier(r.rangeId);
    } catch (err) {
      if (err instanceof NotLeaderError) throw this.notLeader(r, err.leader);
      if (err instanceof ReadIndexDroppedError) throw this.notLeader(r, 0);
      // This replica cannot serve the read now: the client is told to go elsewhere, and why.
      if (err instanceof ReadTimeoutError) throw new RoutingFailure(r.rangeId, { ...this.notLeader(r, 0).routing, message: err.message });
      throw err;
    }
  }

  private async get(req: GetRequestMsg): Promise<object> {
    if (req.consistency === ReadConsistencyValue.Stale) return this.staleGet(req);
    const key = checkKey('key', req.key, this.o.limits);
    checkEnum('consistency', req.consistency, CONSISTENCIES, CONSISTENCY_NAMES);
    const r = this.route(req.header, [key]);
    await this.readable(r, req.consistency);
    // Routed again after the wait: had the range changed shape meanwhile (a split moving the key
    // out), its local state would no longer be the key's truth.
    this.route(req.header, [key]);
    return this.readKey(r, key);
  }

  /**
   * A STALE get waits for nothing, so it is served in the caller's turn: synchronous, it throws
   * what get() would reject with. Multiplex serves it without a promise or a deadline timer.
   */
  private staleGet(req: GetRequestMsg): object {
    const key = checkKey('key', req.key, this.o.limits);
    return this.readKey(this.route(req.header, [key]), key);
  }

  private readKey(r: Replica, key: Buffer): object {
    const header = this.header(r);
    r.readsServed++;
    const v = r.sm.get(key);
    return { header, found: v !== undefined, kv: v ? { key, value: v.value, version: v.version } : null };
  }

  private async scan(call: grpc.ServerWritableStream<ScanRequestMsg | MalformedRequest, unknown>): Promise<void> {
    const req = call.request;
    try {
      if (isMalformed(req)) throw new InvalidArgumentError('request', req.malformed);
      const start = checkBound('start_key', req.startKey, this.o.limits);
      const end = checkBound('end_key', req.endKey, this.o.limits);
      const limit = checkScanLimit(req.limit, this.o.limits);
      checkEnum('consistency', req.consistency, CONSISTENCIES, CONSISTENCY_NAMES);
      if (end.length > 0 && Buffer.compare(start, end) >= 0) {
        throw new InvalidArgumentError('end_key', 'must be greater than start_key (or empty for the end of the keyspace)');
      }
      const r = this.route(req.header, start.length > 0 ? [start] : []);
      await this.withDeadline(call.getDeadline(), this.readable(r, req.consistency));
      const header = this.header(r);
      let first = true;
      let chunk: Array<{ key: Buffer; value: Buffer; version: number }> = [];
      let bytes = 0;
      let sent = 0;
      let more = false;
      const flush = async (last: boolean): Promise<void> => {
        const msg = {
          header: first ? header : null,
          kvs: chunk,
          more: last ? more : false,
          rangeEndKey: last ? Buffer.from(r.sm.bounds.end) : Buffer.alloc(0),
        };
        first = false;
        chunk = [];
        bytes = 0;
        if (!call.write(msg)) await new Promise<void>((resolve) => call.once('drain', resolve));
      };
      // One more than the limit tells whether the scan stopped early.
      for await (const kv of r.sm.scan(start, end, limit > 0 ? limit + 1 : 0)) {
        if (call.cancelled) return;
        if (limit > 0 && sent === limit) {
          more = true;
          break;
        }
        chunk.push({ key: kv.key, value: req.keysOnly ? Buffer.alloc(0) : Buffer.from(kv.value), version: kv.version });
        bytes += kv.key.length + kv.value.length;
        sent++;
        if (chunk.length >= this.chunkKeys || bytes >= this.chunkBytes) await flush(false);
      }
      await flush(true);
      call.end();
    } catch (err) {
      const mapped = this.mapError(err);
      if (mapped.response) {
        call.write(mapped.response);
        call.end();
      } else {
        call.emit('error', { code: mapped.status, details: mapped.message });
      }
    }
  }
}

function opBytes(op: Op): number {
  switch (op.kind) {
    case OpKind.Put:
      return op.key.length + op.value.length;
    case OpKind.Cas:
      return op.key.length + op.newValue.length + (op.expected.kind === 'value' ? op.expected.value.length : 0);
    default:
      return op.key.length;
  }
}
