// The etcd side of the comparison: the same workloads through the `etcd3` npm client (a
// devDependency; RangeKV itself never loads it). The client is kept as cheap as RangeKV's: its RPC
// layer directly (no builders), no retry or circuit-breaker policies (a healthy local cluster
// needs none, and the benchmark counts errors instead of hiding them), one channel per member.

import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import type { BenchTarget } from '../../src/cli/bench';

export class EtcdTarget implements BenchTarget {
  readonly name = 'etcd';
  private readonly client: Etcd3;

  /** `endpoints` are host:port of client URLs; each request goes to one of them at random (etcd3's pool). */
  constructor(endpoints: readonly string[], timeoutMs: number) {
    this.client = new Etcd3({
      hosts: endpoints.map((e) => (e.startsWith('http') ? e : `http://${e}`)),
      faultHandling: { host: () => noop, global: noop },
      defaultCallOptions: () => ({ deadline: Date.now() + timeoutMs }),
      grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
    });
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    await this.client.kv.put({ key, value });
  }

  async get(key: Buffer, stale: boolean): Promise<boolean> {
    // serializable = served by the member it reaches without a ReadIndex round: etcd's stale read.
    const r = await this.client.kv.range({ key, serializable: stale });
    return r.kvs.length > 0;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/** The client URL (host:port) of the current leader among `endpoints`, or undefined. */
export async function etcdLeader(endpoints: readonly string[], timeoutMs: number): Promise<string | undefined> {
  for (const e of endpoints) {
    const c = new Etcd3({
      hosts: `http://${e}`,
      faultHandling: { host: () => noop, global: noop },
      defaultCallOptions: () => ({ deadline: Date.now() + timeoutMs }),
    });
    try {
      const s = await c.maintenance.status();
      if (s.leader !== '0' && s.leader === s.header.member_id) return e;
    } catch {
      // try the next member
    } finally {
      c.close();
    }
  }
  return undefined;
}
