// The simulation engine: one seeded PRNG drives a whole Raft cluster — network, clock, disks,
// clients, operators and faults — and the checkers (tests/sim/checkers.ts) run after every step.
//
// A STEP is one scheduler decision, one of:
//   - deliver one in-flight message (or drop it: random loss, a blocked link, a dead target);
//   - run one Ready stage on one node (all of take/persist+send/apply+advance in one step, or one
//     of the three in seeds that split Readies; see tests/sim/node.ts);
//   - tick: simulated time advances one tick and every running node ticks (each node may miss
//     ticks with a per-node probability: clock drift);
//   - a client request: propose one command, or ask a read index;
//   - an application action: snapshot the state at the applied index and compact the log;
//   - a fault or operator action: crash a node (its memory and unpersisted Ready are lost),
//     restart one from its disk, partition the network (random halves, isolate the leader, or
//     one-way links), heal it, change the loss/duplication/delay rates, replay an old message
//     (a very late duplicate), propose a membership
//     change (add/remove voter or learner, promote, demote), transfer leadership, force a campaign.
// Each seed draws its own profile (tests/sim/profile.ts): cluster size (3 or 5), Raft settings and
// fault probabilities.
//
// Phases: the SAFETY phase runs `steps` steps under faults. Then the LIVENESS phase stops every
// fault — heals partitions, sets loss, duplication and delays to zero (delivery order stays
// random), makes the network fast (while messages or Readies are pending, a tick is 20 times less likely than in the
// safety phase: a round trip takes far less than a tick), restarts every crashed node — and requires, within LIVENESS_ELECTION_TIMEOUTS * electionTicks ticks, that
// a leader is elected, a new proposal commits, and every member of the leader's configuration
// (voters and learners) applies it. Missing that bound is a violation.
//
// Removed nodes keep running (and may try to disrupt) until every member of the configuration
// that removed them has applied the removal; then they are stopped for good ("retired"), and
// their ids are never reused.

import {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  Message,
  MessageType,
  RaftError,
  StateType,
  bootstrapState,
} from '../../src/raft';
import { committedIndex } from '../../src/raft/quorum';
import { SeededRng } from '../../src/raft/rng';
import { Checkers, HASH_SEED, Violation, entryKey, hashApply } from './checkers';
import { MAX_NODE_ID, SimNetwork } from './network';
import { NodeHost, SimNode, encodeReadContext } from './node';
import { SimProfile, describeProfile, makeProfile } from './profile';

/** The liveness bound, in election timeouts (electionTicks each). */
export const LIVENESS_ELECTION_TIMEOUTS = 50;
/** In the liveness phase a tick weighs this much of its safety-phase weight while work is pending. */
const LIVENESS_TICK_WEIGHT_FACTOR = 0.05;
/** Safety net against a scheduler that would stop advancing time (never expected to trigger). */
const LIVENESS_MAX_STEPS = 2_000_000;
/** Full (non-incremental) log checks run every this many steps. */
const FULL_CHECK_EVERY_STEPS = 250;


export interface RunOptions {
  seed: number;
  /** Steps of the safety phase (the liveness phase adds its own). */
  steps: number;
  /** Receives a line per fault, leader change and phase change; with traceSteps, one per step. */
  trace?: (line: string) => void;
  traceSteps?: boolean;
}

export interface SeedStats {
  ticks: number;
  livenessSteps: number;
  livenessTicks: number;
  proposals: number;
  proposalsAccepted: number;
  acked: number;
  reads: number;
  readsReleased: number;
  confChangesProposed: number;
  confChangesApplied: number;
  crashes: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  leaderTerms: number;
  maxCommitted: number;
  messagesSent: number;
  partitions: number;
  transfers: number;
  /** Nodes retired after their removal. */
  retired: number;
}

export interface SeedResult {
  seed: number;
  /** Ticks the liveness phase took, in election timeouts (the bound is LIVENESS_ELECTION_TIMEOUTS). */
  livenessElectionTimeouts: number;
  /** Steps executed, both phases. */
  steps: number;
  violation?: { step: number; phase: 'safety' | 'liveness'; checker: string; text: string };
  stats: SeedStats;
}

/** Runs one seed to completion (or to its first violation). Deterministic in (seed, steps). */
export function runSeed(opts: RunOptions): SeedResult {
  const sim = new SimCluster(opts);
  return sim.run();
}

interface PendingAck {
  readonly node: number;
  readonly incarnation: number;
  readonly term: number;
}

interface PendingRemoval {
  readonly id: number;
  readonly index: number;
  readonly members: readonly number[];
}

type Phase = 'safety' | 'liveness';

