// Linearizability of a history against the register model, one key at a time.
//
// Model: every key is an independent register that starts absent. `put` sets it, `delete` makes it
// absent, `cas` sets `value` if the current value equals `expected`, `get` returns the current
// value. Linearizability is compositional (Herlihy & Wing), so each key is checked on its own.
//
// What each operation contributes:
//   - `fail`: definitely did not take effect; removed.
//   - `ok`: took effect at one instant between its invoke and complete, with its recorded result.
//   - `info`: its return is at +infinity: it took effect at one instant after its invoke, or never.
//     An `info` get has no effect and is removed; so is an `info` write whose value (absent, for a
//     delete) no remaining operation observes (no get returned it, no cas expected it): whether it
//     happened changes nothing anyone saw, so the history is linearizable with it iff without it.
//     An `info` write that is kept becomes eligible only at the first invoke of an operation
//     observing its value (the reason is given at `prepare`): same verdict, far fewer branches.
//
// Search: Wing & Gong's algorithm with Lowe's just-in-time linearization and memoization ("WGL").
// The calls and returns of the operations form a doubly linked list sorted by time (at equal
// times, calls first: operations touching at one instant count as concurrent). Walking from the
// head, a call whose operation the model accepts in the current state is linearized: its call and
// return entries are lifted out of the list, the previous state is pushed, and the walk restarts
// at the head. Reaching a return entry means its operation, which precedes everything after it in
// real time, was not linearized: pop the last linearized operation, unlift it and try the entry
// after its call. The cache of (set of linearized operations, state) pairs already explored prunes
// every configuration reached twice (encoded compactly, see `search`). The history is
// linearizable once every `ok` operation is linearized (the `info` ones left over never took
// effect); it is not when the stack is empty at a return entry.
//
// Bounds: a key's search stops at its step, time or cache-memory budget with the verdict 'unknown'.
//
// Anomalies: for a non-linearizable key the checker shrinks the key's history to a small set of
// operations that still cannot be linearized, using only moves that keep this implication true:
// "the shrunk set cannot be linearized, therefore the history cannot be". The moves are
//   1. a cut at time T: operations invoked after T are dropped, and `ok` operations completing after
//      T are treated as pending (taking effect after their invoke or never). Any linearization of
//      the whole history restricted to the instants up to T is one of the cut history, so the cut
//      is sound. The search itself gives the earliest failing cut: the completion of the operation
//      whose return it could never get past (`failLine`).
//   2. dropping any `get` (gets change no state).
//   3. dropping a write together with every operation that observed its value: the gets that
//      returned it and the cas operations that expected it, themselves with the operations that
//      observed theirs. Removing all of them from a linearization leaves one (while the register
//      held a dropped value, only dropped operations looked at it).
// After the cut, a cheap guess is tried first (the failing operation, the few operations invoked
// just before it, and the writers of the values they observe; everything else dropped by move 3),
// then chunks of operations are dropped delta-debugging style (halves, quarters, ... then one at a
// time, repeated until nothing more goes). "Minimal" in the result means exactly this: removing
// any single remaining get, or any single remaining write with its observers, makes the set
// linearizable, as established by a completed search. It is not the smallest such set over all
// subsets (that search is exponential); when the shrink budget runs out or a trial search is
// undecided, the set is still a valid witness and `minimal` is false.

import { performance } from 'node:perf_hooks';
import type { Op } from './history';

export type Verdict = true | false | 'unknown';

/** Budgets of the check. Each is validated once by `checkLinearizability`. */
export interface LinearizabilityOptions {
  /** Wall-clock budget of one key's search, in ms; past it the key is 'unknown'. Default 10,000. */
  keyTimeLimitMs?: number;
  /** One key's search steps (one step: one attempt to linearize or to undo an operation; ~0.2 µs each). Default 50,000,000. */
  keyStepLimit?: number;
  /** Memory of one key's cache of explored configurations, in bytes. Default 256 MiB. */
  keyCacheBytesLimit?: number;
  /** Wall-clock budget of the whole check, in ms; keys still undecided then are 'unknown'. Default: none. */
  totalTimeLimitMs?: number;
  /** Wall-clock budget for shrinking one non-linearizable key's anomaly, in ms. Default 5,000. */
  shrinkTimeLimitMs?: number;
  /** Clock in ms (tests may replace it). Default `performance.now`. */
  nowMs?: () => number;
}

