// Typed errors of the placement scheduler. Each has a stable `code`; messages may change, codes do not.
// They signal a caller's mistake (bad config, inconsistent input), never an operating condition: a
// dead node or a lost quorum is reported in the schedule result, not thrown.

export abstract class PlacementError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A scheduler config or placement rule is out of its bounds; `field` names it. */
export class InvalidSchedulerConfigError extends PlacementError {
  readonly code = 'PLACEMENT_INVALID_CONFIG';
  constructor(readonly field: string, readonly reason: string) {
    super(`invalid scheduler config: ${field} ${reason}`);
  }
}

/** The cluster state handed to the scheduler contradicts itself (duplicate ids, a bad step index...). */
export class InvalidClusterStateError extends PlacementError {
  readonly code = 'PLACEMENT_INVALID_CLUSTER_STATE';
  constructor(readonly reason: string) {
    super(`invalid cluster state: ${reason}`);
  }
}

/** The node named in a request is not in the cluster state. */
export class UnknownNodeError extends PlacementError {
  readonly code = 'PLACEMENT_UNKNOWN_NODE';
  constructor(readonly nodeId: number) {
    super(`node ${nodeId} is not in the cluster state`);
  }
}
