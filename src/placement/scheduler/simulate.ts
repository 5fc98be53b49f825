// A deterministic, seeded simulation of the scheduler at scale: a cluster of nodes in zones holding
// ranges, rounds in which the scheduler plans and a simulated executor carries operators out step
// by step (learners take rounds to catch up, steps fail at random and are retried or abandoned,
// leaders change), while nodes join, fail for good, fail for a while, and are drained. Every
// executed step and every issued operator is checked by the independent checkers of
// `invariants.ts`; every round checks the in-flight limits. The run ends when the cluster has
// converged (and stayed so for `stableRounds`) or at `maxRounds`.
//
// Pure like the scheduler: no clock (the optional `clock` only measures time spent scheduling), no
// timers, randomness only from the seed. The same options give the same report.

import { SeededRng } from '../../raft/rng';
import { healthOf, operatorCharges } from './cluster-index';
import { resolveSchedulerConfig, type SchedulerConfig } from './config';
import { checkOperatorPlan, checkTransition, type NodeStates, type Violation } from './invariants';
import { checkStep } from './safety';
import { schedule } from './scheduler';
import type { InFlightOperator, NodeId, NodeInfo, NodeState, Operator, OperatorPurpose, OperatorStep, PlacementRules, RangeInfo, ReplicaRole } from './types';

export interface SimulationOptions {
  readonly seed: number;
  /** Nodes at the start, spread round-robin over `zones` zones. */
  readonly nodes: number;
  readonly zones: number;
  /** Ranges at the start, each with `rules.votersPerRange` voters on random nodes in distinct zones. */
  readonly ranges: number;
  readonly rules: PlacementRules;
  readonly scheduler: Partial<SchedulerConfig>;
  /** Simulated time per round (ms). */
  readonly roundMs: number;
  /** Empty nodes that join at `joinRound`, as a fraction of the initial node count. */
  readonly joinFraction: number;
  readonly joinRound: number;
  /** Nodes that fail and stay down (past the replace timeout). */
  readonly permanentFailures: number;
  /** Nodes that go down for `transientDownRounds` rounds (less than the replace timeout) and return. */
  readonly transientFailures: number;
  readonly transientDownRounds: number;
  /** Failures happen one every `failureEveryRounds` rounds from `firstFailureRound`. */
  readonly firstFailureRound: number;
  readonly failureEveryRounds: number;
  /** Nodes drained at `drainRound`. */
  readonly drains: number;
  readonly drainRound: number;
  /** Probability that executing a step fails; of those, `stepAbortShare` abandon the whole operator. */
  readonly stepFailureRate: number;
  readonly stepAbortShare: number;
  /** Rounds a new learner takes to catch up: uniform in [min, max]. */
  readonly catchUpRoundsMin: number;
  readonly catchUpRoundsMax: number;
  /** An operator waiting longer than this (rounds) is abandoned, like a real executor's timeout. */
  readonly operatorTimeoutRounds: number;
  /** Probability per range per round that leadership moves to another voter on its own (elections). */
  readonly leaderChurnRate: number;
  /** Share of ranges that start past the split size. */
  readonly oversizedRangeFraction: number;
  readonly maxRounds: number;
  /**
   * Converged: replicas max/min per up node at most this — inside each zone when the rules fix each
   * zone's share (learners in every zone, or no more zones than voters), over all up nodes otherwise.
   */
  readonly replicaSpreadMax: number;
  /** Converged: leaders max/min per up node at most this. */
  readonly leaderSpreadMax: number;
  /** Rounds the convergence criteria must keep holding after they first do. */
  readonly stableRounds: number;
  /** Measures time spent in `schedule` (ms); not used for anything else. */
  readonly clock?: () => number;
  readonly onRound?: (summary: RoundSummary) => void;
}

