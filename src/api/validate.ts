// Input validation, done before anything is proposed. Every failure names the field and the
// limit; the API answers it with INVALID_ARGUMENT.

export interface Limits {
  /** Max key size. Fixed: 4 KiB. */
  readonly maxKeyBytes: number;
  /** Max value size. Default 1 MiB, configurable (--max-value-bytes). */
  readonly maxValueBytes: number;
  /** Max total size of one request's keys and values. Default 4 MiB. */
  readonly maxRequestBytes: number;
  /** Max scan limit. */
  readonly maxScanLimit: number;
  /** Max ops in one Batch. */
  readonly maxBatchOps: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxKeyBytes: 4 * 1024,
  maxValueBytes: 1024 * 1024,
  maxRequestBytes: 4 * 1024 * 1024,
  maxScanLimit: 100_000,
  maxBatchOps: 1_000,
};

export class InvalidArgumentError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidArgumentError';
  }
}

export function checkKey(field: string, key: Buffer | undefined | null, limits: Limits): Buffer {
  if (!key || key.length === 0) throw new InvalidArgumentError(field, 'must not be empty');
  if (key.length > limits.maxKeyBytes) {
    throw new InvalidArgumentError(field, `is ${key.length} bytes, over the limit of ${limits.maxKeyBytes} bytes`);
  }
  return key;
}

/** A scan bound: may be empty (open), else the key limit applies. */
export function checkBound(field: string, key: Buffer | undefined | null, limits: Limits): Buffer {
  const k = key ?? Buffer.alloc(0);
  if (k.length > limits.maxKeyBytes) {
    throw new InvalidArgumentError(field, `is ${k.length} bytes, over the limit of ${limits.maxKeyBytes} bytes`);
  }
  return k;
}

export function checkValue(field: string, value: Buffer | undefined | null, limits: Limits): Buffer {
  const v = value ?? Buffer.alloc(0);
  if (v.length > limits.maxValueBytes) {
    throw new InvalidArgumentError(field, `is ${v.length} bytes, over the limit of ${limits.maxValueBytes} bytes`);
  }
  return v;
}

export function checkRequestSize(totalBytes: number, limits: Limits): void {
  if (totalBytes > limits.maxRequestBytes) {
    throw new InvalidArgumentError('request', `keys and values total ${totalBytes} bytes, over the limit of ${limits.maxRequestBytes} bytes`);
  }
}

export function checkScanLimit(limit: number, limits: Limits): number {
  if (!Number.isInteger(limit) || limit < 0 || limit > limits.maxScanLimit) {
    throw new InvalidArgumentError('limit', `must be between 0 (no limit) and ${limits.maxScanLimit}, got ${limit}`);
  }
  return limit;
}

export function checkEnum(field: string, value: number, allowed: readonly number[], names: string): number {
  if (!allowed.includes(value)) throw new InvalidArgumentError(field, `unknown value ${value} (expected one of ${names})`);
  return value;
}