export class SimCluster implements NodeHost {
  readonly profile: SimProfile;
  readonly checkers = new Checkers();
  readonly seed: number;
  private readonly rng: SeededRng;
  private readonly net: SimNetwork;
  /** Indexed by node id; undefined for ids never created. */
  private readonly nodes: (SimNode | undefined)[] = [];
  private readonly nodeList: SimNode[] = [];
  private readonly steps: number;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly traceSteps: boolean;

  private stepNo = 0;
  private now = 0;
  private phase: Phase = 'safety';
  private proposalSeq = 0;
  private readSeq = 0;

  private readonly touchedStamp = new Uint32Array(MAX_NODE_ID);
  private readonly touched: number[] = [];
  private readonly readyNodes: SimNode[] = [];

  private readonly pendingAcks = new Map<number, PendingAck[]>();
  private readonly pendingRemovals: PendingRemoval[] = [];
  private readonly everRemoved = new Set<number>();

  private livenessKey = '';
  private livenessData: Uint8Array | undefined;
  private livenessIndex = 0;
  private lastLivenessProposeTick = -1;

  readonly stats: SeedStats = {
    ticks: 0,
    livenessSteps: 0,
    livenessTicks: 0,
    proposals: 0,
    proposalsAccepted: 0,
    acked: 0,
    reads: 0,
    readsReleased: 0,
    confChangesProposed: 0,
    confChangesApplied: 0,
    crashes: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    leaderTerms: 0,
    maxCommitted: 0,
    messagesSent: 0,
    partitions: 0,
    transfers: 0,
    retired: 0,
  };

  constructor(opts: RunOptions) {
    this.seed = opts.seed >>> 0;
    this.steps = opts.steps;
    this.trace = opts.trace;
    this.traceSteps = opts.traceSteps === true && opts.trace !== undefined;
    this.profile = makeProfile(this.seed);
    this.rng = new SeededRng(this.seed);
    this.net = new SimNetwork(new SeededRng((this.seed ^ 0x27d4eb2f) >>> 0), { ...this.profile.network });
    if (this.profile.maxNodeId >= MAX_NODE_ID) throw new Error('maxNodeId too large for the network matrix');
    const voters: number[] = [];
    for (let id = 1; id <= this.profile.nodeCount; id++) voters.push(id);
    for (const id of voters) this.createNode(id, { voters, learners: [] });
    this.bootstrap(voters);
  }

  /**
   * The initial members start from the core's bootstrap state (src/raft/bootstrap.ts): committed
   * AddVoter entries at indexes 1..N, so nodes added later learn the membership by replication.
   */
  private bootstrap(voters: readonly number[]): void {
    const { entries: ents, hardState } = bootstrapState(voters);
    const last = ents.length;
    // The bootstrap entries count as committed by a leader of term 1 and applied.
    this.checkers.completeness.observeLeaderCommit(0, 1, ents);
    let hash = HASH_SEED;
    for (const e of ents) {
      hash = hashApply(hash, e);
      this.checkers.stateMachine.observeApply(0, e, hash);
    }
    for (const id of voters) {
      const n = this.nodes[id] as SimNode;
      n.storage.append(ents);
      n.storage.setHardState(hardState);
      n.persistedHardState = hardState;
      n.app.applied = last;
      n.app.hash = hash;
    }
  }

  // -------------------------------------------------------------------------------------------
  // NodeHost

  nodeRng(id: number, incarnation: number): SeededRng {
    return new SeededRng((Math.imul(this.seed, 0x9e3779b1) + id * 0x85ebca6b + incarnation * 0xc2b2ae35) >>> 0);
  }

  send(from: SimNode, m: Message): void {
    this.stats.messagesSent++;
    this.net.send(m, from.incarnation);
  }

  onApplied(node: SimNode, e: Entry): void {
    const acks = this.pendingAcks.get(e.index);
    if (acks) {
      for (let k = 0; k < acks.length; k++) {
        const a = acks[k] as PendingAck;
        if (a.node === node.id && a.incarnation === node.incarnation) {
          if (a.term === e.term) this.stats.acked++;
          acks.splice(k, 1);
          break;
        }
      }
      if (acks.length === 0) this.pendingAcks.delete(e.index);
    }
    if (this.livenessIndex === 0 && this.livenessKey !== '' && entryKey(e) === this.livenessKey) {
      this.livenessIndex = e.index;
      this.log(`liveness proposal applied at index ${e.index} by n${node.id}`);
    }
    if (e.index > this.stats.maxCommitted) this.stats.maxCommitted = e.index;
    if (this.pendingRemovals.length > 0) this.maybeRetire();
  }

  onConfChangeApplied(node: SimNode, index: number, cc: ConfChange, cs: ConfState): void {
    this.stats.confChangesApplied++;
    if (cc.type === ConfChangeType.RemoveNode) {
      this.everRemoved.add(cc.nodeId);
      if (!this.pendingRemovals.some((r) => r.index === index)) {
        this.pendingRemovals.push({ id: cc.nodeId, index, members: [...cs.voters, ...cs.learners] });
        this.log(`removal of n${cc.nodeId} applied at index ${index} (by n${node.id})`);
      }
    }
  }

