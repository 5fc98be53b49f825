// Three nodes (the real node layer, real LevelDB) talking over GrpcTransport on loopback: the
// transport under the ready loop, including a follower that comes back and needs a snapshot.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { Node, NodeOptions } from '../../src/node';
import { GrpcTransport, raftServerOptions } from '../../src/transport';
import { bindLoopback } from './grpc-cluster';
import { waitFor } from './helpers';
import { leaderOf, proposeOnLeader, putCommand } from '../node/fixture';

const RANGE = 1;
const logger = pino({ level: 'silent' });

class GrpcNodeCluster {
  readonly nodes = new Map<number, Node>();
  readonly servers = new Map<number, grpc.Server>();
  readonly dirs = new Map<number, string>();
  readonly addresses = new Map<number, string>();
  private seq = 0;

  constructor(readonly ids: number[], private readonly extra: Partial<NodeOptions> = {}) {
    for (const id of ids) this.dirs.set(id, mkdtempSync(join(tmpdir(), `rangekv-grpc-node${id}-`)));
  }

  async start(id: number): Promise<Node> {
    const server = new grpc.Server(raftServerOptions());
    this.servers.set(id, server);
    const previous = this.addresses.get(id);
    const port = await bindLoopback(server, previous ? Number(previous.split(':')[1]) : 0);
    this.addresses.set(id, `127.0.0.1:${port}`);
    const transport = new GrpcTransport({
      nodeId: id,
      clusterId: 'grpc-node-test',
      server,
      resolveAddress: (n) => this.addresses.get(n),
      logger,
      reconnectBackoffInitialMs: 20,
      reconnectBackoffMaxMs: 200,
    });
    const node = await Node.open({
      nodeId: id,
      dataDir: this.dirs.get(id)!,
      clusterId: 'grpc-node-test',
      transport,
      logger,
      tickMs: 10,
      bootstrap: { rangeId: RANGE, voters: this.ids },
      ...this.extra,
    });
    this.nodes.set(id, node);
    return node;
  }

  async stop(id: number): Promise<void> {
    await this.nodes.get(id)?.stop();
    this.nodes.delete(id);
    this.servers.get(id)?.forceShutdown();
    this.servers.delete(id);
  }

  async close(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
    for (const s of this.servers.values()) s.forceShutdown();
    for (const d of this.dirs.values()) rmSync(d, { recursive: true, force: true });
  }

  leader(): Promise<Node> {
    return leaderOf(() => this.nodes.values(), RANGE);
  }

  async put(key: string, value: string): Promise<void> {
    await proposeOnLeader(() => this.nodes.values(), RANGE, putCommand(7, ++this.seq, key, value));
  }
}

describe('node layer over GrpcTransport', () => {
  let c: GrpcNodeCluster;

  afterEach(async () => {
    await c.close();
  });

  it('replicates writes, and a follower restarted on its port catches up from a snapshot', async () => {
    c = new GrpcNodeCluster([1, 2, 3], { snapshotEveryEntries: 20, compactionSlackEntries: 2 });
    for (const id of c.ids) await c.start(id);
    await c.put('first', '1');
    const leader = await c.leader();
    const victim = c.ids.find((id) => id !== leader.nodeId)!;
    await c.stop(victim);
    for (let i = 0; i < 60; i++) await c.put(`k${i}`, `v${i}`.repeat(100));
    expect((await c.leader()).replica(RANGE).storage.firstIndex()).toBeGreaterThan(3);

    const restarted = await c.start(victim);
    await waitFor('the restarted follower to know the leader', () => restarted.replica(RANGE).rawNode.status().leader !== 0, 10_000);
    await restarted.readBarrier(RANGE);
    const r = restarted.replica(RANGE);
    expect(r.storage.snapshot().metadata.index).toBeGreaterThan(0);
    expect((await r.sm.get(Buffer.from('k59')))!.value.toString()).toBe('v59'.repeat(100));
    expect((await r.sm.get(Buffer.from('first')))!.value.toString()).toBe('1');
  }, 30_000);
});