export const DEFAULT_SIMULATION_OPTIONS: SimulationOptions = Object.freeze<SimulationOptions>({
  seed: 1,
  nodes: 1_000,
  zones: 5,
  ranges: 100_000,
  rules: { votersPerRange: 3, learners: 'none' },
  scheduler: {
    downReplaceAfterMs: 5_000,
    maxOperatorsPerRound: 1_000,
    maxInFlightOperators: 5_000,
    maxInFlightPerNode: 16,
    maxLeaderTransfersPerNode: 16,
  },
  roundMs: 1_000,
  joinFraction: 0.1,
  joinRound: 10,
  permanentFailures: 10,
  transientFailures: 5,
  transientDownRounds: 3,
  firstFailureRound: 15,
  failureEveryRounds: 3,
  drains: 5,
  drainRound: 20,
  stepFailureRate: 0.05,
  stepAbortShare: 0.5,
  catchUpRoundsMin: 1,
  catchUpRoundsMax: 3,
  operatorTimeoutRounds: 20,
  leaderChurnRate: 0.0005,
  oversizedRangeFraction: 0.002,
  maxRounds: 400,
  replicaSpreadMax: 1.1,
  leaderSpreadMax: 1.25,
  stableRounds: 5,
});

export interface Spread {
  readonly upNodes: number;
  readonly replicasMin: number;
  readonly replicasMax: number;
  /** replicasMax / replicasMin */
  readonly replicaSpread: number;
  /** The largest max/min of replicas per up node inside one zone. */
  readonly replicaSpreadInZones: number;
  readonly leadersMin: number;
  readonly leadersMax: number;
  readonly leaderSpread: number;
  readonly ranges: number;
  /** Ranges not at their voter count, with a replica off an up node, or with learners the rules do not want. */
  readonly rangesOutOfPlace: number;
  /** Replicas still on down nodes. */
  readonly replicasOnDownNodes: number;
  /** Replicas and leaders still on draining nodes. */
  readonly leftOnDrainingNodes: number;
  /** Ranges at or past the split size. */
  readonly oversizedRanges: number;
}

export interface RoundSummary {
  readonly round: number;
  readonly issued: number;
  readonly inFlight: number;
  readonly spread: Spread;
  readonly scheduleMs: number;
}

export interface SimulationReport {
  readonly seed: number;
  readonly rounds: number;
  /** The round after which no scenario event (join, failure, recovery, drain) happens. */
  readonly lastEventRound: number;
  /** First round from which the cluster stayed converged; undefined if it never did. */
  readonly convergedRound: number | undefined;
  readonly operatorsIssued: number;
  readonly operatorsByPurpose: Readonly<Record<OperatorPurpose, number>>;
  readonly operatorsCompleted: number;
  readonly operatorsAborted: number;
  readonly operatorsTimedOut: number;
  readonly stepsExecuted: number;
  /** Steps that failed and were retried, and steps whose failure abandoned their operator. */
  readonly stepRetries: number;
  readonly stepAborts: number;
  readonly splits: number;
  /** Most operators issued in one round; most replica additions / leader transfers in flight on one node. */
  readonly maxIssuedInRound: number;
  readonly maxInFlightOnNode: number;
  readonly maxTransfersOnNode: number;
  /** Rounds from a permanently failed node becoming replaceable to holding no replica (max over nodes). */
  readonly maxRepairRounds: number;
  readonly initial: Spread;
  readonly final: Spread;
  /** Time spent in `schedule` (ms, by `clock`; 0 without one). */
  readonly scheduleMs: number;
  readonly violations: readonly Violation[];
}

interface SimReplica {
  nodeId: NodeId;
  role: ReplicaRole;
  caughtUp?: boolean;
}

interface SimRange {
  readonly id: number;
  epoch: { confVersion: number; version: number };
  replicas: SimReplica[];
  leaderNodeId?: NodeId;
  stats: { sizeBytes: number; keys: number; qps: number };
}

interface SimNode {
  readonly id: NodeId;
  readonly zone: string;
  state: NodeState;
  downSinceMs?: number;
}

interface SimOperator {
  readonly operator: Operator;
  nextStep: number;
  waitedRounds: number;
}

interface PendingLearner {
  readonly range: SimRange;
  readonly replica: SimReplica;
  roundsLeft: number;
}

type ScenarioEvent =
  | { readonly kind: 'join'; readonly round: number }
  | { readonly kind: 'fail'; readonly round: number; readonly permanent: boolean }
  | { readonly kind: 'drain'; readonly round: number };

const MAX_VIOLATIONS = 100;

function emptyPurposeCounts(): Record<OperatorPurpose, number> {
  return { repair: 0, drain: 0, learner: 0, 'balance-replicas': 0, 'balance-leaders': 0, split: 0 };
}

