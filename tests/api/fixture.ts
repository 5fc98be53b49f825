// Three (or any number of) in-process nodes behind real gRPC KV servers on 127.0.0.1, for the API
// tests: Raft over the local transport, clients over gRPC.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { DEFAULT_LIMITS, KvService } from '../../src/api';
import { Node } from '../../src/node';
import { LocalNetwork, LocalTransport } from '../../src/transport';

export const logger = pino({ level: 'silent' });
export const LIMITS = { ...DEFAULT_LIMITS, maxValueBytes: 64 * 1024 };

export interface Member {
  node: Node;
  server: grpc.Server;
  address: string;
}

export async function startCluster(ids: number[]): Promise<{ members: Map<number, Member>; dirs: string[] }> {
  const net = new LocalNetwork();
  const members = new Map<number, Member>();
  const dirs: string[] = [];
  const addresses = new Map<number, string>();
  for (const id of ids) {
    const dir = mkdtempSync(join(tmpdir(), `rangekv-api${id}-`));
    dirs.push(dir);
    const node = await Node.open({
      nodeId: id,
      dataDir: dir,
      clusterId: 't',
      transport: new LocalTransport(net, id),
      logger,
      tickMs: 10,
      bootstrap: { rangeId: 1, voters: ids },
    });
    const server = new grpc.Server();
    new KvService({ node, addresses: (n) => addresses.get(n), limits: LIMITS, logger }).register(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const address = `127.0.0.1:${port}`;
    addresses.set(id, address);
    members.set(id, { node, server, address });
  }
  return { members, dirs };
}

export async function stopCluster(c: { members: Map<number, Member>; dirs: string[] }): Promise<void> {
  for (const m of c.members.values()) {
    m.server.forceShutdown();
    await m.node.stop();
  }
  for (const d of c.dirs) rmSync(d, { recursive: true, force: true });
}

