// The nemesis log: DIR/nemesis.jsonl, written by the harness next to history.jsonl. One JSON object
// per line, one line per fault event:
//
//   {"time": 1843220001, "nemesis": "partition-isolate-leader", "event": "start", "detail": {"isolated": "n2"}}
//   {"time": 9843220001, "nemesis": "partition-isolate-leader", "event": "stop", "detail": {}}
//
// | field     | meaning                                                                              |
// |-----------|--------------------------------------------------------------------------------------|
// | `time`    | integer nanoseconds on the history's clock (the same monotonic clock as `invoke`)      |
// | `nemesis` | the fault's name, a non-empty string; one name = one kind of fault                    |
// | `event`   | `start` when the fault is injected, `stop` when it is healed                          |
// | `detail`  | optional JSON object (which nodes, which links...); shown in the report as given      |
//
// A nemesis's events alternate start, stop, start...; a final start without stop means the fault
// was still on when the history ended. Different nemeses may overlap. Lines need not be in time order.

import { readFileSync } from 'node:fs';
import { NemesisSequenceError, readInputFile } from './errors';
import { jsonlLines, lineErrors, parseObjectLine } from './jsonl';
import { topLevelLiteral } from './history';

export interface NemesisEvent {
  readonly line: number;
  /** Nanoseconds since the history's origin (may be negative: a fault started before the first op). */
  readonly time: number;
  readonly nemesis: string;
  readonly event: 'start' | 'stop';
  readonly detail: Readonly<Record<string, unknown>> | null;
}

/** One fault, from its start to its stop. */
export interface NemesisWindow {
  readonly nemesis: string;
  /** ns since the history's origin. */
  readonly start: number;
  /** ns since the history's origin; `null`: still on when the history ended. */
  readonly stop: number | null;
  readonly detail: Readonly<Record<string, unknown>> | null;
  readonly stopDetail: Readonly<Record<string, unknown>> | null;
  readonly startLine: number;
}

const FILE = 'nemesis';

export function readNemesisFile(path: string, originNs: bigint): NemesisEvent[] {
  return parseNemesisLog(readInputFile(path, (p) => readFileSync(p, 'utf8')), originNs);
}

/** Parses nemesis.jsonl, rebasing times on `originNs` (the history's). Throws `MalformedLineError`. */
export function parseNemesisLog(text: string, originNs: bigint): NemesisEvent[] {
  return jsonlLines(text).map((l, i) => parseEvent(l, i + 1, originNs));
}

function parseEvent(text: string, line: number, originNs: bigint): NemesisEvent {
  const bad = lineErrors(FILE, line);
  const o = parseObjectLine(FILE, text, line);
  const time = o['time'];
  if (typeof time !== 'number' || !Number.isInteger(time)) throw bad(`'time' must be an integer, got ${JSON.stringify(time)}`);
  let exact: bigint;
  if (Number.isSafeInteger(time)) exact = BigInt(time);
  else {
    const literal = topLevelLiteral(text, 'time');
    if (literal === undefined || !/^-?\d+$/.test(literal)) throw bad(`'time' must be an integer literal`);
    exact = BigInt(literal);
  }
  const rel = exact - originNs;
  if (rel > BigInt(Number.MAX_SAFE_INTEGER) || rel < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw bad(`'time' ${exact} is more than 2^53 ns away from the history's first invoke`);
  }
  const nemesis = o['nemesis'];
  if (typeof nemesis !== 'string' || nemesis === '') throw bad(`'nemesis' must be a non-empty string, got ${JSON.stringify(nemesis)}`);
  const event = o['event'];
  if (event !== 'start' && event !== 'stop') throw bad(`'event' must be "start" or "stop", got ${JSON.stringify(event)}`);
  const detail = o['detail'];
  if (detail !== undefined && detail !== null && (typeof detail !== 'object' || Array.isArray(detail))) {
    throw bad(`'detail' must be a JSON object when present`);
  }
  return { line, time: Number(rel), nemesis, event, detail: (detail ?? null) as Record<string, unknown> | null };
}

/** Pairs the events into windows, sorted by start. Throws `NemesisSequenceError` on a bad sequence. */
export function nemesisWindows(events: readonly NemesisEvent[]): NemesisWindow[] {
  const sorted = events.slice().sort((a, b) => a.time - b.time || a.line - b.line);
  const open = new Map<string, NemesisEvent>();
  const windows: NemesisWindow[] = [];
  for (const e of sorted) {
    const started = open.get(e.nemesis);
    if (e.event === 'start') {
      if (started !== undefined) throw new NemesisSequenceError(e.line, `${e.nemesis} starts again before its start at line ${started.line} stopped`);
      open.set(e.nemesis, e);
    } else {
      if (started === undefined) throw new NemesisSequenceError(e.line, `${e.nemesis} stops without having started`);
      open.delete(e.nemesis);
      windows.push(windowOf(started, e));
    }
  }
  for (const started of open.values()) windows.push(windowOf(started, null));
  return windows.sort((a, b) => a.start - b.start || a.startLine - b.startLine);
}

function windowOf(start: NemesisEvent, stop: NemesisEvent | null): NemesisWindow {
  return {
    nemesis: start.nemesis,
    start: start.time,
    stop: stop === null ? null : stop.time,
    detail: start.detail,
    stopDetail: stop === null ? null : stop.detail,
    startLine: start.line,
  };
}
