// A client of the Admin service: status, leadership transfer, membership changes, splits. Admin
// calls that must run on a range's leader follow NotLeader answers like the KV client does.

import * as grpc from '@grpc/grpc-js';
import { GRPC_COMMON_OPTIONS, apiPackageDefinition } from '../api/proto';
import type { RangeDescriptorMsg, RoutingErrorMsg } from '../api/messages';
import { ClientError, IndeterminateError, InvalidRequestError, UnavailableError } from './errors';

export interface RangeStatus {
  readonly descriptor: RangeDescriptorMsg;
  readonly leaderNodeId: number;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly progress: ReadonlyArray<{ nodeId: number; role: number; matchIndex: number; state: string }>;
}

export interface NodeStatus {
  readonly nodeId: number;
  readonly address: string;
  readonly replicaCount: number;
  readonly leaderCount: number;
  readonly alive: boolean;
}

/** A node's transport failpoint (fault injection for tests; see kvd --failpoints). */
export interface TransportFailpointStatus {
  readonly enabled: boolean;
  readonly active: boolean;
  readonly peerNodeIds: readonly number[];
  readonly delayMs: number;
  readonly jitterMs: number;
  readonly dropProbability: number;
  readonly droppedMessages: number;
  readonly delayedMessages: number;
}

/** Delay and drop of a node's outgoing Raft messages; `peerNodeIds` empty = to every peer. */
export interface TransportFailpoint {
  readonly peerNodeIds?: readonly number[];
  readonly delayMs?: number;
  readonly jitterMs?: number;
  readonly dropProbability?: number;
}

export interface ClusterStatus {
  readonly clusterId: string;
  readonly nodes: readonly NodeStatus[];
  readonly ranges: readonly RangeStatus[];
  readonly transportFailpoint: TransportFailpointStatus | null;
}

/** Both halves of a split: `left` keeps the range id and the keys below the split key. */
export interface SplitResult {
  readonly left: RangeDescriptorMsg;
  /** The new range; null if the answering leader did not host it yet (it always should). */
  readonly right: RangeDescriptorMsg | null;
}

/**
 * The cluster refused the operation as asked (FAILED_PRECONDITION, e.g. a split key not strictly
 * inside the range, or a range whose epoch moved on): nothing applied. Unlike InvalidRequestError
 * the request itself is well formed; the cluster's state does not allow it.
 */
export class RefusedError extends ClientError {
  readonly code = 'REFUSED';
  readonly definite = true;
}

type LeaderMethod = 'transferLeader' | 'addLearner' | 'promoteLearner' | 'removeReplica' | 'splitRange';

type Unary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void;
interface AdminStub extends grpc.Client {
  clusterStatus: Unary;
  rangeStatus: Unary;
  transferLeader: Unary;
  addLearner: Unary;
  promoteLearner: Unary;
  removeReplica: Unary;
  setTransportFailpoint: Unary;
  splitRange: Unary;
}

export class AdminClient {
  private readonly stubs = new Map<string, AdminStub>();
  private readonly Stub: new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => AdminStub;

  constructor(
    private readonly endpoints: readonly string[],
    private readonly deadlineMs = 10_000,
  ) {
    if (endpoints.length === 0) throw new InvalidRequestError('endpoints: at least one host:port is required');
    const pkg = grpc.loadPackageDefinition(apiPackageDefinition()) as unknown as {
      rangekv: { v1: { Admin: new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => AdminStub } };
    };
    this.Stub = pkg.rangekv.v1.Admin;
  }

  private stub(address: string): AdminStub {
    let s = this.stubs.get(address);
    if (!s) {
      s = new this.Stub(address, grpc.credentials.createInsecure(), GRPC_COMMON_OPTIONS);
      this.stubs.set(address, s);
    }
    return s;
  }

  close(): void {
    for (const s of this.stubs.values()) s.close();
    this.stubs.clear();
  }

