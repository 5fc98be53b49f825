// The Multiplex stream (many requests per gRPC message, answered by id) and the client over it,
// against three in-process nodes (local transport for Raft; real gRPC on 127.0.0.1 for clients).
import * as grpc from '@grpc/grpc-js';
import { KvService, apiPackageDefinition } from '../../src/api';
import { Consistency, KvClient } from '../../src/client';
import { waitFor } from '../node/fixture';
import { LIMITS, logger, startCluster, stopCluster } from './fixture';

type DuplexStub = grpc.Client & { multiplex(): grpc.ClientDuplexStream<object, { results: Array<Record<string, unknown>> }> };
function duplexStub(address: string): DuplexStub {
  const pkg = grpc.loadPackageDefinition(apiPackageDefinition()) as unknown as { rangekv: { v1: { KV: new (a: string, c: grpc.ChannelCredentials) => DuplexStub } } };
  return new pkg.rangekv.v1.KV(address, grpc.credentials.createInsecure());
}

/** Sends `items` in one message on a fresh stream and collects results until `n` arrived. */
async function exchange(address: string, items: object[], n = items.length): Promise<Map<number, Record<string, unknown>>> {
  const stub = duplexStub(address);
  const call = stub.multiplex();
  const out = new Map<number, Record<string, unknown>>();
  try {
    return await new Promise((resolve, reject) => {
      call.on('data', (msg: { results: Array<Record<string, unknown>> }) => {
        for (const r of msg.results) out.set(r.id as number, r);
        if (out.size >= n) resolve(out);
      });
      call.on('error', reject);
      call.write({ items });
    });
  } finally {
    call.cancel();
    stub.close();
  }
}

