// A small synchronous cluster for scenario tests: every node has a MemoryStorage as its disk,
// Readys are handled exactly as the node layer will (persist, send, apply, advance), and the
// network is a FIFO queue with composable filters (partitions, one-way links, drops by type).

import {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  Message,
  MessageType,
  MemoryStorage,
  RawNode,
  ReadState,
  SeededRng,
  StateType,
  decodeConfChange,
} from '../../src/raft';

export interface HarnessOptions {
  electionTicks?: number;
  heartbeatTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  seed?: number;
  maxInflightMsgs?: number;
  maxSizePerMsgBytes?: number;
}

export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly data: string;
}

export type MessageFilter = (m: Message) => boolean;

export class HarnessNode {
  rawNode: RawNode;
  readonly applied: AppliedEntry[] = [];
  appliedIndex = 0;
  readonly readStates: ReadState[] = [];
  confState: ConfState;
  up = true;

  constructor(
    readonly id: number,
    readonly storage: MemoryStorage,
    private readonly opts: Required<HarnessOptions>,
  ) {
    this.confState = storage.initialState().confState;
    this.rawNode = this.makeRawNode();
  }

  makeRawNode(): RawNode {
    return new RawNode({
      id: this.id,
      storage: this.storage,
      electionTicks: this.opts.electionTicks,
      heartbeatTicks: this.opts.heartbeatTicks,
      preVote: this.opts.preVote,
      checkQuorum: this.opts.checkQuorum,
      rng: new SeededRng(this.opts.seed * 1000 + this.id),
      applied: this.appliedIndex,
      maxInflightMsgs: this.opts.maxInflightMsgs,
      maxSizePerMsgBytes: this.opts.maxSizePerMsgBytes,
    });
  }

  get state(): StateType {
    return this.rawNode.status().state;
  }

  get term(): number {
    return this.rawNode.status().term;
  }

  get leader(): number {
    return this.rawNode.status().leader;
  }

  /** Data of applied normal entries, leader no-ops excluded. */
  appliedData(): string[] {
    return this.applied.filter((e) => e.data !== '').map((e) => e.data);
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class Cluster {
  readonly nodes = new Map<number, HarnessNode>();
  /** Messages in flight, FIFO. */
  queue: Message[] = [];
  private filters: MessageFilter[] = [];
  private readonly opts: Required<HarnessOptions>;

  constructor(ids: number[], opts: HarnessOptions = {}) {
    this.opts = {
      electionTicks: opts.electionTicks ?? 10,
      heartbeatTicks: opts.heartbeatTicks ?? 1,
      preVote: opts.preVote ?? true,
      checkQuorum: opts.checkQuorum ?? true,
      seed: opts.seed ?? 1,
      maxInflightMsgs: opts.maxInflightMsgs ?? 256,
      maxSizePerMsgBytes: opts.maxSizePerMsgBytes ?? 1024 * 1024,
    };
    for (const id of ids) {
      this.nodes.set(id, new HarnessNode(id, new MemoryStorage({ voters: ids, learners: [] }), this.opts));
    }
  }

  node(id: number): HarnessNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Creates a node with an empty disk that will learn the group from its leader (to be added by a conf change). */
  addEmptyNode(id: number): HarnessNode {
    const n = new HarnessNode(id, new MemoryStorage(), this.opts);
    this.nodes.set(id, n);
    return n;
  }

  leaders(): HarnessNode[] {
    return [...this.nodes.values()].filter((n) => n.up && n.state === StateType.Leader);
  }

  /** The unique leader with the highest term among running nodes. */
  leader(): HarnessNode | undefined {
    const ls = this.leaders().sort((a, b) => b.term - a.term);
    return ls[0];
  }

  // ---------------------------------------------------------------------------------------
  // Network

  /** Adds a filter; messages for which it returns true are dropped. Returns a remover. */
  addFilter(f: MessageFilter): () => void {
    this.filters.push(f);
    return () => {
      this.filters = this.filters.filter((g) => g !== f);
    };
  }

  clearFilters(): void {
    this.filters = [];
  }

  /** Cuts every link between the two sides (both directions). */
  partition(sideA: number[], sideB: number[]): () => void {
    const a = new Set(sideA);
    const b = new Set(sideB);
    return this.addFilter((m) => (a.has(m.from) && b.has(m.to)) || (b.has(m.from) && a.has(m.to)));
  }

  /** Cuts a node off from everyone else. */
  isolate(id: number): () => void {
    return this.addFilter((m) => m.from === id || m.to === id);
  }

  /** Drops messages from `from` to `to` only. */
  cutOneWay(from: number, to: number): () => void {
    return this.addFilter((m) => m.from === from && m.to === to);
  }

  // ---------------------------------------------------------------------------------------
  // Driving

  /** Handles every node's pending Ready: persist, send, apply, advance. */
  processReadys(): boolean {
    let any = false;
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      while (n.rawNode.hasReady()) {
        any = true;
        const rd = n.rawNode.ready();
        if (rd.snapshot) {
          n.storage.applySnapshot(rd.snapshot);
          n.appliedIndex = rd.snapshot.metadata.index;
          n.confState = rd.snapshot.metadata.confState;
          n.applied.length = 0;
          const data = decoder.decode(rd.snapshot.data);
          if (data) for (const d of JSON.parse(data) as AppliedEntry[]) n.applied.push(d);
        }
        n.storage.append(rd.entries);
        if (rd.hardState) n.storage.setHardState(rd.hardState);
        for (const m of rd.messages) this.queue.push(m);
        for (const e of rd.committedEntries) this.apply(n, e);
        for (const rs of rd.readStates) n.readStates.push(rs);
        n.rawNode.advance(rd);
      }
    }
    return any;
  }

  private apply(n: HarnessNode, e: Entry): void {
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      n.confState = n.rawNode.applyConfChange(cc);
      n.storage.setConfState(n.confState);
      n.applied.push({ index: e.index, term: e.term, data: `conf:${ConfChangeType[cc.type]}:${cc.nodeId}` });
    } else {
      n.applied.push({ index: e.index, term: e.term, data: decoder.decode(e.data) });
    }
    n.appliedIndex = e.index;
  }

