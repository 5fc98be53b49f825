// The nemeses: each breaks something with start() and repairs it with stop(), returning the
// details for DIR/nemesis.jsonl. The schedule alternates quiet periods and fault windows until the
// run's time is up; `mixed` picks a random nemesis (or two) for each window (the log names them).
//
// | name                       | start                                                   | stop                  |
// |----------------------------|---------------------------------------------------------|-----------------------|
// | partition-random-halves    | cut a random minority from the rest (iptables, both ways) | heal                |
// | partition-isolate-leader   | cut the current leader of range 1 from everyone          | heal                  |
// | partition-majorities-ring  | nodes on a shuffled ring see only their ring neighbours: each sees a majority, no two the same | heal |
// | partition-one-way          | the others drop what a random minority (or the leader) sends them; the reverse direction is untouched | heal |
// | kill                       | SIGKILL a random set of nodes (up to a majority; the leader often) | restart them  |
// | pause                      | SIGSTOP a random minority (the leader often)            | SIGCONT               |
// | membership                 | remove a voter (the leader often), wipe it, start it fresh with a new id (--join), add it as a learner | promote the learner |
// | latency                    | transport failpoint on every node or a random minority: delay + jitter + drop of the Raft messages they send (no netem in this kernel) | clear |
// | split                      | split ranges continuously: every 150-400 ms a random key of the workload's key space, its range looked up in placement, split there (a refusal, e.g. the key is already a boundary, is counted and logged) | stop splitting; counts and the new range ids |
// | move                       | drain a random node through placement (Placement.DrainNode): the scheduler moves its leaders, then its replicas, away, one checked step at a time; its replicas and leaders are sampled through the window, in placement's map and by the node's own account (Admin.ClusterStatus) | cancel the drain (the scheduler rebalances replicas back onto it); what was on it at start, at stop and at least, both ways |
// | mixed                      | one of the above at random except split and move, or (30 %) two of different families at once | their stops |
//
// `move` needs the placement scheduler, which the other nemeses must not have: a run with `move`
// starts every kvd with `--replicas 3 --placement-heartbeat-ms 200 --schedule-interval-ms 200`
// instead of `--no-schedule` (cluster.ts), so a range has 3 voters, not every node, and healthy
// means every range in placement's map has 3 voters and a leader (healAll cancels a drain left
// on and waits for that instead of repairing range 1's membership). So `mixed` never picks `move`,
// `membership` refuses to start on a scheduled cluster and `move` on an unscheduled one, and
// run.ts refuses any nemesis list that names both. `move` implies --pre-split 8 (run.ts) so that
// many ranges move.
//
// `mixed` never picks `split`: `membership` changes range 1 only and wipes the node it removes (a
// new id), so after splits every other range would lose that replica for good; excluding `split`
// keeps the two out of one run. For the same reason run.ts refuses --pre-split with `membership`
// and `mixed`. Splits are never undone (ranges do not merge): the healing does nothing for them.

import { AdminClient } from '../../src/client/admin-client';
import type { RangeInfoMsg } from '../../src/client/placement-client';
import type { JepsenCluster } from './cluster';
import type { NemesisLog } from './history';
import { Splitter } from './splits';
import { delay, Rng, waitFor } from './wait';

export const NEMESES = [
  'none',
  'partition-random-halves',
  'partition-isolate-leader',
  'partition-majorities-ring',
  'partition-one-way',
  'kill',
  'pause',
  'membership',
  'latency',
  'split',
  'move',
  'mixed',
] as const;
export type NemesisName = (typeof NEMESES)[number];
type FaultName = Exclude<NemesisName, 'none' | 'mixed'>;
const FAULTS: readonly FaultName[] = NEMESES.filter((n): n is FaultName => n !== 'none' && n !== 'mixed');
/** What `mixed` picks from: every fault but `split` and `move` (see the top of this file). */
export const MIXED_FAULTS: readonly FaultName[] = FAULTS.filter((f) => f !== 'split' && f !== 'move');

/** Whether a run of `name` uses the placement scheduler (kvd without --no-schedule). */
export function needsScheduler(name: NemesisName): boolean {
  return name === 'move';
}

