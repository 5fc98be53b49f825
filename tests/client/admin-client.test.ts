// AdminClient calls meant for a range's leader, against fake Admin servers on 127.0.0.1: a node
// that does not host the range (NOT_FOUND: an uninitialized or removed replica) does not end the
// call while another endpoint may still be the leader.
import * as grpc from '@grpc/grpc-js';
import { apiPackageDefinition } from '../../src/api/proto';
import { AdminClient } from '../../src/client/admin-client';
import { InvalidRequestError } from '../../src/client/errors';

type Handler = grpc.handleUnaryCall<unknown, unknown>;

async function fakeAdmin(transferLeader: Handler): Promise<{ server: grpc.Server; address: string; calls: () => number }> {
  const pkg = grpc.loadPackageDefinition(apiPackageDefinition()) as unknown as {
    rangekv: { v1: { Admin: { service: grpc.ServiceDefinition } } };
  };
  let calls = 0;
  const server = new grpc.Server();
  server.addService(pkg.rangekv.v1.Admin.service, {
    transferLeader: ((call, cb) => {
      calls++;
      transferLeader(call, cb);
    }) as Handler,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, address: `127.0.0.1:${port}`, calls: () => calls };
}

const notFound: Handler = (_call, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'range 2 is not on node 4' });
const leader: Handler = (_call, cb) =>
  cb(null, { descriptor: { rangeId: 2, startKey: Buffer.alloc(0), endKey: Buffer.alloc(0), epoch: { version: 1, confVersion: 3 }, replicas: [] } });

describe('AdminClient: calls on a range\'s leader', () => {
  const servers: grpc.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.forceShutdown();
  });

  it('a replica answering NOT_FOUND first does not end the call: the next endpoint (the leader) answers', async () => {
    const stray = await fakeAdmin(notFound);
    const lead = await fakeAdmin(leader);
    servers.push(stray.server, lead.server);
    const admin = new AdminClient([stray.address, lead.address], 5_000);
    try {
      const d = await admin.transferLeader(2, 3);
      expect(d.rangeId).toBe(2);
      expect(stray.calls()).toBe(1);
      expect(lead.calls()).toBe(1);
    } finally {
      admin.close();
    }
  });

  it('NOT_FOUND from every endpoint: InvalidRequestError naming the range', async () => {
    const a = await fakeAdmin(notFound);
    const b = await fakeAdmin(notFound);
    servers.push(a.server, b.server);
    const admin = new AdminClient([a.address, b.address], 5_000);
    try {
      await expect(admin.transferLeader(2, 3)).rejects.toThrow(InvalidRequestError);
      await expect(admin.transferLeader(2, 3)).rejects.toThrow(/range 2 is not on node 4/);
    } finally {
      admin.close();
    }
  });
});