  /** Delivers one queued message (dropping it if filtered or its target is down). */
  deliverOne(): boolean {
    const m = this.queue.shift();
    if (!m) return false;
    if (this.filters.some((f) => f(m))) return true;
    const to = this.nodes.get(m.to);
    if (!to || !to.up) return true;
    to.rawNode.step(m);
    return true;
  }

  /** Runs Readys and message delivery until nothing moves (bounded). */
  stabilize(maxRounds = 10_000): void {
    for (let i = 0; i < maxRounds; i++) {
      const a = this.processReadys();
      let b = false;
      while (this.deliverOne()) b = true;
      if (!a && !b && !this.processReadys()) return;
    }
    throw new Error(`cluster did not stabilize within ${maxRounds} rounds`);
  }

  /** Ticks every running node once and stabilizes; `times` rounds. */
  tick(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) if (n.up) n.rawNode.tick();
      this.stabilize();
    }
  }

  /** Ticks until `pred` holds, at most maxTicks rounds; returns the number of rounds taken. */
  tickUntil(pred: () => boolean, maxTicks = 1000): number {
    for (let i = 0; i <= maxTicks; i++) {
      if (pred()) return i;
      this.tick();
    }
    throw new Error(`condition not reached within ${maxTicks} ticks`);
  }

  campaign(id: number): void {
    this.node(id).rawNode.campaign();
    this.stabilize();
  }

  /** Elects `id` (campaign + deliver) and returns it. */
  elect(id: number): HarnessNode {
    this.campaign(id);
    const n = this.node(id);
    if (n.state !== StateType.Leader) throw new Error(`node ${id} did not become leader (state ${n.state})`);
    return n;
  }

  propose(id: number, data: string): { index: number; term: number } {
    const pos = this.node(id).rawNode.propose(encoder.encode(data));
    this.stabilize();
    return pos;
  }

  proposeConfChange(id: number, type: ConfChangeType, nodeId: number): void {
    const cc: ConfChange = { type, nodeId, context: new Uint8Array(0) };
    this.node(id).rawNode.proposeConfChange(cc);
    this.stabilize();
  }

  /** The leader takes a snapshot of its applied state and compacts its log up to it. */
  snapshotAndCompact(id: number): void {
    const n = this.node(id);
    const data = encoder.encode(JSON.stringify(n.applied));
    n.storage.createSnapshot(n.appliedIndex, n.confState, data);
    n.storage.compact(n.appliedIndex);
  }

  /** Crash: the node stops; its disk (MemoryStorage) keeps only what was persisted. */
  crash(id: number): void {
    this.node(id).up = false;
  }

  /** Restart from disk: a new RawNode over the same storage, resuming at the persisted applied index. */
  restart(id: number): void {
    const n = this.node(id);
    n.storage.setConfState(n.confState);
    n.rawNode = n.makeRawNode();
    n.up = true;
  }

  readIndex(id: number, ctx: string): void {
    this.node(id).rawNode.readIndex(encoder.encode(ctx));
    this.stabilize();
  }
}

export function ctxString(rs: ReadState): string {
  return decoder.decode(rs.requestContext);
}

export function isType(t: MessageType): MessageFilter {
  return (m) => m.type === t;
}
