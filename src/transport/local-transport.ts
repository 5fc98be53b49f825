// An in-process network for tests: nodes register on a LocalNetwork; batches are delivered
// asynchronously (next macrotask), in order per link, and links can be cut.

import type { RangeMessage, Transport, TransportHandler } from './transport';

export class LocalNetwork {
  private readonly handlers = new Map<number, TransportHandler>();
  private readonly cut = new Set<string>();

  register(nodeId: number, h: TransportHandler): void {
    this.handlers.set(nodeId, h);
  }

  unregister(nodeId: number): void {
    this.handlers.delete(nodeId);
  }

  /** Drops everything from a to b (one way). */
  cutLink(a: number, b: number): void {
    this.cut.add(`${a}>${b}`);
  }

  /** Cuts every link to and from the node. */
  isolate(nodeId: number, others: number[]): void {
    for (const o of others) {
      this.cutLink(nodeId, o);
      this.cutLink(o, nodeId);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  deliver(from: number, to: number, msgs: readonly RangeMessage[]): boolean {
    if (this.cut.has(`${from}>${to}`)) return false;
    const h = this.handlers.get(to);
    if (!h) return false;
    setImmediate(() => {
      if (this.cut.has(`${from}>${to}`)) return;
      this.handlers.get(to)?.receive(from, msgs);
    });
    return true;
  }
}

export class LocalTransport implements Transport {
  private handler: TransportHandler | undefined;
  private queued = new Map<number, RangeMessage[]>();
  private stopped = false;

  constructor(
    private readonly network: LocalNetwork,
    readonly nodeId: number,
  ) {}

  async start(handler: TransportHandler): Promise<void> {
    this.handler = handler;
    this.network.register(this.nodeId, handler);
  }

  send(toNode: number, messages: readonly RangeMessage[]): void {
    // A stopped node says nothing more (the Transport contract, tests/transport/transport-conformance.ts).
    if (this.stopped) return;
    let q = this.queued.get(toNode);
    if (!q) {
      q = [];
      this.queued.set(toNode, q);
    }
    for (const m of messages) q.push(m);
  }

  flush(): void {
    const queued = this.queued;
    this.queued = new Map();
    for (const [to, msgs] of queued) {
      if (!this.network.deliver(this.nodeId, to, msgs)) this.handler?.unreachable(to, msgs);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queued = new Map();
    this.network.unregister(this.nodeId);
    this.handler = undefined;
  }
}
