// Shared by tests that run in-process Nodes (local or gRPC transport).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Command, CommandStatus, Node, NodeOptions, OpKind } from '../../src/node';
import { NotLeaderError } from '../../src/raft';
import { LocalNetwork, LocalTransport } from '../../src/transport';

const silent = pino({ level: 'silent' });

/** Polls `f` until it returns a value other than undefined/false; that value is returned. */
export async function waitFor<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, pollMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The node whose replica of `rangeId` leads, once there is one. */
export function leaderOf(nodes: () => Iterable<Node>, rangeId: number): Promise<Node> {
  return waitFor('a leader', () => [...nodes()].find((n) => n.replicas.get(rangeId)?.isLeader() === true));
}

/** A put command (clientId/sequence make it exactly-once across the retries below). */
export function putCommand(clientId: number, sequence: number, key: string, value: string, epochVersion = 1): Command {
  return {
    clientId,
    sequence,
    answeredBelow: 0,
    proposedAtMs: Date.now(),
    epochVersion,
    ops: [{ kind: OpKind.Put, key: Buffer.from(key), value: Buffer.from(value) }],
  };
}

/** Proposes `cmd` on whichever node leads, retrying definite refusals as a client would; returns its index. */
export async function proposeOnLeader(nodes: () => Iterable<Node>, rangeId: number, cmd: Command, currentEpoch = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const l = await leaderOf(nodes, rangeId);
    try {
      const c = currentEpoch ? { ...cmd, epochVersion: l.replica(rangeId).sm.bounds.epochVersion } : cmd;
      const { result, index } = await l.propose(rangeId, c);
      if (result.status !== CommandStatus.Ok) throw new Error(`put refused with status ${CommandStatus[result.status]}`);
      return index;
    } catch (e) {
      if (!(e instanceof NotLeaderError) && (e as { definite?: boolean }).definite !== true) throw e;
    }
  }
  throw new Error('proposal did not succeed in 50 attempts');
}

/** In-process nodes over the local transport and real LevelDB directories (one range bootstrapped). */
export class NodeCluster {
  readonly nodes = new Map<number, Node>();
  readonly dirs = new Map<number, string>();
  readonly net = new LocalNetwork();
  private seq = 0;

  constructor(
    readonly ids: number[],
    private readonly extra: Partial<NodeOptions> = {},
    readonly firstRange = 1,
  ) {
    for (const id of ids) this.dirs.set(id, mkdtempSync(join(tmpdir(), `rangekv-node${id}-`)));
  }

  /** Starts node `id` (a new id joins with an empty directory and no bootstrap). */
  async start(id: number): Promise<Node> {
    if (!this.dirs.has(id)) this.dirs.set(id, mkdtempSync(join(tmpdir(), `rangekv-node${id}-`)));
    const n = await Node.open({
      nodeId: id,
      dataDir: this.dirs.get(id)!,
      clusterId: 'test',
      transport: new LocalTransport(this.net, id),
      logger: silent,
      tickMs: 10,
      bootstrap: this.ids.includes(id) ? { rangeId: this.firstRange, voters: this.ids } : undefined,
      ...this.extra,
    });
    this.nodes.set(id, n);
    return n;
  }

  async startAll(): Promise<void> {
    for (const id of this.ids) await this.start(id);
  }

  async stop(id: number): Promise<void> {
    await this.nodes.get(id)?.stop();
    this.nodes.delete(id);
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
    for (const d of this.dirs.values()) rmSync(d, { recursive: true, force: true });
  }

  /** A read barrier on `n`, once it knows a leader (a restarted node learns it from the first heartbeat). */
  async readBarrier(n: Node, rangeId: number): Promise<number> {
    await waitFor(`node ${n.nodeId} to know the leader of range ${rangeId}`, () => (n.replicas.get(rangeId)?.rawNode.status().leader ? true : undefined));
    return n.readBarrier(rangeId);
  }

  leader(rangeId: number): Promise<Node> {
    return leaderOf(() => this.nodes.values(), rangeId);
  }

  /** Puts through whichever node leads the range, at its current epoch, retrying on NotLeader (as a client would). */
  put(key: string, value: string, rangeId: number): Promise<number> {
    return proposeOnLeader(() => this.nodes.values(), rangeId, putCommand(99, ++this.seq, key, value), true);
  }
}
