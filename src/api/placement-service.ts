// The Placement gRPC service on every node. The meta range's leader serves each call from the
// meta state; any other node forwards the call to it (through the `forward` function kvd gives,
// a Placement client over the known nodes), or, for a call that was already forwarded once,
// answers with the leader it knows so the caller can go there itself.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Node } from '../node';
import { MetaDescriptor, MetaWriteError, NotMetaLeaderError, Placement, RangeView } from '../placement';
import type { RangeDescriptorMsg } from './messages';
import { MalformedRequest, isMalformed, tolerantServiceDefinition } from './proto';

export type PlacementMethodName = 'lookupRange' | 'listRanges' | 'listNodes' | 'heartbeat' | 'allocateRangeIds' | 'drainNode' | 'removeNode';

export interface PlacementServiceOptions {
  readonly node: Node;
  readonly placement: Placement;
  readonly logger: Logger;
  /** Sends a call to the meta leader elsewhere (marked as forwarded); absent = answer with a hint. */
  readonly forward?: (method: PlacementMethodName, req: object) => Promise<object>;
}

const ROLE_VOTER = 1;
const ROLE_LEARNER = 2;
const NODE_STATES: Record<string, number> = { up: 1, suspect: 2, down: 3, draining: 4 };
const FORWARDED = 'x-rangekv-placement-forwarded';

export function descriptorToMsg(d: MetaDescriptor): RangeDescriptorMsg {
  return {
    rangeId: d.rangeId,
    startKey: Buffer.from(d.startHex, 'hex'),
    endKey: Buffer.from(d.endHex, 'hex'),
    epoch: { version: d.epochVersion, confVersion: d.confVersion },
    replicas: d.replicas.map((r) => ({ nodeId: r.nodeId, role: r.role === 'learner' ? ROLE_LEARNER : ROLE_VOTER })),
  };
}

export function descriptorFromMsg(m: RangeDescriptorMsg): MetaDescriptor {
  return {
    rangeId: m.rangeId,
    startHex: Buffer.from(m.startKey).toString('hex'),
    endHex: Buffer.from(m.endKey).toString('hex'),
    epochVersion: m.epoch?.version ?? 0,
    confVersion: m.epoch?.confVersion ?? 0,
    replicas: m.replicas.map((r) => ({ nodeId: r.nodeId, role: r.role === ROLE_LEARNER ? 'learner' : 'voter' })),
  };
}

class BadRequest extends Error {}
class Refused extends Error {}

interface HeartbeatMsg {
  nodeId: number;
  address: string;
  zone: string;
  replicaCount: number;
  leaderCount: number;
  ranges: Array<{
    descriptor: RangeDescriptorMsg | null;
    leader: boolean;
    approximateBytes: number;
    approximateKeys: number;
    writesPerSecond: number;
    readsPerSecond: number;
    caughtUpLearners: number[];
  }>;
}

export class PlacementService {
  constructor(private readonly o: PlacementServiceOptions) {}

  register(server: grpc.Server): void {
    server.addService(tolerantServiceDefinition('rangekv.v1.Placement'), {
      lookupRange: this.unary('lookupRange', (r: { key: Buffer }) => this.lookupRange(r)),
      listRanges: this.unary('listRanges', (r: { startKey: Buffer; limit: number }) => this.listRanges(r)),
      listNodes: this.unary('listNodes', () => this.listNodes()),
      heartbeat: this.unary('heartbeat', (r: HeartbeatMsg) => this.heartbeat(r)),
      allocateRangeIds: this.unary('allocateRangeIds', (r: { count: number }) => this.allocate(r)),
      drainNode: this.unary('drainNode', (r: { nodeId: number; cancel: boolean }) => this.drainNode(r)),
      removeNode: this.unary('removeNode', (r: { nodeId: number }) => this.removeNode(r)),
    });
  }

  private leaderHint(leader: number): object | null {
    const address = leader === 0 ? undefined : this.o.node.addressOf(leader);
    return address ? { nodeId: leader, address } : null;
  }

