// A small synchronous cluster for scenario tests: every node has a MemoryStorage as its disk,
// Readys are handled exactly as the node layer will (persist, send, apply, advance), and the
// network is a FIFO queue with composable filters (partitions, one-way links, drops by type).
//
// Finer control for unit tests: record() observes messages, hold() parks them until release(),
// processReady(id) / deliverAll() / tickNodes() drive one node or one step at a time, and
// crashAfterPersist(id) crashes a node between persisting a Ready and applying it (a plain
// crash(id) loses any Ready not yet handled). assertSafety() checks election safety (observed
// after every step and tick), state machine safety and log matching across all disks.

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
  Ready,
  SeededRng,
  bootstrapState,
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
  /** Ids (among those given to the Cluster constructor) that start as learners, not voters. Default none. */
  learners?: number[];
}

export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly data: string;
}

export type MessageFilter = (m: Message) => boolean;

/** Every message that matched a predicate when it left the network queue (delivered or dropped). */
export class Recorder {
  readonly messages: Message[] = [];
  constructor(
    readonly pred: MessageFilter,
    private readonly remove: () => void,
  ) {}

  stop(): void {
    this.remove();
  }

  count(pred: MessageFilter = () => true): number {
    return this.messages.filter(pred).length;
  }
}

/** Messages taken off the network by Cluster.hold(); release() puts them back, in order. */
export class HeldMessages {
  readonly messages: Message[] = [];
  constructor(
    private readonly queue: () => Message[],
    private readonly remove: () => void,
  ) {}

  /** Stops holding new messages (already held ones stay held). */
  stop(): void {
    this.remove();
  }

  /** Stops holding and re-queues every held message, oldest first. */
  release(): void {
    this.remove();
    this.queue().push(...this.messages.splice(0));
  }

  /** Stops holding and forgets the held messages (they are lost). */
  drop(): void {
    this.remove();
    this.messages.length = 0;
  }
}

export class HarnessNode {
  rawNode: RawNode;
  readonly applied: AppliedEntry[] = [];
  appliedIndex = 0;
  readonly readStates: ReadState[] = [];
  /** Contexts of read-index requests this node gave up on (from Ready.droppedReads). */
  readonly droppedReads: string[] = [];
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
    return this.applied.filter((e) => e.data !== '' && e.index > BOOTSTRAP_INDEX.get(this)!).map((e) => e.data);
  }
}