/** Voters per range the scheduler keeps in `move` runs (kvd --replicas), and its timing. */
export const MOVE_SCHEDULER = { replicas: 3, heartbeatMs: 200, intervalMs: 200 } as const;
/** Ranges a `move` run pre-splits the key space into unless --pre-split says otherwise. */
export const MOVE_PRE_SPLIT = 8;
/** How often `move` samples the drained node's share of placement's map during its window, ms. */
const MOVE_SAMPLE_MS = 500;

type Detail = Record<string, unknown>;

function familyOf(f: FaultName): 'partition' | 'process' | 'latency' | 'membership' | 'split' | 'move' {
  if (f.startsWith('partition-')) return 'partition';
  if (f === 'kill' || f === 'pause') return 'process';
  if (f === 'split') return 'split';
  if (f === 'move') return 'move';
  return f === 'latency' ? 'latency' : 'membership';
}

/** The workload's keys, for the `split` nemesis: a key used so far or about to be. */
export interface KeySpace {
  randomKey(rng: Rng): string;
  /** Which keys randomKey picks from, for the log. */
  describeKeys(): string;
}

/** Pause between two splits of the `split` nemesis, milliseconds [min, max]. */
const SPLIT_EVERY_MS: readonly [number, number] = [150, 400];
/** Refusal and failure messages kept in a `split` stop event (the counts cover them all). */
const SPLIT_DETAIL_MESSAGES = 10;

/** The `split` nemesis' loop while its window is on, and what it did. */
interface SplitLoop {
  stopping: boolean;
  done: Promise<void>;
  readonly stats: {
    attempts: number;
    splits: number;
    refused: number;
    refusedBoundary: number;
    refusedEpoch: number;
    refusedOutside: number;
    /** Placement had no range for the key (its map between a split's two reports): not attempted. */
    unrouted: number;
    failed: number;
    indeterminate: number;
    created: number[];
    refusals: string[];
    failures: string[];
  };
}

/** The drained node's share of placement's map: replicas (any role) and ranges placement says it leads. */
interface Placed {
  replicas: number;
  leaders: number;
}

/** A drain of the `move` nemesis while its window is on. */
interface Drain {
  readonly slot: number;
  readonly nodeId: number;
  readonly startedAt: number;
  /** Placement's map just before the drain flag was set. */
  readonly before: Placed & { ranges: number };
  /** What DrainNode answered when the drain started. */
  readonly answered: Placed & { done: boolean };
  /** Lowest replica and leader counts sampled during the window, and when the node first held none. */
  least: Placed;
  /** The node's own account (Admin.ClusterStatus: data ranges it holds and leads), no placement lag. */
  readonly ownBefore: Placed | undefined;
  ownLeast: Placed | undefined;
  emptyAfterMs: number | undefined;
  samples: number;
  sampleErrors: number;
  stopping: boolean;
  sampler: Promise<void>;
}

interface Fault {
  start(): Promise<Detail>;
  stop(): Promise<Detail>;
}

export interface ScheduleOptions {
  /** Quiet time before each fault, milliseconds [min, max]. */
  readonly quietMs: readonly [number, number];
  /** Length of each fault window, milliseconds [min, max]. */
  readonly faultMs: readonly [number, number];
}

export class Nemesis {
  private readonly faults: Record<FaultName, Fault>;
  /** Slots whose node the kill fault took down (restarted by its stop, or by healAll). */
  private readonly killed = new Set<number>();
  /** A slot whose node membership removed and re-added as a learner, not promoted yet. */
  private pendingLearner: { slot: number; id: number } | undefined;
  /** A slot whose node was removed but not re-added yet. */
  private removedSlot: number | undefined;
  private readonly admin: AdminClient;
  private readonly splitter: Splitter;
  private splitLoop: SplitLoop | undefined;
  private drain: Drain | undefined;