  private unary<Req>(method: PlacementMethodName, handler: (req: Req) => Promise<object>): grpc.handleUnaryCall<Req | MalformedRequest, unknown> {
    return (call, callback) => {
      const req = call.request;
      if (isMalformed(req)) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: req.malformed });
        return;
      }
      const forwarded = call.metadata.get(FORWARDED).length > 0;
      const serve = async (): Promise<object> => {
        if (!this.o.placement.meta.isLeader() && !forwarded && this.o.forward) return this.o.forward(method, req as object);
        return handler(req);
      };
      serve().then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (err instanceof NotMetaLeaderError) {
            callback(null, { error: { message: `node ${this.o.node.nodeId}: ${err.message}`, leader: this.leaderHint(err.leader) } });
          } else if (err instanceof BadRequest) {
            callback({ code: grpc.status.INVALID_ARGUMENT, details: err.message });
          } else if (err instanceof Refused) {
            callback({ code: grpc.status.FAILED_PRECONDITION, details: err.message });
          } else if (err instanceof MetaWriteError) {
            callback({ code: grpc.status.ABORTED, details: err.message });
          } else {
            const e = err as Error & { code?: unknown };
            this.o.logger.warn({ err, method }, 'placement call failed');
            callback({ code: grpc.status.UNAVAILABLE, details: `placement ${method}: ${e.message}` });
          }
        },
      );
    };
  }

  private rangeInfo(r: RangeView): object {
    return {
      descriptor: descriptorToMsg(r.descriptor),
      leader: r.leaderNodeId === 0 ? null : { nodeId: r.leaderNodeId, address: this.o.node.addressOf(r.leaderNodeId) ?? '' },
      approximateBytes: r.load?.approximateBytes ?? 0,
      approximateKeys: r.load?.approximateKeys ?? 0,
      writesPerSecond: r.load?.writesPerSecond ?? 0,
      readsPerSecond: r.load?.readsPerSecond ?? 0,
    };
  }

  private async lookupRange(req: { key: Buffer }): Promise<object> {
    const r = await this.o.placement.lookup(req.key ?? Buffer.alloc(0));
    return { error: null, range: r ? this.rangeInfo(r) : null };
  }

  private async listRanges(req: { startKey: Buffer; limit: number }): Promise<object> {
    const limit = req.limit === 0 ? 1000 : req.limit;
    if (limit > 10_000) throw new BadRequest(`limit: ${req.limit} is over the maximum of 10000`);
    const { ranges, more } = await this.o.placement.ranges(req.startKey ?? Buffer.alloc(0), limit);
    return { error: null, ranges: ranges.map((r) => this.rangeInfo(r)), more };
  }

  private async listNodes(): Promise<object> {
    const nodes = await this.o.placement.nodes();
    return {
      error: null,
      nodes: nodes.map((n) => ({
        nodeId: n.nodeId,
        address: n.address,
        zone: n.zone,
        state: NODE_STATES[n.state] ?? 0,
        lastHeartbeatAgeMs: Number.isFinite(n.heartbeatAgeMs) ? n.heartbeatAgeMs : 0,
        replicaCount: n.replicaCount,
        leaderCount: n.leaderCount,
      })),
    };
  }

  private async heartbeat(req: HeartbeatMsg): Promise<object> {
    if (!(req.nodeId > 0)) throw new BadRequest('node_id: must be positive');
    if (!req.address) throw new BadRequest('address: required (host:port)');
    await this.o.placement.heartbeat({
      nodeId: req.nodeId,
      address: req.address,
      zone: req.zone,
      replicaCount: req.replicaCount,
      leaderCount: req.leaderCount,
      ranges: req.ranges
        .filter((r) => r.descriptor !== null)
        .map((r) => ({
          descriptor: descriptorFromMsg(r.descriptor as RangeDescriptorMsg),
          leaderNodeId: r.leader ? req.nodeId : 0,
          load: {
            approximateBytes: r.approximateBytes,
            approximateKeys: r.approximateKeys,
            writesPerSecond: r.writesPerSecond,
            readsPerSecond: r.readsPerSecond,
            caughtUpLearners: r.caughtUpLearners ?? [],
          },
        })),
    });
    return { error: null };
  }

  private async drainNode(req: { nodeId: number; cancel: boolean }): Promise<object> {
    if (!(req.nodeId > 0)) throw new BadRequest('node_id: must be positive');
    const res = await this.o.placement.drain(req.nodeId, req.cancel);
    if (!res) throw new BadRequest(`node_id: node ${req.nodeId} is not known to placement`);
    return { error: null, ...res };
  }

  private async removeNode(req: { nodeId: number }): Promise<object> {
    if (!(req.nodeId > 0)) throw new BadRequest('node_id: must be positive');
    const res = await this.o.placement.remove(req.nodeId);
    if (res === 'unknown') throw new BadRequest(`node_id: node ${req.nodeId} is not known to placement`);
    if (res !== 'removed') {
      throw new Refused(`node ${req.nodeId} still holds ${res.replicas} replica(s) and leads ${res.leaders} range(s): drain it first (kvctl node drain ${req.nodeId})`);
    }
    return { error: null };
  }

  private async allocate(req: { count: number }): Promise<object> {
    if (!(req.count >= 1 && req.count <= 1000)) throw new BadRequest(`count: must be 1..1000, got ${req.count}`);
    return { error: null, firstId: await this.o.placement.allocateRangeIds(req.count) };
  }
}
