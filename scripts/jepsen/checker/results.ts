// results.json: the verdict of a run and the figures behind it, as one JSON object.
//
//   {
//     "valid": true | false | "unknown",   // false: any anomaly; "unknown": none, but a key or the set undecided
//     "ops": 1200, "ok": 1100, "fail": 60, "info": 40,
//     "originNs": "1843220001",            // the history's earliest invoke; every time below is ns after it
//     "durationNs": 61000000000,           // origin to the last complete (or invoke)
//     "nemesis": { "<name>": NemesisSummary, ... },
//     "anomalies": [ LinearizabilityAnomaly | SetAnomaly, ... ],
//     "linearizability": { "valid", "keys", "validKeys", "invalidKeys", "unknownKeys", "steps", "slowestKeys" },
//     "set": SetResult | null,              // null when the history has no set-workload key (s:...)
//     "checkerElapsedMs": 812
//   }
//
// Nemesis figures: an operation belongs to a window when it was invoked within [start, stop); it
// is "after" the window when invoked within [stop, the next start of any nemesis), or up to the end
// of the history. Availability is the share of `ok` among those operations (null when there are none).

import type { History, Op } from './history';
import type { KeyResult, LinearizabilityAnomaly, LinearizabilityResult, UnknownReason, Verdict } from './linearizability';
import { combineVerdicts } from './linearizability';
import type { NemesisWindow } from './nemesis';
import type { SetAnomaly, SetResult } from './set';

export interface OpCounts {
  ops: number;
  ok: number;
  fail: number;
  info: number;
  /** ok / ops; null when ops is 0. */
  availability: number | null;
}

export interface WindowSummary {
  readonly start: number;
  readonly stop: number | null;
  readonly detail: Readonly<Record<string, unknown>> | null;
  readonly during: OpCounts;
  readonly after: OpCounts;
  /** From the stop to the first `ok` completion of an operation invoked after it; null if none. */
  readonly recoveryNs: number | null;
}

export interface NemesisSummary {
  readonly windows: number;
  /** Total time the fault was on (a window still open at the end counts up to the end). */
  readonly activeNs: number;
  readonly during: OpCounts;
  readonly after: OpCounts;
  /** Operations invoked outside every window of this nemesis. */
  readonly outside: OpCounts;
  readonly windowList: readonly WindowSummary[];
}

export type Anomaly = LinearizabilityAnomaly | SetAnomaly;

export interface LinearizabilitySummary {
  readonly valid: Verdict;
  readonly keys: number;
  readonly validKeys: number;
  readonly invalidKeys: readonly string[];
  readonly unknownKeys: readonly { key: string; reason: UnknownReason | undefined; ops: number; steps: number }[];
  readonly steps: number;
  /** The five keys whose check took longest. */
  readonly slowestKeys: readonly { key: string; elapsedMs: number; ops: number; steps: number }[];
}

export interface Results {
  readonly valid: Verdict;
  readonly ops: number;
  readonly ok: number;
  readonly fail: number;
  readonly info: number;
  readonly originNs: string;
  readonly durationNs: number;
  readonly nemesis: Readonly<Record<string, NemesisSummary>>;
  readonly anomalies: readonly Anomaly[];
  readonly linearizability: LinearizabilitySummary;
  readonly set: SetResult | null;
  readonly checkerElapsedMs: number;
}

export function buildResults(
  history: History,
  windows: readonly NemesisWindow[],
  linearizability: LinearizabilityResult,
  set: SetResult | null,
  checkerElapsedMs: number,
): Results {
  const ops = history.ops;
  const total = countOps(ops);
  const end = historyEnd(ops);
  const anomalies: Anomaly[] = [];
  for (const k of linearizability.keys) if (k.anomaly !== undefined) anomalies.push(k.anomaly);
  if (set !== null) for (const a of set.anomalies) anomalies.push(a);
  const verdicts: Verdict[] = [linearizability.valid];
  if (set !== null) verdicts.push(set.valid);
  return {
    valid: combineVerdicts(verdicts),
    ops: total.ops,
    ok: total.ok,
    fail: total.fail,
    info: total.info,
    originNs: history.originNs.toString(),
    durationNs: end,
    nemesis: summarizeNemeses(ops, windows, end),
    anomalies,
    linearizability: summarizeLinearizability(linearizability),
    set,
    checkerElapsedMs,
  };
}

