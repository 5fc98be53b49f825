// The placement service's logic on a node: the meta state (MetaStore) plus what only the meta
// leader keeps in memory — node liveness and per-range load from heartbeats. The gRPC face is
// src/api/placement-service.ts; this file knows nothing of the wire.

import type { Logger } from 'pino';
import type { Node } from '../node';
import { MetaStore, NodeRecord, RangeLoad, RangeRecord } from './meta';

export type NodeStateName = 'up' | 'suspect' | 'down' | 'draining';

export interface NodeView extends NodeRecord {
  readonly state: NodeStateName;
  /** ms since the last heartbeat (Infinity when none was received by this leader). */
  readonly heartbeatAgeMs: number;
  readonly replicaCount: number;
  readonly leaderCount: number;
}

export interface RangeView extends RangeRecord {
  readonly load?: RangeLoad;
}

export type { NodeRecord };

export interface Heartbeat extends NodeRecord {
  readonly replicaCount: number;
  /** Ranges the node leads (its report may list only those that changed). */
  readonly leaderCount: number;
  /** Ranges the node leads, with their load. */
  readonly ranges: ReadonlyArray<RangeRecord & { readonly load: RangeLoad }>;
}

export interface PlacementOptions {
  /** A node silent this long is suspect. Default 3 s. */
  readonly suspectAfterMs?: number;
  /** A node silent this long is down (its replicas are to be replaced). Default 30 s. */
  readonly downAfterMs?: number;
  readonly now?: () => number;
}

export class Placement {
  readonly meta: MetaStore;
  private readonly lastSeen = new Map<number, { atMs: number; replicaCount: number; leaderCount: number }>();
  private readonly loads = new Map<number, RangeLoad>();
  /** The last report of each range this leader passed to the meta state (skips repeats). */
  private readonly recorded = new Map<number, string>();
  private readonly now: () => number;

  constructor(
    node: Node,
    private readonly log: Logger,
    private readonly opts: PlacementOptions = {},
  ) {
    this.meta = new MetaStore(node, log);
    this.now = opts.now ?? Date.now;
  }

  /** Records a node's heartbeat: registration, liveness, and the ranges it leads. */
  async heartbeat(hb: Heartbeat): Promise<void> {
    const rec = await this.meta.putNode({ nodeId: hb.nodeId, address: hb.address, zone: hb.zone });
    if (rec.removed) return; // a removed node is not heard
    this.lastSeen.set(hb.nodeId, { atMs: this.now(), replicaCount: hb.replicaCount, leaderCount: hb.leaderCount });
    for (const r of hb.ranges) this.loads.set(r.descriptor.rangeId, r.load);
    // Most reports repeat what this leader already recorded: those cost no meta read or write.
    const changed = hb.ranges
      .map(({ descriptor, leaderNodeId }) => ({ descriptor, leaderNodeId }))
      .filter((rec) => this.recorded.get(rec.descriptor.rangeId) !== JSON.stringify(rec));
    if (changed.length > 0) {
      await this.meta.upsertRanges(changed);
      for (const rec of changed) this.recorded.set(rec.descriptor.rangeId, JSON.stringify(rec));
    }
  }

  async nodes(): Promise<NodeView[]> {
    const recs = (await this.meta.nodes()).filter((rec) => !rec.removed);
    const now = this.now();
    return recs.map((rec) => {
      const seen = this.lastSeen.get(rec.nodeId);
      // A node this leader has not heard from yet counts from when it became leader.
      const age = now - (seen?.atMs ?? this.leaderSinceMs);
      let state: NodeStateName = age <= (this.opts.suspectAfterMs ?? 3_000) ? 'up' : age <= (this.opts.downAfterMs ?? 30_000) ? 'suspect' : 'down';
      if (rec.draining && state === 'up') state = 'draining';
      return { ...rec, state, heartbeatAgeMs: age, replicaCount: seen?.replicaCount ?? 0, leaderCount: seen?.leaderCount ?? 0 };
    });
  }

  async ranges(startKey: Uint8Array, limit: number): Promise<{ ranges: RangeView[]; more: boolean }> {
    const { ranges, more } = await this.meta.list(startKey, limit);
    return { ranges: ranges.map((r) => ({ ...r, load: this.loads.get(r.descriptor.rangeId) })), more };
  }

  async lookup(key: Uint8Array): Promise<RangeView | undefined> {
    const r = await this.meta.lookup(key);
    return r ? { ...r, load: this.loads.get(r.descriptor.rangeId) } : undefined;
  }

  allocateRangeIds(count: number): Promise<number> {
    return this.meta.allocateRangeIds(count);
  }

  /** Node ids placement has heard from since this node became its leader. */
  heardFrom(): number[] {
    return [...this.lastSeen.keys()];
  }

  /** When this node last became the meta leader (or started), ms: the age of nodes not heard from yet. */
  leaderSinceMs = Date.now();

  /** Starts or stops draining a node; returns what placement's map still places on it. */
  async drain(nodeId: number, cancel: boolean): Promise<{ replicas: number; leaders: number; done: boolean } | undefined> {
    const rec = await this.meta.setNodeFlags(nodeId, { draining: !cancel });
    if (!rec) return undefined;
    return this.placedOn(nodeId);
  }

  /** Replicas and leaders the range map places on a node. */
  async placedOn(nodeId: number): Promise<{ replicas: number; leaders: number; done: boolean }> {
    let replicas = 0;
    let leaders = 0;
    for (const r of await this.allRanges()) {
      if (r.descriptor.replicas.some((x) => x.nodeId === nodeId)) replicas++;
      if (r.leaderNodeId === nodeId) leaders++;
    }
    return { replicas, leaders, done: replicas === 0 && leaders === 0 };
  }

  /** Every range in the map (paged reads). */
  async allRanges(): Promise<RangeView[]> {
    const out: RangeView[] = [];
    let start: Uint8Array = Buffer.alloc(0);
    for (;;) {
      const { ranges, more } = await this.ranges(start, 1000);
      out.push(...ranges);
      const last = ranges[ranges.length - 1];
      if (!more || !last || last.descriptor.endHex === '') return out;
      start = Buffer.from(last.descriptor.endHex, 'hex');
    }
  }

  /** Removes a node that holds nothing any more. */
  async remove(nodeId: number): Promise<'removed' | 'unknown' | { replicas: number; leaders: number }> {
    const placed = await this.placedOn(nodeId);
    if (!placed.done) return { replicas: placed.replicas, leaders: placed.leaders };
    const rec = await this.meta.setNodeFlags(nodeId, { removed: true, draining: false });
    this.lastSeen.delete(nodeId);
    return rec ? 'removed' : 'unknown';
  }

  /** Forget in-memory state (on losing leadership the next leader rebuilds its own). */
  reset(): void {
    this.leaderSinceMs = Date.now();
    this.lastSeen.clear();
    this.loads.clear();
    this.recorded.clear();
    this.log.debug('placement memory reset');
  }
}