  constructor(
    private readonly cluster: JepsenCluster,
    private readonly rng: Rng,
    private readonly log: NemesisLog,
    /** Where the `split` nemesis splits (the workload's keys); required by it only. */
    private readonly keySpace?: KeySpace,
  ) {
    this.admin = new AdminClient(cluster.endpoints(), 10_000);
    this.splitter = new Splitter(cluster.endpoints(), 5_000);
    const lab = cluster.lab;
    const slots = (): number[] => lab.allSlots();
    const majority = Math.floor(lab.slots / 2) + 1;
    const minorityOf = (xs: readonly number[]): number[] => this.rng.shuffle(xs).slice(0, this.rng.int(1, Math.max(1, xs.length - majority)));
    const heal = async (): Promise<Detail> => {
      await lab.heal();
      return { healed: true };
    };
    this.faults = {
      'partition-random-halves': {
        start: async () => {
          const order = this.rng.shuffle(slots());
          const a = order.slice(0, Math.floor(order.length / 2));
          const b = order.slice(Math.floor(order.length / 2));
          await lab.cut(a, b);
          return { sides: [this.nodesOf(a), this.nodesOf(b)], drops: lab.rules() };
        },
        stop: heal,
      },
      'partition-isolate-leader': {
        start: async () => {
          const leader = await this.cluster.leaderSlot();
          const isolated = leader ?? this.rng.pick(slots());
          await lab.cut([isolated], slots().filter((s) => s !== isolated));
          return { isolated: this.nodesOf([isolated]), wasLeader: leader !== undefined, drops: lab.rules() };
        },
        stop: heal,
      },
      'partition-majorities-ring': {
        start: async () => {
          const ring = this.rng.shuffle(slots());
          const n = ring.length;
          const reach = Math.ceil((majority - 1) / 2);
          const sees: Record<string, number[]> = {};
          for (let i = 0; i < n; i++) {
            const me = ring[i] as number;
            const visible = new Set<number>();
            for (let d = -reach; d <= reach; d++) visible.add(ring[(i + d + n) % n] as number);
            await lab.dropFrom(me, ring.filter((s) => !visible.has(s)));
            sees[String(this.cluster.slot(me).id)] = this.nodesOf([...visible]);
          }
          return { sees, drops: lab.rules() };
        },
        stop: heal,
      },
      'partition-one-way': {
        start: async () => {
          const leader = await this.cluster.leaderSlot();
          const senders = leader !== undefined && this.rng.chance(0.5) ? [leader] : minorityOf(slots());
          const receivers = slots().filter((s) => !senders.includes(s));
          for (const r of receivers) await lab.dropFrom(r, senders);
          return { lost: `${this.nodesOf(senders).join(',')} -> ${this.nodesOf(receivers).join(',')}`, drops: lab.rules() };
        },
        stop: heal,
      },
      kill: {
        start: async () => {
          const leader = await this.cluster.leaderSlot();
          const count = this.rng.int(1, majority);
          let victims = this.rng.shuffle(slots()).slice(0, count);
          if (leader !== undefined && this.rng.chance(0.5) && !victims.includes(leader)) victims = [leader, ...victims.slice(1)];
          for (const s of victims) {
            await this.cluster.kill(s);
            this.killed.add(s);
          }
          return { killed: this.nodesOf(victims), signal: 'SIGKILL' };
        },
        stop: async () => {
          const restarted = [...this.killed];
          await this.restartKilled();
          return { restarted: this.nodesOf(restarted) };
        },
      },
      pause: {
        start: async () => {
          const leader = await this.cluster.leaderSlot();
          const victims = leader !== undefined && this.rng.chance(0.5) ? [leader] : minorityOf(slots());
          for (const s of victims) this.cluster.pause(s);
          return { paused: this.nodesOf(victims), signal: 'SIGSTOP' };
        },
        stop: async () => {
          const paused = slots().filter((s) => this.cluster.slot(s).paused);
          for (const s of paused) this.cluster.resume(s);
          return { resumed: this.nodesOf(paused), signal: 'SIGCONT' };
        },
      },
      membership: {
        start: () => {
          if (this.cluster.schedule) throw new Error('membership does not run with the placement scheduler (a move run): it assumes every node a voter of range 1');
          return this.membershipStart();
        },
        stop: () => this.membershipStop(),
      },
      latency: {
        start: async () => {
          const delayMs = this.rng.int(20, 150);
          const jitterMs = this.rng.int(0, 100);
          const dropProbability = this.rng.pick([0, 0.02, 0.05, 0.1, 0.2]);
          // Half the time every node is slow, otherwise a random minority (slow senders).
          const targets = this.rng.chance(0.5) ? slots() : minorityOf(slots());
          const set: number[] = [];
          for (const s of targets) {
            if (!this.cluster.isRunning(s)) continue;
            try {
              await this.admin.setTransportFailpoint(this.cluster.address(s), { delayMs, jitterMs, dropProbability });
              set.push(s);
            } catch {
              // a node that does not answer keeps running without the failpoint
            }
          }
          return { mechanism: 'transport-failpoint (kernel has no netem)', nodes: this.nodesOf(set), delayMs, jitterMs, dropProbability };
        },
        stop: async () => ({ cleared: this.nodesOf(await this.clearFailpoints()) }),
      },
      split: {
        start: () => this.splitStart(),
        stop: () => this.splitStop(),
      },
      move: {
        start: () => this.moveStart(),
        stop: () => this.moveStop(),
      },
    };
  }

