// Errors of the node layer. Each is a class with a stable code; the api layer maps them to the
// wire (routing errors travel in the response, see DESIGN.md).

export abstract class NodeError extends Error {
  abstract readonly code: string;
  /** True when the operation definitely did not take effect (safe to retry blindly). */
  abstract readonly definite: boolean;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A different entry was committed where the proposal was: it did not apply (retry is safe). */
export class ProposalLostError extends NodeError {
  readonly code = 'PROPOSAL_LOST';
  readonly definite = true;
  constructor(readonly rangeId: number, readonly index: number) {
    super(`range ${rangeId}: the proposal at index ${index} was superseded by another leader's entry`);
  }
}

/** The leader handling a read-index request lost leadership before confirming it. */
export class ReadIndexDroppedError extends NodeError {
  readonly code = 'READ_INDEX_DROPPED';
  readonly definite = true;
  constructor(readonly rangeId: number) {
    super(`range ${rangeId}: the read was dropped by a leader that lost leadership; retry`);
  }
}

/**
 * A linearizable read waited too long on this replica: no read index came back from the leader,
 * or this replica's applied state did not reach it. Retrying elsewhere is safe (nothing was read).
 */
export class ReadTimeoutError extends NodeError {
  readonly code = 'READ_TIMEOUT';
  readonly definite = true;
  constructor(readonly rangeId: number, readonly waitedMs: number, readonly readIndex: number | undefined, readonly appliedIndex: number) {
    super(
      readIndex === undefined
        ? `range ${rangeId}: no read index from the leader after ${waitedMs} ms; try another replica`
        : `range ${rangeId}: applied index ${appliedIndex} did not reach the read index ${readIndex} within ${waitedMs} ms; try another replica`,
    );
  }
}

/** This node hosts no replica of the range. */
export class RangeNotFoundError extends NodeError {
  readonly code = 'RANGE_NOT_FOUND';
  readonly definite = true;
  constructor(readonly rangeId: number) {
    super(`range ${rangeId} has no replica on this node`);
  }
}

/** The node is shutting down or stopped. */
export class NodeStoppedError extends NodeError {
  readonly code = 'NODE_STOPPED';
  readonly definite = false;
  constructor() {
    super('the node is shutting down');
  }
}

/** The node's pending work is over its bounds; back off and retry. */
export class ServerBusyError extends NodeError {
  readonly code = 'SERVER_BUSY';
  readonly definite = true;
  constructor(readonly reason: string) {
    super(`server busy: ${reason}`);
  }
}

/** The replica is installing a snapshot: its data is being replaced; retry shortly. */
export class SnapshotInstallingError extends NodeError {
  readonly code = 'SNAPSHOT_INSTALLING';
  readonly definite = true;
  constructor(readonly rangeId: number) {
    super(`range ${rangeId} is installing a snapshot on this node; retry shortly`);
  }
}

/** A split that cannot be proposed or did not take effect; nothing changed. */
export class SplitRefusedError extends NodeError {
  readonly code = 'SPLIT_REFUSED';
  readonly definite = true;
  constructor(readonly rangeId: number, readonly reason: string) {
    super(`range ${rangeId}: split refused: ${reason}`);
  }
}

/** A snapshot this node will not take now (it would overlap a local range, or the range was removed here). */
export class SnapshotRefusedError extends NodeError {
  readonly code = 'SNAPSHOT_REFUSED';
  readonly definite = true;
  constructor(readonly rangeId: number, readonly reason: string) {
    super(`range ${rangeId}: snapshot refused: ${reason}`);
  }
}
