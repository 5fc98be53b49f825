// Runs the scheduler on the meta leader: every round it builds the cluster state from placement
// (nodes with liveness and drain flags, the range map with the leaders' load reports), advances
// the operators in flight one safe step at a time (each step checked by `checkStep` against the
// current descriptor just before it is sent to the range leader), and plans new operators.
//
// What the driver keeps in memory — operators in flight, when nodes were first seen down — is lost
// with leadership; the next leader starts over from the replicated range map, which is safe
// because every step is re-checked against the current descriptor and every operator leaves the
// range safe after any prefix of its steps.

import type { Logger } from 'pino';
import type { Placement } from './placement';
import {
  ClusterState,
  InFlightOperator,
  NodeInfo,
  Operator,
  OperatorStep,
  PlacementRules,
  RangeInfo,
  SchedulerConfig,
  checkStep,
  schedule,
} from './scheduler';

/** Sends one operator step to the range's leader (kvd implements it with the Admin service). */
export interface StepExecutor {
  execute(step: OperatorStep, range: RangeInfo, addressOf: (nodeId: number) => string | undefined): Promise<void>;
}

export interface DriverOptions {
  readonly rules: PlacementRules;
  readonly config?: Partial<SchedulerConfig>;
  /** Round interval, ms. Default 1,000. */
  readonly intervalMs?: number;
  /** After becoming the meta leader, wait this long for every node's heartbeat before planning. Default 5 s. */
  readonly warmupMs?: number;
  /** An operator whose step keeps waiting (or failing) this long is dropped. Default 120 s. */
  readonly stepTimeoutMs?: number;
  /** After a step, how long to wait for placement to see its effect before checking again. Default 5 s. */
  readonly settleMs?: number;
  readonly logger: Logger;
}

interface Running {
  readonly operator: Operator;
  nextStep: number;
  /** When the current step was first tried. */
  stepSinceMs: number;
  busy: boolean;
  failures: number;
  /**
   * After a step was executed: the range as placement knew it then. The operator is not checked
   * again until placement's copy changes (the leader's next report carries the step's effect),
   * or a heartbeat interval or two passed — otherwise the same step would be judged not done yet.
   */
  settling?: { readonly version: number; readonly confVersion: number; readonly leader: number | undefined; readonly untilMs: number };
}

export class SchedulerDriver {
  private readonly inFlight = new Map<number, Running>();
  private readonly downSince = new Map<number, number>();
  private leaderSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Operators finished, aborted and issued since start (for status and tests). */
  readonly stats = { issued: 0, completed: 0, aborted: 0, stepsExecuted: 0, stepFailures: 0 };