export type UnknownReason = 'step-limit' | 'time-limit' | 'memory-limit' | 'total-time-limit';

export interface KeyResult {
  readonly key: string;
  readonly valid: Verdict;
  /** Operations on the key in the history, of every type. */
  readonly ops: number;
  /** Operations left for the search once those that cannot matter were removed. */
  readonly searchedOps: number;
  readonly steps: number;
  readonly elapsedMs: number;
  /** Set when `valid` is 'unknown'. */
  readonly reason?: UnknownReason;
  /** Set when `valid` is false. */
  readonly anomaly?: LinearizabilityAnomaly;
}

export interface LinearizabilityAnomaly {
  readonly kind: 'nonlinearizable';
  readonly key: string;
  /** Operations that cannot be linearized together, sorted by invoke. */
  readonly ops: readonly Op[];
  /** The cut (ns since origin): operations invoked later play no part in the anomaly. */
  readonly cutNs: number;
  /**
   * Line of the operation the search could not get past: the history up to its completion (the
   * first cut) cannot be linearized, and up to any earlier completion it can. Usually the read
   * that saw what it should not have.
   */
  readonly failLine: number;
  /** Lines of the `ok` operations of `ops` completing after the cut, treated as possibly not applied. */
  readonly pendingLines: readonly number[];
  /** See "Minimal" in the header of linearizability.ts. */
  readonly minimal: boolean;
  readonly explanation: string;
}

export interface LinearizabilityResult {
  /** false if any key is false; otherwise 'unknown' if any key is; otherwise true. */
  readonly valid: Verdict;
  /** One entry per key, sorted by key. */
  readonly keys: readonly KeyResult[];
}

const DEFAULTS = {
  keyTimeLimitMs: 10_000,
  keyStepLimit: 50_000_000,
  keyCacheBytesLimit: 256 * 1024 * 1024,
  totalTimeLimitMs: Infinity,
  shrinkTimeLimitMs: 5_000,
};

/** Checks every key of `ops` (a whole history, any order). */
export function checkLinearizability(ops: readonly Op[], options: LinearizabilityOptions = {}): LinearizabilityResult {
  const o = resolveOptions(options);
  const byKey = new Map<string, Op[]>();
  for (const op of ops) {
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }
  const totalDeadline = o.nowMs() + o.totalTimeLimitMs;
  const keys: KeyResult[] = [];
  for (const key of [...byKey.keys()].sort()) {
    keys.push(checkKey(key, byKey.get(key) as Op[], o, totalDeadline));
  }
  return { valid: combineVerdicts(keys.map((k) => k.valid)), keys };
}

/** false if any is false; otherwise 'unknown' if any is; otherwise true (also for none). */
export function combineVerdicts(verdicts: readonly Verdict[]): Verdict {
  if (verdicts.includes(false)) return false;
  if (verdicts.includes('unknown')) return 'unknown';
  return true;
}

type Resolved = Required<LinearizabilityOptions>;

