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

import { ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdminClient, ClusterStatus } from '../../src/client/admin-client';
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
      // The harness manages membership itself (every node a voter of range 1; the membership
      // nemesis wipes and re-adds nodes); the placement scheduler would fight it.
      '--no-schedule',
    ];
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
   */
  async healthy(): Promise<boolean> {
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

  async waitHealthy(timeoutMs: number): Promise<void> {
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
