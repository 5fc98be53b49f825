// The client's Multiplex stream enforces each request's deadline by itself (one timer per stream):
// against a fake KV server on 127.0.0.1 that answers some items and never others, a request left
// unanswered fails at its own deadline, whatever else is in flight or answered meanwhile.
import * as grpc from '@grpc/grpc-js';
import { apiPackageDefinition } from '../../src/api/proto';
import { KvClient, UnavailableError } from '../../src/client';

interface Item {
  id: number;
  get?: { key: Buffer };
}

async function fakeKv(): Promise<{ server: grpc.Server; address: string; seen: string[] }> {
  const pkg = grpc.loadPackageDefinition(apiPackageDefinition()) as unknown as {
    rangekv: { v1: { KV: { service: grpc.ServiceDefinition } } };
  };
  const seen: string[] = [];
  const server = new grpc.Server();
  server.addService(pkg.rangekv.v1.KV.service, {
    multiplex: (call: grpc.ServerDuplexStream<{ items: Item[] }, unknown>) => {
      call.on('data', (msg: { items: Item[] }) => {
        // Keys starting with "fast" are answered; the others never are.
        const results = [];
        for (const item of msg.items) {
          const key = item.get?.key ?? Buffer.alloc(0);
          seen.push(key.toString());
          if (!key.toString().startsWith('fast')) continue;
          results.push({
            id: item.id,
            code: grpc.status.OK,
            message: '',
            get: { header: { rangeId: 1, nodeId: 1, appliedIndex: 5 }, found: true, kv: { key, value: Buffer.from('v'), version: 3 } },
          });
        }
        if (results.length > 0) call.write({ results });
      });
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, address: `127.0.0.1:${port}`, seen };
}

/**
 * Resolves to how long `p` took to settle, and how; a request still unsettled after 3 s is
 * reported as such (its deadline was not enforced) rather than hanging the test.
 */
async function timed(p: Promise<unknown>): Promise<{ ms: number; error?: unknown }> {
  const t0 = Date.now();
  let bound: NodeJS.Timeout | undefined;
  const never = new Promise<never>((_, reject) => {
    bound = setTimeout(() => reject(new Error('still unsettled after 3000 ms')), 3_000);
  });
  try {
    await Promise.race([p, never]);
    return { ms: Date.now() - t0 };
  } catch (error) {
    return { ms: Date.now() - t0, error };
  } finally {
    clearTimeout(bound);
  }
}

describe('KvClient Multiplex deadlines', () => {
  let fake: Awaited<ReturnType<typeof fakeKv>> | undefined;
  let client: KvClient | undefined;
  afterEach(() => {
    client?.close();
    fake?.server.forceShutdown();
  });

  it('an unanswered request fails at its own deadline; answered ones and later ones are unaffected', async () => {
    fake = await fakeKv();
    client = new KvClient({ endpoints: [fake.address], deadlineMs: 400, routing: false, initialBackoffMs: 1_000 });
    expect((await client.get('fast-warm')).value.toString()).toBe('v');
    const first = timed(client.get('slow-1'));
    await new Promise((r) => setTimeout(r, 150));
    const second = timed(client.get('slow-2'));
    const answered = await timed(client.get('fast-1'));
    expect(answered.error).toBeUndefined();
    const [a, b] = await Promise.all([first, second]);
    // Each fails on its own deadline: not at the other's (slow-2 was issued 150 ms after slow-1),
    // and not left unsettled.
    for (const r of [a, b]) {
      expect(r.error).toBeInstanceOf(UnavailableError);
      expect(String((r.error as Error).message)).toMatch(/deadline/i);
      expect(r.ms).toBeGreaterThanOrEqual(390);
      expect(r.ms).toBeLessThan(2_500);
    }
    expect(fake.seen).toEqual(['fast-warm', 'slow-1', 'slow-2', 'fast-1']);
    // The stream is still the one it was, with nothing left pending on it.
    const streams = (client as unknown as { muxes: Map<string, { broken: boolean; pending: Map<number, unknown> }> }).muxes;
    const stream = streams.get(fake.address);
    expect(stream?.broken).toBe(false);
    expect(stream?.pending.size).toBe(0);
  });
});