describe('KV Multiplex stream', () => {
  let c: Awaited<ReturnType<typeof startCluster>>;
  let leaderAddress: string;
  let client: KvClient;
  beforeAll(async () => {
    c = await startCluster([1, 2, 3]);
    client = new KvClient({ endpoints: [...c.members.values()].map((m) => m.address), deadlineMs: 10_000, multiplex: true });
    await client.put('warm', 'up');
    const leaderId = await waitFor('leader', () => [...c.members.entries()].find(([, m]) => m.node.replica(1).isLeader())?.[0]);
    leaderAddress = c.members.get(leaderId)!.address;
  });
  afterAll(async () => {
    client.close();
    await stopCluster(c);
  });

  it('the client does puts, gets (linearizable and stale), cas and deletes over it, with versions', async () => {
    const { version } = await client.put('alpha', 'one');
    const g = await client.get('alpha');
    expect([g.found, g.value.toString(), g.version]).toEqual([true, 'one', version]);
    expect((await client.get('alpha', Consistency.Stale)).appliedIndex).toBeGreaterThan(0);
    expect((await client.cas('alpha', { value: Buffer.from('one') }, 'two')).succeeded).toBe(true);
    expect((await client.cas('alpha', { value: Buffer.from('one') }, 'three')).succeeded).toBe(false);
    expect((await client.delete('alpha')).deleted).toBe(true);
    expect((await client.get('alpha')).found).toBe(false);
  });

  it('many concurrent requests share stream messages and each gets its own answer', async () => {
    const n = 500;
    const puts = await Promise.all(Array.from({ length: n }, (_, i) => client.put(`m/${i}`, `v${i}`)));
    expect(new Set(puts.map((p) => p.version)).size).toBe(n);
    const gets = await Promise.all(Array.from({ length: n }, (_, i) => client.get(`m/${i}`)));
    gets.forEach((g, i) => expect(g.value.toString()).toBe(`v${i}`));
  });

  it('requests issued together whose values total more than a server accepts in one message are all answered', async () => {
    // 100 puts of 60 KiB in one turn: 6 MB, over gRPC's default 4 MiB receive limit (the test
    // servers keep it). Sent as one message, the server would fail the stream and every put on it.
    // (Retries would hide that: the test checks that the client's stream never broke.)
    const one = new KvClient({ endpoints: [leaderAddress], deadlineMs: 10_000 });
    try {
      await one.put('big-warm', 'up');
      const streams = (one as unknown as { muxes: Map<string, { broken: boolean }> }).muxes;
      const stream = streams.get(leaderAddress);
      expect(stream).toBeDefined();
      const value = Buffer.alloc(60 * 1024, 7);
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => one.put(`big-${i}`, value)));
      expect(new Set(results.map((r) => r.version)).size).toBe(100);
      expect(stream!.broken).toBe(false);
      expect(streams.get(leaderAddress)).toBe(stream);
      expect((await one.get('big-99')).value.equals(value)).toBe(true);
    } finally {
      one.close();
    }
  });

  it('serves the gets of one large message in slices: answers leave in several messages, all answered', async () => {
    await client.put('sliced', 'v');
    const stub = duplexStub(leaderAddress);
    const call = stub.multiplex();
    const seen = new Map<number, Record<string, unknown>>();
    let messages = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        call.on('data', (msg: { results: Array<Record<string, unknown>> }) => {
          messages++;
          for (const r of msg.results) seen.set(r.id as number, r);
          if (seen.size >= 128) resolve();
        });
        call.on('error', reject);
        // Stale gets complete at once: served all together they would leave in one message.
        call.write({ items: Array.from({ length: 128 }, (_, i) => ({ id: i + 1, get: { key: Buffer.from('sliced'), consistency: 3 } })) });
      });
    } finally {
      call.cancel();
      stub.close();
    }
    expect([...seen.values()].every((r) => r.code === grpc.status.OK && r.response === 'get')).toBe(true);
    expect(messages).toBeGreaterThanOrEqual(4); // slices of 32 (a quarter of 128)
  });

  it('answers each item by id, in one response per ready batch, with per-item errors', async () => {
    const results = await exchange(leaderAddress, [
      { id: 7, put: { key: Buffer.from('raw'), value: Buffer.from('1') } },
      { id: 8, get: { key: Buffer.from('raw'), consistency: 1 } },
      { id: 9, put: { key: Buffer.alloc(0), value: Buffer.from('x') } },
      { id: 10 },
    ]);
    expect(results.get(7)).toMatchObject({ code: grpc.status.OK, response: 'put' });
    expect(results.get(9)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, message: expect.stringMatching(/key/) });
    expect(results.get(10)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, message: expect.stringMatching(/exactly one of/) });
    // The get ran concurrently with the put: it saw it or not, but answered OK.
    expect(results.get(8)).toMatchObject({ code: grpc.status.OK, response: 'get' });
  });

  it('answers stale gets (served in the turn they arrive) with values, not-found, and per-item errors', async () => {
    await client.put('stale-raw', 'v1');
    const follower = [...c.members.values()].find((m) => m.address !== leaderAddress)!;
    await waitFor('follower applied the put', () => (follower.node.replica(1).sm.get(Buffer.from('stale-raw')) ? true : undefined));
    const results = await exchange(follower.address, [
      { id: 1, get: { key: Buffer.from('stale-raw'), consistency: 3 } },
      { id: 2, get: { key: Buffer.from('stale-absent'), consistency: 3 } },
      { id: 3, get: { key: Buffer.alloc(0), consistency: 3 } },
      { id: 4, get: { header: { rangeId: 99 }, key: Buffer.from('stale-raw'), consistency: 3 } },
      { id: 5, get: { key: Buffer.from('stale-raw'), consistency: 9 } },
    ]);
    expect(results.get(1)).toMatchObject({ code: grpc.status.OK, get: { found: true, kv: { value: Buffer.from('v1') } } });
    expect((results.get(1)!.get as { header: { appliedIndex: number } }).header.appliedIndex).toBeGreaterThan(0);
    expect(results.get(2)).toMatchObject({ code: grpc.status.OK, get: { found: false, kv: null } });
    expect(results.get(3)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, message: expect.stringMatching(/key/) });
    // A routing error travels in the response header, as for every other request.
    expect(results.get(4)).toMatchObject({ code: grpc.status.OK, get: { header: { error: { rangeNotFound: expect.anything() } } } });
    expect(results.get(5)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, message: expect.stringMatching(/consistency/) });
  });

  it('a follower answers a write with NotLeader inside the item result, and the client follows it', async () => {
    const follower = [...c.members.values()].find((m) => m.address !== leaderAddress)!;
    await waitFor('follower knows leader', () => (follower.node.replica(1).rawNode.status().leader !== 0 ? true : undefined));
    const results = await exchange(follower.address, [{ id: 1, put: { key: Buffer.from('f'), value: Buffer.from('1') } }]);
    const put = results.get(1)!.put as { header: { error: { notLeader: { leader: { address: string } } } } };
    expect(put.header.error.notLeader.leader.address).toBe(leaderAddress);
    const only = new KvClient({ endpoints: [follower.address], multiplex: true });
    await only.put('via-follower', 'ok');
    expect((await only.get('via-follower')).value.toString()).toBe('ok');
    only.close();
  });

  it('refuses items past the in-flight limit of a stream without applying them', async () => {
    const server = new grpc.Server();
    const m = [...c.members.values()][0]!;
    new KvService({ node: m.node, addresses: () => undefined, limits: LIMITS, logger, multiplexInflight: 2 }).register(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    try {
      const items = [1, 2, 3, 4].map((id) => ({ id, get: { key: Buffer.from('warm'), consistency: 1 } }));
      const results = await exchange(`127.0.0.1:${port}`, items);
      const codes = [...results.values()].map((r) => r.code).sort();
      expect(codes).toEqual([grpc.status.OK, grpc.status.OK, grpc.status.RESOURCE_EXHAUSTED, grpc.status.RESOURCE_EXHAUSTED]);
    } finally {
      server.forceShutdown();
    }
  });

  it('fails the stream with INVALID_ARGUMENT on a message that is not valid protobuf', async () => {
    const raw = new grpc.Client(leaderAddress, grpc.credentials.createInsecure());
    const call = raw.makeBidiStreamRequest('/rangekv.v1.KV/Multiplex', (b: Buffer) => b, (b: Buffer) => b);
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      call.on('error', (e: grpc.ServiceError) => resolve(e));
      call.on('data', () => undefined);
      call.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
    });
    raw.close();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/not a valid \/rangekv.v1.KV\/Multiplex message/);
  });

  it('after its stream breaks (server restarted), the client opens a new one and carries on', async () => {
    const solo = await startCluster([9]);
    const m = solo.members.get(9)!;
    const one = new KvClient({ endpoints: [m.address], deadlineMs: 3000, multiplex: true });
    try {
      await one.put('k', 'v');
      m.server.forceShutdown(); // every stream of the server ends with UNAVAILABLE
      const server = new grpc.Server();
      new KvService({ node: m.node, addresses: () => undefined, limits: LIMITS, logger }).register(server);
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(m.address, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
      );
      m.server = server;
      expect((await one.get('k')).value.toString()).toBe('v');
    } finally {
      one.close();
      await stopCluster(solo);
    }
  });
});
