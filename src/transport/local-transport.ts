// An in-process network for tests: nodes register on a LocalNetwork; batches are delivered
// asynchronously (next macrotask), in order per link, and links can be cut.

import { MessageType } from '../raft';
import { OutboundQueues } from './outbound';
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

  /** Whether messages from `from` reach `to` now. */
  linked(from: number, to: number): boolean {
    return !this.cut.has(`${from}>${to}`) && this.handlers.has(to);
  }

  handlerOf(nodeId: number): TransportHandler | undefined {
    return this.handlers.get(nodeId);
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
  private readonly outbound = new OutboundQueues();
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
    this.outbound.add(toNode, messages);
  }

  flush(): void {
    const queued = this.outbound.take();
    for (const [to, msgs] of queued) {
      const streamed = msgs.filter((m) => this.streamsPayload(to, m));
      const plain = streamed.length === 0 ? msgs : msgs.filter((m) => !streamed.includes(m));
      if (plain.length > 0 && !this.network.deliver(this.nodeId, to, plain)) this.handler?.unreachable(to, plain);
      for (const m of streamed) this.sendSnapshotPayload(to, m);
    }
  }

  private streamsPayload(to: number, m: RangeMessage): boolean {
    return m.message.type === MessageType.Snap && this.handler?.snapshotPayload !== undefined && this.network.handlerOf(to)?.snapshotSink !== undefined;
  }

  /** Streams a snapshot payload from our handler into the receiver's sink, then delivers the message (as the gRPC transport does). */
  private sendSnapshotPayload(to: number, m: RangeMessage): void {
    const from = this.nodeId;
    const sender = this.handler as TransportHandler;
    const receiver = this.network.handlerOf(to) as TransportHandler;
    void (async () => {
      let sink: ReturnType<NonNullable<TransportHandler['snapshotSink']>> | undefined;
      try {
        sink = (receiver.snapshotSink as NonNullable<TransportHandler['snapshotSink']>).call(receiver, from, m.rangeId, m.message);
        for await (const chunk of (sender.snapshotPayload as NonNullable<TransportHandler['snapshotPayload']>).call(sender, m.rangeId, m.message)) {
          if (!this.network.linked(from, to)) throw new Error(`link ${from}->${to} cut during a snapshot`);
          await sink.write(chunk);
        }
        await sink.finish();
        sink = undefined;
        if (!this.network.deliver(from, to, [m])) throw new Error(`node ${to} unreachable`);
      } catch (err) {
        if (sink) await sink.abort(err as Error).catch(() => undefined);
        if (!this.stopped) this.handler?.unreachable(to, [m]);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.outbound.clear();
    this.network.unregister(this.nodeId);
    this.handler = undefined;
  }
}
