// A cluster of real `kvd` processes on 127.0.0.1 for the integration tests.
//
// Every node is a child process (`node bin/kvd ...`) with its own port, a fresh data directory
// under one temporary root, and a log file (stdout and stderr of every start of that node,
// appended, with a harness line before each start). Tests drive it with kill(id, signal),
// restart(id), addNode() and poll conditions with waitFor(); nothing here sleeps a fixed time.
//
// Cleanup is the harness's job, not the test's: every cluster registers itself, and
// cleanupClusters() (call it from afterEach/afterAll) SIGKILLs every child and removes the
// temporary root, whether the test passed or not. clusterTest() bounds a test's time below
// jest's timeout and appends the tail of every node's log to the error of a failing test.

import { ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The repository. */
export const REPO = resolve(__dirname, '..', '..');
/**
 * The tree whose built binaries run: this repository, or KV_IT_ROOT (another checkout with bin/,
 * src/ and a built dist/, e.g. to keep testing a fixed build while src/ is being edited).
 */
export const ROOT = process.env.KV_IT_ROOT ? resolve(process.env.KV_IT_ROOT) : REPO;
export const KVD_BIN = join(ROOT, 'bin', 'kvd');
export const KVCTL_BIN = join(ROOT, 'bin', 'kvctl');
/** The public protos of this repository (the contract clients in any language compile). */
export const PROTO_DIR = join(REPO, 'proto');

// ------------------------------------------------------------------------------------------------
// The binaries under test are the compiled ones in dist/: refuse to test a stale build.

let builtChecked = false;

/** Throws unless dist/ holds a build at least as new as every file of src/. */
export function assertBuilt(): void {
  if (builtChecked) return;
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
        const out = join(ROOT, 'dist', relative(ROOT, path)).replace(/\.ts$/, '.js');
        if (!existsSync(out) || statSync(out).mtimeMs < statSync(path).mtimeMs) stale.push(relative(ROOT, path));
      }
    }
  };
  walk(join(ROOT, 'src'));
  if (stale.length > 0) {
    throw new Error(
      `the integration tests run the compiled kvd/kvctl in dist/, which is missing or older than ${stale.slice(0, 5).join(', ')}` +
        `${stale.length > 5 ? ` and ${stale.length - 5} more` : ''}: run \`make build\` (or \`npx tsc -p tsconfig.json\`) first`,
    );
  }
  builtChecked = true;
}

// ------------------------------------------------------------------------------------------------
// Time

/** Resolves after `ms`. Only for pacing loops (polling, workload think time), never as a wait for a condition. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Thrown by a waitFor condition to stop waiting at once (e.g. the process it waits on died). */
export class GiveUp extends Error {}

/**
 * Polls `condition` until it returns a truthy value, and returns that value. A condition that
 * throws counts as not yet true (the last error is quoted when time runs out), except GiveUp,
 * which ends the wait with that error.
 */
export async function waitFor<T>(
  what: string,
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await condition();
      if (v) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError === undefined ? '' : ` (last error: ${(lastError as Error).message ?? String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await delay(intervalMs);
  }
}

// ------------------------------------------------------------------------------------------------
// Ports

/**
 * Ports come from [20000, 32000): below Linux's ephemeral range (32768-60999), so an outgoing
 * connection (of any process) can never hold a port of a node that is down and about to restart
 * on it. Each candidate is checked by binding it on 127.0.0.1; the start is random so parallel
 * jest workers rarely try the same ones.
 */
const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;
const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once('error', () => resolvePort(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolvePort(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in [${PORT_LOW}, ${PORT_HIGH})`);
}

/** A port nothing listens on (for "cluster unreachable" tests). */
export async function closedPort(): Promise<number> {
  return freePort();
}

// ------------------------------------------------------------------------------------------------
// Raw gRPC stubs, loaded straight from proto/ (what a client in another language would use).

export interface ResponseHeader {
  rangeId: number;
  nodeId: number;
  appliedIndex: number;
  error: {
    message: string;
    notLeader?: { rangeId: number; leader: { nodeId: number; address: string } | null } | null;
    [k: string]: unknown;
  } | null;
}

export interface RangeStatusMsg {
  descriptor: { rangeId: number; replicas: Array<{ nodeId: number; role: number }> } | null;
  leaderNodeId: number;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  progress: Array<{ nodeId: number; role: number; matchIndex: number; state: string }>;
  error: ResponseHeader['error'];
}

type RawUnary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
type RawStub = grpc.Client & Record<string, RawUnary>;
type RawStubCtor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => RawStub;

let rawPackage: { KV: RawStubCtor; Admin: RawStubCtor } | undefined;