  onSnapshotInstalled(node: SimNode, index: number): void {
    this.stats.snapshotsInstalled++;
    this.log(`n${node.id} installed a snapshot at index ${index}`);
    if (this.pendingRemovals.length > 0) this.maybeRetire();
  }

  // -------------------------------------------------------------------------------------------
  // Running

  run(): SeedResult {
    let violation: SeedResult['violation'];
    try {
      this.log(`seed ${this.seed} profile:\n${describeProfile(this.profile)}`);
      for (const n of this.nodeList) n.start(this);
      while (this.stepNo < this.steps) this.step();
      this.runLiveness();
      this.fullCheck();
    } catch (err) {
      const v = asViolation(err);
      violation = { step: this.stepNo, phase: this.phase, checker: v.checker, text: v.message };
      this.log(`VIOLATION at step ${this.stepNo} (${this.phase}): ${v.message}`);
      this.log(`cluster:\n${this.describeCluster()}`);
    }
    this.stats.ticks = this.now;
    this.stats.leaderTerms = this.checkers.election.termsWithLeader();
    this.stats.reads = this.readSeq;
    this.stats.readsReleased = this.checkers.reads.released;
    const livenessElectionTimeouts = this.stats.livenessTicks / this.profile.electionTicks;
    return { seed: this.seed, livenessElectionTimeouts, steps: this.stepNo, violation, stats: this.stats };
  }

  private log(line: string): void {
    if (this.trace) this.trace(`[${this.stepNo} t=${this.now}] ${line}`);
  }

  private createNode(id: number, conf: ConfState): SimNode {
    const skip = this.profile.maxTickSkipProbability > 0 ? this.rng.next() * this.profile.maxTickSkipProbability : 0;
    const n = new SimNode(id, conf, skip);
    this.nodes[id] = n;
    this.nodeList.push(n);
    return n;
  }

  private touch(n: SimNode): void {
    n.dirty = true;
    if (this.touchedStamp[n.id] !== this.stepNo) {
      this.touchedStamp[n.id] = this.stepNo;
      this.touched.push(n.id);
    }
  }

  /** One step: choose an action, run it, run the checkers. */
  private step(): void {
    this.stepNo++;
    this.touched.length = 0;
    let what: string;
    try {
      what = this.chooseAndRun();
    } catch (err) {
      if (err instanceof Violation) throw err;
      throw new Violation('exception', `uncaught ${describeError(err)}`);
    }
    if (this.traceSteps && what !== '') this.log(what);
    for (const id of this.touched) {
      const n = this.nodes[id] as SimNode;
      if (n.up) this.observe(n);
    }
    if (this.stepNo % FULL_CHECK_EVERY_STEPS === 0) this.fullCheck();
  }

  private collectReadyNodes(): void {
    this.readyNodes.length = 0;
    for (const n of this.nodeList) if (n.hasWork()) this.readyNodes.push(n);
  }

  private chooseAndRun(): string {
    const w = this.profile.weights;
    const safety = this.phase === 'safety';
    if (!safety) {
      const s = this.maybeProposeLiveness();
      if (s !== '') return s;
    }
    this.collectReadyNodes();
    // Deliveries and Ready stages weigh per pending item: the more work is waiting, the less
    // likely time advances, as on a real network that delivers in far less than a tick.
    const wDeliver = w.deliver * this.net.deliverableCount();
    const wReady = w.ready * this.readyNodes.length;
    // A healed network (liveness phase) is fast: a round trip takes far less than a tick.
    const wTick = (safety ? w.tick : w.tick * LIVENESS_TICK_WEIGHT_FACTOR) + (wDeliver === 0 && wReady === 0 ? 100 : 0);
    const wPropose = safety ? w.propose : 0;
    const wRead = safety ? w.read : 0;
    const wSnapshot = w.snapshot;
    const wFault = safety ? w.fault : 0;
    let x = this.rng.next() * (wDeliver + wReady + wTick + wPropose + wRead + wSnapshot + wFault);
    if ((x -= wDeliver) < 0) return this.deliver();
    if ((x -= wReady) < 0) return this.runReady();
    if ((x -= wTick) < 0) return this.tick();
    if ((x -= wPropose) < 0) return this.propose();
    if ((x -= wRead) < 0) return this.read();
    if ((x -= wSnapshot) < 0) return this.snapshot();
    return this.fault();
  }

  // -------------------------------------------------------------------------------------------
  // Actions

