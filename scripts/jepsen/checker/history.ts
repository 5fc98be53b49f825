// Reading and validating history.jsonl (the format is /work/shared/HISTORY-FORMAT.md, copied in
// the checker README): typed operations, a typed error naming the line of anything malformed
// (nothing is ever skipped silently), and the per-process rules of the format.
//
// Times: the file holds nanoseconds of one monotonic clock, which may exceed 2^53 (a clock counting
// from boot passes 2^53 ns after 104 days), so they are read exactly as bigints and every time is
// stored relative to the history's origin — the earliest invoke — as a plain number of
// nanoseconds. `History.originNs` gives that origin on the file's clock; the nemesis log is rebased
// on the same origin.

import { readFileSync } from 'node:fs';
import { MalformedLineError, ProcessOverlapError, ProcessReusedAfterInfoError, readInputFile } from './errors';
import { jsonlLines, lineErrors, parseObjectLine } from './jsonl';

export type OpType = 'ok' | 'fail' | 'info';
export type OpFunction = 'get' | 'put' | 'delete' | 'cas';

export const OP_TYPES: readonly OpType[] = ['ok', 'fail', 'info'];
export const OP_FUNCTIONS: readonly OpFunction[] = ['get', 'put', 'delete', 'cas'];

/** One client operation. Values are `null` where the format says so (absent key, no value). */
export interface Op {
  /** 1-based line of history.jsonl; for histories built in memory, any unique number naming the op. */
  readonly line: number;
  readonly process: number;
  readonly type: OpType;
  readonly f: OpFunction;
  readonly key: string;
  /** The value written by `put` and `cas`; `null` for `get` and `delete`. */
  readonly value: string | null;
  /** For `cas`: the value that must be current (`null`: the key must be absent); `null` otherwise. */
  readonly expected: string | null;
  /** For an `ok` `get`: the value read (`null`: absent); `null` otherwise. */
  readonly result: string | null;
  /** Nanoseconds since the history's origin. */
  readonly invoke: number;
  /** Nanoseconds since the history's origin; `null` exactly when `type` is `info`. */
  readonly complete: number | null;
}

export interface History {
  /** In file order (the order operations completed or were given up on). */
  readonly ops: readonly Op[];
  /** The earliest invoke on the file's clock; all times of `ops` are relative to it. 0 if empty. */
  readonly originNs: bigint;
}

const FILE = 'history';
const REQUIRED_FIELDS = ['process', 'type', 'f', 'key', 'value', 'expected', 'result', 'invoke', 'complete'] as const;

interface RawOp {
  line: number;
  process: number;
  type: OpType;
  f: OpFunction;
  key: string;
  value: string | null;
  expected: string | null;
  result: string | null;
  invoke: bigint;
  complete: bigint | null;
}

/** Reads and validates a history file; throws a `CheckerError` naming the first problem. */
export function readHistoryFile(path: string): History {
  return parseHistory(readInputFile(path, (p) => readFileSync(p, 'utf8')));
}

/**
 * Parses the text of history.jsonl. Throws `MalformedLineError` for the first malformed line, then
 * `ProcessReusedAfterInfoError` / `ProcessOverlapError` for the first broken process rule. A
 * trailing newline is fine; an empty line anywhere else is malformed.
 */
export function parseHistory(text: string): History {
  const raw = jsonlLines(text).map((l, i) => parseLine(l, i + 1));
  let origin: bigint | null = null;
  for (const r of raw) if (origin === null || r.invoke < origin) origin = r.invoke;
  const originNs = origin ?? 0n;
  const ops = raw.map((r): Op => {
    const invoke = relative(r.invoke, originNs, r.line);
    return {
      line: r.line,
      process: r.process,
      type: r.type,
      f: r.f,
      key: r.key,
      value: r.value,
      expected: r.expected,
      result: r.result,
      invoke,
      complete: r.complete === null ? null : relative(r.complete, originNs, r.line),
    };
  });
  const violations = checkProcessRules(ops);
  if (violations.length > 0) throw violations[0];
  return { ops, originNs };
}

/**
 * The per-process rules of the format, for histories parsed or built in memory: a process runs one
 * operation at a time (an operation completing exactly when the next is invoked is fine), and
 * never runs one after an `info` operation. Returns every violation, in process order.
 */
export function checkProcessRules(ops: readonly Op[]): (ProcessReusedAfterInfoError | ProcessOverlapError)[] {
  const byProcess = new Map<number, Op[]>();
  for (const op of ops) {
    const list = byProcess.get(op.process);
    if (list === undefined) byProcess.set(op.process, [op]);
    else list.push(op);
  }
  const violations: (ProcessReusedAfterInfoError | ProcessOverlapError)[] = [];
  for (const process of [...byProcess.keys()].sort((a, b) => a - b)) {
    const list = (byProcess.get(process) as Op[]).slice().sort(
      (a, b) => a.invoke - b.invoke || (a.complete ?? Infinity) - (b.complete ?? Infinity),
    );
    for (let i = 1; i < list.length; i++) {
      const before = list[i - 1] as Op;
      const op = list[i] as Op;
      if (before.complete === null) {
        violations.push(new ProcessReusedAfterInfoError(process, op.line, before.line));
        break;
      }
      if (before.complete > op.invoke) violations.push(new ProcessOverlapError(process, op.line, before.line));
    }
  }
  return violations;
}

