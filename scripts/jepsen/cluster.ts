// Real `kvd` processes, one per network namespace of the Lab.
//
// A node lives in a slot (its namespace and address). A slot's node id changes when the
// membership nemesis removes the node and re-adds it: as etcd requires, a removed member's id is
// never reused, so the slot's fresh, empty node joins with the next unused id (`--join`). Original
// members restart with their original `--initial-cluster` line; joined nodes with `--join`.
//
// `ip netns exec NS node bin/kvd ...` execs into node, so the child's pid is kvd's own (checked
// at start by reading /proc/PID/cmdline): SIGKILL, SIGSTOP and SIGCONT go to the node itself.
// Every start appends to the slot's log in DIR/nodes/ (a harness line first).
//
// Two modes. By default every kvd runs with --no-schedule: the harness manages membership itself
// (every node a voter of range 1; the membership nemesis wipes and re-adds nodes) and healthy()
// means exactly that. With `schedule` (the `move` nemesis) the placement scheduler runs on the
// meta leader and keeps `replicas` voters per range: healthy() then means every range of
// placement's map has that many voters, by placement's record and by its leader's own descriptor,
// and a leader by its own account (placementHealth()).

import { ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdminClient, ClusterStatus } from '../../src/client/admin-client';
import { PlacementClient, RangeInfoMsg } from '../../src/client/placement-client';
import { ClusterError } from './errors';
import type { Lab } from './net';
import { delay, waitFor } from './wait';

export const REPO = resolve(__dirname, '..', '..', '..');
/** The kvd under test: this checkout's, or KV_JEPSEN_ROOT's (another checkout with a built dist/). */
const KVD_BIN = join(process.env.KV_JEPSEN_ROOT ? resolve(process.env.KV_JEPSEN_ROOT) : REPO, 'bin', 'kvd');

export interface ClusterOptions {
  /** Where node logs go (DIR/nodes) and data directories (DIR/data). */
  readonly runDir: string;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly snapshotEntries: number;
  readonly compactionSlackEntries: number;
  readonly logLevel: string;
  /** Run the placement scheduler (no --no-schedule): the `move` nemesis. */
  readonly schedule?: SchedulerOptions;
}

export interface SchedulerOptions {
  /** kvd --replicas: voters per range. */
  readonly replicas: number;
  /** kvd --placement-heartbeat-ms. */
  readonly heartbeatMs: number;
  /** kvd --schedule-interval-ms. */
  readonly intervalMs: number;
}

/** A node's share of placement's map: replicas (any role), voters, and ranges it leads. */
export interface NodeShare {
  replicas: number;
  voters: number;
  leaders: number;
}

/** What placementHealth() found: `ok`, or the first reason it is not (for the error message). */
export interface PlacementHealth {
  readonly ok: boolean;
  readonly why: string;
  readonly ranges: number;
  /** Node id → its share of placement's map (leaders: placement's record of each range's leader). */
  readonly perNode: Record<string, NodeShare>;
}

export interface Slot {
  readonly slot: number;
  id: number;
  mode: 'initial' | 'join';
  /** Increments when the slot's data directory is wiped (a fresh node). */
  generation: number;
  child: ChildProcess | undefined;
  pid: number | undefined;
  exited: Promise<void>;
  paused: boolean;
  starts: number;
}

export interface RangeView {
  readonly slot: number;
  readonly nodeId: number;
  readonly status: ClusterStatus;
}

export class JepsenCluster {
  readonly slots = new Map<number, Slot>();
  private nextId: number;
  private readonly initialSpec: string;
  private readonly admins = new Map<number, AdminClient>();
  private placementClient: PlacementClient | undefined;

  constructor(
    readonly lab: Lab,
    private readonly o: ClusterOptions,
  ) {
    mkdirSync(join(o.runDir, 'nodes'), { recursive: true });
    mkdirSync(join(o.runDir, 'data'), { recursive: true });
    for (const slot of lab.allSlots()) {
      this.slots.set(slot, { slot, id: slot, mode: 'initial', generation: 0, child: undefined, pid: undefined, exited: Promise.resolve(), paused: false, starts: 0 });
    }
    this.nextId = lab.slots + 1;
    this.initialSpec = lab.allSlots().map((s) => `${s}=${lab.address(s)}`).join(',');
  }

  slot(slot: number): Slot {
    const s = this.slots.get(slot);
    if (!s) throw new TypeError(`no slot ${slot}`);
    return s;
  }

  address(slot: number): string {
    return this.lab.address(slot);
  }

