// A client of the Admin service: status, leadership transfer, membership changes. Admin calls
// that must run on a range's leader follow NotLeader answers like the KV client does.

import * as grpc from '@grpc/grpc-js';
import { apiPackageDefinition } from '../api/proto';
import type { RangeDescriptorMsg, RoutingErrorMsg } from '../api/messages';
import { InvalidRequestError, UnavailableError } from './errors';

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

type Unary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void;
interface AdminStub extends grpc.Client {
  clusterStatus: Unary;
  rangeStatus: Unary;
  transferLeader: Unary;
  addLearner: Unary;
  promoteLearner: Unary;
  removeReplica: Unary;
  setTransportFailpoint: Unary;
}

export class AdminClient {
  private readonly stubs = new Map<string, AdminStub>();
  private readonly Stub: new (address: string, creds: grpc.ChannelCredentials) => AdminStub;

  constructor(
    private readonly endpoints: readonly string[],
    private readonly deadlineMs = 10_000,
  ) {
    if (endpoints.length === 0) throw new InvalidRequestError('endpoints: at least one host:port is required');
    const pkg = grpc.loadPackageDefinition(apiPackageDefinition()) as unknown as {
      rangekv: { v1: { Admin: new (address: string, creds: grpc.ChannelCredentials) => AdminStub } };
    };
    this.Stub = pkg.rangekv.v1.Admin;
  }

  private stub(address: string): AdminStub {
    let s = this.stubs.get(address);
    if (!s) {
      s = new this.Stub(address, grpc.credentials.createInsecure());
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
  private async onLeader(method: 'transferLeader' | 'addLearner' | 'promoteLearner' | 'removeReplica', req: object): Promise<RangeDescriptorMsg> {
    const deadline = Date.now() + this.deadlineMs;
    let target: string | undefined;
    let i = 0;
    let last = 'no endpoint answered';
    while (Date.now() < deadline) {
      const address = target ?? (this.endpoints[i++ % this.endpoints.length] as string);
      target = undefined;
      try {
        const res = await this.call(address, method, req, deadline);
        const err = res.error as RoutingErrorMsg | null;
        if (!err) return res.descriptor as RangeDescriptorMsg;
        last = err.message;
        target = err.notLeader?.leader?.address || undefined;
      } catch (e) {
        const se = e as grpc.ServiceError;
        if (se.code === grpc.status.INVALID_ARGUMENT || se.code === grpc.status.FAILED_PRECONDITION || se.code === grpc.status.NOT_FOUND) {
          throw new InvalidRequestError(se.details);
        }
        last = `${address}: ${se.details ?? se.message}`;
      }
      if (!target) await new Promise((r) => setTimeout(r, 100));
    }
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