function relative(t: bigint, originNs: bigint, line: number): number {
  const d = t - originNs;
  if (d > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new MalformedLineError(FILE, line, `time ${t} is more than 2^53 ns after the first invoke`);
  }
  return Number(d);
}

function parseLine(text: string, line: number): RawOp {
  const bad = lineErrors(FILE, line);
  const o = parseObjectLine(FILE, text, line);
  for (const field of REQUIRED_FIELDS) {
    if (!(field in o)) throw bad(`missing field '${field}'`);
  }

  const process = o['process'];
  if (typeof process !== 'number' || !Number.isSafeInteger(process) || process < 0) {
    throw bad(`'process' must be a non-negative integer, got ${JSON.stringify(process)}`);
  }
  const type = o['type'];
  if (typeof type !== 'string' || !(OP_TYPES as readonly string[]).includes(type)) {
    throw bad(`'type' must be one of ${OP_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
  }
  const f = o['f'];
  if (typeof f !== 'string' || !(OP_FUNCTIONS as readonly string[]).includes(f)) {
    throw bad(`'f' must be one of ${OP_FUNCTIONS.join(', ')}, got ${JSON.stringify(f)}`);
  }
  const key = o['key'];
  if (typeof key !== 'string') throw bad(`'key' must be a string, got ${JSON.stringify(key)}`);

  const value = o['value'];
  const writesValue = f === 'put' || f === 'cas';
  if (writesValue && typeof value !== 'string') throw bad(`'value' of a ${f} must be a string, got ${JSON.stringify(value)}`);
  if (!writesValue && value !== null) throw bad(`'value' of a ${f} must be null, got ${JSON.stringify(value)}`);

  const expected = o['expected'];
  if (f === 'cas' && expected !== null && typeof expected !== 'string') {
    throw bad(`'expected' of a cas must be a string or null, got ${JSON.stringify(expected)}`);
  }
  if (f !== 'cas' && expected !== null) throw bad(`'expected' of a ${f} must be null, got ${JSON.stringify(expected)}`);

  const result = o['result'];
  if (f === 'get' && type === 'ok') {
    if (result !== null && typeof result !== 'string') {
      throw bad(`'result' of an ok get must be a string or null, got ${JSON.stringify(result)}`);
    }
  } else if (result !== null) {
    throw bad(`'result' must be null except for an ok get, got ${JSON.stringify(result)}`);
  }

  const invoke = exactInteger(text, o, 'invoke', bad);
  if (invoke === null) throw bad(`'invoke' must be an integer, got null`);
  const complete = exactInteger(text, o, 'complete', bad);
  if (type === 'info' && complete !== null) throw bad(`'complete' of an info operation must be null`);
  if (type !== 'info') {
    if (complete === null) throw bad(`'complete' of an ${type} operation must be an integer`);
    if (complete < invoke) throw bad(`'complete' (${complete}) is before 'invoke' (${invoke})`);
  }

  return {
    line,
    process,
    type: type as OpType,
    f: f as OpFunction,
    key,
    value: value as string | null,
    expected: expected as string | null,
    result: result as string | null,
    invoke,
    complete,
  };
}

/** The exact value of an integer field (`null` stays `null`), read from the text when beyond 2^53. */
function exactInteger(
  text: string,
  o: Record<string, unknown>,
  field: string,
  bad: (problem: string) => MalformedLineError,
): bigint | null {
  const v = o[field];
  if (v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(`'${field}' must be an integer, got ${JSON.stringify(v)}`);
  if (Number.isSafeInteger(v)) return BigInt(v);
  // JSON.parse rounded it; read the literal itself.
  const literal = topLevelLiteral(text, field);
  if (literal === undefined || !/^-?\d+$/.test(literal)) {
    throw bad(`'${field}' must be an integer literal, got ${literal ?? JSON.stringify(v)}`);
  }
  return BigInt(literal);
}

/**
 * The source text of the value of top-level field `field` of a JSON object already known to be
 * valid, when that value is a number. A minimal scanner: it tracks strings (with escapes) and
 * nesting depth, nothing else.
 */
export function topLevelLiteral(text: string, field: string): string | undefined {
  let depth = 0;
  let lastString: string | null = null;
  let valueOf: string | null = null;
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      lastString = JSON.parse(text.slice(i, j + 1)) as string;
      i = j + 1;
      continue;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === ',') valueOf = null;
    else if (c === ':' && depth === 1) valueOf = lastString;
    else if (depth === 1 && valueOf === field && (c === '-' || (c >= '0' && c <= '9'))) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j] as string)) j++;
      return text.slice(i, j);
    }
    i++;
  }
  return undefined;
}