  endpoints(): string[] {
    return this.lab.allSlots().map((s) => this.address(s));
  }

  logPath(slot: number): string {
    return join(this.o.runDir, 'nodes', `n${slot}.log`);
  }

  private dataDir(s: Slot): string {
    return join(this.o.runDir, 'data', `n${s.slot}-g${s.generation}`);
  }

  isRunning(slot: number): boolean {
    const c = this.slot(slot).child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Slot → node id of every slot, as `id=host:port,...` (the address book of a joining node). */
  private currentSpec(): string {
    return [...this.slots.values()].map((s) => `${s.id}=${this.address(s.slot)}`).join(',');
  }

  private args(s: Slot): string[] {
    return [
      '--id', String(s.id),
      '--listen', this.address(s.slot),
      '--data', this.dataDir(s),
      s.mode === 'initial' ? '--initial-cluster' : '--join', s.mode === 'initial' ? this.initialSpec : this.currentSpec(),
      '--cluster-id', 'jepsen',
      '--tick-ms', String(this.o.tickMs),
      '--election-ticks', String(this.o.electionTicks),
      '--snapshot-entries', String(this.o.snapshotEntries),
      '--compaction-slack-entries', String(this.o.compactionSlackEntries),
      '--log-level', this.o.logLevel,
      '--failpoints',
      ...(this.o.schedule
        ? [
            '--replicas', String(this.o.schedule.replicas),
            '--placement-heartbeat-ms', String(this.o.schedule.heartbeatMs),
            '--schedule-interval-ms', String(this.o.schedule.intervalMs),
          ]
        : // The harness manages membership itself (every node a voter of range 1; the membership
          // nemesis wipes and re-adds nodes); the placement scheduler would fight it.
          ['--no-schedule']),
    ];
  }

  /** Whether the placement scheduler runs (the `move` nemesis), and with how many voters per range. */
  get schedule(): SchedulerOptions | undefined {
    return this.o.schedule;
  }

  /** A Placement client over every slot, 10 s per call (reused; closed by stopAll). */
  placement(): PlacementClient {
    this.placementClient ??= new PlacementClient({ endpoints: this.endpoints(), deadlineMs: 10_000 });
    return this.placementClient;
  }

  /** Starts the node of `slot` (which must not run) and returns once its pid is verified. */
  async spawn(slot: number): Promise<void> {
    const s = this.slot(slot);
    if (this.isRunning(slot)) throw new ClusterError(`node in slot ${slot} is already running`);
    const args = this.args(s);
    s.starts++;
    const log = this.logPath(slot);
    appendFileSync(log, `--- harness ${new Date().toISOString()}: start #${s.starts} of slot ${slot} (node ${s.id}) in ${this.lab.namespace(slot)}: kvd ${args.join(' ')}\n`);
    const fd = openSync(log, 'a');
    let child: ChildProcess;
    try {
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KV_')) env[k] = v;
      child = spawn('ip', ['netns', 'exec', this.lab.namespace(slot), process.execPath, KVD_BIN, ...args], { cwd: REPO, env, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    s.child = child;
    s.pid = child.pid;
    s.paused = false;
    const id = s.id;
    s.exited = new Promise<void>((resolveExit) => {
      child.once('exit', (code, signal) => {
        try {
          appendFileSync(log, `--- harness ${new Date().toISOString()}: node ${id} (pid ${child.pid}) exited: code ${code} signal ${signal}\n`);
        } catch {
          // the run directory is gone
        }
        resolveExit();
      });
    });
    // `ip netns exec` execs: the pid must become kvd's (node running bin/kvd) right away.
    await waitFor(`pid ${child.pid} of slot ${slot} to exec kvd`, () => {
      if (child.pid === undefined || !this.isRunning(slot)) throw new ClusterError(`node in slot ${slot} did not start; see ${log}`);
      const cmd = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
      return cmd.includes(KVD_BIN);
    }, 5_000, 10);
  }

  async startAll(): Promise<void> {
    for (const slot of this.lab.allSlots()) await this.spawn(slot);
  }

  /** SIGKILLs the node of `slot` and waits until it is gone. */
  async kill(slot: number): Promise<void> {
    const s = this.slot(slot);
    if (!this.isRunning(slot)) return;
    s.child?.kill('SIGKILL');
    await Promise.race([s.exited, delay(10_000)]);
    if (this.isRunning(slot)) throw new ClusterError(`node in slot ${slot} (pid ${s.pid}) survived SIGKILL for 10 s`);
    s.paused = false;
  }

  pause(slot: number): void {
    const s = this.slot(slot);
    if (!this.isRunning(slot) || s.pid === undefined) return;
    process.kill(s.pid, 'SIGSTOP');
    s.paused = true;
  }

  resume(slot: number): void {
    const s = this.slot(slot);
    if (s.pid !== undefined && this.isRunning(slot)) process.kill(s.pid, 'SIGCONT');
    s.paused = false;
  }

  /**
   * Replaces the node of `slot` by a fresh, empty one with a new id started with --join (the old
   * process is killed and its data directory removed). Returns the new id; the caller adds it.
   */
  async wipeAndRejoin(slot: number): Promise<number> {
    const s = this.slot(slot);
    await this.kill(slot);
    rmSync(this.dataDir(s), { recursive: true, force: true });
    s.generation++;
    s.id = this.nextId++;
    s.mode = 'join';
    await this.spawn(slot);
    return s.id;
  }

  // ---------------------------------------------------------------------------------------------
  // Status

  /** An Admin client for one node (channels reused across calls). */
  admin(slot: number): AdminClient {
    let a = this.admins.get(slot);
    if (!a) {
      a = new AdminClient([this.address(slot)], 1_500);
      this.admins.set(slot, a);
    }
    return a;
  }

  /** ClusterStatus of the node in `slot`, or undefined when it does not answer. */
  async statusOf(slot: number): Promise<RangeView | undefined> {
    if (!this.isRunning(slot) || this.slot(slot).paused) return undefined;
    const [view] = await this.admin(slot).clusterStatus();
    if (!view?.status) return undefined;
    return { slot, nodeId: this.slot(slot).id, status: view.status };
  }

  async views(): Promise<RangeView[]> {
    const all = await Promise.all(this.lab.allSlots().map((s) => this.statusOf(s)));
    return all.filter((v): v is RangeView => v !== undefined);
  }

  /** The slot whose node leads range 1 by its own account (the highest term among claimants). */
  async leaderSlot(): Promise<number | undefined> {
    let best: { slot: number; term: number } | undefined;
    for (const v of await this.views()) {
      const r = v.status.ranges.find((x) => x.descriptor.rangeId === 1);
      if (r && r.leaderNodeId === v.nodeId && (!best || r.term > best.term)) best = { slot: v.slot, term: r.term };
    }
    return best?.slot;
  }

  slotOfNode(nodeId: number): number | undefined {
    for (const s of this.slots.values()) if (s.id === nodeId) return s.slot;
    return undefined;
  }

  /**
   * Healthy: every slot's node runs and answers, all agree on one leader, the leader's range has
   * every slot's current node as a voter, and every voter has caught up to the leader's commit.
   * With the scheduler running: placementHealth() instead.
   */
  async healthy(): Promise<boolean> {
    if (this.o.schedule) return (await this.placementHealth()).ok;
    const views = await this.views();
    if (views.length !== this.slots.size) return false;
    const leaderIds = new Set(views.map((v) => v.status.ranges.find((x) => x.descriptor.rangeId === 1)?.leaderNodeId ?? 0));
    if (leaderIds.size !== 1) return false;
    const leaderId = [...leaderIds][0] as number;
    const ls = this.slotOfNode(leaderId);
    const lv = views.find((v) => v.slot === ls);
    const range = lv?.status.ranges.find((x) => x.descriptor.rangeId === 1);
    if (!range) return false;
    const voters = new Set(range.descriptor.replicas.filter((r) => r.role === 1).map((r) => Number(r.nodeId)));
    for (const s of this.slots.values()) if (!voters.has(s.id)) return false;
    return range.progress.every((p) => p.matchIndex >= range.commitIndex - 1 || p.nodeId === leaderId);
  }

  /**
   * With the scheduler running (`schedule`): every slot's node runs and answers; placement lists
   * its ranges; each has exactly `replicas` voters in placement's record, a node that leads it by
   * its own account (the highest term among claimants), and that leader's own descriptor has the
   * same key span and `replicas` voters too (placement has caught up with it). Learners left by an
   * operator in flight are allowed (the scheduler removes extra ones).
   */
  async placementHealth(): Promise<PlacementHealth> {
    const want = this.o.schedule?.replicas ?? this.slots.size;
    const perNode: Record<string, NodeShare> = {};
    for (const s of this.slots.values()) perNode[String(s.id)] = { replicas: 0, voters: 0, leaders: 0 };
    const not = (why: string, ranges = 0): PlacementHealth => ({ ok: false, why, ranges, perNode });
    const views = await this.views();
    if (views.length !== this.slots.size) return not(`${this.slots.size - views.length} node(s) do not answer`);
    let list: RangeInfoMsg[];
    try {
      list = await this.placement().listRanges();
    } catch (err) {
      return not(`placement: ${(err as Error).message}`);
    }
    if (list.length === 0) return not('placement lists no range');
    const leaders = new Map<number, { nodeId: number; term: number; voters: number; start: string; end: string }>();
    for (const v of views) {
      for (const r of v.status.ranges) {
        const id = Number(r.descriptor.rangeId);
        if (r.leaderNodeId !== v.nodeId) continue;
        const cur = leaders.get(id);
        if (cur && cur.term >= r.term) continue;
        leaders.set(id, {
          nodeId: v.nodeId,
          term: r.term,
          voters: r.descriptor.replicas.filter((x) => x.role === 1).length,
          start: Buffer.from(r.descriptor.startKey).toString('hex'),
          end: Buffer.from(r.descriptor.endKey).toString('hex'),
        });
      }
    }
    let why = '';
    for (const r of list) {
      const id = Number(r.descriptor.rangeId);
      const voters = r.descriptor.replicas.filter((x) => x.role === 1);
      for (const x of r.descriptor.replicas) {
        const share = (perNode[String(x.nodeId)] ??= { replicas: 0, voters: 0, leaders: 0 });
        share.replicas++;
        if (x.role === 1) share.voters++;
      }
      if (r.leader) (perNode[String(r.leader.nodeId)] ??= { replicas: 0, voters: 0, leaders: 0 }).leaders++;
      if (why) continue;
      const l = leaders.get(id);
      if (voters.length !== want) why = `range ${id} has ${voters.length} voters in placement's map (${r.descriptor.replicas.map((x) => `${x.nodeId}/${x.role}`).join(',')}), not ${want}`;
      else if (!l) why = `range ${id} has no leader`;
      else if (l.voters !== want) why = `range ${id}: its leader ${l.nodeId} has ${l.voters} voters in its own descriptor, not ${want}`;
      else if (l.start !== r.descriptor.startKey.toString('hex') || l.end !== r.descriptor.endKey.toString('hex')) why = `range ${id}: its leader's key span differs from placement's record`;
    }
    return { ok: why === '', why, ranges: list.length, perNode };
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    if (this.o.schedule) {
      const want = this.o.schedule.replicas;
      let last: PlacementHealth | undefined;
      await waitFor(`every range in placement's map to have ${want} voters and a leader`, async () => {
        last = await this.placementHealth();
        return last.ok;
      }, timeoutMs, 200).catch((err: Error) => {
        throw new ClusterError(`${err.message}: ${last ? `${last.why}; per node ${JSON.stringify(last.perNode)}` : 'never checked'}`);
      });
      return;
    }
    await waitFor('the cluster to be healthy (one leader, every node a caught-up voter)', () => this.healthy(), timeoutMs, 200).catch(async (err: Error) => {
      const views = await this.views().catch(() => []);
      const summary = views.map((v) => {
        const r = v.status.ranges.find((x) => x.descriptor.rangeId === 1);
        return `slot ${v.slot} node ${v.nodeId}: leader ${r?.leaderNodeId} term ${r?.term} commit ${r?.commitIndex} replicas ${r?.descriptor.replicas.map((x) => `${x.nodeId}/${x.role}`).join(',')}`;
      });
      throw new ClusterError(`${err.message}\n${summary.join('\n')}`);
    });
  }

  // ---------------------------------------------------------------------------------------------

  /** SIGKILLs every node (after SIGCONT) and waits for them; closes the Admin clients. */
  async stopAll(): Promise<void> {
    for (const a of this.admins.values()) a.close();
    this.admins.clear();
    this.placementClient?.close();
    this.placementClient = undefined;
    const exits: Array<Promise<void>> = [];
    for (const s of this.slots.values()) {
      if (!this.isRunning(s.slot)) continue;
      if (s.pid !== undefined) {
        try {
          process.kill(s.pid, 'SIGCONT');
        } catch {
          // gone
        }
      }
      s.child?.kill('SIGKILL');
      exits.push(s.exited);
    }
    await Promise.race([Promise.all(exits), delay(10_000)]);
  }

  /** Removes the data directories (kept when a run is invalid, for a post-mortem). */
  removeData(): void {
    rmSync(join(this.o.runDir, 'data'), { recursive: true, force: true });
  }
}
