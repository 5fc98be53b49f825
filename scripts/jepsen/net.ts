// The run's private network: one network namespace per node, each with a veth pair whose other
// end is a port of a bridge the harness makes in the root namespace. Addresses come from one /24
// of 10.77.0.0/16 chosen per run (the bridge is .1, node slot i is .(10+i)), so parallel runs
// do not collide; nothing else is ever a target. Partitions are iptables DROP rules inside the
// node namespaces, by source address.
//
// Names. Every object of a run carries its prefix `rkj<N>` (N = the /24's third octet, 1..250):
// the bridge `rkj<N>-br`, namespaces `rkj<N>-n<slot>`, veth ends `rkj<N>-h<slot>` (bridge side)
// and `rkj<N>-v<slot>` (node side). A run owns its prefix through a lock file
// /run/rangekv-jepsen/rkj<N>.lock holding its pid. sweepLeftovers() removes every object (and
// every process inside such a namespace) of a prefix whose owner is gone: at each start, and
// from run.sh after the harness exits, however it exited.

import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, exec } from './exec';
import { EnvironmentError } from './errors';

export const LOCK_DIR = '/run/rangekv-jepsen';
const NAME_RE = /^rkj(\d{1,3})-/;
const SUBNET_MIN = 1;
const SUBNET_MAX = 250;

export interface Lock {
  readonly pid: number;
  readonly dir: string;
}

function lockPath(subnet: number): string {
  return join(LOCK_DIR, `rkj${subnet}.lock`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but is not ours to signal (it is alive).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A reused pid that is not a harness does not hold the lock.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('jepsen');
  } catch {
    return false;
  }
}

function readLock(subnet: number): Lock | undefined {
  try {
    return JSON.parse(readFileSync(lockPath(subnet), 'utf8')) as Lock;
  } catch {
    return undefined;
  }
}

/** Fails with a clear message unless this process can build namespaces and iptables rules. */
export async function checkEnvironment(): Promise<void> {
  if (process.platform !== 'linux') throw new EnvironmentError(`the Jepsen suite needs Linux network namespaces; this is ${process.platform}`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new EnvironmentError('the Jepsen suite must run as root (it creates network namespaces, veth pairs, a bridge and iptables rules); CI runs as root');
  }
  for (const [tool, flag] of [['ip', '-V'], ['iptables', '--version']] as const) {
    const r = await exec(tool, [flag]);
    if (r.code !== 0) {
      throw new EnvironmentError(`\`${tool}\` is missing: run \`make tools\` (installs Debian's iproute2 and iptables) or apt-get install -y iproute2 iptables`);
    }
  }
  // Named like a run's objects (prefix 0 never has a lock), so a sweep removes it if we die here.
  const probe = `rkj0-p${process.pid}`;
  const r = await exec('ip', ['netns', 'add', probe]);
  if (r.code !== 0) throw new EnvironmentError(`cannot create a network namespace (ip netns add): ${r.stderr.trim()}`);
  try {
    const t = await exec('ip', ['netns', 'exec', probe, 'iptables', '-w', '5', '-S', 'INPUT']);
    if (t.code !== 0) throw new EnvironmentError(`iptables does not work inside a network namespace: ${t.stderr.trim()}`);
  } finally {
    await exec('ip', ['netns', 'del', probe]);
  }
}

/** Names of the namespaces and links of this machine that belong to some prefix. */
async function listObjects(): Promise<{ namespaces: string[]; links: string[] }> {
  const ns = await exec('ip', ['netns', 'list']);
  const namespaces = ns.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => NAME_RE.test(n));
  const ln = await exec('ip', ['-o', 'link', 'show']);
  const links = ln.stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '')
    .filter((n) => NAME_RE.test(n));
  return { namespaces, links };
}