/** Run the scenario; see `SimulationOptions`. Deterministic for given options. */
export function simulate(overrides: Partial<SimulationOptions> = {}): SimulationReport {
  return new Simulation({ ...DEFAULT_SIMULATION_OPTIONS, ...overrides }).run();
}

class Simulation {
  private readonly rng: SeededRng;
  private readonly config: SchedulerConfig;
  private readonly nodes: SimNode[] = [];
  private readonly nodeById = new Map<NodeId, SimNode>();
  private readonly ranges: SimRange[] = [];
  private readonly rangeById = new Map<number, SimRange>();
  private inFlight: SimOperator[] = [];
  private pendingLearners: PendingLearner[] = [];
  private readonly zones: string[];
  private nextRangeId = 1;
  private nowMs = 0;
  private round = 0;
  private readonly violations: Violation[] = [];
  private readonly nodeStates: NodeStates;
  private readonly events: ScenarioEvent[] = [];
  private readonly recoveries = new Map<NodeId, number>();
  private readonly replaceableSince = new Map<NodeId, number>();
  private maxRepairRounds = 0;
  private readonly stats = {
    issued: 0,
    completed: 0,
    aborted: 0,
    timedOut: 0,
    steps: 0,
    retries: 0,
    stepAborts: 0,
    splits: 0,
    maxIssued: 0,
    maxOnNode: 0,
    maxTransfersOnNode: 0,
    scheduleMs: 0,
    byPurpose: emptyPurposeCounts(),
  };

  constructor(private readonly options: SimulationOptions) {
    if (!(options.nodes >= options.rules.votersPerRange && options.zones >= 1 && options.ranges >= 1)) {
      throw new TypeError('simulate: need at least votersPerRange nodes, one zone and one range');
    }
    if (options.transientDownRounds * options.roundMs >= resolveSchedulerConfig(options.scheduler).downReplaceAfterMs) {
      throw new TypeError('simulate: transient failures must end before the replace timeout');
    }
    this.rng = new SeededRng(options.seed);
    this.config = resolveSchedulerConfig(options.scheduler);
    this.zones = Array.from({ length: options.zones }, (_, i) => `z${i + 1}`);
    const self = this;
    this.nodeStates = {
      state: (nodeId) => self.nodeById.get(nodeId)?.state,
      replaceable: (nodeId) => {
        const node = self.nodeById.get(nodeId);
        return node !== undefined && healthOf(node, self.nowMs, self.config.downReplaceAfterMs) === 'dead';
      },
    };
  }

  run(): SimulationReport {
    const { options } = this;
    this.seedCluster();
    this.planEvents();
    const initial = this.measure();
    const lastEventRound = this.lastEventRound();
    let convergedRound: number | undefined;
    let final = initial;
    while (this.round < options.maxRounds) {
      this.round++;
      this.nowMs = this.round * options.roundMs;
      this.applyEvents();
      this.elect();
      this.catchUp();
      this.execute();
      const issued = this.scheduleRound();
      this.checkRound();
      this.trackRepairs();
      final = this.measure();
      const converged = this.round > lastEventRound && this.isConverged(final);
      if (!converged) convergedRound = undefined;
      else if (convergedRound === undefined) convergedRound = this.round;
      options.onRound?.({ round: this.round, issued, inFlight: this.inFlight.length, spread: final, scheduleMs: this.stats.scheduleMs });
      if (convergedRound !== undefined && this.round - convergedRound >= options.stableRounds) break;
    }
    const { stats } = this;
    return {
      seed: options.seed,
      rounds: this.round,
      lastEventRound,
      convergedRound: convergedRound !== undefined && this.round - convergedRound >= options.stableRounds ? convergedRound : undefined,
      operatorsIssued: stats.issued,
      operatorsByPurpose: stats.byPurpose,
      operatorsCompleted: stats.completed,
      operatorsAborted: stats.aborted,
      operatorsTimedOut: stats.timedOut,
      stepsExecuted: stats.steps,
      stepRetries: stats.retries,
      stepAborts: stats.stepAborts,
      splits: stats.splits,
      maxIssuedInRound: stats.maxIssued,
      maxInFlightOnNode: stats.maxOnNode,
      maxTransfersOnNode: stats.maxTransfersOnNode,
      maxRepairRounds: this.maxRepairRounds,
      initial,
      final,
      scheduleMs: stats.scheduleMs,
      violations: this.violations,
    };
  }