function rawServices(): { KV: RawStubCtor; Admin: RawStubCtor } {
  if (!rawPackage) {
    const def = protoLoader.loadSync(['rangekv/v1/kv.proto', 'rangekv/v1/admin.proto'], {
      includeDirs: [PROTO_DIR],
      keepCase: false,
      longs: Number,
      enums: Number,
      bytes: Buffer,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { rangekv: { v1: { KV: RawStubCtor; Admin: RawStubCtor } } };
    rawPackage = pkg.rangekv.v1;
  }
  return rawPackage;
}

/**
 * Channel options for the harness's own calls: a private subchannel pool and a short reconnect
 * backoff, so a node that restarts is seen as soon as it listens again.
 */
const RAW_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.use_local_subchannel_pool': 1,
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 300,
};

/** One unary call on a fresh channel (closed afterwards). */
export function rawCall<T>(address: string, service: 'KV' | 'Admin', method: string, request: object, timeoutMs = 2_000): Promise<T> {
  const Stub = rawServices()[service];
  const stub = new Stub(address, grpc.credentials.createInsecure(), RAW_CHANNEL_OPTIONS);
  const fn = stub[method];
  if (!fn) throw new TypeError(`no method ${method} on ${service}`);
  return new Promise<T>((resolveCall, reject) => {
    fn.call(stub, request, { deadline: Date.now() + timeoutMs }, (err, res) => {
      stub.close();
      if (err) reject(err);
      else resolveCall(res as T);
    });
  });
}

// ------------------------------------------------------------------------------------------------
// Running a binary to completion (usage errors, kvctl).

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string | Buffer;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Stop the process (SIGKILL) as soon as its stdout contains this; `stoppedEarly` tells. */
  readonly stopWhenStdout?: string;
}

/** Runs `node <bin> args...` with piped stdio and returns its exit and output. */
export function run(bin: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult & { stoppedEarly: boolean }> {
  assertBuilt();
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: ROOT,
      env: { ...cleanEnv(), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let stoppedEarly = false;
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')} did not finish within ${timeoutMs} ms; stdout: ${stdout.slice(-2000)} stderr: ${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      if (opts.stopWhenStdout !== undefined && !stoppedEarly && stdout.includes(opts.stopWhenStdout)) {
        stoppedEarly = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr, stoppedEarly });
    });
    child.stdin.on('error', () => undefined); // the child may exit before reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** The environment without KV_* variables (they would change the binaries' defaults). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KV_')) env[k] = v;
  return env;
}

// ------------------------------------------------------------------------------------------------
// The cluster

export interface ClusterOptions {
  /** Number of initial members (ids 1..nodes). */
  readonly nodes: number;
  /** Names the temporary directory, for humans. */
  readonly name: string;
  /** Raft tick. Default 20 ms (the server's default is 100). */
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly snapshotEntries?: number;
  readonly clusterId?: string;
  readonly logLevel?: string;
  /** More flags for every node. */
  readonly extraArgs?: readonly string[];
  /** Wait until a leader serves before returning. Default true. */
  readonly waitForLeader?: boolean;
  /**
   * Run the placement scheduler (automatic repair, balancing, splits). Default false: most tests
   * change membership by hand, which the scheduler would undo.
   */
  readonly schedule?: boolean;
}

export interface NodeProc {
  readonly id: number;
  readonly port: number;
  readonly address: string;
  readonly dataDir: string;
  readonly logPath: string;
  /** 'initial' = member of --initial-cluster; 'join' = started with --join. */
  readonly mode: 'initial' | 'join';
  child: ChildProcess | undefined;
  /** Resolves when the current child exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  starts: number;
  /** Byte length of the log file when the current child started (its own lines follow). */
  logOffsetAtStart: number;
}

const live = new Set<ProcessCluster>();

export class ProcessCluster {
  readonly dir: string;
  readonly nodes = new Map<number, NodeProc>();
  private readonly initialMembers: number[];
  /** Set when a test failed: destroy() keeps the directory (logs and data) instead of removing it. */
  keepForInspection = false;

  private constructor(readonly opts: ClusterOptions) {
    this.dir = mkdtempSync(join(tmpdir(), `rangekv-it-${opts.name}-`));
    this.initialMembers = Array.from({ length: opts.nodes }, (_v, i) => i + 1);
    live.add(this);
  }

  /** Starts `opts.nodes` nodes as a new cluster and (by default) waits until a leader serves. */
  static async start(opts: ClusterOptions): Promise<ProcessCluster> {
    assertBuilt();
    const c = new ProcessCluster(opts);
    for (const id of c.initialMembers) c.declare(id, await freePort(), 'initial');
    for (const id of c.initialMembers) c.spawn(id);
    if (opts.waitForLeader ?? true) await c.waitForLeader();
    return c;
  }