/** Kills every process inside namespace `ns` (SIGCONT first, so a paused one dies too). */
export async function killNamespaceProcesses(ns: string): Promise<void> {
  const r = await exec('ip', ['netns', 'pids', ns]);
  for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Removes every object of the given prefixes (numbers). */
async function removePrefixes(subnets: ReadonlySet<number>): Promise<string[]> {
  const removed: string[] = [];
  const { namespaces, links } = await listObjects();
  const mine = (name: string): boolean => subnets.has(Number(NAME_RE.exec(name)?.[1]));
  for (const ns of namespaces.filter(mine)) {
    await killNamespaceProcesses(ns);
    const r = await exec('ip', ['netns', 'del', ns]);
    if (r.code === 0) removed.push(`netns ${ns}`);
  }
  // Host-side veth ends first (deleting one end deletes its peer), the bridge last.
  for (const link of links.filter(mine).sort((a, b) => Number(a.endsWith('-br')) - Number(b.endsWith('-br')))) {
    const r = await exec('ip', ['link', 'del', link]);
    if (r.code === 0) removed.push(`link ${link}`);
  }
  for (const s of subnets) {
    try {
      unlinkSync(lockPath(s));
    } catch {
      // no lock file
    }
  }
  return removed;
}

/**
 * Removes the objects of every prefix whose owner is gone (no lock, or a lock whose pid is not a
 * live harness). Returns what was removed, for the log.
 */
export async function sweepLeftovers(): Promise<string[]> {
  // Only root made them, and only root may remove them (and judge who is alive).
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return [];
  const stale = new Set<number>();
  const { namespaces, links } = await listObjects();
  for (const name of [...namespaces, ...links]) {
    const s = Number(NAME_RE.exec(name)?.[1]);
    const lock = readLock(s);
    if (!lock || !pidAlive(lock.pid)) stale.add(s);
  }
  if (existsSync(LOCK_DIR)) {
    for (const f of readdirSync(LOCK_DIR)) {
      const m = /^rkj(\d+)\.lock$/.exec(f);
      if (!m) continue;
      const s = Number(m[1]);
      const lock = readLock(s);
      if (!lock || !pidAlive(lock.pid)) stale.add(s);
    }
  }
  if (stale.size === 0) return [];
  return removePrefixes(stale);
}

export class Lab {
  private readonly rulesBySlot = new Map<number, string[]>();
  private destroyed = false;

  private constructor(
    readonly subnet: number,
    readonly slots: number,
    readonly port: number,
  ) {}

  get prefix(): string {
    return `rkj${this.subnet}`;
  }
  get bridge(): string {
    return `${this.prefix}-br`;
  }
  get bridgeAddress(): string {
    return `10.77.${this.subnet}.1`;
  }
  namespace(slot: number): string {
    return `${this.prefix}-n${slot}`;
  }
  ip(slot: number): string {
    return `10.77.${this.subnet}.${10 + slot}`;
  }
  /** host:port of the node in `slot` (every node listens on the same port in its own namespace). */
  address(slot: number): string {
    return `${this.ip(slot)}:${this.port}`;
  }
  allSlots(): number[] {
    return Array.from({ length: this.slots }, (_v, i) => i + 1);
  }

  /** Takes a free /24 (a lock file), then builds the bridge, the namespaces and the veth pairs. */
  static async create(slots: number, runDir: string, port = 7000): Promise<Lab> {
    if (!(slots >= 1 && slots <= 200)) throw new RangeError(`slots must be 1..200, got ${slots}`);
    mkdirSync(LOCK_DIR, { recursive: true });
    const taken = await listObjects();
    const inUse = new Set([...taken.namespaces, ...taken.links].map((n) => Number(NAME_RE.exec(n)?.[1])));
    const addrs = (await exec('ip', ['-o', 'addr', 'show'])).stdout;
    const start = SUBNET_MIN + (process.pid % (SUBNET_MAX - SUBNET_MIN + 1));
    for (let k = 0; k <= SUBNET_MAX - SUBNET_MIN; k++) {
      const subnet = SUBNET_MIN + ((start - SUBNET_MIN + k) % (SUBNET_MAX - SUBNET_MIN + 1));
      if (inUse.has(subnet) || addrs.includes(`10.77.${subnet}.`)) continue;
      // The lock appears with its content at once (link of a written file), so a concurrent
      // sweep never sees an empty lock and takes it for a dead one.
      const tmp = join(LOCK_DIR, `.tmp-${process.pid}-${subnet}`);
      writeFileSync(tmp, JSON.stringify({ pid: process.pid, dir: runDir } satisfies Lock));
      let taken = true;
      try {
        linkSync(tmp, lockPath(subnet));
      } catch {
        taken = false; // another run holds it (or a stale lock the sweep will remove)
      } finally {
        unlinkSync(tmp);
      }
      if (!taken) continue;
      const lab = new Lab(subnet, slots, port);
      try {
        await lab.build();
      } catch (err) {
        await lab.destroy();
        throw err;
      }
      return lab;
    }
    throw new EnvironmentError(`no free subnet 10.77.N.0/24 (N in ${SUBNET_MIN}..${SUBNET_MAX}) for this run`);
  }

  private async build(): Promise<void> {
    const br = this.bridge;
    await check('ip', ['link', 'add', br, 'type', 'bridge']);
    await check('ip', ['addr', 'add', `${this.bridgeAddress}/24`, 'dev', br]);
    await check('ip', ['link', 'set', br, 'up']);
    for (const slot of this.allSlots()) {
      const ns = this.namespace(slot);
      const host = `${this.prefix}-h${slot}`;
      const inner = `${this.prefix}-v${slot}`;
      await check('ip', ['netns', 'add', ns]);
      await check('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', inner]);
      await check('ip', ['link', 'set', inner, 'netns', ns]);
      await check('ip', ['link', 'set', host, 'master', br]);
      await check('ip', ['link', 'set', host, 'up']);
      await check('ip', ['-n', ns, 'addr', 'add', `${this.ip(slot)}/24`, 'dev', inner]);
      await check('ip', ['-n', ns, 'link', 'set', inner, 'up']);
      await check('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Partitions

  private async iptables(slot: number, args: readonly string[]): Promise<void> {
    await check('ip', ['netns', 'exec', this.namespace(slot), 'iptables', '-w', '5', ...args]);
  }

  /** Node `slot` drops every packet that comes from the nodes in `from` (one direction). */
  async dropFrom(slot: number, from: readonly number[]): Promise<void> {
    for (const f of from) {
      if (f === slot) continue;
      await this.iptables(slot, ['-A', 'INPUT', '-s', this.ip(f), '-j', 'DROP']);
      const rules = this.rulesBySlot.get(slot) ?? [];
      rules.push(this.ip(f));
      this.rulesBySlot.set(slot, rules);
    }
  }

  /** Cuts both directions between every node of `a` and every node of `b`. */
  async cut(a: readonly number[], b: readonly number[]): Promise<void> {
    for (const x of a) await this.dropFrom(x, b);
    for (const y of b) await this.dropFrom(y, a);
  }

  /** For each slot, the sources it drops (what the partition is, for the nemesis log). */
  rules(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [slot, r] of this.rulesBySlot) out[String(slot)] = [...r];
    return out;
  }

  /** Removes every partition rule. */
  async heal(): Promise<void> {
    for (const slot of this.allSlots()) await this.iptables(slot, ['-F', 'INPUT']);
    this.rulesBySlot.clear();
  }

  // ---------------------------------------------------------------------------------------------

  /** Kills whatever runs in the namespaces, removes namespaces, links and the lock. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await removePrefixes(new Set([this.subnet]));
  }
}