  // --- setup --------------------------------------------------------------------------------

  private addNode(): SimNode {
    const id = this.nodes.length + 1;
    const node: SimNode = { id, zone: this.zones[(id - 1) % this.zones.length] as string, state: 'up' };
    this.nodes.push(node);
    this.nodeById.set(id, node);
    return node;
  }

  private seedCluster(): void {
    const { options, rng } = this;
    for (let i = 0; i < options.nodes; i++) this.addNode();
    const byZone = this.zones.map((zone) => this.nodes.filter((node) => node.zone === zone));
    const voters = options.rules.votersPerRange;
    for (let i = 0; i < options.ranges; i++) {
      // Voters on random nodes of distinct random zones (wrapping when there are fewer zones).
      const zoneOrder = this.zones.map((_, z) => z);
      for (let z = zoneOrder.length - 1; z > 0; z--) {
        const j = rng.intn(z + 1);
        [zoneOrder[z], zoneOrder[j]] = [zoneOrder[j] as number, zoneOrder[z] as number];
      }
      const replicas: SimReplica[] = [];
      for (let v = 0; replicas.length < voters && v < voters * 20; v++) {
        const candidates = byZone[zoneOrder[v % zoneOrder.length] as number] as SimNode[];
        const node = rng.pick(candidates);
        if (!replicas.some((replica) => replica.nodeId === node.id)) replicas.push({ nodeId: node.id, role: 'voter' });
      }
      if (options.rules.learners === 'zones-without-voter') {
        // Start placed by the rules: a caught-up learner in every zone without a voter.
        const voterZones = new Set(replicas.map((replica) => this.nodeOf(replica.nodeId)?.zone));
        byZone.forEach((candidates, z) => {
          if (!voterZones.has(this.zones[z])) replicas.push({ nodeId: rng.pick(candidates).id, role: 'learner', caughtUp: true });
        });
      }
      const oversized = rng.chance(options.oversizedRangeFraction);
      const sizeBytes = oversized ? Math.floor(this.config.splitSizeBytes * (1.1 + rng.next() * 2)) : rng.intn(Math.floor(this.config.splitSizeBytes * 0.6));
      this.addRange({
        id: this.nextRangeId++,
        epoch: { confVersion: voters, version: 1 },
        replicas,
        leaderNodeId: rng.pick(replicas).nodeId,
        stats: { sizeBytes, keys: Math.floor(sizeBytes / 1024), qps: rng.intn(100) },
      });
    }
  }

  private addRange(range: SimRange): void {
    this.ranges.push(range);
    this.rangeById.set(range.id, range);
  }

  private planEvents(): void {
    const { options } = this;
    if (options.joinFraction > 0) this.events.push({ kind: 'join', round: options.joinRound });
    const failures: boolean[] = [];
    for (let i = 0; i < options.permanentFailures; i++) failures.push(true);
    for (let i = 0; i < options.transientFailures; i++) failures.push(false);
    for (let i = failures.length - 1; i > 0; i--) {
      const j = this.rng.intn(i + 1);
      [failures[i], failures[j]] = [failures[j] as boolean, failures[i] as boolean];
    }
    failures.forEach((permanent, i) => {
      this.events.push({ kind: 'fail', round: options.firstFailureRound + i * options.failureEveryRounds, permanent });
    });
    if (options.drains > 0) this.events.push({ kind: 'drain', round: options.drainRound });
  }

  /** The last round in which the scenario changes something (a transient failure ends with its recovery). */
  private lastEventRound(): number {
    let last = 0;
    for (const event of this.events) {
      const end = event.kind === 'fail' && !event.permanent ? event.round + 1 + this.options.transientDownRounds : event.round;
      last = Math.max(last, end);
    }
    return last;
  }

  // --- scenario -----------------------------------------------------------------------------

  /** Node ids are 1..nodes.length: an array lookup. */
  private nodeOf(nodeId: NodeId): SimNode | undefined {
    return this.nodes[nodeId - 1];
  }

  private isLive(nodeId: NodeId | undefined): boolean {
    const state = nodeId === undefined ? undefined : this.nodeOf(nodeId)?.state;
    return state === 'up' || state === 'draining';
  }

