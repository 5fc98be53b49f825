// kvctl: the RangeKV command line. Exit codes: 0 success, 1 key not found (get) or CAS condition
// not met, 2 usage error,
// 3 cluster error (unavailable, indeterminate write, server refused). `--json` prints one JSON
// document per command on stdout. This module runs when loaded (bin/kvctl requires it).

import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';
import type { RangeDescriptorMsg } from '../api/messages';
import { AdminClient, ClientError, RangeStatus, Consistency, IndeterminateError, InvalidRequestError, KvClient, UnavailableError } from '../client';
import { NodeInfoMsg, PlacementClient, RangeInfoMsg } from '../client/placement-client';

const EXIT_OK = 0;
const EXIT_NOT_FOUND = 1;
const EXIT_USAGE = 2;
const EXIT_CLUSTER = 3;

interface GlobalOptions {
  endpoints: string;
  json: boolean;
  timeoutMs: number;
}

class UsageError extends Error {}

function parseTimeout(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--timeout-ms must be a positive integer, got '${v}'`);
  return n;
}

/** A value from the argument, `@file`, or `-` (stdin). */
function readValue(arg: string | undefined, opts: { file?: string }): Buffer {
  if (opts.file !== undefined) {
    if (arg !== undefined) throw new UsageError('give the value either as an argument or with --file, not both');
    return readFileSync(opts.file);
  }
  if (arg === undefined) throw new UsageError('missing VALUE (give it as an argument, "-" for stdin, or --file PATH)');
  if (arg === '-') return readFileSync(0);
  return Buffer.from(arg);
}

function show(buf: Buffer): string {
  return buf.toString('utf8');
}

/** A key for a table: as is when every byte is printable ASCII, else `0x` and its hex. */
function printableKey(buf: Buffer): string {
  return buf.every((b) => b >= 0x20 && b <= 0x7e) ? buf.toString('latin1') : `0x${buf.toString('hex')}`;
}

/** A range bound for humans: the empty start key is `-inf`, the empty end key `+inf`. */
function bound(buf: Buffer, side: 'start' | 'end'): string {
  return buf.length > 0 ? printableKey(buf) : side === 'start' ? '-inf' : '+inf';
}

/** Bytes as `512 B`, `12.3 KiB`, `4.0 MiB`, ... */
function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A duration in milliseconds as `850ms` or `12.4s`. */
function age(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/** NodeState of placement.proto. */
const NODE_STATE_NAMES: Record<number, string> = { 1: 'up', 2: 'suspect', 3: 'down', 4: 'draining' };
const ROLE_LEARNER = 2;

/** Rows as columns padded to their widest cell (the first row is the header). */
function tableLines(rows: readonly string[][]): string[] {
  const widths = rows[0]!.map((_c, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** A key in --json output: its hex (exact) and its printable form (as in tables). */
function keyJson(buf: Buffer): { hex: string; printable: string } {
  return { hex: buf.toString('hex'), printable: printableKey(buf) };
}

function descriptorJson(d: RangeDescriptorMsg): object {
  return {
    rangeId: d.rangeId,
    startKey: keyJson(d.startKey),
    endKey: keyJson(d.endKey),
    epoch: { version: d.epoch?.version ?? 0, confVersion: d.epoch?.confVersion ?? 0 },
    replicas: d.replicas.map((r) => ({ nodeId: r.nodeId, role: r.role === ROLE_LEARNER ? 'learner' : 'voter' })),
  };
}

function rangeInfoJson(r: RangeInfoMsg): object {
  return {
    ...descriptorJson(r.descriptor),
    leader: r.leader && r.leader.nodeId !== 0 ? { nodeId: r.leader.nodeId, address: r.leader.address } : null,
    approximateBytes: r.approximateBytes,
    approximateKeys: r.approximateKeys,
    writesPerSecond: r.writesPerSecond,
    readsPerSecond: r.readsPerSecond,
  };
}

function nodeInfoJson(n: NodeInfoMsg): object {
  return {
    nodeId: n.nodeId,
    address: n.address,
    zone: n.zone,
    state: NODE_STATE_NAMES[n.state] ?? 'unknown',
    lastHeartbeatAgeMs: n.lastHeartbeatAgeMs,
    replicaCount: n.replicaCount,
    leaderCount: n.leaderCount,
  };
}

/** Whether `key` lies in [start, end) of `d` (an empty end key is the end of the keyspace). */
function holds(d: RangeDescriptorMsg, key: Buffer): boolean {
  return Buffer.compare(key, d.startKey) >= 0 && (d.endKey.length === 0 || Buffer.compare(key, d.endKey) < 0);
}

async function run(argv: string[]): Promise<number> {
  let exitCode = EXIT_OK;
  const out = (s: string): void => {
    process.stdout.write(s + '\n');
  };
  const program = new Command('kvctl')
    .description('RangeKV command line client')
    .addOption(new Option('--endpoints <list>', 'comma-separated host:port of cluster nodes').env('KV_ENDPOINTS').default('127.0.0.1:7001'))
    .option('--json', 'machine-readable output', false)
    .addOption(new Option('--timeout-ms <ms>', 'deadline of the operation, retries included').default(10_000).argParser(parseTimeout))
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const endpoints = (): string[] => {
    const list = program.opts<GlobalOptions>().endpoints.split(',').map((e) => e.trim()).filter(Boolean);
    if (list.length === 0) throw new UsageError('--endpoints: give at least one host:port');
    return list;
  };
  const client = (): KvClient => new KvClient({ endpoints: endpoints(), deadlineMs: program.opts<GlobalOptions>().timeoutMs });
  const json = (): boolean => program.opts<GlobalOptions>().json;

  program
    .command('put')
    .description('write KEY = VALUE (VALUE "-" reads stdin)')
    .argument('<key>')
    .argument('[value]')
    .option('--file <path>', 'read the value from a file')
    .action(async (key: string, value: string | undefined, opts: { file?: string }) => {
      const c = client();
      try {
        const r = await c.put(key, readValue(value, opts));
        out(json() ? JSON.stringify({ key, version: r.version }) : `OK version=${r.version}`);
      } finally {
        c.close();
      }
    });

  program
    .command('get')
    .description('read KEY (exit code 1 if absent)')
    .argument('<key>')
    .option('--stale', 'read from any replica without a read-index round (may be stale)', false)
    .action(async (key: string, opts: { stale: boolean }) => {
      const c = client();
      try {
        const r = await c.get(key, opts.stale ? Consistency.Stale : Consistency.Linearizable);
        if (json()) out(JSON.stringify({ key, found: r.found, value: r.found ? show(r.value) : null, version: r.version, appliedIndex: r.appliedIndex, node: r.nodeId }));
        else if (r.found) out(show(r.value));
        else process.stderr.write(`kvctl: key '${key}' not found\n`);
        if (!r.found) exitCode = EXIT_NOT_FOUND;
      } finally {
        c.close();
      }
    });

  program
    .command('delete')
    .description('delete KEY')
    .argument('<key>')
    .action(async (key: string) => {
      const c = client();
      try {
        const r = await c.delete(key);
        out(json() ? JSON.stringify({ key, deleted: r.deleted, version: r.version }) : r.deleted ? `deleted version=${r.version}` : 'not found (nothing deleted)');
      } finally {
        c.close();
      }
    });

  program
    .command('scan')
    .description('list keys in [START, END) in order')
    .argument('[start]', 'inclusive start key', '')
    .argument('[end]', 'exclusive end key ("" = end of keyspace)', '')
    .option('--limit <n>', 'at most N keys (0 = all)', '0')
    .option('--keys-only', 'print keys only', false)
    .option('--stale', 'read from any replica (may be stale)', false)
    .action(async (start: string, end: string, opts: { limit: string; keysOnly: boolean; stale: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 0) throw new UsageError(`--limit must be a non-negative integer, got '${opts.limit}'`);
      const c = client();
      try {
        for await (const kv of c.scan(start, end, { limit, consistency: opts.stale ? Consistency.Stale : Consistency.Linearizable })) {
          if (json()) out(JSON.stringify({ key: show(kv.key), value: opts.keysOnly ? undefined : show(kv.value), version: kv.version }));
          else out(opts.keysOnly ? show(kv.key) : `${show(kv.key)}\t${show(kv.value)}`);
        }
      } finally {
        c.close();
      }
    });

  program
    .command('cas')
    .description('set KEY to NEW only if it holds EXPECTED (see --absent, --version, --delete)')
    .argument('<key>')
    .argument('[expected]', 'the value KEY must hold')
    .argument('[new]', 'the new value')
    .option('--absent', 'KEY must not exist (then give only NEW)', false)
    .option('--version <n>', 'KEY must be at this version (then give only NEW)')
    .option('--delete', 'delete KEY instead of writing NEW', false)
    .action(async (key: string, a: string | undefined, b: string | undefined, opts: { absent: boolean; version?: string; delete: boolean }) => {
      let expected: { value: Buffer } | { absent: true } | { version: number };
      let next: string | undefined;
      if (opts.absent || opts.version !== undefined) {
        if (opts.absent && opts.version !== undefined) throw new UsageError('--absent and --version exclude each other');
        if (b !== undefined) throw new UsageError('with --absent or --version, give KEY and NEW only');
        if (opts.version !== undefined) {
          const v = Number(opts.version);
          if (!Number.isInteger(v) || v < 0) throw new UsageError(`--version must be a non-negative integer, got '${opts.version}'`);
          expected = { version: v };
        } else expected = { absent: true };
        next = a;
      } else {
        if (a === undefined) throw new UsageError('missing EXPECTED (or use --absent / --version)');
        expected = { value: Buffer.from(a) };
        next = b;
      }
      if (opts.delete && next !== undefined) throw new UsageError('--delete takes no NEW value');
      if (!opts.delete && next === undefined) throw new UsageError('missing NEW value (or use --delete)');
      const c = client();
      try {
        const r = await c.cas(key, expected, opts.delete ? null : Buffer.from(next as string));
        if (json()) {
          out(JSON.stringify({ key, succeeded: r.succeeded, version: r.version, previous: r.previous ? { value: show(r.previous.value), version: r.previous.version } : null }));
        } else {
          out(r.succeeded ? `OK version=${r.version}` : `FAILED: current ${r.previous ? `'${show(r.previous.value)}' version=${r.previous.version}` : 'absent'}`);
        }
        // Like a not-found get: the operation ran, the condition did not hold.
        if (!r.succeeded) exitCode = EXIT_NOT_FOUND;
      } finally {
        c.close();
      }
    });

  const admin = (): AdminClient => new AdminClient(endpoints(), program.opts<GlobalOptions>().timeoutMs);
  const id = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
  const roleName = (r: number): string => (r === 1 ? 'voter' : r === 2 ? 'learner' : 'unknown');
  const printDescriptor = (d: { rangeId: number; replicas: Array<{ nodeId: number; role: number }> }): void => {
    if (json()) out(JSON.stringify(d, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('utf8') : v)));
    else out(`range ${d.rangeId}: replicas ${d.replicas.map((r) => `${r.nodeId}(${roleName(r.role)})`).join(' ')}`);
  };

  program
    .command('status')
    .description('cluster status: nodes and ranges as the endpoints see them')
    .action(async () => {
      const a = admin();
      try {
        const views = await a.clusterStatus();
        const ok = views.filter((v) => v.status);
        if (json()) {
          out(JSON.stringify(views));
        } else {
          for (const v of views) if (v.error) out(`endpoint ${v.endpoint}: unreachable (${v.error})`);
          const first = ok[0]?.status;
          if (first) {
            out(`cluster ${first.clusterId}`);
            // Per range, the leader's view (it has the replicas' progress), else any view.
            const byRange = new Map<number, RangeStatus>();
            for (const view of ok) {
              for (const r of view.status!.ranges) {
                const cur = byRange.get(r.descriptor.rangeId);
                if (!cur || (cur.progress.length === 0 && r.progress.length > 0)) byRange.set(r.descriptor.rangeId, r);
              }
            }
            const rows = [['RANGE', 'LEADER', 'TERM', 'COMMIT', 'APPLIED', 'REPLICAS']];
            for (const r of [...byRange.values()].sort((x, y) => x.descriptor.rangeId - y.descriptor.rangeId)) {
              rows.push([
                String(r.descriptor.rangeId),
                String(r.leaderNodeId || '-'),
                String(r.term),
                String(r.commitIndex),
                String(r.appliedIndex),
                r.progress.length > 0
                  ? r.progress.map((p) => `${p.nodeId}(${roleName(p.role)},match=${p.matchIndex},${p.state})`).join(' ')
                  : r.descriptor.replicas.map((x) => `${x.nodeId}(${roleName(x.role)})`).join(' '),
              ]);
            }
            for (const line of tableLines(rows)) out(line);
          }
          // Fault injection left on is worth a loud line (kvd --failpoints, tests only).
          for (const v of ok) {
            const fp = v.status!.transportFailpoint;
            if (fp?.active) {
              const to = fp.peerNodeIds.length > 0 ? `to nodes ${fp.peerNodeIds.join(',')}` : 'to every peer';
              out(
                `FAILPOINT on ${v.endpoint}: outgoing Raft messages ${to} delayed ${fp.delayMs}±${fp.jitterMs} ms, dropped with p=${fp.dropProbability} (${fp.delayedMessages} delayed, ${fp.droppedMessages} dropped so far)`,
              );
            }
          }
        }
        if (ok.length === 0) exitCode = EXIT_CLUSTER;
      } finally {
        a.close();
      }
    });

  program
    .command('transfer-leader')
    .description('move the leadership of RANGE to voter NODE')
    .argument('<range>')
    .argument('<node>')
    .action(async (range: string, node: string) => {
      const a = admin();
      try {
        printDescriptor(await a.transferLeader(id('RANGE', range), id('NODE', node)));
      } finally {
        a.close();
      }
    });

  const rangeCmd = program.command('range').description('membership of a range');
  rangeCmd
    .command('add-learner')
    .description('add NODE (reachable at --address) to RANGE as a non-voting learner')
    .argument('<range>')
    .argument('<node>')
    .requiredOption('--address <host:port>', 'the new node\'s address')
    .action(async (range: string, node: string, opts: { address: string }) => {
      const a = admin();
      try {
        printDescriptor(await a.addLearner(id('RANGE', range), id('NODE', node), opts.address));
      } finally {
        a.close();
      }
    });
  rangeCmd
    .command('promote')
    .description('promote learner NODE of RANGE to voter')
    .argument('<range>')
    .argument('<node>')
    .action(async (range: string, node: string) => {
      const a = admin();
      try {
        printDescriptor(await a.promoteLearner(id('RANGE', range), id('NODE', node)));
      } finally {
        a.close();
      }
    });
  rangeCmd
    .command('remove-replica')
    .description('remove NODE from RANGE')
    .argument('<range>')
    .argument('<node>')
    .action(async (range: string, node: string) => {
      const a = admin();
      try {
        printDescriptor(await a.removeReplica(id('RANGE', range), id('NODE', node)));
      } finally {
        a.close();
      }
    });

  const placement = (): PlacementClient => new PlacementClient({ endpoints: endpoints(), deadlineMs: program.opts<GlobalOptions>().timeoutMs });

  program
    .command('ranges')
    .description('every range in key order, as placement knows it: bounds, epoch, leader, replicas, size and load')
    .action(async () => {
      const p = placement();
      try {
        const ranges = await p.listRanges();
        if (json()) {
          out(JSON.stringify(ranges.map(rangeInfoJson)));
        } else {
          const rows = [['RANGE', 'START', 'END', 'VERSION', 'LEADER', 'REPLICAS', 'KEYS', 'SIZE', 'W/S', 'R/S']];
          for (const r of ranges) {
            const d = r.descriptor;
            rows.push([
              String(d.rangeId),
              bound(d.startKey, 'start'),
              bound(d.endKey, 'end'),
              `${d.epoch?.version ?? 0}.${d.epoch?.confVersion ?? 0}`,
              r.leader && r.leader.nodeId !== 0 ? String(r.leader.nodeId) : '-',
              d.replicas.map((x) => `${x.nodeId}${x.role === ROLE_LEARNER ? '(L)' : ''}`).join(','),
              String(r.approximateKeys),
              humanBytes(r.approximateBytes),
              r.writesPerSecond.toFixed(1),
              r.readsPerSecond.toFixed(1),
            ]);
          }
          for (const line of tableLines(rows)) out(line);
        }
      } finally {
        p.close();
      }
    });

  program
    .command('nodes')
    .description('every node placement knows: address, zone, liveness, replicas and leaders')
    .action(async () => {
      const p = placement();
      try {
        const nodes = [...(await p.listNodes())].sort((a, b) => a.nodeId - b.nodeId);
        if (json()) {
          out(JSON.stringify(nodes.map(nodeInfoJson)));
        } else {
          const rows = [['NODE', 'ADDRESS', 'ZONE', 'STATE', 'LAST-HEARTBEAT', 'REPLICAS', 'LEADERS']];
          for (const n of nodes) {
            const state = NODE_STATE_NAMES[n.state] ?? 'unknown';
            rows.push([
              String(n.nodeId),
              n.address || '-',
              n.zone || '-',
              state,
              // Placement answers 0 for a node it has not heard from since it became leader (then not up).
              n.lastHeartbeatAgeMs === 0 && state !== 'up' ? '-' : age(n.lastHeartbeatAgeMs),
              String(n.replicaCount),
              String(n.leaderCount),
            ]);
          }
          for (const line of tableLines(rows)) out(line);
        }
      } finally {
        p.close();
      }
    });

  program
    .command('split')
    .description('split the range holding KEY at KEY: it keeps the keys below KEY, a new range takes the rest')
    .argument('<key>', 'the first key of the new range (not the start of its range)')
    .action(async (key: string) => {
      if (key === '') throw new UsageError('KEY must not be empty (the empty key starts the keyspace; no range can split there)');
      const splitKey = Buffer.from(key);
      const p = placement();
      const a = admin();
      try {
        let target: { descriptor: RangeDescriptorMsg; leaderAddress?: string } | undefined;
        const info = await p.lookupRange(splitKey);
        if (info) {
          target = { descriptor: info.descriptor, leaderAddress: info.leader?.address || undefined };
        } else {
          // Placement has no range for the key yet (no leader has reported it): ask the nodes.
          // Among their views, the newest descriptor of the range holding the key; its leader's address.
          for (const view of await a.clusterStatus()) {
            for (const r of view.status?.ranges ?? []) {
              const d = r.descriptor;
              if (d.rangeId === 0 || !holds(d, splitKey)) continue; // range 0 is the meta range (its own keyspace)
              if (target && (target.descriptor.epoch?.version ?? 0) >= (d.epoch?.version ?? 0)) continue;
              const leader = view.status!.nodes.find((n) => n.nodeId === r.leaderNodeId && r.leaderNodeId !== 0);
              target = { descriptor: d, leaderAddress: leader?.address || undefined };
            }
          }
        }
        if (!target) throw new UnavailableError(`no range holding key '${printableKey(splitKey)}' found: placement has none and no endpoint hosts one`);
        const d = target.descriptor;
        const res = await a.splitRange(d.rangeId, splitKey, d.epoch?.version || undefined, target.leaderAddress);
        if (json()) {
          out(JSON.stringify({ splitKey: keyJson(splitKey), left: descriptorJson(res.left), right: res.right ? descriptorJson(res.right) : null }));
        } else {
          const k = printableKey(splitKey);
          const end = res.right ? res.right.endKey : d.endKey;
          out(
            `split range ${res.left.rangeId} at ${k}: left ${res.left.rangeId} [${bound(res.left.startKey, 'start')}, ${k}) ` +
              `right ${res.right?.rangeId ?? '?'} [${k}, ${bound(end, 'end')})`,
          );
        }
      } finally {
        a.close();
        p.close();
      }
    });

  const node = program.command('node').description('node operations through placement: drain, remove');
  node
    .command('drain')
    .description('move every replica and leader off a node (the scheduler does it, safely, a few at a time); waits with a progress bar')
    .argument('<node-id>', 'the node to drain')
    .option('--cancel', 'stop draining: the node takes replicas again')
    .option('--no-wait', 'return at once (run it again to see what is left)')
    .addOption(new Option('--wait-timeout-s <s>', 'give up waiting after this long, seconds').default('600'))
    .action(async (idArg: string, opts: { cancel?: boolean; wait: boolean; waitTimeoutS: string }) => {
      const nodeId = Number(idArg);
      if (!Number.isSafeInteger(nodeId) || nodeId <= 0) throw new UsageError(`node-id must be a positive integer, got '${idArg}'`);
      const timeoutS = Number(opts.waitTimeoutS);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError(`--wait-timeout-s must be a positive number, got '${opts.waitTimeoutS}'`);
      const p = placement();
      try {
        let left = await p.drainNode(nodeId, opts.cancel === true);
        if (opts.cancel || !opts.wait || left.done) {
          if (json()) out(JSON.stringify({ nodeId, draining: !opts.cancel, ...left }));
          else out(opts.cancel ? `node ${nodeId}: drain cancelled (${left.replicas} replicas, ${left.leaders} leaders on it)` : `node ${nodeId}: draining; ${left.replicas} replicas and ${left.leaders} leaders left${left.done ? ' (done: it can be removed)' : ''}`);
          return;
        }
        const total = left.replicas + left.leaders;
        const bar = json() ? undefined : new SingleBar({ format: `node ${nodeId} drain [{bar}] {value}/{total} moved | {replicas} replicas, {leaders} leaders left | {duration}s`, stream: process.stderr });
        bar?.start(total, 0, { replicas: left.replicas, leaders: left.leaders });
        const deadline = Date.now() + timeoutS * 1000;
        while (!left.done && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          left = await p.drainNode(nodeId);
          bar?.update(Math.max(0, total - left.replicas - left.leaders), { replicas: left.replicas, leaders: left.leaders });
        }
        bar?.stop();
        if (json()) out(JSON.stringify({ nodeId, draining: true, ...left }));
        else out(left.done ? `node ${nodeId} drained: it holds no replica; stop it and run kvctl node remove ${nodeId}` : `node ${nodeId}: ${left.replicas} replicas and ${left.leaders} leaders still on it after ${timeoutS}s`);
        if (!left.done) exitCode = EXIT_CLUSTER;
      } finally {
        p.close();
      }
    });
  node
    .command('remove')
    .description('forget a drained node: placement gives it nothing again and ignores its heartbeats')
    .argument('<node-id>', 'the node to remove')
    .action(async (idArg: string) => {
      const nodeId = Number(idArg);
      if (!Number.isSafeInteger(nodeId) || nodeId <= 0) throw new UsageError(`node-id must be a positive integer, got '${idArg}'`);
      const p = placement();
      try {
        await p.removeNode(nodeId);
        if (json()) out(JSON.stringify({ nodeId, removed: true }));
        else out(`node ${nodeId} removed`);
      } finally {
        p.close();
      }
    });

  (await import('./bench')).addBenchCommand(program);

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; a missing command (commander shows the help) is a usage error.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`kvctl: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof InvalidRequestError) {
      process.stderr.write(`kvctl: invalid request: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof IndeterminateError) {
      process.stderr.write(`kvctl: outcome unknown: ${err.message}\n`);
      return EXIT_CLUSTER;
    }
    if (err instanceof ClientError) {
      process.stderr.write(`kvctl: ${err.message}\n`);
      return EXIT_CLUSTER;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES') {
      process.stderr.write(`kvctl: ${e.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  return exitCode;
}

run(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`kvctl: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT_CLUSTER;
  },
);
