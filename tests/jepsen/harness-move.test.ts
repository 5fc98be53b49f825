// The short Jepsen pass of the `move` nemesis (part of `make test`, like harness-split.test.ts):
// the placement scheduler runs (kvd --replicas 3 on 5 nodes), the key space is cut into 8 ranges
// before the workload (--pre-split 8, which `move` implies anyway), and each fault window drains
// a random node through Placement.DrainNode, so the scheduler moves its leaders and replicas away,
// then cancels the drain (the scheduler moves replicas back). The run must be valid, recover
// (every range of placement's map with 3 voters and a leader, final reads done), leave no network
// behind, have operations on at least 4 ranges, and its nemesis log must show a drain that really
// moved replicas off the drained node (fewer replicas on it at the end of the window than at its
// start, in placement's map or by the node's own status). Needs root, like the rest of tests/jepsen.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RangeRow, jepsenRun, jsonlObjects, leftovers, rangesWithOperations, removeRun, results, summary } from './harness-run';

const SECONDS = Number(process.env.KV_JEPSEN_SECONDS ?? 12);

interface NodeShare {
  readonly replicas: number;
  readonly voters: number;
  readonly leaders: number;
}

interface MoveRunSummary {
  readonly ranges?: readonly RangeRow[] | { error: string };
  readonly preSplit?: { keys: string[] };
  readonly placement?: {
    votersPerRange: number;
    atStart?: { ranges: number; perNode: Record<string, NodeShare> };
    atEnd?: { ok: boolean; why: string; ranges: number; perNode: Record<string, NodeShare> };
  };
  readonly scheduler?: { executed?: Record<string, number>; removeReplicaByPurpose?: Record<string, number> };
}

/** The stop event of one `move` window (nemesis.ts moveStop). */
interface MoveStop {
  readonly drained: number;
  readonly replicasBefore: number;
  readonly leadersBefore: number;
  readonly replicasLeft: number;
  readonly leadersLeft: number;
  readonly replicasMoved: number;
  readonly leadersMoved: number;
  readonly least: { replicas: number; leaders: number };
  /** The drained node's own account (Admin.ClusterStatus); placement's map may lag it by seconds. */
  readonly own: { before: Share | null; left: Share | null; least: Share | null };
}

interface Share {
  readonly replicas: number;
  readonly leaders: number;
}

interface NemesisLine {
  readonly nemesis: string;
  readonly event: 'start' | 'stop';
  readonly detail: Record<string, unknown>;
}

describe('jepsen: the move nemesis (the placement scheduler drains nodes) is linearizable and recovers', () => {
  test('move / register over 8 pre-split ranges', async () => {
    const run = await jepsenRun('move-register', ['--nemesis', 'move', '--workload', 'register', '--pre-split', '8', '--time', String(SECONDS)], 150_000);
    const why = `run directory ${run.dir} (kept); output:\n${run.output.slice(-3000)}`;
    if (run.code !== 0) throw new Error(`run.sh exited ${run.code}${run.signal ? ` (${run.signal})` : ''}: ${why}`);
    const r = results(run);
    expect({ valid: r.valid, anomalies: r.anomalies.slice(0, 3), why }).toEqual({ valid: true, anomalies: [], why });
    expect(r.ok).toBeGreaterThan(50);
    const s = summary(run);
    expect({ recovered: s.recovered, failure: s.failure, why }).toEqual({ recovered: true, failure: null, why });
    expect(await leftovers(s.prefix)).toEqual([]);

    const rs = JSON.parse(readFileSync(join(run.dir, 'run.json'), 'utf8')) as MoveRunSummary;
    expect(rs.preSplit?.keys).toHaveLength(7);
    // Recovery as the scheduler defines it: every range of placement's map with 3 voters and a leader.
    expect({ atEnd: rs.placement?.atEnd?.ok, votersPerRange: rs.placement?.votersPerRange, why }).toEqual({ atEnd: true, votersPerRange: 3, why });
    const ranges = rs.ranges;
    if (!Array.isArray(ranges)) throw new Error(`run.json has no range map (${JSON.stringify(ranges)}): ${why}`);
    expect(ranges.length).toBeGreaterThanOrEqual(8);
    const hit = rangesWithOperations(run.dir, ranges as readonly RangeRow[]);
    expect({ rangesWithOps: hit.length >= 4, hit, why }).toEqual({ rangesWithOps: true, hit, why });

    // The drains, as the nemesis recorded them from placement's map.
    const events = jsonlObjects<NemesisLine>(join(run.dir, 'nemesis.jsonl'));
    const starts = events.filter((e) => e.nemesis === 'move' && e.event === 'start');
    const stops = events.filter((e) => e.nemesis === 'move' && e.event === 'stop').map((e) => e.detail as unknown as MoveStop);
    expect({ windows: starts.length > 0 && stops.length === starts.length, starts, stops, why }).toEqual({ windows: true, starts, stops, why });
    // At least one drain moved replicas off its node while it was on (the node held some at the
    // start): fewer at the end of the window in placement's map, or by the node's own account
    // (placement's map has been seen lagging the range descriptors by 4-5 s).
    const moved = stops.filter(
      (d) => (d.replicasBefore > 0 && d.replicasLeft < d.replicasBefore) || (d.own.before !== null && d.own.left !== null && d.own.left.replicas < d.own.before.replicas),
    );
    expect({ drainThatMovedReplicas: moved.length > 0, stops, why }).toEqual({ drainThatMovedReplicas: true, stops, why });
    for (const d of stops) {
      expect(d.replicasMoved).toBe(Math.max(0, d.replicasBefore - d.replicasLeft));
      expect(d.least.replicas).toBeLessThanOrEqual(d.replicasLeft);
    }
    // The heal after the last window: placement settled again (3 voters each, a leader each).
    const heal = events.find((e) => e.nemesis === 'heal' && e.event === 'stop');
    expect({ healed: heal?.detail.healed, ranges: (heal?.detail.placement as { ranges?: number } | undefined)?.ranges, why }).toEqual({ healed: true, ranges: ranges.length, why });
    removeRun(run);
  }, 180_000);
});
