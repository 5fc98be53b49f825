// Typed errors of the history checker. Each has a stable `code`; messages may change, codes do not.
// They describe bad input (a malformed history or nemesis log, a set workload that breaks its own
// convention); a non-linearizable history is a verdict, never an error.

export abstract class CheckerError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A line of history.jsonl or nemesis.jsonl is not a valid record; `line` is 1-based. */
export class MalformedLineError extends CheckerError {
  readonly code = 'CHECKER_MALFORMED_LINE';
  constructor(readonly file: string, readonly line: number, readonly problem: string, options?: { cause?: unknown }) {
    super(`${file} line ${line}: ${problem}`, options);
  }
}

/** A process ran an operation after one of its operations ended `info` (it must take a fresh id). */
export class ProcessReusedAfterInfoError extends CheckerError {
  readonly code = 'CHECKER_PROCESS_REUSED_AFTER_INFO';
  constructor(readonly process: number, readonly line: number, readonly infoLine: number) {
    super(`history line ${line}: process ${process} runs an operation after its info operation at line ${infoLine}`);
  }
}

/** Two operations of one process overlap in time (a process runs one operation at a time). */
export class ProcessOverlapError extends CheckerError {
  readonly code = 'CHECKER_PROCESS_OVERLAP';
  constructor(readonly process: number, readonly line: number, readonly otherLine: number) {
    super(`history line ${line}: process ${process} invokes an operation before its operation at line ${otherLine} completed`);
  }
}

/** The nemesis log pairs its start and stop events wrongly (a stop without a start, two starts). */
export class NemesisSequenceError extends CheckerError {
  readonly code = 'CHECKER_NEMESIS_SEQUENCE';
  constructor(readonly line: number, readonly problem: string) {
    super(`nemesis line ${line}: ${problem}`);
  }
}

/** An operation on a set-workload key (`s:<element>`) that the set workload never issues. */
export class SetWorkloadError extends CheckerError {
  readonly code = 'CHECKER_SET_WORKLOAD';
  constructor(readonly line: number, readonly problem: string) {
    super(`history line ${line}: ${problem}`);
  }
}

/** An input file (history.jsonl, nemesis.jsonl) cannot be read. */
export class InputFileError extends CheckerError {
  readonly code = 'CHECKER_INPUT_FILE';
  constructor(readonly path: string, cause: unknown) {
    super(`cannot read ${path}: ${typeof cause === 'object' && cause !== null && 'message' in cause ? String(cause.message) : String(cause)}`, { cause });
  }
}

/** Reads a whole text file, turning any failure into an `InputFileError`. */
export function readInputFile(path: string, read: (path: string) => string): string {
  try {
    return read(path);
  } catch (e) {
    throw new InputFileError(path, e);
  }
}
