// GrpcTransport over loopback: real servers on 127.0.0.1 (port 0), one per node.
import { createServer, Server as NetServer, Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { EntryType, MessageType, makeMessage } from '../../src/raft';
import { GrpcTransport, RangeMessage, Transport, TransportConfigError, TransportStateError } from '../../src/transport';
import { GrpcCluster, bindLoopback, capturingLogger } from './grpc-cluster';
import { RecordingHandler, app, bytes, entry, heartbeat, keys, repeatUntil, view, waitFor } from './helpers';
import { runTransportConformance } from './transport-conformance';

const CASE_TIMEOUT_MS = 20_000;

runTransportConformance('GrpcTransport', () => {
  const cluster = new GrpcCluster();
  return {
    unknownNodeId: 99,
    create: (nodeId: number): Promise<Transport> => cluster.create(nodeId),
    close: () => cluster.close(),
  };
});

function snapMessage(from: number, to: number, rangeId: number, dataBytes: number): RangeMessage {
  return {
    rangeId,
    message: makeMessage({
      type: MessageType.Snap,
      from,
      to,
      term: 8,
      snapshot: { metadata: { index: 5000, term: 7, confState: { voters: [1, 2, 3], learners: [4, 5] } }, data: bytes(dataBytes, 9) },
    }),
  };
}

describe('GrpcTransport', () => {
  let cluster: GrpcCluster;
  const extraCleanup: Array<() => Promise<void> | void> = [];

  beforeEach(() => {
    cluster = new GrpcCluster();
  });

  afterEach(async () => {
    await cluster.close();
    for (const f of extraCleanup.splice(0)) await f();
  });

  it('preserves every field of every message type on the wire', async () => {
    const a = await cluster.start(1);
    const b = await cluster.start(2);
    const msgs: RangeMessage[] = [
      {
        rangeId: 2 ** 40 + 1,
        message: makeMessage({
          type: MessageType.App,
          from: 1,
          to: 2,
          term: 2 ** 33,
          logTerm: 2 ** 33 - 1,
          index: Number.MAX_SAFE_INTEGER - 10,
          commit: 77,
          entries: [entry(1, 2, 0), entry(2, 2, 1000), entry(3, 2, 9, EntryType.ConfChange)],
        }),
      },
      {
        rangeId: 3,
        message: makeMessage({ type: MessageType.AppResp, from: 1, to: 2, term: 9, index: 40, reject: true, rejectHint: 31, rejectHintTerm: 6 }),
      },
      { rangeId: 3, message: makeMessage({ type: MessageType.Heartbeat, from: 1, to: 2, term: 9, commit: 12, context: new Uint8Array([0, 0xff, 7]) }) },
      { rangeId: 3, message: makeMessage({ type: MessageType.ReadIndexResp, from: 1, to: 2, term: 9, index: 55, context: bytes(64) }) },
      { rangeId: 4, message: makeMessage({ type: MessageType.PreVote, from: 1, to: 2, term: 10, logTerm: 9, index: 99 }) },
      snapMessage(1, 2, 5, 3000),
    ];
    a.transport.send(2, msgs);
    a.transport.flush();
    await waitFor('every message at node 2', () => b.handler.received().length === msgs.length);
    const got = new Map(b.handler.received().map((rm) => [`${rm.rangeId}/${rm.message.type}`, rm] as const));
    for (const rm of msgs) expect(view(got.get(`${rm.rangeId}/${rm.message.type}`)!)).toEqual(view(rm));
    // The regular messages travel together, in order, in one batch.
    const batch = b.handler.deliveries.find((d) => d.messages.length === msgs.length - 1);
    expect(batch && keys(batch.messages)).toEqual(keys(msgs.slice(0, -1)));
    expect(b.handler.deliveries.every((d) => d.from === 1)).toBe(true);
    expect(a.handler.reports).toEqual([]);
  }, CASE_TIMEOUT_MS);

  it('cuts what one flush queued into batches of at most maxBatchBytes, in order', async () => {
    const maxBatchBytes = 16 * 1024;
    const a = await cluster.start(1, { maxBatchBytes });
    const b = await cluster.start(2, { maxBatchBytes });
    const total = 3000;
    const flushes = 10;
    for (let seq = 1; seq <= total; seq++) {
      a.transport.send(2, [app(1 + (seq % 5), 1, 2, seq, [entry(seq, 3, 200)])]);
      if (seq % (total / flushes) === 0) a.transport.flush();
    }
    await waitFor('every message at node 2', () => b.handler.received().length === total, 10_000);
    expect(b.handler.received().map((rm) => rm.message.index)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // ~600 KB in 16 KiB batches: many more deliveries than flushes, none over the limit.
    expect(b.handler.deliveries.length).toBeGreaterThanOrEqual(Math.ceil((total * 200) / maxBatchBytes));
    for (const d of b.handler.deliveries) {
      const payload = d.messages.reduce((n, rm) => n + rm.message.entries.reduce((m, e) => m + e.data.length, 0), 0);
      expect(payload).toBeLessThanOrEqual(maxBatchBytes);
    }
  }, CASE_TIMEOUT_MS);

  it('keeps per-link order among three nodes sending to each other', async () => {
    const ids = [1, 2, 3];
    for (const id of ids) await cluster.start(id);
    const perLink = 300;
    for (let seq = 1; seq <= perLink; seq++) {
      for (const from of ids) for (const to of ids) if (from !== to) cluster.node(from).transport.send(to, [app(seq % 3, from, to, seq)]);
      if (seq % 11 === 0) for (const id of ids) cluster.node(id).transport.flush();
    }
    for (const id of ids) cluster.node(id).transport.flush();
    for (const to of ids) {
      await waitFor(`all messages at node ${to}`, () => cluster.node(to).handler.received().length === 2 * perLink, 10_000);
      for (const from of ids) {
        if (from === to) continue;
        expect(cluster.node(to).handler.receivedFrom(from).map((rm) => rm.message.index)).toEqual(
          Array.from({ length: perLink }, (_, i) => i + 1),
        );
      }
    }
  }, CASE_TIMEOUT_MS);

  it('delivers a snapshot of a few MiB through chunks, intact, next to regular traffic', async () => {
    const a = await cluster.start(1, { snapshotChunkBytes: 1024 * 1024 });
    const b = await cluster.start(2);
    const snap = snapMessage(1, 2, 9, 5 * 1024 * 1024 + 123);
    a.transport.send(2, [heartbeat(9, 1, 2), snap, heartbeat(9, 1, 2)]);
    a.transport.flush();
    await waitFor('the snapshot at node 2', () => b.handler.received().some((rm) => rm.message.type === MessageType.Snap), 15_000);
    await waitFor('the heartbeats at node 2', () => b.handler.received().filter((rm) => rm.message.type === MessageType.Heartbeat).length === 2);
    const got = b.handler.received().find((rm) => rm.message.type === MessageType.Snap)!;
    expect(view(got)).toEqual(view(snap));
    expect(Buffer.compare(Buffer.from(got.message.snapshot!.data), Buffer.from(snap.message.snapshot!.data))).toBe(0);
    expect(b.handler.deliveries.find((d) => d.messages.includes(got))?.from).toBe(1);
    expect(a.handler.reports).toEqual([]);
  }, CASE_TIMEOUT_MS);

  it('refuses a snapshot over the receiver limit; the sender reports the Snap message unreachable', async () => {
    const a = await cluster.start(1, { snapshotChunkBytes: 256 * 1024 });
    const b = await cluster.start(2, { maxSnapshotBytes: 1024 * 1024 });
    const snap = snapMessage(1, 2, 9, 2 * 1024 * 1024);
    a.transport.send(2, [snap]);
    a.transport.flush();
    await waitFor('the snapshot failure at node 1', () => a.handler.reportedFor(2).length === 1, 10_000);
    expect(a.handler.reportedFor(2)[0]).toBe(snap);
    expect(b.handler.received()).toEqual([]);
    expect(cluster.warnings(2).some((l) => /snapshot too large/.test(l.msg))).toBe(true);
    // The message stream is unaffected.
    a.transport.send(2, [heartbeat(9, 1, 2)]);
    a.transport.flush();
    await waitFor('a heartbeat after the refused snapshot', () => b.handler.received().length === 1);
  }, CASE_TIMEOUT_MS);

  it('reports a snapshot to an unknown or dead node as unreachable', async () => {
    const a = await cluster.start(1);
    await cluster.start(2);
    await cluster.kill(2);
    const toDead = snapMessage(1, 2, 9, 100_000);
    const toUnknown = snapMessage(1, 42, 9, 10);
    a.transport.send(2, [toDead]);
    a.transport.send(42, [toUnknown]);
    a.transport.flush();
    await waitFor('both snapshot failures', () => a.handler.reports.length === 2, 10_000);
    expect(a.handler.reportedFor(2)).toEqual([toDead]);
    expect(a.handler.reportedFor(42)).toEqual([toUnknown]);
  }, CASE_TIMEOUT_MS);

  it('reports every message to an unknown node, logging at most once per interval', async () => {
    const a = await cluster.start(1);
    for (let i = 1; i <= 50; i++) {
      a.transport.send(42, [heartbeat(1, 1, 42)]);
      a.transport.flush();
    }
    await waitFor('50 reports', () => a.handler.reportedFor(42).length === 50);
    const warnings = cluster.warnings(1).filter((l) => l.peer === 42);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/no known address/);
  }, CASE_TIMEOUT_MS);

  it('reconnects to a peer restarted on the same port, backing off meanwhile', async () => {
    const a = await cluster.start(1);
    const b = await cluster.start(2);
    const port = b.port;
    let seq = 0;
    const beat = (): void => {
      a.transport.send(2, [app(1, 1, 2, ++seq)]);
      a.transport.flush();
    };
    beat();
    await waitFor('first message', () => b.handler.received().length === 1);

    await cluster.kill(2);
    await repeatUntil('node 2 reported unreachable', beat, () => a.handler.reportedFor(2).length >= 3, 10_000);
    const warningsWhileDown = cluster.warnings(1).filter((l) => l.peer === 2).length;

    const b2 = await cluster.start(2, {}, port);
    const seqAtRestart = seq;
    await repeatUntil('a message at the restarted node 2', beat, () => b2.handler.received().length > 0, 10_000);
    // The restarted node sees only messages sent after it came back, in order.
    const got = b2.handler.received().map((rm) => rm.message.index);
    expect(got[0]).toBeGreaterThan(seqAtRestart - 1);
    expect([...got].sort((x, y) => x - y)).toEqual(got);
    // Hundreds of failed flushes, a handful of warnings (one per peer per interval).
    expect(warningsWhileDown).toBeLessThanOrEqual(3);
    expect(cluster.log.lines.some((l) => l.node === 1 && /reachable again/.test(l.msg))).toBe(true);
  }, CASE_TIMEOUT_MS);

  it('follows a peer to its new address: the old stream ends gracefully, nothing on it is lost', async () => {
    const a = await cluster.start(1);
    const oldB = await cluster.start(2);
    let seq = 0;
    const send = (n: number): void => {
      for (let i = 0; i < n; i++) a.transport.send(2, [app(1, 1, 2, ++seq)]);
      a.transport.flush();
    };
    send(100);
    await waitFor('the first messages at the old address', () => oldB.handler.received().length === 100);
    send(100);
    // Node 2 moves: a new server and transport; the old one stays up (it still owns its port).
    const newB = await cluster.start(2);
    send(100);
    await waitFor('messages at the new address', () => newB.handler.received().length === 100);
    await waitFor('the old stream drained', () => oldB.handler.received().length === 200);
    expect(oldB.handler.received().map((rm) => rm.message.index)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(newB.handler.received().map((rm) => rm.message.index)).toEqual(Array.from({ length: 100 }, (_, i) => i + 201));
    expect(a.handler.reports).toEqual([]);
    expect(cluster.log.lines.some((l) => l.node === 1 && /address changed/.test(l.msg))).toBe(true);
  }, CASE_TIMEOUT_MS);

  it('refuses batches and snapshots from another cluster', async () => {
    const other = new GrpcCluster('other-cluster');
    extraCleanup.push(() => other.close());
    const b = await cluster.start(2);
    const a = await other.start(1);
    other.addresses.set(2, cluster.addresses.get(2)!);
    await repeatUntil(
      'node 1 messages reported unreachable',
      () => {
        a.transport.send(2, [heartbeat(1, 1, 2)]);
        a.transport.flush();
      },
      () => a.handler.reportedFor(2).length > 0,
      10_000,
    );
    const snap = snapMessage(1, 2, 1, 10);
    a.transport.send(2, [snap]);
    a.transport.flush();
    await waitFor('the snapshot refused', () => a.handler.reportedFor(2).includes(snap), 10_000);
    expect(b.handler.received()).toEqual([]);
    const warnings = cluster.warnings(2).map((l) => l.msg);
    expect(warnings).toContain('raft batch from another cluster refused');
    expect(warnings).toContain('snapshot from another cluster refused');
  }, CASE_TIMEOUT_MS);

  it('refuses batches addressed to another node (a stale address)', async () => {
    const a = await cluster.start(1);
    const b = await cluster.start(2);
    cluster.addresses.set(3, cluster.addresses.get(2)!);
    await repeatUntil(
      'messages for node 3 reported unreachable',
      () => {
        a.transport.send(3, [heartbeat(1, 1, 3)]);
        a.transport.flush();
      },
      () => a.handler.reportedFor(3).length > 0,
      10_000,
    );
    expect(b.handler.received()).toEqual([]);
    expect(cluster.warnings(2).some((l) => /for another node/.test(l.msg))).toBe(true);
  }, CASE_TIMEOUT_MS);

  it('bounds the queue of a peer that does not drain: extra batches are reported unreachable', async () => {
    // A TCP server that accepts connections and never speaks HTTP/2: the stream never drains.
    const sockets = new Set<Socket>();
    const blackHole: NetServer = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    extraCleanup.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          blackHole.close(() => resolve());
        }),
    );
    const addr = blackHole.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    const a = await cluster.start(1, { maxQueuedBatchesPerPeer: 4, maxBatchBytes: 512 * 1024 });
    cluster.addresses.set(5, `127.0.0.1:${addr.port}`);
    let seq = 0;
    await repeatUntil(
      'batches dropped for the stuck peer',
      () => {
        // Large enough that the HTTP/2 buffers fill after a few writes.
        a.transport.send(5, [app(1, 1, 5, ++seq, [entry(seq, 1, 128 * 1024)])]);
        a.transport.flush();
      },
      () => a.handler.reportedFor(5).length > 0,
      10_000,
      2,
    );
    // Bounded: what was not reported is at most what HTTP/2 accepted (a few), the gRPC stream
    // buffer (16 batches) and our queue (4 batches of at most 4 such messages).
    expect(seq - a.handler.reportedFor(5).length).toBeLessThanOrEqual(4 + 16 + 4 * 4);
    expect(cluster.warnings(1).some((l) => /not draining/.test(l.msg))).toBe(true);
  }, CASE_TIMEOUT_MS);

  it('stop() ends incoming streams, so the owner can shut its server down gracefully', async () => {
    const a = await cluster.start(1);
    const b = await cluster.start(2);
    a.transport.send(2, [heartbeat(1, 1, 2)]);
    a.transport.flush();
    await waitFor('the heartbeat', () => b.handler.received().length === 1);
    await b.transport.stop();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('tryShutdown did not complete')), 5_000);
      b.server.tryShutdown((err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      });
    });
  }, CASE_TIMEOUT_MS);

  it('validates its options and refuses a second start()', async () => {
    const { logger } = capturingLogger();
    const server = new grpc.Server();
    const base = { nodeId: 1, clusterId: 'c', server, resolveAddress: () => undefined, logger };
    expect(() => new GrpcTransport({ ...base, nodeId: 0 })).toThrow(TransportConfigError);
    expect(() => new GrpcTransport({ ...base, clusterId: '' })).toThrow(TransportConfigError);
    expect(() => new GrpcTransport({ ...base, maxBatchBytes: -1 })).toThrow(/maxBatchBytes/);
    expect(() => new GrpcTransport({ ...base, reconnectBackoffInitialMs: 500, reconnectBackoffMaxMs: 100 })).toThrow(/reconnectBackoffMaxMs/);
    const port = await bindLoopback(server);
    expect(port).toBeGreaterThan(0);
    const t = new GrpcTransport(base);
    await t.start(new RecordingHandler());
    await expect(t.start(new RecordingHandler())).rejects.toThrow(TransportStateError);
    await t.stop();
    await expect(t.start(new RecordingHandler())).rejects.toThrow(TransportStateError);
    server.forceShutdown();
  }, CASE_TIMEOUT_MS);
});
