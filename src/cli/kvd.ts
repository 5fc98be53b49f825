// kvd: the RangeKV server. One process is one node: it hosts range replicas in one LevelDB and
// serves the KV and internal Raft services on one gRPC port.
//
// Configuration precedence: flags, then KV_* environment variables, then defaults.
// This module starts the server when loaded (bin/kvd requires it).

import { createServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { AdminService, DEFAULT_LIMITS, KvService, PlacementService, descriptorToMsg } from '../api';
import { AdminClient } from '../client/admin-client';
import { PlacementClient } from '../client/placement-client';
import { DEFAULT_SCHEDULER_CONFIG, HeartbeatReporter, Placement, SchedulerDriver, resolveSchedulerConfig, validateRules } from '../placement';
import type { Heartbeat, OperatorStep, RangeInfo } from '../placement';
import { Node } from '../node';
import { DEFAULT_ROW_CACHE_BYTES, StorageError } from '../storage';
import { GRPC_COMMON_OPTIONS, GrpcTransport, TransportFailpoints, raftServerOptions } from '../transport';

interface KvdOptions {
  id: number;
  listen: string;
  advertise?: string;
  data: string;
  initialCluster?: string;
  join?: string;
  clusterId: string;
  zone: string;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotEntries: number;
  compactionSlackEntries: number;
  maxValueBytes: number;
  rowCacheMb: number;
  logLevel: string;
  failpoints: boolean;
  metaReplicas: number;
  placementHeartbeatMs: number;
  replicas: number;
  nodeDownAfterMs: number;
  replaceDownAfterMs: number;
  splitKeys: number;
  splitBytes: number;
  splitQps: number;
  scheduleIntervalMs: number;
  schedule: boolean;
  learners: 'none' | 'zones-without-voter';
  voterZones?: string;
  replicaGcSilentMs: number;
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}

function hostPort(name: string) {
  return (v: string): string => {
    const m = /^(?:[^:\s\[\]]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(v);
    if (!m) throw new InvalidArgumentError(`${name} must be HOST:PORT, got '${v}'`);
    const port = Number(m[1]);
    if (port < 1 || port > 65535) throw new InvalidArgumentError(`${name}: port must be 1..65535, got ${port}`);
    return v;
  };
}

/** Fails fast (before the data directory is touched) when the listen address cannot be bound. */
async function checkListenable(address: string): Promise<void> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/** Parses "1=127.0.0.1:7001,2=127.0.0.1:7002" into a map. */
export function parseInitialCluster(spec: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)=(.+)$/.exec(part);
    if (!m) throw new InvalidArgumentError(`--initial-cluster: '${part}' is not ID=HOST:PORT`);
    const id = Number(m[1]);
    if (!Number.isInteger(id) || id <= 0) throw new InvalidArgumentError(`--initial-cluster: node id '${m[1]}' must be a positive integer`);
    if (out.has(id)) throw new InvalidArgumentError(`--initial-cluster: node id ${id} appears twice`);
    out.set(id, hostPort(`--initial-cluster address of node ${id}`)(m[2] as string));
  }
  if (out.size === 0) throw new InvalidArgumentError('--initial-cluster: no members given');
  return out;
}

