// ReadIndex bookkeeping on the leader (§6.4 of the Raft thesis). A request records the commit
// index at the time it arrives; it is released once a quorum of voters has acknowledged a
// heartbeat carrying that request's context (or a later one's: acks confirm leadership for every
// request queued before it).

import { NodeId } from './types';

export interface ReadRequest {
  /** The commit index when the request arrived: the read index. */
  readonly index: number;
  readonly context: Uint8Array;
  /** The node that asked (this node for a local request). */
  readonly from: NodeId;
  readonly acks: Set<NodeId>;
}

export function contextKey(ctx: Uint8Array): string {
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i] as number);
  return s;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadRequest>();
  private queue: string[] = [];

  /** Queues a request; duplicates of a pending context are ignored. Returns false if duplicate. */
  add(index: number, context: Uint8Array, from: NodeId): boolean {
    const key = contextKey(context);
    if (this.pending.has(key)) return false;
    this.pending.set(key, { index, context, from, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records an ack for a context; returns the ack set, or undefined for an unknown context. */
  recvAck(id: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(contextKey(context));
    if (!rs) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Releases every request up to and including the one with `context`, in arrival order. */
  advance(context: Uint8Array): ReadRequest[] {
    const key = contextKey(context);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1).map((k) => this.pending.get(k) as ReadRequest);
    for (const k of this.queue.slice(0, at + 1)) this.pending.delete(k);
    this.queue = this.queue.slice(at + 1);
    return released;
  }

  /** Context of the most recent pending request (carried by the next heartbeat), if any. */
  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : (this.pending.get(key) as ReadRequest).context;
  }

  /** Drops all pending requests (leadership lost) and returns them. */
  reset(): ReadRequest[] {
    const dropped = this.queue.map((k) => this.pending.get(k) as ReadRequest);
    this.pending.clear();
    this.queue = [];
    return dropped;
  }

  size(): number {
    return this.queue.length;
  }
}