  private declare(id: number, port: number, mode: 'initial' | 'join'): NodeProc {
    const n: NodeProc = {
      id,
      port,
      address: `127.0.0.1:${port}`,
      dataDir: join(this.dir, `data${id}`),
      logPath: join(this.dir, `node${id}.log`),
      mode,
      child: undefined,
      exited: Promise.resolve({ code: null, signal: null }),
      starts: 0,
      logOffsetAtStart: 0,
    };
    this.nodes.set(id, n);
    return n;
  }

  node(id: number): NodeProc {
    const n = this.nodes.get(id);
    if (!n) throw new TypeError(`no node ${id} in this cluster`);
    return n;
  }

  address(id: number): string {
    return this.node(id).address;
  }

  isRunning(id: number): boolean {
    const c = this.node(id).child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Ids of the nodes whose process runs. */
  running(): number[] {
    return [...this.nodes.keys()].filter((id) => this.isRunning(id));
  }

  /** Addresses of the given nodes (default: every node, running or not). */
  endpoints(ids: readonly number[] = [...this.nodes.keys()]): string[] {
    return ids.map((id) => this.address(id));
  }

  /** `1=127.0.0.1:p1,2=...` of the initial members. */
  memberSpec(ids: readonly number[] = this.initialMembers): string {
    return ids.map((id) => `${id}=${this.address(id)}`).join(',');
  }

  /** The command line of node `id` (without the node binary). */
  args(id: number): string[] {
    const n = this.node(id);
    const o = this.opts;
    const args = [
      '--id', String(id),
      '--listen', n.address,
      '--data', n.dataDir,
      n.mode === 'initial' ? '--initial-cluster' : '--join', this.memberSpec(),
      '--tick-ms', String(o.tickMs ?? 20),
      '--log-level', o.logLevel ?? 'info',
    ];
    if (o.electionTicks !== undefined) args.push('--election-ticks', String(o.electionTicks));
    if (o.snapshotEntries !== undefined) args.push('--snapshot-entries', String(o.snapshotEntries));
    if (o.clusterId !== undefined) args.push('--cluster-id', o.clusterId);
    if (!o.schedule) args.push('--no-schedule');
    args.push(...(o.extraArgs ?? []));
    return args;
  }

  private spawn(id: number): void {
    const n = this.node(id);
    if (this.isRunning(id)) throw new Error(`node ${id} is already running`);
    const args = this.args(id);
    n.starts++;
    appendFileSync(n.logPath, `--- harness ${new Date().toISOString()}: start #${n.starts} of node ${id}: kvd ${args.join(' ')}\n`);
    n.logOffsetAtStart = statSync(n.logPath).size;
    const fd = openSync(n.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [KVD_BIN, ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd); // the child has its own copy
    }
    n.child = child;
    n.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        try {
          appendFileSync(n.logPath, `--- harness ${new Date().toISOString()}: node ${id} (pid ${child.pid}) exited: code ${code} signal ${signal}\n`);
        } catch {
          // the directory is gone (cleanup): nothing to annotate
        }
        resolveExit({ code, signal });
      });
    });
  }

  /** Sends `signal` to node `id` and waits until the process is gone. */
  async kill(id: number, signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL', timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const n = this.node(id);
    if (!this.isRunning(id)) throw new Error(`node ${id} is not running`);
    n.child!.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`node ${id} did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs);
    });
    try {
      return await Promise.race([n.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts node `id` again from its data directory; waits until it answers (Admin). */
  async restart(id: number): Promise<void> {
    this.spawn(id);
    await this.waitListening(id);
  }

  /** Waits until node `id` answers Admin calls; fails at once if its process exits. */
  async waitListening(id: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(
      `node ${id} to answer on ${this.address(id)}`,
      async () => {
        if (!this.isRunning(id)) throw new GiveUp(`node ${id} exited while starting; its log ends with:\n${this.logTail(id, 15)}`);
        await rawCall(this.address(id), 'Admin', 'clusterStatus', {}, 1_000);
        return true;
      },
      timeoutMs,
    );
  }

  /** Starts a new, empty node with --join (the initial members as the address book). */
  async addNode(id: number): Promise<NodeProc> {
    if (this.nodes.has(id)) throw new TypeError(`node ${id} exists already`);
    const n = this.declare(id, await freePort(), 'join');
    this.spawn(id);
    await this.waitListening(id);
    return n;
  }

  // ---------------------------------------------------------------------------------------------
  // Status

  /** Admin.RangeStatus of `rangeId` as node `id` sees it. */
  rangeStatus(id: number, rangeId = 1, timeoutMs = 1_000): Promise<RangeStatusMsg> {
    return rawCall<RangeStatusMsg>(this.address(id), 'Admin', 'rangeStatus', { rangeId }, timeoutMs);
  }

  /**
   * The node that leads `rangeId` by its own account (it reports itself as leader), among the
   * running nodes; with two claimants (a deposed leader that has not heard yet), the higher term.
   */
  async leader(rangeId = 1): Promise<number | undefined> {
    const views = await Promise.all(
      this.running().map(async (id) => {
        try {
          return { id, st: await this.rangeStatus(id, rangeId) };
        } catch {
          return undefined;
        }
      }),
    );
    let best: { id: number; term: number } | undefined;
    for (const v of views) {
      if (v && v.st.leaderNodeId === v.id && (!best || v.st.term > best.term)) best = { id: v.id, term: v.st.term };
    }
    return best?.id;
  }

  /** Waits until a running node leads (and is not in `exclude`). */
  waitForLeader(opts: { exclude?: readonly number[]; timeoutMs?: number; rangeId?: number } = {}): Promise<number> {
    return waitFor(
      `a leader of range ${opts.rangeId ?? 1}${opts.exclude?.length ? ` other than ${opts.exclude.join(',')}` : ''}`,
      async () => {
        const l = await this.leader(opts.rangeId);
        return l !== undefined && !(opts.exclude ?? []).includes(l) ? l : undefined;
      },
      opts.timeoutMs ?? 30_000,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Logs

  logText(id: number): string {
    const p = this.node(id).logPath;
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  /** The log lines written by the current (or last) process of node `id`. */
  logSinceStart(id: number): string {
    const n = this.node(id);
    if (!existsSync(n.logPath)) return '';
    return readFileSync(n.logPath).subarray(n.logOffsetAtStart).toString('utf8');
  }

  logTail(id: number, lines = 40): string {
    const all = this.logText(id).split('\n');
    if (all[all.length - 1] === '') all.pop();
    return all.slice(-lines).join('\n');
  }

  /** The tail of every node's log, for a failure report. */
  describe(lines = 40): string {
    const parts = [`cluster '${this.opts.name}' in ${this.dir}`];
    for (const id of this.nodes.keys()) {
      parts.push(`----- node ${id} (${this.address(id)}, ${this.isRunning(id) ? 'running' : 'not running'}): last ${lines} log lines -----`);
      parts.push(this.logTail(id, lines));
    }
    return parts.join('\n');
  }

  // ---------------------------------------------------------------------------------------------
  // Cleanup

  /** SIGKILLs every child and removes the temporary directory (kept if KV_IT_KEEP=1). */
  async destroy(): Promise<void> {
    live.delete(this);
    const exits: Array<Promise<unknown>> = [];
    for (const n of this.nodes.values()) {
      if (n.child && n.child.exitCode === null && n.child.signalCode === null) {
        n.child.kill('SIGKILL');
        exits.push(n.exited);
      }
    }
    await Promise.all(exits);
    if (process.env.KV_IT_KEEP === '1' || this.keepForInspection) {
      process.stderr.write(`integration: kept ${this.dir} (${this.keepForInspection ? 'the test failed' : 'KV_IT_KEEP=1'})\n`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Destroys every cluster still alive (afterEach / afterAll). */
export async function cleanupClusters(): Promise<void> {
  await Promise.all([...live].map((c) => c.destroy()));
}

/** The log tails of every cluster still alive. */
export function describeClusters(lines = 40): string {
  return [...live].map((c) => c.describe(lines)).join('\n');
}

// Last resort if the jest worker exits without running afterAll: no kvd outlives it.
process.once('exit', () => {
  for (const c of live) {
    for (const n of c.nodes.values()) {
      if (n.child && n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
    }
  }
});

/** Runs `work`; if it fails, appends the tail of every live node's log to the error (for beforeAll). */
export async function withLogs<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const logs = describeClusters();
    if (logs) e.message += `\n\n===== kvd logs at the failure =====\n${logs}`;
    throw e;
  }
}

/**
 * A jest test with its own time bound (`timeoutMs`; the body gets 5 s less, so that our error,
 * with the log tails, is what jest reports) that appends the tail of every live node's log to
 * the error when it fails.
 */
export function clusterTest(name: string, body: () => Promise<void>, timeoutMs: number): void {
  test(
    name,
    async () => {
      const budget = timeoutMs - 5_000;
      let timer: NodeJS.Timeout | undefined;
      const overtime = new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error(`test did not finish within ${budget} ms`)), budget);
      });
      try {
        await Promise.race([body(), overtime]);
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        const logs = describeClusters();
        if (logs) e.message += `\n\n===== kvd logs at the failure =====\n${logs}`;
        // The whole logs and data directories stay for a post-mortem (their path is printed).
        for (const c of live) c.keepForInspection = true;
        throw e;
      } finally {
        clearTimeout(timer);
      }
    },
    timeoutMs,
  );
}