  private nodesOf(slots: readonly number[]): number[] {
    return slots.map((s) => this.cluster.slot(s).id).sort((a, b) => a - b);
  }

  private async restartKilled(): Promise<void> {
    for (const s of [...this.killed]) {
      if (!this.cluster.isRunning(s)) await this.cluster.spawn(s);
      this.killed.delete(s);
    }
  }

  private async clearFailpoints(): Promise<number[]> {
    const cleared: number[] = [];
    for (const s of this.cluster.lab.allSlots()) {
      if (!this.cluster.isRunning(s)) continue;
      try {
        await this.admin.setTransportFailpoint(this.cluster.address(s), undefined);
        cleared.push(s);
      } catch {
        // not answering; it has no failpoint after a restart anyway
      }
    }
    return cleared;
  }

  // ---------------------------------------------------------------------------------------------
  // membership

  private async membershipStart(): Promise<Detail> {
    // One change at a time: finish an earlier one that failed half-way first.
    if (this.removedSlot !== undefined || this.pendingLearner !== undefined) await this.membershipStop();
    const leader = await this.cluster.leaderSlot();
    const slot = leader !== undefined && this.rng.chance(0.4) ? leader : this.rng.pick(this.cluster.lab.allSlots());
    const oldId = this.cluster.slot(slot).id;
    await this.admin.removeReplica(1, oldId);
    this.removedSlot = slot;
    const newId = await this.cluster.wipeAndRejoin(slot);
    await this.addLearner(slot, newId);
    return { removed: oldId, wasLeader: slot === leader, wiped: true, joined: newId, learner: newId };
  }

  private async addLearner(slot: number, id: number): Promise<void> {
    await this.admin.addLearner(1, id, this.cluster.address(slot));
    this.removedSlot = undefined;
    this.pendingLearner = { slot, id };
  }

  private async membershipStop(): Promise<Detail> {
    const detail: Detail = {};
    if (this.removedSlot !== undefined) {
      const slot = this.removedSlot;
      await this.addLearner(slot, this.cluster.slot(slot).id);
      detail.learner = this.cluster.slot(slot).id;
    }
    const pending = this.pendingLearner;
    if (pending) {
      await this.admin.promoteLearner(1, pending.id);
      this.pendingLearner = undefined;
      detail.promoted = pending.id;
    }
    return detail;
  }

  // ---------------------------------------------------------------------------------------------
  // split

  /** Starts splitting in the background (own seeded randomness: the schedule's draws stay as they were). */
  private async splitStart(): Promise<Detail> {
    const keySpace = this.keySpace;
    if (!keySpace) throw new Error('the split nemesis needs the workload\'s key space');
    if (this.splitLoop) await this.splitStop();
    const rng = new Rng(this.rng.int(0, 2 ** 31 - 1));
    const loop: SplitLoop = {
      stopping: false,
      done: Promise.resolve(),
      stats: { attempts: 0, splits: 0, refused: 0, refusedBoundary: 0, refusedEpoch: 0, refusedOutside: 0, unrouted: 0, failed: 0, indeterminate: 0, created: [], refusals: [], failures: [] },
    };
    const st = loop.stats;
    const keep = (list: string[], msg: string): void => {
      if (list.length < SPLIT_DETAIL_MESSAGES) list.push(msg);
    };
    loop.done = (async () => {
      while (!loop.stopping) {
        // Pacing, not a wait for a condition.
        await delay(rng.int(SPLIT_EVERY_MS[0], SPLIT_EVERY_MS[1]));
        if (loop.stopping) break;
        const key = keySpace.randomKey(rng);
        st.attempts++;
        const out = await this.splitter.trySplit(key);
        if (out.kind === 'split') {
          st.splits++;
          if (out.right !== null) st.created.push(out.right);
        } else if (out.kind === 'refused') {
          st.refused++;
          if (out.reason === 'boundary') st.refusedBoundary++;
          else if (out.reason === 'epoch') st.refusedEpoch++;
          else st.refusedOutside++;
          keep(st.refusals, `${key} (range ${out.rangeId}, ${out.reason}): ${out.why}`);
        } else if (out.kind === 'unrouted') {
          st.unrouted++;
        } else {
          st.failed++;
          if (out.indeterminate) st.indeterminate++;
          keep(st.failures, `${key}: ${out.why}`);
        }
      }
    })();
    this.splitLoop = loop;
    return { everyMs: SPLIT_EVERY_MS, keys: keySpace.describeKeys() };
  }