  /** Whether `node` going down would leave some range of it without a live majority. */
  private wouldBreakQuorum(node: SimNode): boolean {
    for (const range of this.ranges) {
      let voters = 0;
      let live = 0;
      let holds = false;
      for (const replica of range.replicas) {
        if (replica.role !== 'voter') continue;
        voters++;
        if (replica.nodeId === node.id) holds = true;
        else if (this.isLive(replica.nodeId)) live++;
      }
      if (holds && 2 * live <= voters) return true;
    }
    return false;
  }

  /**
   * A node to fail or drain. Failures never take a range's last majority: a range that loses its
   * quorum cannot be repaired by any scheduler (that needs an unsafe recovery), and the scheduler's
   * handling of such ranges — reported, never touched — is a unit test of its own.
   */
  private pickVictim(mustKeepQuorum: boolean): SimNode | undefined {
    const candidates = this.nodes.filter((node) => node.state === 'up');
    for (let attempt = 0; attempt < 50 && candidates.length > 0; attempt++) {
      const index = this.rng.intn(candidates.length);
      const node = candidates[index] as SimNode;
      candidates.splice(index, 1);
      if (!mustKeepQuorum || !this.wouldBreakQuorum(node)) return node;
    }
    return undefined;
  }

  private applyEvents(): void {
    const { options } = this;
    for (const node of this.nodes) {
      // A failed node is suspect for one round, then down.
      if (node.state === 'suspect') {
        node.state = 'down';
        node.downSinceMs = this.nowMs;
      }
    }
    for (const [nodeId, round] of this.recoveries) {
      const node = this.nodeById.get(nodeId);
      if (round !== this.round || node === undefined) continue;
      node.state = 'up';
      delete node.downSinceMs;
      this.recoveries.delete(nodeId);
    }
    for (const event of this.events) {
      if (event.round !== this.round) continue;
      switch (event.kind) {
        case 'join': {
          const count = Math.round(options.nodes * options.joinFraction);
          for (let n = 0; n < count; n++) this.addNode();
          break;
        }
        case 'fail': {
          const victim = this.pickVictim(true);
          if (victim === undefined) break;
          victim.state = 'suspect';
          if (!event.permanent) this.recoveries.set(victim.id, event.round + 1 + options.transientDownRounds);
          break;
        }
        case 'drain': {
          for (let n = 0; n < options.drains; n++) {
            const node = this.pickVictim(false);
            if (node !== undefined) node.state = 'draining';
          }
          break;
        }
      }
    }
  }

  /** Ranges whose leader is gone elect a live voter (up preferred); a few change leader on their own. */
  private elect(): void {
    const { rng, options } = this;
    for (const range of this.ranges) {
      const leader = range.replicas.find((replica) => replica.nodeId === range.leaderNodeId);
      const leaderOk = leader?.role === 'voter' && this.isLive(leader.nodeId);
      if (leaderOk && !rng.chance(options.leaderChurnRate)) continue;
      let voters = 0;
      const live: NodeId[] = [];
      const up: NodeId[] = [];
      for (const replica of range.replicas) {
        if (replica.role !== 'voter') continue;
        voters++;
        if (this.isLive(replica.nodeId)) live.push(replica.nodeId);
        if (this.nodeOf(replica.nodeId)?.state === 'up') up.push(replica.nodeId);
      }
      if (2 * live.length <= voters) {
        delete range.leaderNodeId;
        continue;
      }
      range.leaderNodeId = rng.pick(up.length > 0 ? up : live);
    }
  }

  private catchUp(): void {
    this.pendingLearners = this.pendingLearners.filter((pending) => {
      if (!pending.range.replicas.includes(pending.replica)) return false;
      if (this.nodeOf(pending.replica.nodeId)?.state !== 'up') return true;
      pending.roundsLeft--;
      if (pending.roundsLeft > 0) return true;
      pending.replica.caughtUp = true;
      return false;
    });
  }

  // --- execution ----------------------------------------------------------------------------

  private recordViolations(found: readonly Violation[]): void {
    for (const violation of found) {
      if (this.violations.length < MAX_VIOLATIONS) this.violations.push(violation);
    }
  }