  private deliver(): string {
    const f = this.net.takeRandom();
    if (!f) return '';
    const m = f.msg;
    const target = this.nodes[m.to];
    let dropReason = '';
    if (!target || !target.up) dropReason = 'down';
    else if (this.net.isBlocked(m.from, m.to)) dropReason = 'partition';
    else if (this.net.shouldDrop()) dropReason = 'loss';
    const sender = this.nodes[m.from];
    const senderSame = sender !== undefined && sender.up && sender.incarnation === f.fromIncarnation;
    if (dropReason !== '') {
      if (senderSame && sender) {
        if (m.type === MessageType.Snap) {
          sender.raw?.reportSnapshot(m.to, false);
          this.touch(sender);
        } else if (
          m.type === MessageType.App &&
          dropReason !== 'loss' &&
          this.rng.chance(this.profile.unreachableReportProbability)
        ) {
          sender.raw?.reportUnreachable(m.to);
          this.touch(sender);
        }
      }
      return this.traceSteps ? `drop(${dropReason}) ${describeMessage(m)}` : '';
    }
    (target as SimNode).raw?.step(m);
    this.touch(target as SimNode);
    if (m.type === MessageType.Snap && senderSame && sender) {
      sender.raw?.reportSnapshot(m.to, true);
      this.touch(sender);
    }
    return this.traceSteps ? `deliver ${describeMessage(m)}` : '';
  }

  private runReady(): string {
    const n = this.readyNodes[this.rng.intn(this.readyNodes.length)] as SimNode;
    const split = this.profile.splitReadyProbability > 0 && !n.readyOutstanding() && this.rng.chance(this.profile.splitReadyProbability);
    const stage = n.runReadyStage(this, split);
    this.touch(n);
    return this.traceSteps ? `ready n${n.id} ${stage}` : '';
  }

  private tick(): string {
    this.now++;
    this.net.advanceTo(this.now);
    if (this.phase === 'liveness') this.stats.livenessTicks++;
    for (const n of this.nodeList) {
      if (!n.raw) continue;
      if (n.tickSkipProbability > 0 && this.rng.chance(n.tickSkipProbability)) continue;
      n.raw.tick();
      this.touch(n);
    }
    return this.traceSteps ? 'tick' : '';
  }

  private makePayload(): Uint8Array {
    const pad = this.profile.payloadPadBytes > 0 ? this.rng.intn(this.profile.payloadPadBytes + 1) : 0;
    const b = new Uint8Array(4 + pad);
    new DataView(b.buffer).setUint32(0, ++this.proposalSeq);
    for (let i = 4; i < b.length; i++) b[i] = this.rng.intn(256);
    return b;
  }

  private propose(): string {
    const target = this.pickLeaderOrRandom(0.85);
    if (!target) return '';
    const data = this.makePayload();
    this.stats.proposals++;
    this.touch(target);
    try {
      const pos = (target.raw as NonNullable<SimNode['raw']>).propose(data);
      this.stats.proposalsAccepted++;
      let list = this.pendingAcks.get(pos.index);
      if (!list) {
        list = [];
        this.pendingAcks.set(pos.index, list);
      }
      list.push({ node: target.id, incarnation: target.incarnation, term: pos.term });
      return this.traceSteps ? `propose #${this.proposalSeq} on n${target.id} -> index ${pos.index} term ${pos.term}` : '';
    } catch (err) {
      if (err instanceof RaftError) return this.traceSteps ? `propose on n${target.id}: ${err.code}` : '';
      throw err;
    }
  }

  private read(): string {
    const target = this.pickLeaderOrRandom(0.7);
    if (!target) return '';
    const ctx = ++this.readSeq;
    this.checkers.reads.requested(ctx, target.id, this.checkers.stateMachine.maxApplied, this.stepNo);
    this.touch(target);
    try {
      (target.raw as NonNullable<SimNode['raw']>).readIndex(encodeReadContext(ctx));
      return this.traceSteps ? `read #${ctx} on n${target.id} (min index ${this.checkers.stateMachine.maxApplied})` : '';
    } catch (err) {
      if (err instanceof RaftError) return this.traceSteps ? `read on n${target.id}: ${err.code}` : '';
      throw err;
    }
  }

  private snapshot(): string {
    const up = this.upNodes();
    if (up.length === 0) return '';
    const leader = this.currentLeader();
    const n = leader && this.rng.chance(0.5) ? leader : this.rng.pick(up);
    const index = n.snapshotAndCompact(this.profile.compactionKeepEntries);
    if (index === 0) return '';
    this.stats.snapshotsTaken++;
    this.touch(n);
    if (this.trace) this.log(`n${n.id} snapshots at ${index}, log now [${n.storage.firstIndex()}, ${n.storage.lastIndex()}]`);
    return '';
  }

