// The Admin gRPC service: cluster and range status, leadership transfer, and membership changes
// (add a learner, promote it, remove a replica). Membership changes go through Raft one at a time;
// the call returns once the change is applied on the leader. SetTransportFailpoint is for
// fault-injection tests only: it works when kvd runs with --failpoints.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Node, NodeError, Replica, SplitRefusedError } from '../node';
import { DEFAULT_LIMITS } from './validate';
import { ConfChangeRefusedError, ConfChangeType, NotLeaderError, StateType } from '../raft';
import { FailpointConfigError, TransportFailpoints } from '../transport';
import type { RoutingErrorMsg } from './messages';
import { descriptorOf, notLeaderError } from './routing';
import { MalformedRequest, isMalformed, tolerantServiceDefinition } from './proto';

export interface AdminServiceOptions {
  readonly node: Node;
  readonly clusterId: string;
  readonly logger: Logger;
  /** How long TransferLeader waits for the new leader to take over. Default 5 s. */
  readonly transferWaitMs?: number;
  /** The transport's failpoints when kvd runs with --failpoints; otherwise SetTransportFailpoint is refused. */
  readonly failpoints?: TransportFailpoints;
  /** Reserves a new range id with placement (for splits); without it SplitRange is refused. */
  readonly allocateRangeId?: () => Promise<number>;
  /** Tells placement about ranges that changed shape (best effort: heartbeats repeat it). */
  readonly reportRanges?: (rangeIds: number[]) => void;
}

interface RangeReq {
  rangeId: number;
}
interface TransferReq extends RangeReq {
  toNodeId: number;
}
interface ChangeReq extends RangeReq {
  nodeId: number;
  address: string;
}
interface SplitReq extends RangeReq {
  splitKey: Buffer;
  epochVersion: number;
  pickKey: boolean;
}
interface FailpointReq {
  peerNodeIds: number[];
  delayMs: number;
  jitterMs: number;
  dropProbability: number;
  clear: boolean;
}

class AdminFailure extends Error {
  constructor(
    readonly status: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

export class AdminService {
  constructor(private readonly o: AdminServiceOptions) {}

  register(server: grpc.Server): void {
    server.addService(tolerantServiceDefinition('rangekv.v1.Admin'), {
      clusterStatus: this.unary(() => this.clusterStatus()),
      rangeStatus: this.unary((r: RangeReq) => this.rangeStatus(r)),
      transferLeader: this.unary((r: TransferReq) => this.transferLeader(r)),
      addLearner: this.unary((r: ChangeReq) => this.change(r, ConfChangeType.AddLearner)),
      promoteLearner: this.unary((r: ChangeReq) => this.change(r, ConfChangeType.AddVoter)),
      removeReplica: this.unary((r: ChangeReq) => this.change(r, ConfChangeType.RemoveNode)),
      setTransportFailpoint: this.unary((r: FailpointReq) => this.setTransportFailpoint(r)),
      splitRange: this.unary((r: SplitReq) => this.splitRange(r)),
    });
  }

  private unary<Req>(handler: (req: Req) => Promise<object>): grpc.handleUnaryCall<Req | MalformedRequest, unknown> {
    return (call, callback) => {
      const req = call.request;
      if (isMalformed(req)) {
        callback({ code: grpc.status.INVALID_ARGUMENT, details: req.malformed });
        return;
      }
      handler(req).then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (err instanceof AdminFailure) callback({ code: err.status, details: err.message });
          else if (err instanceof NodeError) callback({ code: grpc.status.UNAVAILABLE, details: err.message });
          else {
            this.o.logger.error({ err }, 'unexpected error in Admin handler');
            callback({ code: grpc.status.INTERNAL, details: `internal error: ${(err as Error).message}` });
          }
        },
      );
    };
  }

  private replica(rangeId: number): Replica {
    const r = this.o.node.replicas.get(rangeId);
    if (!r || !r.initialized) throw new AdminFailure(grpc.status.NOT_FOUND, `range ${rangeId} is not on node ${this.o.node.nodeId}`);
    return r;
  }

  private notLeaderError(r: Replica): RoutingErrorMsg {
    return notLeaderError(r, r.rawNode.basicStatus().leader, (id) => this.o.node.addressOf(id));
  }