  private call(address: string, method: keyof Omit<AdminStub, keyof grpc.Client>, req: object, deadline: number): Promise<Record<string, unknown>> {
    const stub = this.stub(address);
    const fn = stub[method].bind(stub) as Unary;
    return new Promise((resolve, reject) => fn(req, { deadline }, (e, r) => (e ? reject(e) : resolve(r))));
  }

  /** Status as seen by each reachable endpoint (node-local views; the caller merges). */
  async clusterStatus(): Promise<Array<{ endpoint: string; status?: ClusterStatus; error?: string }>> {
    const deadline = Date.now() + this.deadlineMs;
    return Promise.all(
      this.endpoints.map(async (endpoint) => {
        try {
          return { endpoint, status: (await this.call(endpoint, 'clusterStatus', {}, deadline)) as unknown as ClusterStatus };
        } catch (e) {
          return { endpoint, error: (e as grpc.ServiceError).details ?? (e as Error).message };
        }
      }),
    );
  }

  /** Runs a leader-only admin call on the range's leader, following NotLeader answers. */
  private async onLeader(method: Exclude<LeaderMethod, 'splitRange'>, req: object): Promise<RangeDescriptorMsg> {
    // NOT_FOUND from one endpoint (a replica still uninitialized, or one removed) says nothing of
    // the others: the leader may be the next one asked.
    return this.leaderCall(method, req, (res) => res.descriptor as RangeDescriptorMsg, { refusedIsInvalid: true, tryOthersOnNotFound: true });
  }

  /**
   * Calls `method` on the range's leader: first at `opts.first` (a leader hint) if given, then the
   * endpoints in turn, going straight to the leader a NotLeader answer names. INVALID_ARGUMENT ends
   * the call with InvalidRequestError; FAILED_PRECONDITION with InvalidRequestError too, or with
   * RefusedError unless `refusedIsInvalid`; NOT_FOUND (the node hosts no such range) with
   * InvalidRequestError, or, with `tryOthersOnNotFound`, only once every endpoint said so (then
   * RefusedError, or InvalidRequestError with `refusedIsInvalid`).
   */
  private async leaderCall<T>(
    method: LeaderMethod,
    req: object,
    result: (res: Record<string, unknown>) => T,
    opts: { first?: string; refusedIsInvalid?: boolean; tryOthersOnNotFound?: boolean; notIdempotent?: boolean } = {},
  ): Promise<T> {
    const deadline = Date.now() + this.deadlineMs;
    let target: string | undefined = opts.first || undefined;
    let i = 0;
    let last = 'no endpoint answered';
    const notFoundAt = new Set<string>();
    // An attempt that may have reached the leader and applied, its answer lost (non-idempotent calls only).
    let maybeApplied = false;
    while (Date.now() < deadline) {
      const address = target ?? (this.endpoints[i++ % this.endpoints.length] as string);
      target = undefined;
      try {
        const res = await this.call(address, method, req, deadline);
        const err = res.error as RoutingErrorMsg | null;
        if (!err) return result(res);
        last = err.message;
        target = err.notLeader?.leader?.address || undefined;
      } catch (e) {
        const se = e as grpc.ServiceError;
        const why = se.details ?? se.message;
        if (se.code === grpc.status.INVALID_ARGUMENT) throw new InvalidRequestError(why);
        if (se.code === grpc.status.FAILED_PRECONDITION) {
          if (opts.refusedIsInvalid) throw new InvalidRequestError(why);
          throw new RefusedError(maybeApplied ? `${why} (an earlier attempt whose answer was lost may have applied)` : why);
        }
        if (se.code === grpc.status.NOT_FOUND) {
          if (!opts.tryOthersOnNotFound) throw new InvalidRequestError(why);
          notFoundAt.add(address);
          if (this.endpoints.every((ep) => notFoundAt.has(ep))) throw opts.refusedIsInvalid ? new InvalidRequestError(why) : new RefusedError(why);
        } else if (opts.notIdempotent && se.code !== grpc.status.UNAVAILABLE) {
          // DEADLINE_EXCEEDED, INTERNAL, ...: the call may have run. (UNAVAILABLE: not reached,
          // or the node answered that it could not do it.)
          maybeApplied = true;
        }
        last = `${address}: ${why}`;
      }
      if (!target) await new Promise((r) => setTimeout(r, 100));
    }
    if (maybeApplied) throw new IndeterminateError(`${method}: ${last}`);
    throw new UnavailableError(`${method}: ${last}`);
  }