  private fault(): string {
    const f = this.profile.faults;
    const total =
      f.crash + f.restart + f.partition + f.heal + f.confChange + f.transferLeader + f.campaign + f.networkWeather + f.replay;
    if (total === 0) return '';
    let x = this.rng.next() * total;
    if ((x -= f.crash) < 0) return this.crash();
    if ((x -= f.restart) < 0) return this.restart();
    if ((x -= f.partition) < 0) return this.partition();
    if ((x -= f.heal) < 0) return this.heal();
    if ((x -= f.confChange) < 0) return this.confChange();
    if ((x -= f.transferLeader) < 0) return this.transferLeader();
    if ((x -= f.campaign) < 0) return this.campaign();
    if ((x -= f.replay) < 0) return this.replay();
    return this.networkWeather();
  }

  private replay(): string {
    const m = this.net.replayOld();
    if (m && this.traceSteps) return `replay ${describeMessage(m)}`;
    return '';
  }

  private crash(): string {
    const up = this.upNodes();
    if (up.length === 0) return '';
    // Leaders crash more often than their share: it is where most recovery paths start.
    const leader = this.currentLeader();
    const n = leader && this.rng.chance(0.4) ? leader : this.rng.pick(up);
    n.crash();
    this.stats.crashes++;
    this.log(`crash n${n.id}`);
    return '';
  }

  private restart(): string {
    const down = this.nodeList.filter((n) => !n.up && !n.retired);
    if (down.length === 0) return '';
    const n = this.rng.pick(down);
    n.start(this);
    this.touch(n);
    this.log(`restart n${n.id} (incarnation ${n.incarnation}, applied ${n.app.applied}, commit ${n.persistedHardState.commit})`);
    return '';
  }

  private partition(): string {
    const p = this.profile.partitions;
    const ids = this.nodeList.filter((n) => !n.retired).map((n) => n.id);
    if (ids.length < 2) return '';
    this.stats.partitions++;
    let x = this.rng.next() * (p.halves + p.isolateLeader + p.oneWay);
    if ((x -= p.halves) < 0) {
      shuffle(this.rng, ids);
      const cut = 1 + this.rng.intn(ids.length - 1);
      const a = ids.slice(0, cut);
      const b = ids.slice(cut);
      this.net.partition(a, b);
      this.log(`partition [${a.join(',')}] | [${b.join(',')}]`);
      return '';
    }
    if ((x -= p.isolateLeader) < 0) {
      const leader = this.currentLeader();
      if (!leader) return '';
      this.net.partition([leader.id], ids.filter((id) => id !== leader.id));
      this.log(`isolate leader n${leader.id}`);
      return '';
    }
    const links = 1 + this.rng.intn(3);
    const desc: string[] = [];
    for (let k = 0; k < links; k++) {
      const from = this.rng.pick(ids);
      const to = this.rng.pick(ids);
      if (from === to) continue;
      this.net.blockOneWay(from, to);
      desc.push(`${from}->${to}`);
    }
    this.log(`block one-way ${desc.join(' ')}`);
    return '';
  }

  private heal(): string {
    this.net.heal();
    this.log('heal network');
    return '';
  }

  private networkWeather(): string {
    const mode = this.rng.next();
    if (mode < 0.4) {
      this.net.faults = { ...this.profile.network };
    } else if (mode < 0.6) {
      // A slow link: a few messages arrive up to three election timeouts late (stale votes,
      // appends and snapshots from an earlier term or an earlier log).
      this.net.faults = {
        dropProbability: this.profile.network.dropProbability,
        duplicateProbability: this.profile.network.duplicateProbability,
        delayProbability: 0.02 + this.rng.next() * 0.15,
        maxDelayTicks: 1 + this.rng.intn(3 * this.profile.electionTicks),
      };
    } else {
      this.net.faults = {
        dropProbability: this.rng.next() * 0.3,
        duplicateProbability: this.rng.next() * 0.1,
        delayProbability: this.rng.next() * 0.5,
        maxDelayTicks: 1 + this.rng.intn(Math.max(1, Math.floor(this.profile.electionTicks / 3))),
      };
    }
    const f = this.net.faults;
    this.log(
      `network weather: drop=${f.dropProbability.toFixed(2)} dup=${f.duplicateProbability.toFixed(2)} delay=${f.delayProbability.toFixed(2)}x${f.maxDelayTicks}`,
    );
    return '';
  }

