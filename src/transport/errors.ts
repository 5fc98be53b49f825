// Typed errors of the transport layer. Each has a stable `code`; messages may change, codes do not.

export abstract class TransportError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An option of the transport is out of its range (a programmer or configuration mistake). */
export class TransportConfigError extends TransportError {
  readonly code = 'TRANSPORT_CONFIG_INVALID';
  constructor(readonly field: string, reason: string) {
    super(`transport option ${field}: ${reason}`);
  }
}

/** A Raft message could not be converted to or from its protobuf form. */
export class RaftCodecError extends TransportError {
  readonly code = 'TRANSPORT_CODEC_INVALID';
  constructor(readonly field: string, reason: string) {
    super(`raft message field ${field}: ${reason}`);
  }
}

/** A snapshot is larger than this node accepts (receiving) or sends (sending). */
export class SnapshotTooLargeError extends TransportError {
  readonly code = 'TRANSPORT_SNAPSHOT_TOO_LARGE';
  constructor(readonly sizeBytes: number, readonly maxBytes: number, readonly rangeId: number) {
    super(
      `snapshot of range ${rangeId} is too large: at least ${sizeBytes} bytes, the limit is ${maxBytes} bytes ` +
        `(raise maxSnapshotBytes on the receiving node, or split the range)`,
    );
  }
}

/**
 * The handler cannot stream the payload of this snapshot now (its read view was replaced by a
 * newer snapshot's). Not a failure: the Snap is reported unreachable and Raft sends a newer one.
 */
export class SnapshotPayloadUnavailableError extends TransportError {
  readonly code = 'TRANSPORT_SNAPSHOT_PAYLOAD_UNAVAILABLE';
  constructor(readonly rangeId: number, readonly index: number) {
    super(`range ${rangeId}: no readable snapshot at index ${index} on this node (a fresh one is being prepared)`);
  }
}

/** The proto/ directory (with rangekv/v1/raft.proto) was not found above the compiled file. */
export class ProtoFilesNotFoundError extends TransportError {
  readonly code = 'TRANSPORT_PROTO_NOT_FOUND';
  constructor(readonly searched: readonly string[]) {
    super(`proto/rangekv/v1/raft.proto not found in any of: ${searched.join(', ')}`);
  }
}

/** start() was called twice, or after stop(). */
export class TransportStateError extends TransportError {
  readonly code = 'TRANSPORT_BAD_STATE';
  constructor(reason: string) {
    super(`transport: ${reason}`);
  }
}