  private rangeStatusOf(r: Replica): object {
    const st = r.rawNode.status();
    const progress = st.progress
      ? [...st.progress.entries()].map(([nodeId, p]) => ({ nodeId, role: p.isLearner ? 2 : 1, matchIndex: p.match, state: p.state }))
      : [];
    return {
      descriptor: descriptorOf(r),
      leaderNodeId: st.leader,
      term: st.term,
      commitIndex: st.commit,
      appliedIndex: r.appliedIndex,
      progress,
      error: null,
    };
  }

  private async clusterStatus(): Promise<object> {
    const node = this.o.node;
    const ranges = [...node.replicas.values()].filter((r) => r.initialized).map((r) => this.rangeStatusOf(r));
    const ids = new Set<number>([node.nodeId]);
    for (const r of node.replicas.values()) for (const id of [...r.confState.voters, ...r.confState.learners]) ids.add(id);
    const nodes = [...ids].sort((a, b) => a - b).map((id) => {
      let replicaCount = 0;
      let leaderCount = 0;
      let alive: boolean | undefined = id === node.nodeId ? true : undefined;
      for (const r of node.replicas.values()) {
        const st = r.rawNode.status();
        if (r.confState.voters.includes(id) || r.confState.learners.includes(id)) replicaCount++;
        if (st.leader === id) leaderCount++;
        // The leader's view of recent contact is the best liveness signal this node has.
        const p = st.progress?.get(id);
        if (p && id !== node.nodeId) alive = (alive ?? false) || p.recentActive;
      }
      return { nodeId: id, address: node.addressOf(id) ?? '', zone: '', replicaCount, leaderCount, alive: alive ?? false };
    });
    return { clusterId: this.o.clusterId, nodes, ranges, transportFailpoint: this.failpointStatus() };
  }

  private failpointStatus(): object {
    const fp = this.o.failpoints;
    const st = fp?.status();
    const active = st?.active;
    return {
      enabled: fp !== undefined,
      active: active !== undefined,
      peerNodeIds: active?.peers ?? [],
      delayMs: active?.delayMs ?? 0,
      jitterMs: active?.jitterMs ?? 0,
      dropProbability: active?.dropProbability ?? 0,
      droppedMessages: st?.droppedMessages ?? 0,
      delayedMessages: st?.delayedMessages ?? 0,
    };
  }

  private async setTransportFailpoint(req: FailpointReq): Promise<object> {
    const fp = this.o.failpoints;
    if (!fp) throw new AdminFailure(grpc.status.FAILED_PRECONDITION, `failpoints are off on node ${this.o.node.nodeId}: start kvd with --failpoints`);
    try {
      fp.set(req.clear ? undefined : { peers: req.peerNodeIds, delayMs: req.delayMs, jitterMs: req.jitterMs, dropProbability: req.dropProbability });
    } catch (err) {
      if (err instanceof FailpointConfigError) throw new AdminFailure(grpc.status.INVALID_ARGUMENT, err.message);
      throw err;
    }
    const active = fp.status().active;
    if (active) this.o.logger.warn({ failpoint: active }, 'transport failpoint set');
    else this.o.logger.info('transport failpoint cleared');
    return this.failpointStatus();
  }

  private async rangeStatus(req: RangeReq): Promise<object> {
    return this.rangeStatusOf(this.replica(req.rangeId));
  }

  private async transferLeader(req: TransferReq): Promise<object> {
    const r = this.replica(req.rangeId);
    if (!r.confState.voters.includes(req.toNodeId)) {
      throw new AdminFailure(grpc.status.INVALID_ARGUMENT, `to_node_id: node ${req.toNodeId} is not a voter of range ${r.rangeId}`);
    }
    if (r.rawNode.basicStatus().state !== StateType.Leader) return { error: this.notLeaderError(r), descriptor: descriptorOf(r) };
    if (r.rawNode.status().leader === req.toNodeId) return { error: null, descriptor: descriptorOf(r) };
    this.o.node.transferLeader(r.rangeId, req.toNodeId);
    const deadline = Date.now() + (this.o.transferWaitMs ?? 5000);
    while (Date.now() < deadline) {
      const st = r.rawNode.status();
      if (st.leader === req.toNodeId) return { error: null, descriptor: descriptorOf(r) };
      await new Promise((res) => setTimeout(res, 10));
    }
    throw new AdminFailure(grpc.status.DEADLINE_EXCEEDED, `node ${req.toNodeId} did not take over range ${r.rangeId} in time (it may be behind or down)`);
  }

