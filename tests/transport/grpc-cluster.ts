// Transports over real gRPC servers on 127.0.0.1 (port 0), one server per node, for the tests.
import * as grpc from '@grpc/grpc-js';
import pino, { Logger } from 'pino';
import { GrpcTransport, GrpcTransportOptions, raftServerOptions } from '../../src/transport';
import { RecordingHandler } from './helpers';

export interface LogLine {
  level: number;
  msg: string;
  node?: number;
  [k: string]: unknown;
}

/** A pino logger that keeps its lines (JSON-parsed) for assertions. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

export const PINO_WARN = 40;

export async function bindLoopback(server: grpc.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
}

export interface GrpcNode {
  readonly nodeId: number;
  readonly server: grpc.Server;
  readonly port: number;
  readonly transport: GrpcTransport;
  readonly handler: RecordingHandler;
}

export class GrpcCluster {
  /** Where each node id is reached; tests may point an id anywhere. */
  readonly addresses = new Map<number, string>();
  readonly nodes = new Map<number, GrpcNode>();
  private readonly servers = new Set<grpc.Server>();
  private readonly transports = new Set<GrpcTransport>();
  readonly log = capturingLogger('info');

  constructor(
    readonly clusterId = 'test-cluster',
    /** Options for every transport (fast backoff for tests). */
    readonly defaults: Partial<GrpcTransportOptions> = { reconnectBackoffInitialMs: 20, reconnectBackoffMaxMs: 200 },
  ) {}

  /** A server bound on loopback (port 0 = any), with its transport created but not started. */
  async create(nodeId: number, options: Partial<GrpcTransportOptions> = {}, port = 0): Promise<GrpcTransport> {
    const maxBatchBytes = options.maxBatchBytes ?? this.defaults.maxBatchBytes;
    const server = new grpc.Server(raftServerOptions({ maxBatchBytes }));
    this.servers.add(server);
    const bound = await bindLoopback(server, port);
    this.addresses.set(nodeId, `127.0.0.1:${bound}`);
    const transport = new GrpcTransport({
      nodeId,
      clusterId: this.clusterId,
      server,
      resolveAddress: (id) => this.addresses.get(id),
      logger: this.log.logger,
      ...this.defaults,
      ...options,
    });
    this.transports.add(transport);
    this.nodes.set(nodeId, { nodeId, server, port: bound, transport, handler: new RecordingHandler() });
    return transport;
  }

  /** create() + start() with a recording handler. */
  async start(nodeId: number, options: Partial<GrpcTransportOptions> = {}, port = 0): Promise<GrpcNode> {
    await this.create(nodeId, options, port);
    const n = this.node(nodeId);
    await n.transport.start(n.handler);
    return n;
  }

  node(nodeId: number): GrpcNode {
    const n = this.nodes.get(nodeId);
    if (!n) throw new Error(`no node ${nodeId}`);
    return n;
  }

  /** Stops the node's transport and shuts its server down (the process is gone). */
  async kill(nodeId: number): Promise<void> {
    const n = this.node(nodeId);
    await n.transport.stop();
    n.server.forceShutdown();
    this.nodes.delete(nodeId);
  }

  warnings(nodeId: number): LogLine[] {
    return this.log.lines.filter((l) => l.node === nodeId && l.level >= PINO_WARN);
  }

  async close(): Promise<void> {
    for (const t of this.transports) await t.stop();
    for (const s of this.servers) s.forceShutdown();
    this.transports.clear();
    this.servers.clear();
    this.nodes.clear();
  }
}