  /** Ends the splitting (the attempt in flight finishes within its clients' deadlines) and reports it. */
  private async splitStop(): Promise<Detail> {
    const loop = this.splitLoop;
    if (!loop) return { running: false };
    loop.stopping = true;
    const finished = await Promise.race([loop.done.then(() => true), delay(30_000).then(() => false)]);
    this.splitLoop = undefined;
    return { ...loop.stats, ...(finished ? {} : { unfinished: 'the attempt in flight did not end within 30 s' }) };
  }

  // ---------------------------------------------------------------------------------------------
  // move

  /** The share of `nodeId` in placement's map (replicas of any role; leaders as placement records them). */
  private static placedOn(ranges: readonly RangeInfoMsg[], nodeId: number): Placed {
    let replicas = 0;
    let leaders = 0;
    for (const r of ranges) {
      if (r.descriptor.replicas.some((x) => Number(x.nodeId) === nodeId)) replicas++;
      if (r.leader && Number(r.leader.nodeId) === nodeId) leaders++;
    }
    return { replicas, leaders };
  }

  /**
   * Drains a random node through placement; the scheduler (on the meta leader) moves its leaders
   * and replicas away. A background sampler reads placement's map every MOVE_SAMPLE_MS to record
   * how far the drain got (its own seeded draws are not used: the schedule's stay as they were).
   */
  /** What the node of `slot` holds by its own account: data ranges (not the meta range 0) and ranges it leads. */
  private async ownShare(slot: number): Promise<Placed | undefined> {
    try {
      const v = await this.cluster.statusOf(slot);
      if (!v) return undefined;
      const data = v.status.ranges.filter((r) => Number(r.descriptor.rangeId) !== 0 && r.descriptor.replicas.some((x) => Number(x.nodeId) === v.nodeId));
      return { replicas: data.length, leaders: data.filter((r) => r.leaderNodeId === v.nodeId).length };
    } catch {
      return undefined;
    }
  }

  private static lower(a: Placed | undefined, b: Placed | undefined): Placed | undefined {
    if (!a || !b) return a ?? b;
    return { replicas: Math.min(a.replicas, b.replicas), leaders: Math.min(a.leaders, b.leaders) };
  }

  private async moveStart(): Promise<Detail> {
    if (!this.cluster.schedule) throw new Error('the move nemesis needs the placement scheduler (a cluster started for a move run)');
    if (this.drain) await this.moveStop();
    const slot = this.rng.pick(this.cluster.lab.allSlots());
    const nodeId = this.cluster.slot(slot).id;
    const placement = this.cluster.placement();
    const map = await placement.listRanges();
    const before = { ...Nemesis.placedOn(map, nodeId), ranges: map.length };
    const ownBefore = await this.ownShare(slot);
    let answered: { replicas: number; leaders: number; done: boolean };
    let startError: string | undefined;
    try {
      answered = await placement.drainNode(nodeId, false);
    } catch (err) {
      // The drain may have been set all the same: keep it as started, so that stop cancels it.
      startError = (err as Error).message;
      answered = { ...before, done: false };
    }
    const drain: Drain = {
      slot,
      nodeId,
      startedAt: Date.now(),
      before,
      answered: { replicas: answered.replicas, leaders: answered.leaders, done: answered.done },
      least: { replicas: answered.replicas, leaders: answered.leaders },
      ownBefore,
      ownLeast: ownBefore,
      emptyAfterMs: answered.done ? 0 : undefined,
      samples: 0,
      sampleErrors: 0,
      stopping: false,
      sampler: Promise.resolve(),
    };
    this.drain = drain;
    drain.sampler = (async () => {
      while (!drain.stopping) {
        // Pacing of the samples, not a wait for a condition.
        await delay(MOVE_SAMPLE_MS);
        if (drain.stopping) break;
        try {
          const now = Nemesis.placedOn(await placement.listRanges(), nodeId);
          drain.samples++;
          drain.least = { replicas: Math.min(drain.least.replicas, now.replicas), leaders: Math.min(drain.least.leaders, now.leaders) };
          if (now.replicas === 0 && now.leaders === 0) drain.emptyAfterMs ??= Date.now() - drain.startedAt;
          drain.ownLeast = Nemesis.lower(drain.ownLeast, await this.ownShare(slot));
        } catch {
          drain.sampleErrors++;
        }
      }
    })();
    return { drained: nodeId, slot, ranges: before.ranges, replicasBefore: before.replicas, leadersBefore: before.leaders, own: ownBefore ?? null, answered: drain.answered, ...(startError ? { error: startError } : {}) };
  }