  private async splitRange(req: SplitReq): Promise<object> {
    const r = this.replica(req.rangeId);
    let key = req.splitKey ?? Buffer.alloc(0);
    if (key.length === 0 && req.pickKey) {
      if (r.rawNode.basicStatus().state !== StateType.Leader) return { error: this.notLeaderError(r), left: descriptorOf(r), right: null };
      const middle = await r.sm.middleKey();
      if (!middle) throw new AdminFailure(grpc.status.FAILED_PRECONDITION, `range ${r.rangeId}: split refused: it holds fewer than two keys`);
      key = middle;
    }
    if (key.length === 0) throw new AdminFailure(grpc.status.INVALID_ARGUMENT, 'split_key: must not be empty (or set pick_key)');
    if (key.length > DEFAULT_LIMITS.maxKeyBytes) {
      throw new AdminFailure(grpc.status.INVALID_ARGUMENT, `split_key: ${key.length} bytes is over the limit of ${DEFAULT_LIMITS.maxKeyBytes}`);
    }
    if (r.rawNode.basicStatus().state !== StateType.Leader) return { error: this.notLeaderError(r), left: descriptorOf(r), right: null };
    if (!this.o.allocateRangeId) throw new AdminFailure(grpc.status.FAILED_PRECONDITION, 'splits need the placement service, which this node does not reach');
    // Checked before an id is allocated (the node checks again, and the split re-checks at apply).
    const b = r.sm.bounds;
    if (req.epochVersion && req.epochVersion !== b.epochVersion) {
      throw new AdminFailure(grpc.status.FAILED_PRECONDITION, `range ${r.rangeId}: split refused: its epoch version is ${b.epochVersion}, not ${req.epochVersion}`);
    }
    if (Buffer.compare(key, b.start) <= 0 || (b.end.length > 0 && Buffer.compare(key, b.end) >= 0)) {
      throw new AdminFailure(grpc.status.FAILED_PRECONDITION, `range ${r.rangeId}: split refused: split key ${printable(key)} is not strictly inside the range [${printable(b.start)}, ${printable(b.end)})`);
    }
    const newId = await this.o.allocateRangeId();
    try {
      await this.o.node.split(r.rangeId, key, newId, req.epochVersion || undefined);
    } catch (err) {
      if (err instanceof NotLeaderError) return { error: this.notLeaderError(r), left: descriptorOf(r), right: null };
      if (err instanceof SplitRefusedError) throw new AdminFailure(grpc.status.FAILED_PRECONDITION, err.message);
      throw err;
    }
    this.o.reportRanges?.([r.rangeId, newId]);
    const right = this.o.node.replicas.get(newId);
    return { error: null, left: descriptorOf(r), right: right ? descriptorOf(right) : null };
  }

  private async change(req: ChangeReq, type: ConfChangeType): Promise<object> {
    const r = this.replica(req.rangeId);
    if (!(Number.isInteger(req.nodeId) && req.nodeId > 0)) {
      throw new AdminFailure(grpc.status.INVALID_ARGUMENT, `node_id: must be a positive integer, got ${req.nodeId}`);
    }
    if (type === ConfChangeType.AddLearner && !req.address && !this.o.node.addressOf(req.nodeId)) {
      throw new AdminFailure(grpc.status.INVALID_ARGUMENT, `address: node ${req.nodeId} is unknown; give its host:port`);
    }
    if (type === ConfChangeType.AddVoter && !r.confState.learners.includes(req.nodeId)) {
      throw new AdminFailure(grpc.status.FAILED_PRECONDITION, `node ${req.nodeId} is not a learner of range ${r.rangeId}: add it as a learner first`);
    }
    if (r.rawNode.basicStatus().state !== StateType.Leader) return { error: this.notLeaderError(r), descriptor: descriptorOf(r) };
    try {
      await this.o.node.proposeConfChange(r.rangeId, { type, nodeId: req.nodeId, context: Buffer.from(req.address ?? '', 'utf8') });
    } catch (err) {
      if (err instanceof NotLeaderError) return { error: this.notLeaderError(r), descriptor: descriptorOf(r) };
      if (err instanceof ConfChangeRefusedError) throw new AdminFailure(grpc.status.FAILED_PRECONDITION, err.message);
      throw err;
    }
    return { error: null, descriptor: descriptorOf(r) };
  }
}

/** A key for messages: as text when printable ASCII, else 0x-hex. */
function printable(k: Uint8Array): string {
  const b = Buffer.from(k);
  return b.length > 0 && /^[\x20-\x7e]*$/.test(b.toString('latin1')) ? `'${b.toString('latin1')}'` : `0x${b.toString('hex')}`;
}