/** The last complete (or invoke, for info operations) of the history, ns since origin. */
export function historyEnd(ops: readonly Op[]): number {
  let end = 0;
  for (const op of ops) end = Math.max(end, op.complete ?? op.invoke);
  return end;
}

export function countOps(ops: Iterable<Op>): OpCounts {
  const c: OpCounts = { ops: 0, ok: 0, fail: 0, info: 0, availability: null };
  for (const op of ops) {
    c.ops++;
    c[op.type]++;
  }
  c.availability = c.ops === 0 ? null : c.ok / c.ops;
  return c;
}

export function summarizeNemeses(ops: readonly Op[], windows: readonly NemesisWindow[], end: number): Record<string, NemesisSummary> {
  const byInvoke = ops.slice().sort((a, b) => a.invoke - b.invoke);
  const invokes = byInvoke.map((op) => op.invoke);
  /** Operations invoked in [from, to). */
  const invokedIn = (from: number, to: number): Op[] => byInvoke.slice(lowerBound(invokes, from), lowerBound(invokes, to));
  const starts = windows.map((w) => w.start).sort((a, b) => a - b);

  const out: Record<string, NemesisSummary> = {};
  const names = [...new Set(windows.map((w) => w.nemesis))].sort();
  for (const name of names) {
    const list = windows.filter((w) => w.nemesis === name);
    const inside = new Set<Op>();
    const afterAll: Op[] = [];
    const windowList: WindowSummary[] = [];
    let activeNs = 0;
    for (const w of list) {
      const stop = w.stop ?? Infinity;
      const during = invokedIn(w.start, stop);
      for (const op of during) inside.add(op);
      let after: Op[] = [];
      let recoveryNs: number | null = null;
      if (w.stop !== null) {
        const nextStart = starts[upperBound(starts, w.stop)] ?? Infinity;
        after = invokedIn(w.stop, nextStart);
        for (const op of after) afterAll.push(op); // not push(...after): it can hold 100k+ ops
        let firstOk = Infinity;
        for (const op of invokedIn(w.stop, Infinity)) if (op.type === 'ok') firstOk = Math.min(firstOk, op.complete as number);
        recoveryNs = firstOk === Infinity ? null : firstOk - w.stop;
      }
      activeNs += Math.max(0, Math.min(stop, end) - w.start);
      windowList.push({ start: w.start, stop: w.stop, detail: w.detail, during: countOps(during), after: countOps(after), recoveryNs });
    }
    out[name] = {
      windows: list.length,
      activeNs,
      during: countOps(inside),
      after: countOps(afterAll),
      outside: countOps(byInvoke.filter((op) => !inside.has(op))),
      windowList,
    };
  }
  return out;
}

function summarizeLinearizability(r: LinearizabilityResult): LinearizabilitySummary {
  const keys = r.keys;
  const unknown = keys.filter((k) => k.valid === 'unknown');
  const slowest = keys.slice().sort((a, b) => b.elapsedMs - a.elapsedMs).slice(0, 5);
  return {
    valid: r.valid,
    keys: keys.length,
    validKeys: keys.filter((k) => k.valid === true).length,
    invalidKeys: keys.filter((k) => k.valid === false).map((k) => k.key),
    unknownKeys: unknown.map((k: KeyResult) => ({ key: k.key, reason: k.reason, ops: k.ops, steps: k.steps })),
    steps: keys.reduce((s, k) => s + k.steps, 0),
    slowestKeys: slowest.map((k) => ({ key: k.key, elapsedMs: Math.round(k.elapsedMs * 1000) / 1000, ops: k.ops, steps: k.steps })),
  };
}

/** First index whose value is >= x (sorted ascending). */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose value is > x (sorted ascending). */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