  private confChange(): string {
    const leader = this.currentLeader();
    if (!leader || !leader.raw) return '';
    const r = leader.raw.raft;
    const voters = [...r.voters];
    const learners = [...r.learners];
    const fresh: number[] = [];
    for (let id = 1; id <= this.profile.maxNodeId; id++) {
      if (r.voters.has(id) || r.learners.has(id) || this.everRemoved.has(id)) continue;
      const n = this.nodes[id];
      if (n && n.retired) continue;
      fresh.push(id);
    }
    const minVoters = this.profile.minVoters;
    const options: { w: number; make: () => ConfChange }[] = [];
    const cc = (type: ConfChangeType, nodeId: number): ConfChange => ({ type, nodeId, context: new Uint8Array(0) });
    if (fresh.length > 0) {
      options.push({ w: 3, make: () => cc(ConfChangeType.AddLearner, this.rng.pick(fresh)) });
      options.push({ w: 1, make: () => cc(ConfChangeType.AddVoter, this.rng.pick(fresh)) });
    }
    if (learners.length > 0) {
      options.push({ w: 3, make: () => cc(ConfChangeType.AddVoter, this.rng.pick(learners)) });
      options.push({ w: 1, make: () => cc(ConfChangeType.RemoveNode, this.rng.pick(learners)) });
    }
    if (voters.length > minVoters) {
      options.push({ w: 1, make: () => cc(ConfChangeType.AddLearner, this.rng.pick(voters)) });
      options.push({ w: 2, make: () => cc(ConfChangeType.RemoveNode, this.rng.pick(voters)) });
    }
    // Now and then a change the core must refuse (adding an existing voter).
    if (voters.length > 0) options.push({ w: 0.2, make: () => cc(ConfChangeType.AddVoter, this.rng.pick(voters)) });
    let total = 0;
    for (const o of options) total += o.w;
    let x = this.rng.next() * total;
    let change: ConfChange | undefined;
    for (const o of options) {
      if ((x -= o.w) < 0) {
        change = o.make();
        break;
      }
    }
    if (!change) return '';
    const typeName = ConfChangeType[change.type];
    if (change.type !== ConfChangeType.RemoveNode && !this.nodes[change.nodeId]) {
      // A new node starts empty and learns everything (log or snapshot) from the leader.
      const n = this.createNode(change.nodeId, { voters: [], learners: [] });
      n.start(this);
      this.touch(n);
      this.log(`start new empty node n${n.id}`);
    }
    this.stats.confChangesProposed++;
    this.touch(leader);
    try {
      const pos = leader.raw.proposeConfChange(change);
      this.log(`propose ${typeName} n${change.nodeId} on leader n${leader.id} -> index ${pos.index} term ${pos.term}`);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      this.log(`propose ${typeName} n${change.nodeId} on n${leader.id}: refused (${err.code})`);
    }
    return '';
  }

  private transferLeader(): string {
    const leader = this.currentLeader();
    if (!leader || !leader.raw) return '';
    const voters = [...leader.raw.raft.voters].filter((id) => id !== leader.id);
    let target: number;
    if (voters.length > 0 && this.rng.chance(0.9)) target = this.rng.pick(voters);
    else target = 1 + this.rng.intn(this.profile.maxNodeId);
    let via = leader;
    if (this.rng.chance(0.2)) {
      const up = this.upNodes();
      via = this.rng.pick(up);
    }
    this.touch(via);
    try {
      (via.raw as NonNullable<SimNode['raw']>).transferLeader(target);
      this.stats.transfers++;
      this.log(`transfer leadership of n${leader.id} to n${target} (asked on n${via.id})`);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      this.log(`transfer to n${target} on n${via.id}: ${err.code}`);
    }
    return '';
  }

  private campaign(): string {
    const up = this.upNodes();
    if (up.length === 0) return '';
    const n = this.rng.pick(up);
    (n.raw as NonNullable<SimNode['raw']>).campaign();
    this.touch(n);
    this.log(`n${n.id} campaigns`);
    return '';
  }

  // -------------------------------------------------------------------------------------------
  // Membership bookkeeping

