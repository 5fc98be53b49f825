// A client of the Placement service: tries the endpoints it is given, follows the meta leader
// hints in responses, retries with backoff under one deadline. Used by KvClient (range lookups),
// kvctl (nodes, ranges) and kvd itself (heartbeats, range id allocation, forwarding).

import * as grpc from '@grpc/grpc-js';
import { GRPC_COMMON_OPTIONS, apiPackageDefinition } from '../api/proto';
import type { RangeDescriptorMsg } from '../api/messages';
import { InvalidRequestError, UnavailableError } from './errors';
import { RefusedError } from './admin-client';

export interface PlacementErrorMsg {
  message: string;
  leader: { nodeId: number; address: string } | null;
}

export interface RangeInfoMsg {
  descriptor: RangeDescriptorMsg;
  leader: { nodeId: number; address: string } | null;
  approximateBytes: number;
  approximateKeys: number;
  writesPerSecond: number;
  readsPerSecond: number;
}

export interface NodeInfoMsg {
  nodeId: number;
  address: string;
  zone: string;
  state: number;
  lastHeartbeatAgeMs: number;
  replicaCount: number;
  leaderCount: number;
}

export type PlacementMethod = 'lookupRange' | 'listRanges' | 'listNodes' | 'heartbeat' | 'allocateRangeIds' | 'drainNode' | 'removeNode';

interface HasPlacementError {
  error: PlacementErrorMsg | null;
}

type Unary = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: HasPlacementError) => void) => void;
type PlacementStub = grpc.Client & Record<PlacementMethod, Unary>;
type PlacementStubConstructor = new (address: string, creds: grpc.ChannelCredentials, options?: object) => PlacementStub;

/** Metadata set on a call one node forwards to another (a forwarded call is never forwarded again). */
export const FORWARDED_METADATA_KEY = 'x-rangekv-placement-forwarded';

const DEFINITE = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED, grpc.status.NOT_FOUND]);

export interface PlacementClientOptions {
  /** host:port of nodes to ask (any node answers or forwards); a function is asked again on each attempt. */
  readonly endpoints: readonly string[] | (() => readonly string[]);
  /** Deadline of one call, retries included. Default 5 s. */
  readonly deadlineMs?: number;
}

export class PlacementClient {
  private readonly stubs = new Map<string, PlacementStub>();
  private leaderAddress: string | undefined;
  private next = 0;
  private readonly Stub: PlacementStubConstructor;

  constructor(private readonly opts: PlacementClientOptions) {
    const pkg = grpc.loadPackageDefinition(apiPackageDefinition()) as unknown as {
      rangekv: { v1: { Placement: PlacementStubConstructor } };
    };
    this.Stub = pkg.rangekv.v1.Placement;
  }

  private endpoints(): readonly string[] {
    const e = this.opts.endpoints;
    return typeof e === 'function' ? e() : e;
  }

  private stub(address: string): PlacementStub {
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

  /**
   * Calls `method` on the meta leader, wherever it is. `forwarded` marks a call a node passes on
   * for a client: the receiver answers it or returns its leader hint, never forwards it again.
   */
  async call<T extends object>(method: PlacementMethod, req: object, opts: { forwarded?: boolean; deadlineMs?: number } = {}): Promise<T> {
    const deadline = Date.now() + (opts.deadlineMs ?? this.opts.deadlineMs ?? 5_000);
    let backoff = 20;
    let lastError = 'no endpoint answered';
    for (;;) {
      const endpoints = this.endpoints();
      if (endpoints.length === 0 && !this.leaderAddress) throw new UnavailableError('placement: no endpoints known');
      const address = this.leaderAddress ?? (endpoints[this.next++ % endpoints.length] as string);
      let hinted = false;
      try {
        const md = new grpc.Metadata();
        if (opts.forwarded) md.set(FORWARDED_METADATA_KEY, '1');
        const stub = this.stub(address);
        const res = await new Promise<HasPlacementError>((resolve, reject) => {
          stub[method].call(stub, req, md, { deadline }, (err, r) => (err ? reject(err) : resolve(r)));
        });
        if (!res.error) {
          this.leaderAddress = address;
          return res as unknown as T;
        }
        lastError = `${address}: ${res.error.message}`;
        const hint = res.error.leader?.address;
        this.leaderAddress = hint && hint !== address ? hint : undefined;
        hinted = this.leaderAddress !== undefined;
      } catch (e) {
        const se = e as grpc.ServiceError;
        if (DEFINITE.has(se.code)) throw new InvalidRequestError(`placement ${method}: ${se.details ?? se.message}`);
        if (se.code === grpc.status.FAILED_PRECONDITION) throw new RefusedError(se.details ?? se.message);
        lastError = `${address}: ${se.details ?? se.message}`;
        this.leaderAddress = undefined;
      }
      if (Date.now() >= deadline) throw new UnavailableError(`placement ${method}: ${lastError}`);
      if (!hinted) {
        await new Promise((r) => setTimeout(r, Math.min(backoff, Math.max(0, deadline - Date.now()))));
        backoff = Math.min(backoff * 2, 500);
      }
    }
  }

  async lookupRange(key: Buffer): Promise<RangeInfoMsg | undefined> {
    const res = await this.call<{ range: RangeInfoMsg | null }>('lookupRange', { key });
    return res.range ?? undefined;
  }

  /** Every range in key order (paged under the hood). */
  async listRanges(): Promise<RangeInfoMsg[]> {
    const out: RangeInfoMsg[] = [];
    let start: Buffer = Buffer.alloc(0);
    for (;;) {
      const res = await this.call<{ ranges: RangeInfoMsg[]; more: boolean }>('listRanges', { startKey: start, limit: 1000 });
      out.push(...res.ranges);
      const last = res.ranges[res.ranges.length - 1];
      if (!res.more || !last || last.descriptor.endKey.length === 0) return out;
      start = last.descriptor.endKey;
    }
  }

  async listNodes(): Promise<NodeInfoMsg[]> {
    return (await this.call<{ nodes: NodeInfoMsg[] }>('listNodes', {})).nodes;
  }

  /** Starts (or cancels) draining a node; returns what is left on it. Call again to poll. */
  async drainNode(nodeId: number, cancel = false): Promise<{ replicas: number; leaders: number; done: boolean }> {
    return this.call('drainNode', { nodeId, cancel });
  }

  /** Removes a drained node from placement (RefusedError while it still holds replicas). */
  async removeNode(nodeId: number): Promise<void> {
    await this.call('removeNode', { nodeId });
  }

  async allocateRangeIds(count: number): Promise<number> {
    return (await this.call<{ firstId: number }>('allocateRangeIds', { count })).firstId;
  }
}
