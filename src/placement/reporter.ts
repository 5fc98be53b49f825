// What a node tells placement in each heartbeat: who it is, how many replicas it hosts, and for
// every range it leads the current descriptor and load (approximate size on disk, entries applied
// and reads served per second since the previous report).

import type { Node, Replica } from '../node';
import { META_RANGE_ID, dataKeyRange, dataPrefixOf } from '../storage/keys';
import type { MetaDescriptor } from './meta';
import type { Heartbeat } from './placement';

/** A replica's descriptor as placement stores it. */
export function metaDescriptorOf(r: Replica): MetaDescriptor {
  const b = r.sm.bounds;
  return {
    rangeId: r.rangeId,
    startHex: Buffer.from(b.start).toString('hex'),
    endHex: Buffer.from(b.end).toString('hex'),
    epochVersion: b.epochVersion,
    confVersion: b.confVersion,
    replicas: [
      ...r.confState.voters.map((nodeId) => ({ nodeId, role: 'voter' as const })),
      ...r.confState.learners.map((nodeId) => ({ nodeId, role: 'learner' as const })),
    ],
  };
}

export class HeartbeatReporter {
  private readonly previous = new Map<number, { atMs: number; applied: number; reads: number; shape: string }>();

  /**
   * A range that served nothing, changed nothing and kept its descriptor since its last report is
   * reported again only this often (placement keeps its record and load meanwhile): a node
   * leading 10,000 idle ranges sends almost nothing.
   */
  static readonly IDLE_REPORT_MS = 30_000;

  constructor(
    private readonly node: Node,
    private readonly address: string,
    private readonly zone: string,
  ) {}

  /** Builds the next heartbeat; `only` limits the range reports (e.g. right after a split). */
  async build(only?: readonly number[]): Promise<Heartbeat> {
    const now = Date.now();
    const ranges: Array<Heartbeat['ranges'][number]> = [];
    let replicaCount = 0;
    let leaderCount = 0;
    for (const r of this.node.replicas.values()) {
      if (!r.initialized || r.rangeId === META_RANGE_ID) continue;
      replicaCount++;
      if (!r.isLeader()) continue;
      leaderCount++;
      if (only && !only.includes(r.rangeId)) continue;
      const b = r.sm.bounds;
      const prev = this.previous.get(r.rangeId);
      // Which learners have caught up is part of what placement must hear at once: the scheduler
      // promotes a learner only once placement sees it caught up, and an idle range would
      // otherwise tell it only at the next full report.
      const caughtUpLearners = r.confState.learners.length === 0 ? [] : this.caughtUpLearners(r);
      const shape = `${b.epochVersion}.${b.confVersion}.${r.confState.learners.join(',')}.${caughtUpLearners.join(',')}`;
      if (!only && prev && prev.shape === shape && prev.applied === r.appliedIndex && prev.reads === r.readsServed && now - prev.atMs < HeartbeatReporter.IDLE_REPORT_MS) {
        continue; // idle and unchanged: placement already has it
      }
      const range = dataKeyRange(b.start, b.end, dataPrefixOf(r.rangeId));
      let bytes = 0;
      try {
        bytes = await this.node.engine.approximateSize(range);
      } catch {
        bytes = 0; // the database is closing; the next report has it
      }
      const secs = prev ? Math.max(0.001, (now - prev.atMs) / 1000) : 0;
      const load = {
        approximateBytes: bytes,
        approximateKeys: r.sm.keyCount,
        caughtUpLearners,
        writesPerSecond: prev ? Math.max(0, r.appliedIndex - prev.applied) / secs : 0,
        readsPerSecond: prev ? Math.max(0, r.readsServed - prev.reads) / secs : 0,
      };
      if (!only) this.previous.set(r.rangeId, { atMs: now, applied: r.appliedIndex, reads: r.readsServed, shape });
      ranges.push({ descriptor: metaDescriptorOf(r), leaderNodeId: this.node.nodeId, load });
    }
    return { nodeId: this.node.nodeId, address: this.address, zone: this.zone, replicaCount, leaderCount, ranges };
  }

  /** The learners of a range led here that replicate normally and are within 100 entries of the commit index. */
  private caughtUpLearners(r: Replica): number[] {
    const st = r.rawNode.status();
    return r.confState.learners.filter((id) => {
      const p = st.progress?.get(id);
      return p !== undefined && p.state === 'Replicate' && p.match + 100 >= st.commit;
    });
  }
}
