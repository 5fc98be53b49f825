// Client errors. `definite` tells whether the operation certainly did not take effect.

export abstract class ClientError extends Error {
  abstract readonly code: string;
  abstract readonly definite: boolean;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request is invalid (the server said INVALID_ARGUMENT, or the client refused it). Nothing applied. */
export class InvalidRequestError extends ClientError {
  readonly code = 'INVALID_REQUEST';
  readonly definite = true;
}

/** No node could serve the request before the deadline, and no attempt can have applied. */
export class UnavailableError extends ClientError {
  readonly code = 'UNAVAILABLE';
  readonly definite = true;
}

/** A write that may or may not have applied (e.g. the deadline passed after it reached a leader). */
export class IndeterminateError extends ClientError {
  readonly code = 'INDETERMINATE';
  readonly definite = false;
}