function program(): Command {
  return new Command('kvd')
    .description('RangeKV server: one node of a range-sharded, Raft-replicated key-value store')
    .addOption(new Option('--id <n>', 'this node\'s id (positive integer)').env('KV_ID').argParser(positiveInt('--id')).makeOptionMandatory())
    .addOption(new Option('--listen <host:port>', 'address the gRPC server binds').env('KV_LISTEN').default('127.0.0.1:7001').argParser(hostPort('--listen')))
    .addOption(new Option('--advertise <host:port>', 'address other nodes and clients use (default: --listen)').env('KV_ADVERTISE').argParser(hostPort('--advertise')))
    .addOption(new Option('--data <dir>', 'data directory (one LevelDB)').env('KV_DATA').makeOptionMandatory())
    .addOption(
      new Option('--initial-cluster <id=host:port,...>', 'members of a new cluster (bootstraps the first range); also the address book on restart').env(
        'KV_INITIAL_CLUSTER',
      ),
    )
    .addOption(
      new Option('--join <id=host:port,...>', 'members of an existing cluster to join: start empty and wait to be added (kvctl range add-learner)').env(
        'KV_JOIN',
      ),
    )
    .addOption(new Option('--cluster-id <name>', 'cluster identity recorded in the data directory').env('KV_CLUSTER_ID').default('rangekv'))
    .addOption(new Option('--zone <name>', 'zone (datacenter) of this node').env('KV_ZONE').default('default'))
    .addOption(new Option('--tick-ms <ms>', 'raft tick interval, milliseconds').env('KV_TICK_MS').default(100).argParser(positiveInt('--tick-ms')))
    .addOption(new Option('--election-ticks <n>', 'election timeout, in ticks (randomised up to 2x)').env('KV_ELECTION_TICKS').default(10).argParser(positiveInt('--election-ticks')))
    .addOption(new Option('--heartbeat-ticks <n>', 'leader heartbeat interval, in ticks').env('KV_HEARTBEAT_TICKS').default(1).argParser(positiveInt('--heartbeat-ticks')))
    .addOption(
      new Option('--snapshot-entries <n>', 'take a snapshot of a range after this many applied entries, then compact its log (see --compaction-slack-entries)').env('KV_SNAPSHOT_ENTRIES').default(10_000).argParser(positiveInt('--snapshot-entries')),
    )
    .addOption(
      new Option('--compaction-slack-entries <n>', 'entries kept in the log behind a snapshot, for followers that lag a little').env('KV_COMPACTION_SLACK_ENTRIES').default(1_000).argParser(positiveInt('--compaction-slack-entries')),
    )
    .addOption(
      new Option('--max-value-bytes <n>', 'largest value accepted, bytes').env('KV_MAX_VALUE_BYTES').default(DEFAULT_LIMITS.maxValueBytes).argParser(positiveInt('--max-value-bytes')),
    )
    .addOption(
      new Option('--row-cache-mb <MiB>', 'memory for recently read values, MiB (read again without a LevelDB read); 0 turns it off').env('KV_ROW_CACHE_MB').default(DEFAULT_ROW_CACHE_BYTES / (1024 * 1024)).argParser(nonNegativeInt('--row-cache-mb')),
    )
    .addOption(
      new Option('--meta-replicas <n>', 'voters of the meta range (the placement service): the first N members of --initial-cluster by id (3 or 5)').env('KV_META_REPLICAS').default(3).argParser(positiveInt('--meta-replicas')),
    )
    .addOption(
      new Option('--placement-heartbeat-ms <ms>', 'interval of this node\'s heartbeats to placement, milliseconds').env('KV_PLACEMENT_HEARTBEAT_MS').default(1000).argParser(positiveInt('--placement-heartbeat-ms')),
    )
    .addOption(new Option('--replicas <n>', 'voters per range the scheduler keeps').env('KV_REPLICAS').default(3).argParser(positiveInt('--replicas')))
    .addOption(
      new Option('--node-down-after-ms <ms>', 'placement marks a node down after this long without a heartbeat, milliseconds').env('KV_NODE_DOWN_AFTER_MS').default(30_000).argParser(positiveInt('--node-down-after-ms')),
    )
    .addOption(
      new Option('--replace-down-after-ms <ms>', 'the scheduler replaces the replicas of a node down this long, milliseconds').env('KV_REPLACE_DOWN_AFTER_MS').default(DEFAULT_SCHEDULER_CONFIG.downReplaceAfterMs).argParser(positiveInt('--replace-down-after-ms')),
    )
    .addOption(new Option('--split-keys <n>', 'the scheduler splits a range holding this many keys').env('KV_SPLIT_KEYS').default(DEFAULT_SCHEDULER_CONFIG.splitKeys).argParser(positiveInt('--split-keys')))
    .addOption(
      new Option('--split-bytes <n>', 'the scheduler splits a range this large on disk, bytes').env('KV_SPLIT_BYTES').default(DEFAULT_SCHEDULER_CONFIG.splitSizeBytes).argParser(positiveInt('--split-bytes')),
    )
    .addOption(
      new Option('--split-qps <n>', 'the scheduler splits a range serving this many reads and writes per second; 0: never by load').env('KV_SPLIT_QPS').default(DEFAULT_SCHEDULER_CONFIG.splitQps).argParser(nonNegativeInt('--split-qps')),
    )
    .addOption(
      new Option('--schedule-interval-ms <ms>', 'interval of the scheduler\'s rounds on the placement leader, milliseconds').env('KV_SCHEDULE_INTERVAL_MS').default(1000).argParser(positiveInt('--schedule-interval-ms')),
    )
    .addOption(
      new Option('--learners <rule>', 'learners the scheduler keeps: none, or one in every zone without a voter of the range (stale reads near clients, a copy to promote on zone failover)').env('KV_LEARNERS').default('none').choices(['none', 'zones-without-voter']),
    )
    .addOption(new Option('--voter-zones <zones>', 'comma-separated zones allowed to hold voters (default: every zone)').env('KV_VOTER_ZONES'))
    .addOption(
      new Option('--replica-gc-silent-ms <ms>', 'a replica that hears from no leader this long asks the range\'s leader whether it is still a member (and is destroyed if not), milliseconds').env('KV_REPLICA_GC_SILENT_MS').default(10_000).argParser(positiveInt('--replica-gc-silent-ms')),
    )
    .addOption(new Option('--no-schedule', 'never run the scheduler on this node (no automatic repair, balancing or splits)').env('KV_NO_SCHEDULE'))
    .addOption(new Option('--log-level <level>', 'pino log level').env('KV_LOG_LEVEL').default('info').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addOption(
      new Option('--failpoints', 'allow fault injection through Admin.SetTransportFailpoint (delay/drop of outgoing Raft messages); for tests only').env('KV_FAILPOINTS').default(false),
    )
    .addHelpText('after', '\nEvery option can also be set by its KV_* environment variable; flags win over the environment.');
}

async function main(argv: string[]): Promise<void> {
  const cmd = program().exitOverride();
  try {
    cmd.parse(argv);
  } catch (err) {
    // Commander already printed its message. Help is a success; anything else is a usage error.
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    throw err;
  }
  const o = cmd.opts<KvdOptions>();
  const log = pino({ level: o.logLevel, base: { svc: 'kvd', pid: process.pid } });

  // Placement rules and scheduler limits: checked before anything is touched.
  const rules = {
    votersPerRange: o.replicas,
    learners: o.learners,
    voterZones: o.voterZones ? o.voterZones.split(',').map((z) => z.trim()).filter(Boolean) : undefined,
  };
  const schedulerConfig = {
    downReplaceAfterMs: o.replaceDownAfterMs,
    splitKeys: o.splitKeys,
    splitSizeBytes: o.splitBytes,
    // 0 turns load-based splits off: no range ever serves that much.
    splitQps: o.splitQps === 0 ? Number.MAX_SAFE_INTEGER : o.splitQps,
  };
  try {
    validateRules(rules);
    resolveSchedulerConfig(schedulerConfig);
  } catch (err) {
    process.stderr.write(`kvd: ${(err as Error).message}\n`);
    process.exit(2);
  }

  if ((o.initialCluster === undefined) === (o.join === undefined)) {
    process.stderr.write('kvd: give exactly one of --initial-cluster (a new cluster, or a restart of one) and --join (a node to be added)\n');
    process.exit(2);
  }
  const bootstrapping = o.initialCluster !== undefined;
  const members = parseInitialCluster((o.initialCluster ?? o.join) as string);
  if (bootstrapping && !members.has(o.id)) {
    process.stderr.write(`kvd: --initial-cluster does not list this node (--id ${o.id}); to add a node to a running cluster use --join\n`);
    process.exit(2);
  }
  const advertise = o.advertise ?? members.get(o.id) ?? o.listen;
  const addresses = new Map(members);
  addresses.set(o.id, advertise);

  try {
    await checkListenable(o.listen);
  } catch (err) {
    process.stderr.write(`kvd: cannot listen on ${o.listen}: ${(err as Error).message}\n`);
    process.exit(1);
  }

  const raftOpts = raftServerOptions();
  const server = new grpc.Server({
    ...GRPC_COMMON_OPTIONS,
    ...raftOpts,
    // Client requests up to the 4 MiB limit are checked by the API (INVALID_ARGUMENT); the
    // transport's batches need a little more.
    'grpc.max_receive_message_length': Math.max(16 * 1024 * 1024, raftOpts['grpc.max_receive_message_length'] ?? 0),
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  let node: Node | undefined;
  const failpoints = o.failpoints ? new TransportFailpoints() : undefined;
  if (failpoints) log.warn('failpoints allowed (--failpoints): Admin.SetTransportFailpoint may delay and drop Raft messages');
  const transport = new GrpcTransport({
    nodeId: o.id,
    clusterId: o.clusterId,
    server,
    resolveAddress: (id) => node?.addressOf(id) ?? addresses.get(id),
    logger: log.child({ layer: 'transport' }),
    failpoints,
  });

  try {
    node = await Node.open({
      nodeId: o.id,
      dataDir: o.data,
      clusterId: o.clusterId,
      rowCacheBytes: o.rowCacheMb * 1024 * 1024,
      transport,
      logger: log,
      tickMs: o.tickMs,
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      snapshotEveryEntries: o.snapshotEntries,
      compactionSlackEntries: o.compactionSlackEntries,
      bootstrap: bootstrapping ? { rangeId: 1, voters: [...members.keys()] } : undefined,
      bootstrapMeta: bootstrapping ? [...members.keys()].sort((a, b) => a - b).slice(0, o.metaReplicas) : undefined,
      staticAddresses: addresses,
    });
  } catch (err) {
    if (err instanceof StorageError) {
      process.stderr.write(`kvd: refusing to start: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }

  const kv = new KvService({
    node,
    addresses: (id) => node.addressOf(id),
    limits: { ...DEFAULT_LIMITS, maxValueBytes: o.maxValueBytes },
    logger: log.child({ layer: 'api' }),
  });
  kv.register(server);
  // Placement: served here when this node leads the meta range, forwarded to its leader otherwise.
  const placementLog = log.child({ layer: 'placement' });
  const placement = new Placement(node, placementLog, { downAfterMs: o.nodeDownAfterMs, suspectAfterMs: Math.min(3_000, o.nodeDownAfterMs) });
  const placementClient = new PlacementClient({
    endpoints: () => [...node.knownAddresses().entries()].filter(([id]) => id !== o.id).map(([, a]) => a),
  });
  new PlacementService({
    node,
    placement,
    logger: placementLog,
    forward: (method, req) => placementClient.call(method, req, { forwarded: true }),
  }).register(server);
  const reporter = new HeartbeatReporter(node, advertise, o.zone);
  const sendHeartbeat = async (hb: Heartbeat): Promise<void> => {
    if (placement.meta.isLeader()) return placement.heartbeat(hb);
    await placementClient.call('heartbeat', {
      nodeId: hb.nodeId,
      address: hb.address,
      zone: hb.zone,
      replicaCount: hb.replicaCount,
      leaderCount: hb.leaderCount,
      ranges: hb.ranges.map((r) => ({ descriptor: descriptorToMsg(r.descriptor), leader: r.leaderNodeId === hb.nodeId, ...r.load })),
    });
  };
  // The scheduler runs wherever the meta leader is; each step goes to the range's leader.
  const executor = {
    async execute(step: OperatorStep, range: RangeInfo, addressOf: (id: number) => string | undefined): Promise<void> {
      const ids = [range.leaderNodeId, ...range.replicas.map((r) => r.nodeId)].filter((id): id is number => id !== undefined);
      const endpoints = [...new Set(ids.map((id) => addressOf(id)).filter((a): a is string => a !== undefined))];
      if (endpoints.length === 0) throw new Error(`no address known for the replicas of range ${range.id}`);
      const admin = new AdminClient(endpoints, 15_000);
      try {
        switch (step.kind) {
          case 'add-learner': {
            const address = addressOf(step.nodeId);
            if (!address) throw new Error(`no address known for node ${step.nodeId}`);
            await admin.addLearner(step.rangeId, step.nodeId, address);
            break;
          }
          case 'promote-learner':
            await admin.promoteLearner(step.rangeId, step.nodeId);
            break;
          case 'remove-replica':
            await admin.removeReplica(step.rangeId, step.nodeId);
            break;
          case 'transfer-leader':
            await admin.transferLeader(step.rangeId, step.toNodeId);
            break;
          case 'split-range':
            await admin.splitRangeAtMiddle(step.rangeId, range.epoch.version, endpoints[0]);
            break;
        }
      } finally {
        admin.close();
      }
    },
  };
  const driver = new SchedulerDriver(placement, executor, {
    rules,
    config: schedulerConfig,
    intervalMs: o.scheduleIntervalMs,
    warmupMs: Math.max(2 * o.placementHeartbeatMs, 2_000),
    logger: placementLog.child({ component: 'scheduler' }),
  });
  if (o.schedule) driver.start();
  // Replica GC: a replica removed from its range while this node was away never applied its
  // removal; it learns of it from the range's leader and is destroyed.
  const gcLog = log.child({ layer: 'replica-gc' });
  const replicaGc = async (): Promise<void> => {
    for (const cand of node.gcCandidates(o.replicaGcSilentMs)) {
      // Each candidate on its own: one that cannot be checked now does not hold up the others.
      try {
        const info = await placementClient.lookupRange(cand.start);
        if (!info || info.descriptor.rangeId !== cand.rangeId || !info.leader?.address) {
          gcLog.info({ rangeId: cand.rangeId, placed: info?.descriptor.rangeId, leader: info?.leader?.nodeId }, 'replica GC: placement names no leader for the range yet');
          continue;
        }
        const admin = new AdminClient([info.leader.address], 5_000);
        try {
          const st = await admin.rangeStatusAt(info.leader.address, cand.rangeId);
          // Only a leader's own descriptor decides (placement's copy may lag).
          if (st.leaderNodeId !== info.leader.nodeId || st.descriptor.replicas.some((r) => r.nodeId === o.id)) {
            gcLog.info({ rangeId: cand.rangeId, asked: info.leader.nodeId, itsLeader: st.leaderNodeId, replicas: st.descriptor.replicas.map((r) => r.nodeId) }, 'replica GC: not shown to be removed');
            continue;
          }
          node.collectReplica(cand.rangeId, cand, { version: st.descriptor.epoch?.version ?? 0, confVersion: st.descriptor.epoch?.confVersion ?? 0 });
        } finally {
          admin.close();
        }
      } catch (err) {
        gcLog.info({ rangeId: cand.rangeId, err: (err as Error).message }, 'replica GC: could not check the range; next round retries');
      }
    }
  };
  let gcRunning = false;
  const gcTimer = setInterval(() => {
    if (gcRunning) return;
    gcRunning = true;
    replicaGc()
      .catch((err: unknown) => gcLog.debug({ err: (err as Error).message }, 'replica GC round failed; next round retries'))
      .finally(() => {
        gcRunning = false;
      });
  }, Math.max(1_000, Math.floor(o.replicaGcSilentMs / 2)));
  gcTimer.unref();
  let wasMetaLeader = false;
  let heartbeatFailures = 0;
  const heartbeatTimer = setInterval(() => {
    const leads = placement.meta.isLeader();
    if (wasMetaLeader !== leads) placement.reset(); // lost it, or just became leader: liveness starts over
    wasMetaLeader = leads;
    reporter
      .build()
      .then(sendHeartbeat)
      .then(
        () => {
          if (heartbeatFailures > 0) placementLog.info({ failures: heartbeatFailures }, 'placement heartbeats get through again');
          heartbeatFailures = 0;
        },
        (err: unknown) => {
          if (heartbeatFailures++ % 30 === 0) placementLog.warn({ err: (err as Error).message, failures: heartbeatFailures }, 'placement heartbeat failed');
        },
      );
  }, o.placementHeartbeatMs);
  heartbeatTimer.unref();

  new AdminService({
    node,
    clusterId: o.clusterId,
    logger: log.child({ layer: 'admin' }),
    failpoints,
    allocateRangeId: async () => (placement.meta.isLeader() ? placement.allocateRangeIds(1) : placementClient.allocateRangeIds(1)),
    reportRanges: (ids) => {
      reporter
        .build(ids)
        .then(sendHeartbeat)
        .catch((err: unknown) => placementLog.debug({ err: (err as Error).message }, 'report after split failed; the next heartbeat repeats it'));
    },
  }).register(server);

  await new Promise<void>((resolve, reject) => {
    server.bindAsync(o.listen, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  }).catch((err: Error) => {
    process.stderr.write(`kvd: cannot listen on ${o.listen}: ${err.message}\n`);
    process.exit(1);
  });
  log.info({ listen: o.listen, advertise, dataDir: o.data, members: Object.fromEntries(members) }, 'kvd started');

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, inflight: kv.inflight() }, 'shutting down: draining in-flight requests');
    const force = setTimeout(() => {
      log.warn('shutdown took over 10 s: forcing');
      server.forceShutdown();
    }, 10_000);
    // 1. No new calls. In-flight KV calls still need Raft (and so the transport) to finish.
    const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    const drained = (async () => {
      const deadline = Date.now() + 5_000;
      while (kv.inflight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    })();
    clearInterval(heartbeatTimer);
    clearInterval(gcTimer);
    driver.stop();
    placementClient.close();
    drained
      // 2. Stop the node: this ends the transport's streams, which lets tryShutdown complete.
      .then(() => node.stop())
      .then(() => closed)
      .then(() => {
        clearTimeout(force);
        log.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`kvd: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