/** The last index of each node's bootstrap entries (the initial membership, in the log). */
const BOOTSTRAP_INDEX = new WeakMap<HarnessNode, number>();

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class Cluster {
  readonly nodes = new Map<number, HarnessNode>();
  /** Messages in flight, FIFO. */
  queue: Message[] = [];
  private filters: MessageFilter[] = [];
  private recorders: Recorder[] = [];
  private readonly opts: Required<HarnessOptions>;
  /** Number of bootstrap entries (indexes 1..bootstrapLength hold the initial membership). */
  bootstrapLength = 0;
  /** Election safety bookkeeping: the leader seen in each term, and any second leader seen. */
  private readonly leaderOfTerm = new Map<number, number>();
  private readonly safetyViolations: string[] = [];

  constructor(ids: number[], opts: HarnessOptions = {}) {
    this.opts = {
      electionTicks: opts.electionTicks ?? 10,
      heartbeatTicks: opts.heartbeatTicks ?? 1,
      preVote: opts.preVote ?? true,
      checkQuorum: opts.checkQuorum ?? true,
      seed: opts.seed ?? 1,
      maxInflightMsgs: opts.maxInflightMsgs ?? 256,
      maxSizePerMsgBytes: opts.maxSizePerMsgBytes ?? 1024 * 1024,
      learners: opts.learners ?? [],
    };
    const learners = this.opts.learners;
    const voters = ids.filter((id) => !learners.includes(id));
    // The membership goes into the log (src/raft/bootstrap.ts): nodes added later learn it too.
    const boot = bootstrapState(voters, learners);
    this.bootstrapLength = boot.entries.length;
    for (const id of ids) {
      const storage = new MemoryStorage();
      storage.append(boot.entries);
      storage.setHardState(boot.hardState);
      const n = new HarnessNode(id, storage, this.opts);
      BOOTSTRAP_INDEX.set(n, boot.entries.length);
      this.nodes.set(id, n);
    }
    this.processReadys(); // apply the bootstrap entries
  }

  node(id: number): HarnessNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Creates a node with an empty disk that will learn the group from its leader (to be added by a conf change). */
  addEmptyNode(id: number): HarnessNode {
    const n = new HarnessNode(id, new MemoryStorage(), this.opts);
    BOOTSTRAP_INDEX.set(n, this.bootstrapLength);
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
      if (this.handleReadys(n)) any = true;
    }
    return any;
  }

  /** Handles the pending Readys of one node only (others keep theirs). */
  processReady(id: number): boolean {
    return this.handleReadys(this.node(id));
  }

  private handleReadys(n: HarnessNode): boolean {
    if (!n.up) return false;
    let any = false;
    while (n.rawNode.hasReady()) {
      any = true;
      const rd = n.rawNode.ready();
      this.noteRole(n);
      this.persist(n, rd);
      for (const m of rd.messages) this.queue.push(m);
      for (const e of rd.committedEntries) this.apply(n, e);
      for (const rs of rd.readStates) n.readStates.push(rs);
      for (const ctx of rd.droppedReads) n.droppedReads.push(decoder.decode(ctx));
      n.rawNode.advance(rd);
    }
    return any;
  }

  private persist(n: HarnessNode, rd: Ready): void {
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
  }

  /**
   * The node persists its pending Ready (snapshot, entries, hard state) and sends its messages,
   * then crashes before applying anything or calling advance(). Returns false if it had no Ready.
   */
  crashAfterPersist(id: number): boolean {
    const n = this.node(id);
    if (!n.up || !n.rawNode.hasReady()) return false;
    const rd = n.rawNode.ready();
    this.persist(n, rd);
    for (const m of rd.messages) this.queue.push(m);
    n.up = false;
    return true;
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
    for (const r of this.recorders) if (r.pred(m)) r.messages.push(m);
    if (this.filters.some((f) => f(m))) return true;
    const to = this.nodes.get(m.to);
    if (!to || !to.up) return true;
    to.rawNode.step(m);
    this.noteRole(to);
    return true;
  }

  /** Delivers every queued message (and those their delivery does not create); no Ready handling. */
  deliverAll(): number {
    let n = 0;
    while (this.deliverOne()) n++;
    return n;
  }

  /** Records every message matching `pred` as it leaves the queue, whether delivered or dropped. */
  record(pred: MessageFilter = () => true): Recorder {
    const r: Recorder = new Recorder(pred, () => {
      this.recorders = this.recorders.filter((x) => x !== r);
    });
    this.recorders.push(r);
    return r;
  }

  /** Takes messages matching `pred` off the network and keeps them until release() or drop(). */
  hold(pred: MessageFilter): HeldMessages {
    let held: HeldMessages | undefined;
    const remove = this.addFilter((m) => {
      if (!pred(m)) return false;
      held?.messages.push(m);
      return true;
    });
    held = new HeldMessages(() => this.queue, remove);
    return held;
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
      for (const n of this.nodes.values()) {
        if (!n.up) continue;
        n.rawNode.tick();
        this.noteRole(n);
      }
      this.stabilize();
    }
  }

  /** Ticks only the given nodes (others' clocks stand still) and stabilizes; `times` rounds. */
  tickNodes(ids: number[], times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) {
        const n = this.node(id);
        if (!n.up) continue;
        n.rawNode.tick();
        this.noteRole(n);
      }
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
    this.noteRole(this.node(id));
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

  // ---------------------------------------------------------------------------------------
  // Safety checks

  private noteRole(n: HarnessNode): void {
    const st = n.rawNode.status();
    if (st.state !== StateType.Leader) return;
    const seen = this.leaderOfTerm.get(st.term);
    if (seen === undefined) this.leaderOfTerm.set(st.term, n.id);
    else if (seen !== n.id) this.safetyViolations.push(`two leaders in term ${st.term}: ${seen} and ${n.id}`);
  }

  /** The node's whole log as stored on its disk (snapshot point excluded). */
  storedLog(id: number): Entry[] {
    const s = this.node(id).storage;
    return s.entries(s.firstIndex(), s.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
  }

  /**
   * Throws if an invariant was broken: election safety (at most one leader per term, as observed
   * after every step and tick), state machine safety (no two nodes applied different entries at
   * the same index) and log matching on disk (same index and term => same data and same prefix).
   */
  assertSafety(): void {
    if (this.safetyViolations.length > 0) throw new Error(`election safety: ${this.safetyViolations.join('; ')}`);
    const appliedAt = new Map<number, { node: number; term: number; data: string }>();
    for (const n of this.nodes.values()) {
      for (const e of n.applied) {
        const other = appliedAt.get(e.index);
        if (!other) appliedAt.set(e.index, { node: n.id, term: e.term, data: e.data });
        else if (other.term !== e.term || other.data !== e.data) {
          throw new Error(
            `state machine safety: index ${e.index} applied as ${JSON.stringify(other)} on ${other.node} ` +
              `but as ${JSON.stringify({ term: e.term, data: e.data })} on ${n.id}`,
          );
        }
      }
    }
    const logs = [...this.nodes.keys()].map((id) => ({ id, log: new Map(this.storedLog(id).map((e) => [e.index, e])) }));
    for (let i = 0; i < logs.length; i++) {
      for (let j = i + 1; j < logs.length; j++) {
        const a = logs[i] as (typeof logs)[number];
        const b = logs[j] as (typeof logs)[number];
        // The highest index where both logs hold an entry of the same term: everything at or
        // below it that both still hold must be identical.
        let top = 0;
        for (const [idx, e] of a.log) {
          const f = b.log.get(idx);
          if (f && f.term === e.term && idx > top) top = idx;
        }
        for (const [idx, e] of a.log) {
          if (idx > top) continue;
          const f = b.log.get(idx);
          if (!f) continue;
          if (f.term !== e.term || f.type !== e.type || decoder.decode(f.data) !== decoder.decode(e.data)) {
            throw new Error(`log matching: nodes ${a.id} and ${b.id} agree at index ${top} but differ at ${idx}`);
          }
        }
      }
    }
  }
}

export function ctxString(rs: ReadState): string {
  return decoder.decode(rs.requestContext);
}

export function isType(t: MessageType): MessageFilter {
  return (m) => m.type === t;
}