  constructor(
    private readonly placement: Placement,
    private readonly executor: StepExecutor,
    private readonly o: DriverOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = true;
      this.round()
        .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, 'scheduling round failed'))
        .finally(() => {
          this.running = false;
        });
    }, this.o.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Operators in flight (for status). */
  inFlightCount(): number {
    return this.inFlight.size;
  }

  /** One round: advance what is in flight, then plan. */
  async round(now = Date.now()): Promise<void> {
    if (!this.placement.meta.isLeader()) {
      this.inFlight.clear();
      this.downSince.clear();
      this.leaderSince = undefined;
      return;
    }
    this.leaderSince ??= now;
    if (now - this.leaderSince < (this.o.warmupMs ?? 5_000)) return;

    const state = await this.clusterState(now);
    const nodes = new Map(state.nodes.map((n) => [n.id, n]));
    const ranges = new Map(state.ranges.map((r) => [r.id, r]));
    const addresses = new Map((await this.placement.nodes()).map((n) => [n.nodeId, n.address]));
    const addressOf = (id: number): string | undefined => addresses.get(id);

    for (const [rangeId, op] of this.inFlight) {
      if (op.busy) continue;
      const cur = ranges.get(rangeId);
      if (op.settling) {
        const s = op.settling;
        const moved = !cur || cur.epoch.version !== s.version || cur.epoch.confVersion !== s.confVersion || cur.leaderNodeId !== s.leader;
        if (!moved && now < s.untilMs) continue;
        op.settling = undefined;
      }
      this.advance(rangeId, op, ranges.get(rangeId), nodes, addressOf, now);
    }

    const result = schedule({ ...state, inFlight: this.inFlightList() }, this.o.config);
    for (const operator of result.operators) {
      this.inFlight.set(operator.rangeId, { operator, nextStep: 0, stepSinceMs: now, busy: false, failures: 0 });
      this.stats.issued++;
      this.o.logger.info({ op: operator.id, purpose: operator.purpose, rangeId: operator.rangeId, steps: operator.steps }, 'operator issued');
      const r = this.inFlight.get(operator.rangeId) as Running;
      this.advance(operator.rangeId, r, ranges.get(operator.rangeId), nodes, addressOf, now);
    }
    if (result.unavailableRanges.length > 0) {
      this.o.logger.warn({ ranges: result.unavailableRanges.slice(0, 20), count: result.unavailableRanges.length }, 'ranges without a quorum: left alone');
    }
  }

  private inFlightList(): InFlightOperator[] {
    return [...this.inFlight.values()].map((r) => ({ operator: r.operator, nextStep: r.nextStep }));
  }

  /** Checks the next step(s) of an operator and starts the one that is ready. */
  private advance(
    rangeId: number,
    op: Running,
    range: RangeInfo | undefined,
    nodes: ReadonlyMap<number, NodeInfo>,
    addressOf: (id: number) => string | undefined,
    now: number,
  ): void {
    for (;;) {
      const verdict = checkStep({ range, nodes, rules: this.o.rules }, { operator: op.operator, nextStep: op.nextStep });
      switch (verdict.status) {
        case 'done':
          op.nextStep++;
          op.stepSinceMs = now;
          continue;
        case 'complete':
          this.inFlight.delete(rangeId);
          this.stats.completed++;
          this.o.logger.info({ op: op.operator.id, rangeId }, 'operator complete');
          return;
        case 'abort':
          this.inFlight.delete(rangeId);
          this.stats.aborted++;
          this.o.logger.info({ op: op.operator.id, rangeId, reason: verdict.reason }, 'operator aborted');
          return;
        case 'wait':
          if (now - op.stepSinceMs > (this.o.stepTimeoutMs ?? 120_000)) {
            this.inFlight.delete(rangeId);
            this.stats.aborted++;
            this.o.logger.warn({ op: op.operator.id, rangeId, reason: verdict.reason }, 'operator dropped: its step waited too long');
          }
          return;
        case 'ready': {
          if (!range) return;
          op.busy = true;
          const step = verdict.step;
          const before = { version: range.epoch.version, confVersion: range.epoch.confVersion, leader: range.leaderNodeId };
          this.executor
            .execute(step, range, addressOf)
            .then(
              () => {
                op.settling = { ...before, untilMs: Date.now() + (this.o.settleMs ?? 5_000) };
                op.stepSinceMs = Date.now();
                // The descriptor in placement catches up with the next heartbeat; checkStep then
                // sees the step done.
                this.stats.stepsExecuted++;
                this.o.logger.info({ op: op.operator.id, rangeId, step }, 'operator step executed');
              },
              (err: unknown) => {
                this.stats.stepFailures++;
                op.failures++;
                this.o.logger.warn({ op: op.operator.id, rangeId, step, err: (err as Error).message }, 'operator step failed');
                if (op.failures >= 5 && this.inFlight.get(rangeId) === op) {
                  this.inFlight.delete(rangeId);
                  this.stats.aborted++;
                }
              },
            )
            .finally(() => {
              op.busy = false;
            });
          return;
        }
      }
    }
  }

  /** The scheduler's input, from placement's state. */
  private async clusterState(now: number): Promise<ClusterState> {
    const views = await this.placement.nodes();
    const nodes: NodeInfo[] = [];
    for (const n of views) {
      if (n.state === 'down') this.downSince.set(n.nodeId, this.downSince.get(n.nodeId) ?? now);
      else this.downSince.delete(n.nodeId);
      nodes.push({
        id: n.nodeId,
        zone: n.zone,
        state: n.state,
        downSinceMs: n.state === 'down' ? this.downSince.get(n.nodeId) : undefined,
      });
    }
    const ranges: RangeInfo[] = (await this.placement.allRanges()).map((r) => {
      const learnersUp = new Set(r.load?.caughtUpLearners ?? []);
      return {
        id: r.descriptor.rangeId,
        start: r.descriptor.startHex,
        end: r.descriptor.endHex,
        epoch: { version: r.descriptor.epochVersion, confVersion: r.descriptor.confVersion },
        replicas: r.descriptor.replicas.map((x) => ({ nodeId: x.nodeId, role: x.role, caughtUp: x.role === 'learner' ? learnersUp.has(x.nodeId) : undefined })),
        leaderNodeId: r.leaderNodeId === 0 ? undefined : r.leaderNodeId,
        stats: {
          sizeBytes: r.load?.approximateBytes ?? 0,
          keys: r.load?.approximateKeys ?? 0,
          qps: (r.load?.writesPerSecond ?? 0) + (r.load?.readsPerSecond ?? 0),
        },
      };
    });
    return { nowMs: now, nodes, ranges, rules: this.o.rules, inFlight: [] };
  }
}
