// Range splits for the harness: one attempt at a key (the `split` nemesis), a split that retries
// until the key is a range boundary (--pre-split), and the range map as placement has it (run.json).
//
// An attempt looks the key's range up through placement (a routing cache: it may be stale) and asks
// that range's leader (placement's hint first, then NotLeader answers) to split there, at the epoch
// version placement reported, so a split decided on a stale view is refused rather than applied
// somewhere else. Refusals are outcomes, not errors: the key is already a boundary, the range's
// epoch moved on, or the key left the range placement named.

import { AdminClient, RefusedError } from '../../src/client/admin-client';
import { ClientError, IndeterminateError } from '../../src/client/errors';
import { PlacementClient } from '../../src/client/placement-client';
import { waitFor } from './wait';

export type SplitOutcome =
  /** Split: `rangeId` now ends at the key, `right` (null if the leader did not report it) starts there. */
  | { readonly kind: 'split'; readonly key: string; readonly rangeId: number; readonly right: number | null }
  /** Refused by the cluster; `boundary`: the key already starts a range. */
  | { readonly kind: 'refused'; readonly key: string; readonly rangeId: number; readonly reason: 'boundary' | 'epoch' | 'outside'; readonly why: string }
  /** Placement's map has no range for the key now (a split's right side not reported yet): nothing asked. */
  | { readonly kind: 'unrouted'; readonly key: string; readonly why: string }
  /** No answer (unavailable, deadline); `indeterminate`: the split may have applied. */
  | { readonly kind: 'failed'; readonly key: string; readonly indeterminate: boolean; readonly why: string };

/** A range of placement's map, keys as UTF-8 strings (the workloads' keys are ASCII); '' end = +inf. */
export interface RangeSummary {
  readonly rangeId: number;
  readonly start: string;
  readonly end: string;
  readonly version: number;
}

export class Splitter {
  private readonly admin: AdminClient;
  private readonly placement: PlacementClient;

  constructor(endpoints: readonly string[], deadlineMs = 5_000) {
    this.admin = new AdminClient(endpoints, deadlineMs);
    this.placement = new PlacementClient({ endpoints, deadlineMs });
  }

  close(): void {
    this.admin.close();
    this.placement.close();
  }

  /** One attempt to split the range holding `key` at `key` (bounded by the clients' deadlines). */
  async trySplit(key: string): Promise<SplitOutcome> {
    const k = Buffer.from(key, 'utf8');
    let rangeId = 0;
    try {
      const info = await this.placement.lookupRange(k);
      if (!info) return { kind: 'unrouted', key, why: 'placement knows no range for the key' };
      rangeId = Number(info.descriptor.rangeId);
      const version = Number(info.descriptor.epoch.version);
      const res = await this.admin.splitRange(rangeId, k, version, info.leader?.address || undefined);
      return { kind: 'split', key, rangeId, right: res.right ? Number(res.right.rangeId) : null };
    } catch (err) {
      const why = (err as Error).message;
      if (err instanceof RefusedError) return { kind: 'refused', key, rangeId, reason: refusalReason(why, key), why };
      return { kind: 'failed', key, indeterminate: err instanceof IndeterminateError || !(err instanceof ClientError), why };
    }
  }

  /**
   * Splits at `key` until the key starts a range: returns the split, or the refusal that says the
   * key already is a boundary (an earlier attempt whose answer was lost may have split there).
   * Other refusals (placement's view was stale) and failures are retried; throws after `timeoutMs`.
   */
  async splitAt(key: string, timeoutMs: number): Promise<SplitOutcome> {
    return waitFor(
      `a range boundary at ${key}`,
      async () => {
        const out = await this.trySplit(key);
        if (out.kind === 'split' || (out.kind === 'refused' && out.reason === 'boundary')) return out;
        throw new Error(out.why);
      },
      timeoutMs,
      100,
    );
  }

  /** Every range in key order, as placement's map has it now. */
  async ranges(): Promise<RangeSummary[]> {
    return (await this.placement.listRanges()).map((r) => summarize(r.descriptor));
  }
}

function summarize(d: { rangeId: number; startKey: Buffer; endKey: Buffer; epoch: { version: number } }): RangeSummary {
  return { rangeId: Number(d.rangeId), start: d.startKey.toString('utf8'), end: d.endKey.toString('utf8'), version: Number(d.epoch.version) };
}

/**
 * Why the cluster refused a split at `key`, from the refusal's message (src/api/admin-service.ts:
 * "split key 'K' is not strictly inside the range ['S', 'E')"; src/node/node.ts SplitRefusedError:
 * "its epoch version is V, not W", "the range changed before the split applied", ...).
 */
function refusalReason(why: string, key: string): 'boundary' | 'epoch' | 'outside' {
  if (/epoch version|range changed/.test(why)) return 'epoch';
  if (why.includes(`not strictly inside the range ['${key}', `)) return 'boundary';
  return 'outside';
}

/** Whether `key` lies in [start, end) ('' end = +inf), by bytes. */
export function inRange(key: string, r: RangeSummary): boolean {
  const k = Buffer.from(key, 'utf8');
  return Buffer.compare(k, Buffer.from(r.start, 'utf8')) >= 0 && (r.end === '' || Buffer.compare(k, Buffer.from(r.end, 'utf8')) < 0);
}
