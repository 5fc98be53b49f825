// The seam between the node layer and the network: Raft messages leave a node batched per
// destination node (send, then flush once per ready-loop turn) and arrive through a handler.
// Implementations: LocalTransport (in-process, for tests) and the gRPC transport.

import type { Message } from '../raft';

/** A Raft message addressed to one range's group. Replica ids are node ids. */
export interface RangeMessage {
  readonly rangeId: number;
  readonly message: Message;
}

export interface TransportHandler {
  /** Messages from `fromNode`, in the order it sent them. */
  receive(fromNode: number, messages: readonly RangeMessage[]): void;
  /** A batch to `toNode` could not be delivered (the node layer reports it to the leaders). */
  unreachable(toNode: number, messages: readonly RangeMessage[]): void;
}

export interface Transport {
  /** Starts delivering incoming messages to `handler`. */
  start(handler: TransportHandler): Promise<void>;
  /** Queues messages for `toNode`; nothing leaves before flush(). */
  send(toNode: number, messages: readonly RangeMessage[]): void;
  /** Sends everything queued, one batch per destination. */
  flush(): void;
  stop(): Promise<void>;
}