  private execute(): void {
    const { rng, options } = this;
    const remaining: SimOperator[] = [];
    for (const op of this.inFlight) {
      const range = this.rangeById.get(op.operator.rangeId);
      let keep = true;
      for (;;) {
        const verdict = checkStep({ range, nodes: this.nodeById as ReadonlyMap<NodeId, NodeInfo>, rules: options.rules }, op);
        if (verdict.status === 'complete') {
          this.stats.completed++;
          keep = false;
        } else if (verdict.status === 'done') {
          op.nextStep++;
          continue;
        } else if (verdict.status === 'wait') {
          op.waitedRounds++;
          if (op.waitedRounds > options.operatorTimeoutRounds) {
            this.stats.timedOut++;
            keep = false;
          }
        } else if (verdict.status === 'abort') {
          this.stats.aborted++;
          keep = false;
        } else if (rng.chance(options.stepFailureRate)) {
          if (rng.chance(options.stepAbortShare)) {
            this.stats.stepAborts++;
            keep = false;
          } else {
            this.stats.retries++;
          }
        } else if (range !== undefined) {
          this.applyStep(range, verdict.step);
          op.nextStep++;
          op.waitedRounds = 0;
          if (op.nextStep === op.operator.steps.length) {
            this.stats.completed++;
            keep = false;
          }
        }
        break;
      }
      if (keep) remaining.push(op);
    }
    this.inFlight = remaining;
  }

  private snapshot(range: SimRange): RangeInfo {
    const copy: RangeInfo = {
      id: range.id,
      epoch: { ...range.epoch },
      replicas: range.replicas.map((replica) => ({ ...replica })),
      stats: range.stats,
    };
    return range.leaderNodeId === undefined ? copy : { ...copy, leaderNodeId: range.leaderNodeId };
  }

  private applyStep(range: SimRange, step: OperatorStep): void {
    const before = this.snapshot(range);
    switch (step.kind) {
      case 'add-learner': {
        const replica: SimReplica = { nodeId: step.nodeId, role: 'learner', caughtUp: false };
        range.replicas.push(replica);
        range.epoch.confVersion++;
        const span = this.options.catchUpRoundsMax - this.options.catchUpRoundsMin + 1;
        this.pendingLearners.push({ range, replica, roundsLeft: this.options.catchUpRoundsMin + this.rng.intn(span) });
        break;
      }
      case 'promote-learner': {
        const replica = range.replicas.find((candidate) => candidate.nodeId === step.nodeId);
        if (replica !== undefined) {
          replica.role = 'voter';
          delete replica.caughtUp;
        }
        range.epoch.confVersion++;
        break;
      }
      case 'remove-replica':
        range.replicas = range.replicas.filter((replica) => replica.nodeId !== step.nodeId);
        if (range.leaderNodeId === step.nodeId) delete range.leaderNodeId;
        range.epoch.confVersion++;
        break;
      case 'transfer-leader':
        range.leaderNodeId = step.toNodeId;
        break;
      case 'split-range':
        this.split(range);
        break;
    }
    this.stats.steps++;
    this.recordViolations(checkTransition(before, step, this.snapshot(range), this.nodeStates, this.options.rules));
  }

  private split(range: SimRange): void {
    range.epoch.version++;
    const half = { sizeBytes: Math.floor(range.stats.sizeBytes / 2), keys: Math.floor(range.stats.keys / 2), qps: range.stats.qps / 2 };
    range.stats = half;
    const right: SimRange = {
      id: this.nextRangeId++,
      epoch: { ...range.epoch },
      replicas: range.replicas.map((replica) => ({ ...replica })),
      stats: { ...half },
    };
    if (range.leaderNodeId !== undefined) right.leaderNodeId = range.leaderNodeId;
    for (const replica of right.replicas) {
      if (replica.role === 'learner' && replica.caughtUp !== true) this.pendingLearners.push({ range: right, replica, roundsLeft: 1 });
    }
    this.addRange(right);
    this.stats.splits++;
  }

  // --- scheduling and checks ----------------------------------------------------------------

