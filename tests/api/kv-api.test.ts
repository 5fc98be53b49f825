// The KV gRPC API and the TypeScript client against three in-process nodes (local transport for
// Raft; real gRPC on 127.0.0.1 for clients).
import * as grpc from '@grpc/grpc-js';
import { apiPackageDefinition } from '../../src/api';
import { Consistency, InvalidRequestError, KvClient } from '../../src/client';
import { waitFor } from '../node/fixture';
import { MessageType } from '../../src/raft';
import type { RangeMessage, TransportHandler } from '../../src/transport';
import { startCluster, stopCluster } from './fixture';

type Stub = grpc.Client & Record<string, (req: object, cb: (e: grpc.ServiceError | null, r: Record<string, unknown>) => void) => void>;
function rawStub(address: string): Stub {
  const pkg = grpc.loadPackageDefinition(apiPackageDefinition()) as unknown as { rangekv: { v1: { KV: new (a: string, c: grpc.ChannelCredentials) => Stub } } };
  return new pkg.rangekv.v1.KV(address, grpc.credentials.createInsecure());
}
function callRaw(stub: Stub, method: string, req: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => stub[method]!(req, (e, r) => (e ? reject(e) : resolve(r))));
}

describe('KV API', () => {
  let c: Awaited<ReturnType<typeof startCluster>>;
  let client: KvClient;
  beforeAll(async () => {
    c = await startCluster([1, 2, 3]);
    client = new KvClient({ endpoints: [...c.members.values()].map((m) => m.address), deadlineMs: 10_000 });
  });
  afterAll(async () => {
    client.close();
    await stopCluster(c);
  });

  it('puts, gets (linearizable and stale), deletes, with versions', async () => {
    const { version } = await client.put('alpha', 'one');
    expect(version).toBeGreaterThan(0);
    const g = await client.get('alpha');
    expect([g.found, g.value.toString(), g.version]).toEqual([true, 'one', version]);
    const stale = await client.get('alpha', Consistency.Stale);
    expect(stale.appliedIndex).toBeGreaterThan(0);
    const d = await client.delete('alpha');
    expect(d.deleted).toBe(true);
    expect((await client.get('alpha')).found).toBe(false);
  });

  it('compare-and-swap by value, absence and version', async () => {
    expect((await client.cas('c', { absent: true }, 'v1')).succeeded).toBe(true);
    expect((await client.cas('c', { absent: true }, 'v2')).succeeded).toBe(false);
    const r = await client.cas('c', { value: Buffer.from('v1') }, 'v3');
    expect(r.succeeded).toBe(true);
    expect((await client.cas('c', { version: r.version }, null)).succeeded).toBe(true);
    expect((await client.get('c')).found).toBe(false);
  });

  it('scans in order across stream chunks with a limit', async () => {
    for (let i = 0; i < 300; i++) await client.put(`s/${String(i).padStart(4, '0')}`, `v${i}`);
    const all: string[] = [];
    for await (const kv of client.scan('s/', 's0')) all.push(kv.key.toString());
    expect(all).toHaveLength(300);
    expect(all[0]).toBe('s/0000');
    expect(all[299]).toBe('s/0299');
    const some: string[] = [];
    for await (const kv of client.scan('s/0100', '', { limit: 5 })) some.push(kv.key.toString());
    expect(some).toEqual(['s/0100', 's/0101', 's/0102', 's/0103', 's/0104']);
  });

  it('a follower answers NotLeader with the leader id and address, and the client follows it', async () => {
    await client.put('x', '1');
    const leaderId = await waitFor('leader', () => [...c.members.entries()].find(([, m]) => m.node.replica(1).isLeader())?.[0]);
    const [, follower] = [...c.members.entries()].find(([id]) => id !== leaderId)!;
    await waitFor('follower knows leader', () => (follower.node.replica(1).rawNode.status().leader === leaderId ? true : undefined));
    const stub = rawStub(follower.address);
    const res = await callRaw(stub, 'put', { key: Buffer.from('y'), value: Buffer.from('2') });
    stub.close();
    const err = (res.header as { error: { notLeader: { leader: { nodeId: number; address: string } } } }).error;
    expect(err.notLeader.leader).toEqual({ nodeId: leaderId, address: c.members.get(leaderId)!.address });
    const only = new KvClient({ endpoints: [follower.address] });
    await only.put('via-follower', 'ok');
    expect((await only.get('via-follower')).value.toString()).toBe('ok');
    only.close();
  });

  it('a follower that gets no read index back refuses a linearizable get as NotLeader with no leader, saying why', async () => {
    await client.put('rt', '1');
    const leaderId = await waitFor('leader', () => [...c.members.entries()].find(([, m]) => m.node.replica(1).isLeader())?.[0]);
    const [, follower] = [...c.members.entries()].find(([id]) => id !== leaderId)!;
    await waitFor('follower knows leader', () => (follower.node.replica(1).rawNode.status().leader === leaderId ? true : undefined));
    // Every read index answer to the follower is lost (its default read timeout: 4 election timeouts, 400 ms here).
    const handler = follower.node as unknown as TransportHandler;
    const original = handler.receive.bind(handler);
    handler.receive = (from: number, msgs: readonly RangeMessage[]): void =>
      original(from, msgs.filter((m) => m.message.type !== MessageType.ReadIndexResp));
    const stub = rawStub(follower.address);
    try {
      const res = await callRaw(stub, 'get', { key: Buffer.from('rt') });
      const err = (res.header as { error: { message: string; notLeader: { leader: unknown } } }).error;
      expect(err.notLeader.leader).toBeNull();
      expect(err.message).toMatch(/no read index from the leader after \d+ ms; try another replica/);
    } finally {
      handler.receive = original;
      stub.close();
    }
  });

  describe('bad input is refused with INVALID_ARGUMENT naming the field and the limit, and nothing is written', () => {
    let stub: Stub;
    beforeAll(() => {
      stub = rawStub([...c.members.values()][0]!.address);
    });
    afterAll(() => stub.close());

    const cases: Array<[string, string, object, RegExp]> = [
      ['empty key', 'put', { key: Buffer.alloc(0), value: Buffer.from('v') }, /key: must not be empty/],
      ['key over 4 KiB', 'put', { key: Buffer.alloc(4097, 97), value: Buffer.from('v') }, /key: is 4097 bytes, over the limit of 4096 bytes/],
      ['value over the configured limit', 'put', { key: Buffer.from('k'), value: Buffer.alloc(64 * 1024 + 1) }, /value: is 65537 bytes, over the limit of 65536 bytes/],
      ['unknown consistency', 'get', { key: Buffer.from('k'), consistency: 9 }, /consistency: unknown value 9/],
      ['cas without expectation', 'compareAndSwap', { key: Buffer.from('k'), newValue: Buffer.from('v') }, /expected: one of/],
      ['empty batch', 'batch', { ops: [] }, /ops: must hold at least one op/],
    ];
    for (const [name, method, req, msg] of cases) {
      it(name, async () => {
        await expect(callRaw(stub, method, req)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(msg) });
      });
    }

    it('scan limit out of bounds', async () => {
      const s = (stub as unknown as { scan(r: object): grpc.ClientReadableStream<unknown> }).scan({ limit: 100_001 });
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        s.on('error', resolve);
        s.on('data', () => undefined);
      });
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/limit: must be between 0 \(no limit\) and 100000, got 100001/);
    });

    it('malformed protobuf bytes', async () => {
      const raw = new grpc.Client([...c.members.values()][0]!.address, grpc.credentials.createInsecure());
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        raw.makeUnaryRequest(
          '/rangekv.v1.KV/Put',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
          (e) => resolve(e as grpc.ServiceError),
        );
      });
      raw.close();
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/not a valid \/rangekv.v1.KV\/Put message/);
    });

    it('the client refuses a bad request definitely, without retrying', async () => {
      await expect(client.put('', 'v')).rejects.toBeInstanceOf(InvalidRequestError);
    });
  });
});