  /** Cancels the drain (the scheduler then rebalances replicas back) and reports how far it got. */
  private async moveStop(): Promise<Detail> {
    const drain = this.drain;
    if (!drain) return { draining: false };
    drain.stopping = true;
    await Promise.race([drain.sampler, delay(10_000)]);
    const placement = this.cluster.placement();
    // What was left on it when the window closed (placement's map), then the cancel.
    let left: Placed | { error: string };
    try {
      left = Nemesis.placedOn(await placement.listRanges(), drain.nodeId);
      drain.least = { replicas: Math.min(drain.least.replicas, left.replicas), leaders: Math.min(drain.least.leaders, left.leaders) };
      if (left.replicas === 0 && left.leaders === 0) drain.emptyAfterMs ??= Date.now() - drain.startedAt;
    } catch (err) {
      left = { error: (err as Error).message };
    }
    const ownLeft = await this.ownShare(drain.slot);
    drain.ownLeast = Nemesis.lower(drain.ownLeast, ownLeft);
    const cancelled = await placement.drainNode(drain.nodeId, true);
    this.drain = undefined;
    const replicasLeft = 'replicas' in left ? left.replicas : cancelled.replicas;
    const leadersLeft = 'leaders' in left ? left.leaders : cancelled.leaders;
    return {
      drained: drain.nodeId,
      ms: Date.now() - drain.startedAt,
      replicasBefore: drain.before.replicas,
      leadersBefore: drain.before.leaders,
      replicasLeft,
      leadersLeft,
      replicasMoved: Math.max(0, drain.before.replicas - replicasLeft),
      leadersMoved: Math.max(0, drain.before.leaders - leadersLeft),
      least: drain.least,
      // The node's own account (placement's map can lag the descriptors by seconds).
      own: { before: drain.ownBefore ?? null, left: ownLeft ?? null, least: drain.ownLeast ?? null },
      emptyAfterMs: drain.emptyAfterMs ?? null,
      samples: drain.samples,
      sampleErrors: drain.sampleErrors,
      ...('error' in left ? { mapError: left.error } : {}),
      cancelled: { replicas: cancelled.replicas, leaders: cancelled.leaders, done: cancelled.done },
    };
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Alternates quiet periods and fault windows until `untilMs` (Date.now() time). A fault that
   * fails to start or stop is logged with its error; the run goes on.
   */
  async run(name: NemesisName, untilMs: number, sched: ScheduleOptions, isStopped: () => boolean): Promise<void> {
    if (name === 'none') return;
    while (!isStopped()) {
      const quiet = this.rng.int(sched.quietMs[0], sched.quietMs[1]);
      const window = this.rng.int(sched.faultMs[0], sched.faultMs[1]);
      if (Date.now() + quiet + Math.min(window, sched.faultMs[0]) > untilMs) break;
      await delay(quiet);
      await this.window(name === 'mixed' ? this.mixedFaults() : [name], Math.min(window, untilMs - Date.now()));
    }
  }

  /**
   * One fault (70 %), or two of different families at once: a partition, a process fault, latency,
   * membership. Never `split` or `move` (see the top of this file).
   */
  private mixedFaults(): FaultName[] {
    const first = this.rng.pick(MIXED_FAULTS);
    if (!this.rng.chance(0.3)) return [first];
    const second = this.rng.pick(MIXED_FAULTS.filter((f) => familyOf(f) !== familyOf(first)));
    return [first, second];
  }

  /** Starts the faults in order, holds them `lengthMs`, stops them in reverse order. */
  private async window(faults: readonly FaultName[], lengthMs: number): Promise<void> {
    if (faults.includes('move') && faults.includes('membership')) throw new Error('move and membership never share a run (see the top of nemesis.ts)');
    for (const fault of faults) {
      const startedAt = this.log.now();
      let started: Detail;
      try {
        started = await this.faults[fault].start();
      } catch (err) {
        // A half-applied start is still a fault: record it, and repair it like any other.
        started = { error: (err as Error).message };
      }
      this.log.record(fault, 'start', faults.length > 1 ? { ...started, with: faults.filter((f) => f !== fault) } : started, startedAt);
    }
    await delay(Math.max(0, lengthMs));
    for (const fault of [...faults].reverse()) {
      let stopped: Detail;
      try {
        stopped = await this.faults[fault].stop();
      } catch (err) {
        stopped = { error: (err as Error).message };
      }
      this.log.record(fault, 'stop', stopped);
    }
  }

  /**
   * Repairs everything any fault may have left: partitions, paused and killed nodes, failpoints,
   * an unfinished membership change, a drain still on. Retries until done or `timeoutMs`. With
   * the scheduler running (a move run), range 1's membership is the scheduler's: instead of
   * making every node a voter of range 1, it waits until every range in placement's map has the
   * scheduler's voter count and a leader (cluster.placementHealth()).
   */
  async healAll(timeoutMs: number): Promise<Detail> {
    const cluster = this.cluster;
    // Splits are never undone; a split loop still running (it should not be) just ends.
    const splitting = this.splitLoop ? await this.splitStop() : undefined;
    await cluster.lab.heal();
    for (const s of cluster.lab.allSlots()) if (cluster.slot(s).paused) cluster.resume(s);
    for (const s of cluster.lab.allSlots()) if (!cluster.isRunning(s)) this.killed.add(s);
    await this.restartKilled();
    const cleared = await this.clearFailpoints();
    if (cluster.schedule) {
      const moving = this.drain ? await waitFor('the drain to be cancelled', () => this.moveStop(), timeoutMs, 500) : undefined;
      const started = Date.now();
      await cluster.waitHealthy(timeoutMs);
      const health = await cluster.placementHealth();
      return {
        healed: true,
        failpointsCleared: this.nodesOf(cleared),
        placement: { votersPerRange: cluster.schedule.replicas, ranges: health.ranges, settledMs: Date.now() - started, perNode: health.perNode },
        ...(moving ? { moving } : {}),
        ...(splitting ? { splitting } : {}),
      };
    }
    const membership = await waitFor('every node to be a voter of range 1 again', () => this.repairMembership(), timeoutMs, 500);
    return { healed: true, failpointsCleared: this.nodesOf(cleared), membership, ...(splitting ? { splitting } : {}) };
  }

  /**
   * Makes every slot's node a voter of range 1, from the leader's view of the descriptor: a
   * learner is promoted; a node that is no member (a removal whose answer was lost, a failed
   * re-add) is wiped, started fresh with a new id, added and promoted. Throws while there is no
   * leader or a step fails (the caller retries).
   */
  private async repairMembership(): Promise<Detail> {
    const leader = await this.cluster.leaderSlot();
    if (leader === undefined) throw new Error('no leader');
    const view = await this.cluster.statusOf(leader);
    const range = view?.status.ranges.find((r) => r.descriptor.rangeId === 1);
    if (!range) throw new Error(`the leader (slot ${leader}) did not report range 1`);
    const voters = new Set(range.descriptor.replicas.filter((r) => r.role === 1).map((r) => Number(r.nodeId)));
    const learners = new Set(range.descriptor.replicas.filter((r) => r.role === 2).map((r) => Number(r.nodeId)));
    const repaired: Detail = {};
    for (const slot of this.cluster.lab.allSlots()) {
      const id = this.cluster.slot(slot).id;
      if (voters.has(id)) continue;
      if (!learners.has(id)) {
        const fresh = await this.cluster.wipeAndRejoin(slot);
        await this.admin.addLearner(1, fresh, this.cluster.address(slot));
        repaired[String(id)] = `not a member: replaced by fresh node ${fresh}`;
        await this.admin.promoteLearner(1, fresh);
      } else {
        await this.admin.promoteLearner(1, id);
        repaired[String(id)] = 'learner promoted';
      }
    }
    this.removedSlot = undefined;
    this.pendingLearner = undefined;
    return repaired;
  }

  close(): void {
    this.admin.close();
    this.splitter.close();
  }
}