  private maybeRetire(): void {
    for (let k = 0; k < this.pendingRemovals.length; k++) {
      const r = this.pendingRemovals[k] as PendingRemoval;
      let all = true;
      for (const id of r.members) {
        const m = this.nodes[id];
        if (m && !m.retired && m.app.applied < r.index) {
          all = false;
          break;
        }
      }
      if (!all) continue;
      this.pendingRemovals.splice(k, 1);
      k--;
      const n = this.nodes[r.id];
      if (n && !n.retired) {
        n.crash();
        n.retired = true;
        this.stats.retired++;
        this.checkers.logMatching.forget(n.id);
        this.log(`retire n${n.id}: every member of the new configuration applied its removal (index ${r.index})`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Liveness

  private runLiveness(): void {
    this.phase = 'liveness';
    this.net.heal();
    // Messages already in flight keep their delays; new ones are neither lost, duplicated nor
    // held back (they are still delivered in random order).
    this.net.faults = { dropProbability: 0, duplicateProbability: 0, delayProbability: 0, maxDelayTicks: 1 };
    for (const n of this.nodeList) {
      if (!n.up && !n.retired) {
        n.start(this);
        this.touch(n);
        this.log(`liveness: restart n${n.id}`);
      }
    }
    this.log(`liveness phase: faults stopped, network healed; bound ${LIVENESS_ELECTION_TIMEOUTS * this.profile.electionTicks} ticks`);
    const b = new Uint8Array(5);
    b[0] = 0x4c; // 'L'
    new DataView(b.buffer).setUint32(1, 0xffffffff);
    this.livenessData = b;
    this.livenessKey = entryKey({ index: 0, term: 0, type: 0, data: b });
    this.livenessIndex = 0;
    const startTick = this.now;
    const startStep = this.stepNo;
    const bound = LIVENESS_ELECTION_TIMEOUTS * this.profile.electionTicks;
    for (;;) {
      if (this.livenessDone()) {
        this.stats.livenessSteps = this.stepNo - startStep;
        this.log(`liveness reached after ${this.now - startTick} ticks, ${this.stepNo - startStep} steps`);
        return;
      }
      if (this.now - startTick > bound || this.stepNo - startStep > LIVENESS_MAX_STEPS) {
        this.stats.livenessSteps = this.stepNo - startStep;
        throw new Violation('liveness', `${this.livenessFailure()} within ${bound} ticks (${LIVENESS_ELECTION_TIMEOUTS} election timeouts) after faults stopped`);
      }
      this.step();
    }
  }

  private maybeProposeLiveness(): string {
    if (this.livenessIndex !== 0 || !this.livenessData) return '';
    if (this.lastLivenessProposeTick >= 0 && this.now - this.lastLivenessProposeTick < 2 * this.profile.electionTicks) return '';
    const leader = this.currentLeader();
    if (!leader || !leader.raw) return '';
    this.lastLivenessProposeTick = this.now;
    this.touch(leader);
    try {
      const pos = leader.raw.propose(this.livenessData);
      this.log(`liveness proposal on leader n${leader.id} -> index ${pos.index} term ${pos.term}`);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      this.log(`liveness proposal on n${leader.id}: ${err.code}`);
    }
    return 'liveness propose';
  }

  private livenessDone(): boolean {
    if (this.livenessIndex === 0) return false;
    const leader = this.currentLeader();
    if (!leader || !leader.raw) return false;
    const r = leader.raw.raft;
    for (const set of [r.voters, r.learners]) {
      for (const id of set) {
        const m = this.nodes[id];
        if (!m || !m.up || m.app.applied < this.livenessIndex) return false;
      }
    }
    return true;
  }

  private livenessFailure(): string {
    const leader = this.currentLeader();
    if (!leader || !leader.raw) return 'no leader elected';
    if (this.livenessIndex === 0) return `leader n${leader.id} elected but the new proposal was not committed and applied`;
    const r = leader.raw.raft;
    const behind: string[] = [];
    for (const set of [r.voters, r.learners]) {
      for (const id of set) {
        const m = this.nodes[id];
        if (!m || !m.up) behind.push(`n${id} (not running)`);
        else if (m.app.applied < this.livenessIndex) behind.push(`n${id} (applied ${m.app.applied})`);
      }
    }
    return `proposal committed at index ${this.livenessIndex} but not applied by members ${behind.join(', ')}`;
  }

  // -------------------------------------------------------------------------------------------
  // Observation

  private observe(n: SimNode): void {
    const raw = n.raw;
    if (!raw) return;
    const r = raw.raft;
    const c = this.checkers;
    const view = n.logView as NonNullable<SimNode['logView']>;
    if (r.state === StateType.Leader) {
      c.election.observeLeader(n.id, r.term);
      if (n.leaderTermChecked !== r.term) {
        n.leaderTermChecked = r.term;
        this.log(`n${n.id} is leader of term ${r.term}`);
        c.completeness.checkLeader(n.id, r.term, view);
      }
    } else if (r.lead !== 0) {
      c.election.observeFollower(n.id, r.term, r.lead);
    }
    const committed = r.raftLog.committed;
    if (committed < n.lastObservedCommit) {
      throw new Violation('durability', `node ${n.id}'s commit index went back from ${n.lastObservedCommit} to ${committed}`);
    }
    n.lastObservedCommit = committed;
    // What leader completeness calls committed: on a quorum of disks. A leader that sends before
    // persisting (Ready.earlyMessages) counts its own copy from the moment it appends, so here its
    // copy counts only once it is on its disk — possibly after it stepped down; and, as in the
    // commit rule, only when the highest such entry is of that leader's term (an older-term entry
    // on a majority can still be overwritten).
    if (r.state === StateType.Leader) {
      if (n.ledTerm !== r.term) n.ledCommit = 0;
      n.ledTerm = r.term;
      n.ledCommit = Math.max(n.ledCommit, committed);
    }
    const stable = n.stableAgreeIndex();
    const durable =
      r.state === StateType.Leader
        ? Math.min(committed, committedIndex(r.voters, (id) => (id === n.id ? stable : r.prs.get(id)?.match ?? 0)))
        : Math.min(n.ledCommit, stable);
    if (durable > n.lastObservedLeaderCommit && (durable < view.firstIndex() || view.term(durable) === n.ledTerm)) {
      const lo = Math.max(n.lastObservedLeaderCommit + 1, view.firstIndex());
      const ents = lo <= durable ? view.slice(lo, durable + 1) : [];
      const changedFrom = c.completeness.observeLeaderCommit(n.id, n.ledTerm, ents);
      if (changedFrom > 0) {
        for (const other of this.nodeList) {
          if (other === n || !other.raw) continue;
          const o = other.raw.raft;
          if (o.state === StateType.Leader && o.term > n.ledTerm) {
            c.completeness.checkLeader(other.id, o.term, other.logView as NonNullable<SimNode['logView']>, changedFrom);
          }
        }
      }
      n.lastObservedLeaderCommit = durable;
    }
    // Commits a follower learns came from a leader that recorded them (it sends commit indexes
    // only for entries on its disk); skip past them unless this node's own leadership still has
    // commits waiting for its disk.
    if (r.state !== StateType.Leader && committed > n.lastObservedLeaderCommit && n.ledCommit <= n.lastObservedLeaderCommit) {
      n.lastObservedLeaderCommit = committed;
    }
    c.logMatching.checkIncremental(n.id, view);
  }

  private fullCheck(): void {
    const c = this.checkers;
    for (const n of this.nodeList) {
      if (!n.raw || !n.logView) continue;
      c.logMatching.checkFull(n.id, n.logView);
      const r = n.raw.raft;
      if (r.state === StateType.Leader) c.completeness.checkLeader(n.id, r.term, n.logView);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private upNodes(): SimNode[] {
    return this.nodeList.filter((n) => n.up);
  }

  /** The running leader of the highest term, if any. */
  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.nodeList) {
      const raw = n.raw;
      if (!raw) continue;
      if (raw.raft.state === StateType.Leader && raw.raft.term > bestTerm) {
        best = n;
        bestTerm = raw.raft.term;
      }
    }
    return best;
  }

  /**
   * A client's target: with `leaderProbability`, a random node that believes it leads (a client
   * with a stale route may well reach a deposed leader cut off in a minority), else any running node.
   */
  private pickLeaderOrRandom(leaderProbability: number): SimNode | undefined {
    if (this.rng.chance(leaderProbability)) {
      const leaders = this.nodeList.filter((n) => n.raw !== undefined && n.raw.raft.state === StateType.Leader);
      if (leaders.length > 0) return this.rng.pick(leaders);
    }
    const up = this.upNodes();
    return up.length === 0 ? undefined : this.rng.pick(up);
  }

  describeCluster(): string {
    const lines = this.nodeList.map((n) => '  ' + n.describe());
    lines.push(`  network: blocked ${this.net.describeBlocked()}; in flight ${this.net.inFlightCount()}`);
    return lines.join('\n');
  }
}

function shuffle<T>(rng: SeededRng, arr: T[]): void {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = rng.intn(i + 1);
    const t = arr[i] as T;
    arr[i] = arr[j] as T;
    arr[j] = t;
  }
}

function describeMessage(m: Message): string {
  let s = `${m.type} ${m.from}->${m.to} term=${m.term}`;
  if (m.type === MessageType.App) s += ` prev=(${m.index},${m.logTerm}) n=${m.entries.length} commit=${m.commit}`;
  else if (m.type === MessageType.AppResp) s += ` index=${m.index}${m.reject ? ` REJECT hint=(${m.rejectHint},${m.rejectHintTerm})` : ''}`;
  else if (m.type === MessageType.Vote || m.type === MessageType.PreVote) s += ` last=(${m.index},${m.logTerm})`;
  else if (m.type === MessageType.VoteResp || m.type === MessageType.PreVoteResp) s += m.reject ? ' REJECT' : ' GRANT';
  else if (m.type === MessageType.Heartbeat) s += ` commit=${m.commit}`;
  else if (m.type === MessageType.Snap && m.snapshot) s += ` snap=(${m.snapshot.metadata.index},${m.snapshot.metadata.term})`;
  else if (m.type === MessageType.ReadIndexResp) s += ` index=${m.index}`;
  return s;
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const stack = (err.stack ?? `${err.name}: ${err.message}`).split('\n').slice(0, 6).join('\n');
    return stack;
  }
  return String(err);
}

function asViolation(err: unknown): Violation {
  if (err instanceof Violation) return err;
  return new Violation('exception', `uncaught ${describeError(err)}`);
}