function resolveOptions(options: LinearizabilityOptions): Resolved {
  const o: Resolved = {
    keyTimeLimitMs: options.keyTimeLimitMs ?? DEFAULTS.keyTimeLimitMs,
    keyStepLimit: options.keyStepLimit ?? DEFAULTS.keyStepLimit,
    keyCacheBytesLimit: options.keyCacheBytesLimit ?? DEFAULTS.keyCacheBytesLimit,
    totalTimeLimitMs: options.totalTimeLimitMs ?? DEFAULTS.totalTimeLimitMs,
    shrinkTimeLimitMs: options.shrinkTimeLimitMs ?? DEFAULTS.shrinkTimeLimitMs,
    nowMs: options.nowMs ?? (() => performance.now()),
  };
  for (const name of ['keyTimeLimitMs', 'keyStepLimit', 'keyCacheBytesLimit', 'totalTimeLimitMs', 'shrinkTimeLimitMs'] as const) {
    const v = o[name];
    if (!(v >= 0)) throw new TypeError(`${name} must be a non-negative number, got ${v}`);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// One key

const GET = 0;
const PUT = 1;
const DELETE = 2;
const CAS = 3;
const KIND_OF = { get: GET, put: PUT, delete: DELETE, cas: CAS } as const;

/** An operation as the search sees it: values interned (0 = absent), pending ones end at +infinity. */
interface SearchOp {
  readonly op: Op;
  readonly kind: number;
  /** `ok` and completed by the cut: it must be linearized. */
  readonly definite: boolean;
  readonly invoke: number;
  /** Infinity when pending. */
  readonly complete: number;
  readonly value: number;
  readonly expected: number;
  readonly result: number;
}

interface Budget {
  readonly stepLimit: number;
  readonly deadlineMs: number;
  readonly cacheBytesLimit: number;
  readonly nowMs: () => number;
  /** What to call running out of time. */
  readonly timeReason: UnknownReason;
}

type Outcome =
  | { readonly kind: 'linearizable'; readonly steps: number }
  | {
      readonly kind: 'not-linearizable';
      readonly steps: number;
      /** The operation whose return the search could never get past, and that return's time: the
       * history cut there is already not linearizable, and no earlier cut is. */
      readonly failOp: Op;
      readonly failTime: number;
    }
  | { readonly kind: 'unknown'; readonly steps: number; readonly reason: UnknownReason };

/** Interns a key's values as small integers; 0 stands for absent. */
class Values {
  private readonly ids = new Map<string, number>();
  id(v: string | null): number {
    if (v === null) return 0;
    let id = this.ids.get(v);
    if (id === undefined) {
      id = this.ids.size + 1;
      this.ids.set(v, id);
    }
    return id;
  }
}

function checkKey(key: string, ops: readonly Op[], o: Resolved, totalDeadline: number): KeyResult {
  const start = o.nowMs();
  const base = ops.filter((op) => op.type !== 'fail' && !(op.type === 'info' && op.f === 'get'));
  const values = new Values();
  const prepared = prepare(base, Infinity, values);
  const keyDeadline = Math.min(start + o.keyTimeLimitMs, totalDeadline);
  const budget: Budget = {
    stepLimit: o.keyStepLimit,
    deadlineMs: keyDeadline,
    cacheBytesLimit: o.keyCacheBytesLimit,
    nowMs: o.nowMs,
    timeReason: keyDeadline === totalDeadline ? 'total-time-limit' : 'time-limit',
  };
  const outcome = start >= totalDeadline ? unknownOutcome(0, 'total-time-limit') : search(prepared, budget);
  const common = { key, ops: ops.length, searchedOps: prepared.length, steps: outcome.steps };
  if (outcome.kind === 'linearizable') return { ...common, valid: true, elapsedMs: o.nowMs() - start };
  if (outcome.kind === 'unknown') return { ...common, valid: 'unknown', reason: outcome.reason, elapsedMs: o.nowMs() - start };
  const shrinkBudget: Budget = {
    ...budget,
    deadlineMs: Math.min(o.nowMs() + o.shrinkTimeLimitMs, totalDeadline),
    timeReason: 'time-limit',
  };
  const anomaly = shrink(key, base, values, shrinkBudget, outcome);
  return { ...common, valid: false, anomaly, elapsedMs: o.nowMs() - start };
}

function unknownOutcome(steps: number, reason: UnknownReason): Outcome {
  return { kind: 'unknown', steps, reason };
}

/**
 * The operations the search needs, given non-fail, non-info-get operations and a cut: drops those
 * invoked after the cut, makes pending those completing after it, drops pending gets, then (until
 * nothing changes) pending writes whose value no remaining operation observes; the pending writes
 * left become eligible at the first invoke of an operation observing their value.
 */
function prepare(ops: readonly Op[], cut: number, values: Values): SearchOp[] {
  let list: SearchOp[] = [];
  for (const op of ops) {
    if (op.invoke > cut) continue;
    const definite = op.type === 'ok' && (op.complete as number) <= cut;
    if (!definite && op.f === 'get') continue;
    list.push({
      op,
      kind: KIND_OF[op.f],
      definite,
      invoke: op.invoke,
      complete: definite ? (op.complete as number) : Infinity,
      value: values.id(op.value),
      expected: values.id(op.expected),
      result: values.id(op.result),
    });
  }
  for (;;) {
    // The earliest invoke of an operation observing each value (a get returning it, a cas expecting it).
    const firstObserver = new Map<number, number>();
    const observe = (value: number, invoke: number): void => {
      const seen = firstObserver.get(value);
      if (seen === undefined || invoke < seen) firstObserver.set(value, invoke);
    };
    for (const s of list) {
      if (s.kind === GET) observe(s.result, s.invoke);
      else if (s.kind === CAS) observe(s.expected, s.invoke);
    }
    const kept = list.filter((s) => s.definite || firstObserver.has(s.value));
    if (kept.length === list.length) {
      // A pending write becomes eligible only once something may observe its value: if some
      // linearization has it take effect earlier, then until the first observer only writes can
      // follow it (any read or cas would observe it); with a write, it is overwritten unseen and
      // can be left out; without, it can move up to just before that observer. Same verdict.
      return list.map((s) => (s.definite ? s : { ...s, invoke: Math.max(s.invoke, firstObserver.get(s.value) as number) }));
    }
    list = kept;
  }
}

// ---------------------------------------------------------------------------------------------
// The WGL search

/** Fixed per-operation hash words (deterministic: the same history always searches the same way). */
function hashWords(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x;
  }
  return out;
}

/**
 * The set of explored configurations, each an encoded word sequence (see `search`), copied into
 * one growing pool as [length, words...]; a map from a 53-bit hash to pool offsets finds them, and
 * a full comparison decides (a hash collision can never prune wrongly).
 */
class ConfigurationCache {
  private pool = new Uint32Array(4096);
  private used = 0;
  private readonly buckets = new Map<number, number | number[]>();

  constructor(private readonly bytesLimit: number) {}

  /** Adds `words[0, length)` unless present; false if it was there. Throws `CACHE_FULL` past the limit. */
  add(hash: number, words: Uint32Array, length: number): boolean {
    const bucket = this.buckets.get(hash);
    if (bucket !== undefined) {
      if (typeof bucket === 'number') {
        if (this.equals(bucket, words, length)) return false;
      } else {
        for (const offset of bucket) if (this.equals(offset, words, length)) return false;
      }
    }
    const offset = this.store(words, length);
    if (bucket === undefined) this.buckets.set(hash, offset);
    else if (typeof bucket === 'number') this.buckets.set(hash, [bucket, offset]);
    else bucket.push(offset);
    return true;
  }

  private equals(offset: number, words: Uint32Array, length: number): boolean {
    const pool = this.pool;
    if (pool[offset] !== length) return false;
    for (let k = 0; k < length; k++) if (pool[offset + 1 + k] !== words[k]) return false;
    return true;
  }

  private store(words: Uint32Array, length: number): number {
    while (this.used + length + 1 > this.pool.length) {
      const bytes = this.pool.length * 2 * 4;
      if (bytes > this.bytesLimit) throw CACHE_FULL;
      const grown = new Uint32Array(this.pool.length * 2);
      grown.set(this.pool);
      this.pool = grown;
    }
    const offset = this.used;
    this.pool[offset] = length;
    this.pool.set(words.subarray(0, length), offset + 1);
    this.used += length + 1;
    return offset;
  }
}

const CACHE_FULL = new Error('configuration cache full');

/**
 * Decides whether the operations (of one key) can be linearized, within the budget.
 *
 * Operation indexes: the definite operations first, by invoke (0 .. d-1), then the pending ones.
 * A configuration (linearized set, state) is encoded compactly: `low`, the first definite index
 * not linearized (every definite index below it is), then the linearized definite indexes above
 * `low` (few: they were all invoked before `low` completed), then the pending operations' bits,
 * then the state. The set's hash is kept incrementally (XOR of per-operation random words).
 *
 * Reads are not branched on: when a get is eligible (its call precedes every remaining return) and
 * returns the current state, linearizing it next loses nothing. Any completion of the current
 * configuration that linearizes the get later does so in the same state (the get's result), and the
 * get can move to the front: it changes no state, and everything that must precede it in real time
 * already is linearized. So if the configuration with the get fails, so does the one without it.
 */
function search(unordered: readonly SearchOp[], budget: Budget): Outcome {
  const ops = [...unordered.filter((s) => s.definite).sort((a, b) => a.invoke - b.invoke), ...unordered.filter((s) => !s.definite)];
  const n = ops.length;
  let d = 0;
  while (d < n && (ops[d] as SearchOp).definite) d++;
  if (d === 0) return { kind: 'linearizable', steps: 0 };

  // Events sorted by time, calls before returns at equal times. Node ids: 0 head, 1..m events, m+1 tail.
  const times: number[] = [];
  const eventOp: number[] = [];
  const eventCall: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const s = ops[i] as SearchOp;
    times.push(s.invoke);
    eventOp.push(i);
    eventCall.push(true);
    if (s.definite) {
      times.push(s.complete);
      eventOp.push(i);
      eventCall.push(false);
    }
  }
  const m = times.length;
  const order = Array.from({ length: m }, (_, e) => e).sort(
    (a, b) => (times[a] as number) - (times[b] as number) || Number(eventCall[b]) - Number(eventCall[a]),
  );
  const HEAD = 0;
  const TAIL = m + 1;
  const next = new Int32Array(m + 2);
  const prev = new Int32Array(m + 2);
  const nodeOp = new Int32Array(m + 2);
  const nodeCall = new Uint8Array(m + 2);
  const callNode = new Int32Array(n);
  const returnNode = new Int32Array(n).fill(-1);
  for (let k = 0; k < m; k++) {
    const e = order[k] as number;
    const node = k + 1;
    const i = eventOp[e] as number;
    nodeOp[node] = i;
    nodeCall[node] = eventCall[e] ? 1 : 0;
    if (eventCall[e]) callNode[i] = node;
    else returnNode[i] = node;
  }
  for (let node = 0; node <= m; node++) next[node] = node + 1;
  for (let node = 1; node <= m + 1; node++) prev[node] = node - 1;

  const kind = new Uint8Array(n);
  const value = new Int32Array(n);
  const expected = new Int32Array(n);
  const result = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const s = ops[i] as SearchOp;
    kind[i] = s.kind;
    value[i] = s.value;
    expected[i] = s.expected;
    result[i] = s.result;
  }

  // The linearized set: definite bits (with `low` and `high`, the highest linearized definite
  // index, kept up to date) and pending bits.
  const definiteBits = new Uint32Array((d + 31) >>> 5);
  const pendingBits = new Uint32Array((n - d + 31) >>> 5);
  let low = 0;
  let high = -1;
  const isSet = (i: number): boolean => (((definiteBits[i >>> 5] as number) >>> (i & 31)) & 1) === 1;
  const add = (i: number): void => {
    if (i >= d) {
      const j = i - d;
      pendingBits[j >>> 5] = (pendingBits[j >>> 5] as number) | (1 << (j & 31));
      return;
    }
    definiteBits[i >>> 5] = (definiteBits[i >>> 5] as number) | (1 << (i & 31));
    if (i > high) high = i;
    if (i === low) while (low < d && isSet(low)) low++;
  };
  const remove = (i: number): void => {
    if (i >= d) {
      const j = i - d;
      pendingBits[j >>> 5] = (pendingBits[j >>> 5] as number) & ~(1 << (j & 31));
      return;
    }
    definiteBits[i >>> 5] = (definiteBits[i >>> 5] as number) & ~(1 << (i & 31));
    if (i < low) low = i;
    if (i === high) while (high >= 0 && !isSet(high)) high--;
  };
  const scratch = new Uint32Array(1 + d + pendingBits.length + 1);
  const encode = (state: number): number => {
    let len = 0;
    scratch[len++] = low;
    for (let i = low + 1; i <= high; i++) {
      if ((i & 31) === 0 && definiteBits[i >>> 5] === 0) {
        i += 31;
        continue;
      }
      if (isSet(i)) scratch[len++] = i;
    }
    for (let w = 0; w < pendingBits.length; w++) scratch[len++] = pendingBits[w] as number;
    scratch[len++] = state;
    return len;
  };

  const hashA = hashWords(n, 0x9e3779b9);
  const hashB = hashWords(n, 0x7f4a7c15);
  const cache = new ConfigurationCache(budget.cacheBytesLimit);
  const stackNode = new Int32Array(n);
  const stackState = new Int32Array(n);
  const stackForced = new Uint8Array(n);
  let depth = 0;
  let state = 0;
  let h1 = 0;
  let h2 = 0;
  let steps = 0;
  let furthestReturn = 0;
  let entry = next[HEAD] as number;

  const lift = (i: number): void => {
    const c = callNode[i] as number;
    next[prev[c] as number] = next[c] as number;
    prev[next[c] as number] = prev[c] as number;
    const r = returnNode[i] as number;
    if (r >= 0) {
      next[prev[r] as number] = next[r] as number;
      prev[next[r] as number] = prev[r] as number;
    }
  };
  // The exact reverse of lift (dancing links: a removed node still knows its neighbours).
  const unlift = (i: number): void => {
    const r = returnNode[i] as number;
    if (r >= 0) {
      next[prev[r] as number] = r;
      prev[next[r] as number] = r;
    }
    const c = callNode[i] as number;
    next[prev[c] as number] = c;
    prev[next[c] as number] = c;
  };

  for (;;) {
    if (low === d) return { kind: 'linearizable', steps };
    if (steps >= budget.stepLimit) return unknownOutcome(steps, 'step-limit');
    steps++;
    if ((steps & 1023) === 0 && budget.nowMs() > budget.deadlineMs) return unknownOutcome(steps, budget.timeReason);
    if (entry === TAIL) throw new Error('linearizability search walked past the last return entry');
    if (nodeCall[entry] === 1) {
      const i = nodeOp[entry] as number;
      let nextState: number;
      switch (kind[i]) {
        case GET:
          nextState = result[i] === state ? state : -1;
          break;
        case PUT:
          nextState = value[i] as number;
          break;
        case DELETE:
          nextState = 0;
          break;
        default:
          nextState = expected[i] === state ? (value[i] as number) : -1;
      }
      if (nextState >= 0) {
        add(i);
        h1 ^= hashA[i] as number;
        h2 ^= hashB[i] as number;
        const hash = ((h1 ^ Math.imul(nextState + 1, 0x9e3779b1)) >>> 0) * 0x200000 + ((h2 ^ Math.imul(nextState + 1, 0x85ebca6b)) & 0x1fffff);
        let fresh: boolean;
        try {
          fresh = cache.add(hash, scratch, encode(nextState));
        } catch (e) {
          if (e === CACHE_FULL) return unknownOutcome(steps, 'memory-limit');
          throw e;
        }
        if (fresh) {
          stackNode[depth] = entry;
          stackState[depth] = state;
          stackForced[depth] = kind[i] === GET ? 1 : 0;
          depth++;
          state = nextState;
          lift(i);
          entry = next[HEAD] as number;
          continue;
        }
        remove(i);
        h1 ^= hashA[i] as number;
        h2 ^= hashB[i] as number;
        // An eligible get that matches is linearized first whenever anything works (see the
        // function's comment): the configuration with it was explored and failed, so this one fails.
        if (kind[i] !== GET) {
          entry = next[entry] as number;
          continue;
        }
      } else {
        entry = next[entry] as number;
        continue;
      }
    }
    // Backtrack: the current configuration cannot be completed. Undo the last linearized
    // operation and try the entries after it, unless it was a get: then the configuration before
    // it fails too, and the undoing goes on. (Node ids follow time: the furthest return reached
    // is the highest id.)
    if (nodeCall[entry] === 0 && entry > furthestReturn) furthestReturn = entry;
    for (;;) {
      if (depth === 0) {
        const failing = ops[nodeOp[furthestReturn] as number] as SearchOp;
        return { kind: 'not-linearizable', steps, failOp: failing.op, failTime: failing.complete };
      }
      depth--;
      const e = stackNode[depth] as number;
      const i = nodeOp[e] as number;
      state = stackState[depth] as number;
      remove(i);
      h1 ^= hashA[i] as number;
      h2 ^= hashB[i] as number;
      unlift(i);
      if (stackForced[depth] === 0) {
        entry = next[e] as number;
        break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shrinking an anomaly (see the header for what is claimed)

function shrink(key: string, base: readonly Op[], values: Values, budget: Budget, first: { failOp: Op; failTime: number }): LinearizabilityAnomaly {
  let exhausted = false;
  let undecided = false;
  /** Where `ops` (under `cut`) fails, if proven non-linearizable; null otherwise (an undecided trial included). */
  const failure = (ops: readonly Op[], cut: number): { failOp: Op; failTime: number } | null => {
    if (exhausted) return null;
    const outcome = search(prepare(ops, cut, values), budget);
    if (outcome.kind === 'unknown') {
      if (budget.nowMs() > budget.deadlineMs) exhausted = true;
      undecided = true;
      return null;
    }
    return outcome.kind === 'not-linearizable' ? outcome : null;
  };
  const byInvoke = (a: Op, b: Op): number => a.invoke - b.invoke || a.line - b.line;

  // 1. The cut: the return the search could not get past (the earliest failing cut).
  let cut = first.failTime;
  let failOp = first.failOp;
  let kept = base.filter((op) => op.invoke <= cut).sort(byInvoke);
  const accept = (candidate: readonly Op[], f: { failOp: Op; failTime: number }): void => {
    cut = Math.min(cut, f.failTime);
    failOp = f.failOp;
    kept = candidate.filter((op) => op.invoke <= cut);
  };

  // 2. A guess, cheap to try: the failing operation, the k operations invoked last before it
  //    returned, and the writers of every value these observe (k = 4, 8, 16...).
  for (let k = 4; !exhausted; k *= 2) {
    const before = kept.filter((op) => op !== failOp && op.invoke <= (failOp.complete as number));
    const keep = withWriters(kept, [failOp, ...before.slice(-k)]);
    if (keep.size >= kept.length) break;
    const candidate = withoutObservers(kept, kept.filter((op) => !keep.has(op)));
    const f = failure(candidate, cut);
    if (f !== null) {
      accept(candidate, f);
      break;
    }
    if (k >= before.length) break;
  }

  // 3. Drop chunks, halving their size, then single operations until a pass removes nothing.
  let size = Math.max(1, kept.length >> 1);
  let minimal = false;
  for (;;) {
    undecided = false;
    let removedAny = false;
    for (let at = 0; at < kept.length && !exhausted; ) {
      const candidate = withoutObservers(kept, kept.slice(at, at + size));
      const f = candidate.length < kept.length ? failure(candidate, cut) : null;
      if (f !== null) {
        accept(candidate, f);
        removedAny = true;
      } else {
        at += size;
      }
    }
    if (exhausted) break;
    if (size > 1) {
      size = Math.max(1, size >> 1);
      continue;
    }
    if (!removedAny) {
      minimal = !undecided;
      break;
    }
  }

  const survivors = prepare(kept, cut, values)
    .map((s) => s.op)
    .sort(byInvoke);
  const pendingLines = survivors.filter((op) => op.type === 'ok' && (op.complete as number) > cut).map((op) => op.line);
  let explanation =
    `No order of these ${survivors.length} operations on key ${JSON.stringify(key)} is consistent with one register ` +
    `and with real time (each takes effect at one instant between its invoke and complete; an info operation after its invoke, or never).`;
  if (pendingLines.length > 0) {
    explanation +=
      ` ${pendingLines.length} ok operation(s) completing after the cut at ${formatNs(cut)} were treated as possibly not yet applied,` +
      ` because the operations invoked after the cut were left out.`;
  }
  return { kind: 'nonlinearizable', key, ops: survivors, cutNs: cut, failLine: first.failOp.line, pendingLines, minimal, explanation };
}

/** `seeds` with, in `ops`, every writer of a value they observe, and so on for those writers. */
function withWriters(ops: readonly Op[], seeds: readonly Op[]): Set<Op> {
  const keep = new Set<Op>(seeds);
  const observed = new Set<string | null>();
  const queue = [...seeds];
  for (let op = queue.pop(); op !== undefined; op = queue.pop()) {
    let x: string | null;
    if (op.f === 'get' && op.type === 'ok') x = op.result;
    else if (op.f === 'cas') x = op.expected;
    else continue;
    if (observed.has(x)) continue;
    observed.add(x);
    for (const w of ops) {
      if (keep.has(w)) continue;
      const writes = w.f === 'put' || w.f === 'cas' ? w.value : w.f === 'delete' ? null : undefined;
      if (writes === x) {
        keep.add(w);
        queue.push(w);
      }
    }
  }
  return keep;
}

/**
 * `ops` without `drop`, without the gets returning and the cas operations expecting any value
 * written by a dropped write, and so on for the values of those cas operations (move 3).
 */
function withoutObservers(ops: readonly Op[], drop: readonly Op[]): Op[] {
  const dropped = new Set<Op>(drop);
  const written = new Set<string | null>();
  for (const op of drop) {
    if (op.f === 'put' || op.f === 'cas') written.add(op.value);
    else if (op.f === 'delete') written.add(null);
  }
  for (let changed = written.size > 0; changed; ) {
    changed = false;
    for (const op of ops) {
      if (dropped.has(op)) continue;
      if ((op.f === 'get' && written.has(op.result)) || (op.f === 'cas' && written.has(op.expected))) {
        dropped.add(op);
        if (op.f === 'cas' && !written.has(op.value)) {
          written.add(op.value);
          changed = true;
        }
      }
    }
  }
  return ops.filter((op) => !dropped.has(op));
}

function formatNs(ns: number): string {
  return `${(ns / 1e9).toFixed(6)} s`;
}
