// Typed storage errors. Each names what is wrong and where, so `kvd` can refuse to start with a
// message an operator can act on; codes are stable.

export abstract class StorageError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A record failed its checksum, could not be decoded, or contradicts another record. */
export class CorruptDataError extends StorageError {
  readonly code = 'STORAGE_CORRUPT';
  constructor(readonly what: string, reason: string, options?: { cause?: unknown }) {
    super(`corrupt data directory: ${what}: ${reason}`, options);
  }
}

/** The data directory belongs to another cluster or node, or has an unknown format version. */
export class DataDirMismatchError extends StorageError {
  readonly code = 'STORAGE_DATA_DIR_MISMATCH';
  constructor(readonly field: string, readonly expected: string, readonly found: string) {
    super(`data directory mismatch: ${field} is ${found}, expected ${expected}`);
  }
}

/** The data directory is missing files it must have (e.g. the metadata of an initialized node). */
export class DataDirMissingError extends StorageError {
  readonly code = 'STORAGE_DATA_DIR_MISSING';
  constructor(readonly what: string) {
    super(`data directory is incomplete: ${what} is missing`);
  }
}
