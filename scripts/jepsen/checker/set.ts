// Lost-write checker for the `set` workload.
//
// Convention (how the set workload appears in history.jsonl, with the ordinary op kinds):
//   - Element `e` (a string; unique per attempt is not required) lives at its own key `s:<e>`.
//   - Adding `e` is a `put` of key `s:<e>` with value `e`.
//   - Reading the set is a `get` of each key `s:<e>`, for every element the run attempted to add (the
//     harness may also read keys it never added, to catch elements that appear from nowhere).
//   - The final read: once the faults are healed and the cluster given time to recover, the harness
//     reads every key `s:<e>` again. An element's final read is its latest `ok` get (by invoke)
//     invoked after every `ok` and `fail` add of that element completed; gets during the run count
//     too, so an element seen once and gone later is still lost.
//   - The set workload issues nothing else on `s:` keys: any `delete` or `cas` there is an error.
// Every `s:` key is also an ordinary register, so the linearizability checker covers it as well;
// this checker states the outcome in set terms.
//
// Verdict per element, from its final read:
//   - lost: some `ok` add, and the final read found the key absent;
//   - unexpected: a read (any, final or not) found the element present, yet no add of it was ever
//     invoked, or found a value other than the element itself;
//   - failed-but-present: every add of it was `fail`, and a read (any) found it present;
//   - unread: some `ok` add, but no final read (the verdict then is at best 'unknown');
//   - `info` adds may be present or absent; present ones are counted as `recovered`.

import { SetWorkloadError } from './errors';
import type { Op } from './history';
import type { Verdict } from './linearizability';

export const SET_KEY_PREFIX = 's:';

export interface SetAnomaly {
  readonly kind: 'lost-add' | 'unexpected-element' | 'failed-add-present';
  readonly element: string;
  /** The adds of the element and the read that shows the problem. */
  readonly ops: readonly Op[];
  readonly explanation: string;
}

export interface SetResult {
  /** false on any anomaly; 'unknown' if none but some acknowledged add was never finally read. */
  readonly valid: Verdict;
  /** Elements with at least one add invoked. */
  readonly attempted: number;
  /** Elements with at least one `ok` add. */
  readonly acknowledged: number;
  /** Elements whose final read found them present. */
  readonly present: number;
  readonly lost: readonly string[];
  readonly unexpected: readonly string[];
  readonly failedButPresent: readonly string[];
  /** Elements added only with `info` results that the final read found present. */
  readonly recovered: readonly string[];
  /** Elements with an `ok` add and no final read. */
  readonly unread: readonly string[];
  readonly anomalies: readonly SetAnomaly[];
}

/** True if the history has any set-workload operation. */
export function hasSetWorkload(ops: readonly Op[]): boolean {
  return ops.some((op) => op.key.startsWith(SET_KEY_PREFIX));
}

/** Checks the set workload in `ops` (operations on other keys are ignored). Throws `SetWorkloadError`. */
export function checkSet(ops: readonly Op[]): SetResult {
  const byElement = new Map<string, { adds: Op[]; reads: Op[] }>();
  for (const op of ops) {
    if (!op.key.startsWith(SET_KEY_PREFIX)) continue;
    if (op.f !== 'put' && op.f !== 'get') {
      throw new SetWorkloadError(op.line, `the set workload never issues a ${op.f} (key ${JSON.stringify(op.key)})`);
    }
    const element = op.key.slice(SET_KEY_PREFIX.length);
    if (op.f === 'put' && op.value !== element) {
      throw new SetWorkloadError(op.line, `a set add of key ${JSON.stringify(op.key)} must write ${JSON.stringify(element)}, not ${JSON.stringify(op.value)}`);
    }
    let entry = byElement.get(element);
    if (entry === undefined) {
      entry = { adds: [], reads: [] };
      byElement.set(element, entry);
    }
    if (op.f === 'put') entry.adds.push(op);
    else if (op.type === 'ok') entry.reads.push(op);
  }

  let attempted = 0;
  let acknowledged = 0;
  let present = 0;
  const lost: string[] = [];
  const unexpected: string[] = [];
  const failedButPresent: string[] = [];
  const recovered: string[] = [];
  const unread: string[] = [];
  const anomalies: SetAnomaly[] = [];

  for (const element of [...byElement.keys()].sort()) {
    const { adds, reads } = byElement.get(element) as { adds: Op[]; reads: Op[] };
    if (adds.length > 0) attempted++;
    const okAdds = adds.filter((op) => op.type === 'ok');
    if (okAdds.length > 0) acknowledged++;

    // A read of something no add explains, at any time.
    const strange = reads.find((r) => r.result !== null && (adds.length === 0 || r.result !== element));
    if (strange !== undefined) {
      unexpected.push(element);
      anomalies.push({
        kind: 'unexpected-element',
        element,
        ops: [...adds, strange],
        explanation:
          adds.length === 0
            ? `element ${JSON.stringify(element)} was read (line ${strange.line}) but never added`
            : `key ${JSON.stringify(SET_KEY_PREFIX + element)} read ${JSON.stringify(strange.result)} (line ${strange.line}), a value never added there`,
      });
      continue;
    }

    const seen = reads.find((r) => r.result !== null);
    if (seen !== undefined && adds.every((op) => op.type === 'fail')) {
      failedButPresent.push(element);
      anomalies.push({
        kind: 'failed-add-present',
        element,
        ops: [...adds, seen],
        explanation: `every add of ${JSON.stringify(element)} failed, yet the read at line ${seen.line} found it`,
      });
      continue;
    }

    const settled = Math.max(-Infinity, ...adds.filter((op) => op.type !== 'info').map((op) => op.complete as number));
    let final: Op | undefined;
    for (const r of reads) if (r.invoke >= settled && (final === undefined || r.invoke > final.invoke)) final = r;
    if (final === undefined) {
      if (okAdds.length > 0) unread.push(element);
      continue;
    }
    if (final.result !== null) {
      present++;
      if (okAdds.length === 0) recovered.push(element);
    } else if (okAdds.length > 0) {
      lost.push(element);
      anomalies.push({
        kind: 'lost-add',
        element,
        ops: [...adds, final],
        explanation: `the add of ${JSON.stringify(element)} was acknowledged (line ${(okAdds[0] as Op).line}), but the final read at line ${final.line} found it absent`,
      });
    }
  }

  const valid: Verdict = anomalies.length > 0 ? false : unread.length > 0 ? 'unknown' : true;
  return { valid, attempted, acknowledged, present, lost, unexpected, failedButPresent, recovered, unread, anomalies };
}
