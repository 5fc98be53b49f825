// The seam between the node layer and the network: Raft messages leave a node batched per
// destination node (send, then flush once per ready-loop turn) and arrive through a handler.
// Implementations: LocalTransport (in-process, for tests) and the gRPC transport.

import type { Message } from '../raft';

/** A Raft message addressed to one range's group. Replica ids are node ids. */
export interface RangeMessage {
  readonly rangeId: number;
  readonly message: Message;
}

/** Receives the streamed payload of one incoming snapshot, chunk by chunk (bounded memory). */
export interface SnapshotSink {
  /** Stores the next piece of the payload; the transport waits for it before reading more. */
  write(chunk: Uint8Array): Promise<void>;
  /** The whole payload arrived; after this resolves the Snap message is delivered. */
  finish(): Promise<void>;
  /** The transfer failed; discard what was stored. */
  abort(reason: Error): Promise<void>;
}

export interface TransportHandler {
  /** Messages from `fromNode`, in the order it sent them. */
  receive(fromNode: number, messages: readonly RangeMessage[]): void;
  /** A batch to `toNode` could not be delivered (the node layer reports it to the leaders). */
  unreachable(toNode: number, messages: readonly RangeMessage[]): void;
  /**
   * Optional streamed snapshot payloads. When both ends provide them, a Snap message travels with
   * its (small) `snapshot.data` inline and a payload streamed from `snapshotPayload` on the sender
   * into `snapshotSink` on the receiver, in chunks, before the message is delivered. Without
   * them, only `snapshot.data` travels. `snapshotPayload` throws SnapshotPayloadUnavailableError
   * when it cannot stream that snapshot now; the transport calls `return()` on the iterator of a
   * payload it stops reading early, so whatever the payload holds open is released.
   */
  snapshotPayload?(rangeId: number, message: Message): AsyncIterable<Uint8Array>;
  snapshotSink?(fromNode: number, rangeId: number, message: Message): SnapshotSink;
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