  transferLeader(rangeId: number, toNodeId: number): Promise<RangeDescriptorMsg> {
    return this.onLeader('transferLeader', { rangeId, toNodeId });
  }

  addLearner(rangeId: number, nodeId: number, address: string): Promise<RangeDescriptorMsg> {
    return this.onLeader('addLearner', { rangeId, nodeId, address });
  }

  promoteLearner(rangeId: number, nodeId: number): Promise<RangeDescriptorMsg> {
    return this.onLeader('promoteLearner', { rangeId, nodeId });
  }

  removeReplica(rangeId: number, nodeId: number): Promise<RangeDescriptorMsg> {
    return this.onLeader('removeReplica', { rangeId, nodeId });
  }

  /**
   * Splits range `rangeId` at `splitKey` (strictly inside the range) on its leader: the range keeps
   * the keys below `splitKey`, a new range takes the rest. With `epochVersion` (non-zero) the split
   * is refused unless the range's epoch version still equals it, so a split decided on a stale view
   * is never applied (and a retried split never splits twice). `leaderAddress` is a hint: asked
   * first. RefusedError when the cluster refuses (key not inside the range, epoch moved on).
   */
  splitRange(rangeId: number, splitKey: Buffer, epochVersion?: number, leaderAddress?: string): Promise<SplitResult> {
    return this.leaderCall(
      'splitRange',
      { rangeId, splitKey, epochVersion: epochVersion ?? 0 },
      (res) => ({ left: res.left as RangeDescriptorMsg, right: (res.right as RangeDescriptorMsg | null) ?? null }),
      { first: leaderAddress, tryOthersOnNotFound: true, notIdempotent: true },
    );
  }

  /** The status of range `rangeId` as the node at `address` sees it (its own descriptor and leader). */
  async rangeStatusAt(address: string, rangeId: number): Promise<RangeStatus> {
    return (await this.call(address, 'rangeStatus', { rangeId }, Date.now() + this.deadlineMs)) as unknown as RangeStatus;
  }

  /** Splits range `rangeId` at the middle of its keys, chosen by its leader (an automatic split). */
  splitRangeAtMiddle(rangeId: number, epochVersion?: number, leaderAddress?: string): Promise<SplitResult> {
    return this.leaderCall(
      'splitRange',
      { rangeId, splitKey: Buffer.alloc(0), epochVersion: epochVersion ?? 0, pickKey: true },
      (res) => ({ left: res.left as RangeDescriptorMsg, right: (res.right as RangeDescriptorMsg | null) ?? null }),
      { first: leaderAddress, tryOthersOnNotFound: true, notIdempotent: true },
    );
  }

  /**
   * Sets (or, with `undefined`, clears) the transport failpoint of the node at `endpoint`. The node
   * must run with --failpoints (otherwise InvalidRequestError).
   */
  async setTransportFailpoint(endpoint: string, fp: TransportFailpoint | undefined): Promise<TransportFailpointStatus> {
    const req = fp === undefined ? { clear: true } : { ...fp, peerNodeIds: [...(fp.peerNodeIds ?? [])], clear: false };
    try {
      return (await this.call(endpoint, 'setTransportFailpoint', req, Date.now() + this.deadlineMs)) as unknown as TransportFailpointStatus;
    } catch (e) {
      const se = e as grpc.ServiceError;
      if (se.code === grpc.status.INVALID_ARGUMENT || se.code === grpc.status.FAILED_PRECONDITION) throw new InvalidRequestError(se.details);
      throw new UnavailableError(`setTransportFailpoint via ${endpoint}: ${se.details ?? se.message}`);
    }
  }
}