  private scheduleRound(): number {
    const { options } = this;
    const { clock } = options;
    const inFlightRanges = new Set(this.inFlight.map((op) => op.operator.rangeId));
    const started = clock?.() ?? 0;
    const result = schedule(
      { nowMs: this.nowMs, nodes: this.nodes, ranges: this.ranges, rules: options.rules, inFlight: this.inFlight as readonly InFlightOperator[] },
      options.scheduler,
    );
    if (clock !== undefined) this.stats.scheduleMs += clock() - started;
    if (result.operators.length > this.config.maxOperatorsPerRound) {
      this.recordViolations([{ rule: 'round-limit', rangeId: 0, detail: `${result.operators.length} operators issued in round ${this.round}` }]);
    }
    for (const operator of result.operators) {
      const range = this.rangeById.get(operator.rangeId);
      if (range === undefined) continue;
      if (inFlightRanges.has(operator.rangeId)) {
        this.recordViolations([{ rule: 'range-in-flight-twice', rangeId: operator.rangeId, detail: `operator ${operator.id}` }]);
      }
      inFlightRanges.add(operator.rangeId);
      this.recordViolations(checkOperatorPlan(this.snapshot(range), operator, this.nodeStates, options.rules));
      this.inFlight.push({ operator, nextStep: 0, waitedRounds: 0 });
      this.stats.byPurpose[operator.purpose]++;
    }
    this.stats.issued += result.operators.length;
    this.stats.maxIssued = Math.max(this.stats.maxIssued, result.operators.length);
    return result.operators.length;
  }

  /** Per-node in-flight limits (nodes that are down do no work and are not counted). */
  private checkRound(): void {
    const replicaOps = new Map<NodeId, number>();
    const transferOps = new Map<NodeId, number>();
    for (const { operator } of this.inFlight) {
      const charges = operatorCharges(operator);
      for (const nodeId of charges.replicaNodes) replicaOps.set(nodeId, (replicaOps.get(nodeId) ?? 0) + 1);
      for (const nodeId of charges.transferNodes) transferOps.set(nodeId, (transferOps.get(nodeId) ?? 0) + 1);
    }
    const check = (counts: Map<NodeId, number>, limit: number, what: string): number => {
      let max = 0;
      for (const [nodeId, count] of counts) {
        if (this.nodeOf(nodeId)?.state === 'down') continue;
        max = Math.max(max, count);
        if (count > limit) this.recordViolations([{ rule: 'node-limit', rangeId: 0, detail: `node ${nodeId} is in ${count} ${what} in round ${this.round}` }]);
      }
      return max;
    };
    this.stats.maxOnNode = Math.max(this.stats.maxOnNode, check(replicaOps, this.config.maxInFlightPerNode, 'replica additions'));
    this.stats.maxTransfersOnNode = Math.max(this.stats.maxTransfersOnNode, check(transferOps, this.config.maxLeaderTransfersPerNode, 'leader transfers'));
  }

  /** How long each replaceable dead node takes to be emptied. */
  private trackRepairs(): void {
    for (const node of this.nodes) {
      if (node.state !== 'down' || !this.nodeStates.replaceable(node.id)) continue;
      if (!this.replaceableSince.has(node.id)) this.replaceableSince.set(node.id, this.round);
    }
    if (this.replaceableSince.size === 0) return;
    const remaining = new Set<NodeId>();
    for (const range of this.ranges) for (const replica of range.replicas) if (this.replaceableSince.has(replica.nodeId)) remaining.add(replica.nodeId);
    for (const [nodeId, since] of this.replaceableSince) {
      if (!remaining.has(nodeId)) {
        this.maxRepairRounds = Math.max(this.maxRepairRounds, this.round - since);
        this.replaceableSince.delete(nodeId);
      }
    }
  }

  private measure(): Spread {
    const { rules } = this.options;
    const zoneCount = this.zones.length;
    // Node ids are 1..nodes.length.
    const replicas = new Int32Array(this.nodes.length + 1);
    const leaders = new Int32Array(this.nodes.length + 1);
    const zoneOf = new Int32Array(this.nodes.length + 1);
    const zoneHasUp = new Uint8Array(zoneCount);
    for (const node of this.nodes) {
      zoneOf[node.id] = this.zones.indexOf(node.zone);
      if (node.state === 'up') zoneHasUp[zoneOf[node.id] as number] = 1;
    }
    const voterZones = new Int32Array(zoneCount);
    const learnerZones = new Int32Array(zoneCount);
    let outOfPlace = 0;
    let onDown = 0;
    let onDraining = 0;
    let oversized = 0;
    for (const range of this.ranges) {
      let voters = 0;
      let misplaced = false;
      voterZones.fill(0);
      learnerZones.fill(0);
      for (const replica of range.replicas) {
        const state = this.nodeOf(replica.nodeId)?.state;
        if (state === 'up') replicas[replica.nodeId] = (replicas[replica.nodeId] as number) + 1;
        else misplaced = true;
        if (state === 'down') onDown++;
        if (state === 'draining') onDraining++;
        const zone = zoneOf[replica.nodeId] as number;
        if (replica.role === 'voter') {
          voters++;
          voterZones[zone] = (voterZones[zone] as number) + 1;
        } else {
          learnerZones[zone] = (learnerZones[zone] as number) + 1;
        }
      }
      for (let zone = 0; zone < zoneCount; zone++) {
        const wanted = rules.learners !== 'none' && zoneHasUp[zone] === 1 && voterZones[zone] === 0 ? 1 : 0;
        if (learnerZones[zone] !== wanted) misplaced = true;
      }
      if (range.leaderNodeId !== undefined) {
        const state = this.nodeOf(range.leaderNodeId)?.state;
        if (state === 'up') leaders[range.leaderNodeId] = (leaders[range.leaderNodeId] as number) + 1;
        if (state === 'draining') onDraining++;
      }
      if (voters !== rules.votersPerRange || misplaced) outOfPlace++;
      if (range.stats.sizeBytes >= this.config.splitSizeBytes) oversized++;
    }
    const zoneMin = new Array<number>(zoneCount).fill(Number.POSITIVE_INFINITY);
    const zoneMax = new Array<number>(zoneCount).fill(0);
    let upNodes = 0;
    let replicasMin = Number.POSITIVE_INFINITY;
    let replicasMax = 0;
    let leadersMin = Number.POSITIVE_INFINITY;
    let leadersMax = 0;
    for (const node of this.nodes) {
      if (node.state !== 'up') continue;
      upNodes++;
      const r = replicas[node.id] as number;
      const l = leaders[node.id] as number;
      replicasMin = Math.min(replicasMin, r);
      replicasMax = Math.max(replicasMax, r);
      const zone = zoneOf[node.id] as number;
      zoneMin[zone] = Math.min(zoneMin[zone] as number, r);
      zoneMax[zone] = Math.max(zoneMax[zone] as number, r);
      leadersMin = Math.min(leadersMin, l);
      leadersMax = Math.max(leadersMax, l);
    }
    if (upNodes === 0) replicasMin = leadersMin = 0;
    const ratio = (high: number, low: number): number => (low === 0 ? (high === 0 ? 1 : Number.POSITIVE_INFINITY) : high / low);
    return {
      upNodes,
      replicasMin,
      replicasMax,
      replicaSpread: ratio(replicasMax, replicasMin),
      replicaSpreadInZones: Math.max(1, ...zoneMax.map((high, zone) => (zoneHasUp[zone] === 1 ? ratio(high, zoneMin[zone] as number) : 1))),
      leadersMin,
      leadersMax,
      leaderSpread: ratio(leadersMax, leadersMin),
      ranges: this.ranges.length,
      rangesOutOfPlace: outOfPlace,
      replicasOnDownNodes: onDown,
      leftOnDrainingNodes: onDraining,
      oversizedRanges: oversized,
    };
  }

  /**
   * Whether the rules fix each zone's share of replicas (one replica of every range per zone, or
   * one voter per zone when there are no more zones than voters): then the spread that can be
   * reached is the one inside each zone, since failures and drains leave zones of different sizes.
   */
  private zoneShareFixed(): boolean {
    return this.options.rules.learners !== 'none' || this.options.zones <= this.options.rules.votersPerRange;
  }

  private isConverged(spread: Spread): boolean {
    const replicaSpread = this.zoneShareFixed() ? spread.replicaSpreadInZones : spread.replicaSpread;
    return (
      spread.rangesOutOfPlace === 0 &&
      spread.replicasOnDownNodes === 0 &&
      spread.leftOnDrainingNodes === 0 &&
      spread.oversizedRanges === 0 &&
      replicaSpread <= this.options.replicaSpreadMax &&
      spread.leaderSpread <= this.options.leaderSpreadMax
    );
  }
}
