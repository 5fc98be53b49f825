// The transport failpoint the `latency` nemesis uses: its plan (drop and delay), and the Admin
// call that sets it, refused unless kvd runs with --failpoints, and reported in the node's status.

import { AdminClient, InvalidRequestError } from '../../src/client';
import { TransportFailpoints } from '../../src/transport/failpoint';
import { MessageType } from '../../src/raft';
import type { RangeMessage } from '../../src/transport';
import { ProcessCluster, cleanupClusters, clusterTest } from '../integration/process-cluster';

afterEach(cleanupClusters);

function messages(n: number, type = MessageType.App): RangeMessage[] {
  return Array.from({ length: n }, (_v, i) => ({ rangeId: 1, message: { type, from: 1, to: 2, term: 1, index: i } as RangeMessage['message'] }));
}

describe('TransportFailpoints', () => {
  test('covers only the chosen peers; drops by probability; never drops a snapshot; delays by delay + jitter', () => {
    let r = 0;
    const fp = new TransportFailpoints(() => r);
    expect(fp.plan(2, messages(3))).toBeUndefined();
    fp.set({ peers: [2], delayMs: 40, jitterMs: 10, dropProbability: 0.5 });
    expect(fp.plan(3, messages(3))).toBeUndefined();
    r = 0.9; // above the drop probability: kept; jitter floor(0.9 * 10) = 9
    expect(fp.plan(2, messages(3))).toEqual({ messages: messages(3), delayMs: 49 });
    r = 0.1; // below: dropped, except the snapshot
    const plan = fp.plan(2, [...messages(2), ...messages(1, MessageType.Snap)]);
    expect(plan?.messages.map((m) => m.message.type)).toEqual([MessageType.Snap]);
    expect(fp.status()).toMatchObject({ droppedMessages: 2, delayedMessages: 4 });
    fp.set(undefined);
    expect(fp.plan(2, messages(1))).toBeUndefined();
  });

  test('refuses out-of-range settings, naming the field, and keeps the previous one', () => {
    const fp = new TransportFailpoints();
    fp.set({ peers: [], delayMs: 5, jitterMs: 0, dropProbability: 0 });
    expect(() => fp.set({ peers: [], delayMs: -1, jitterMs: 0, dropProbability: 0 })).toThrow(/delay_ms/);
    expect(() => fp.set({ peers: [], delayMs: 0, jitterMs: 0, dropProbability: 1.5 })).toThrow(/drop_probability/);
    expect(() => fp.set({ peers: [0], delayMs: 0, jitterMs: 0, dropProbability: 0 })).toThrow(/peer_node_ids/);
    expect(fp.status().active).toEqual({ peers: [], delayMs: 5, jitterMs: 0, dropProbability: 0 });
  });
});

describe('Admin.SetTransportFailpoint', () => {
  clusterTest(
    'refused without --failpoints; with it, set, reported in ClusterStatus, and cleared',
    async () => {
      const plain = await ProcessCluster.start({ nodes: 1, name: 'fp-off' });
      const off = new AdminClient(plain.endpoints());
      try {
        await expect(off.setTransportFailpoint(plain.address(1), { delayMs: 10 })).rejects.toThrow(InvalidRequestError);
        await expect(off.setTransportFailpoint(plain.address(1), { delayMs: 10 })).rejects.toThrow(/--failpoints/);
        const [view] = await off.clusterStatus();
        expect(view?.status?.transportFailpoint).toMatchObject({ enabled: false, active: false });
      } finally {
        off.close();
      }

      const c = await ProcessCluster.start({ nodes: 1, name: 'fp-on', extraArgs: ['--failpoints'] });
      const a = new AdminClient(c.endpoints());
      try {
        const set = await a.setTransportFailpoint(c.address(1), { peerNodeIds: [2, 3], delayMs: 25, jitterMs: 5, dropProbability: 0.25 });
        expect(set).toMatchObject({ enabled: true, active: true, peerNodeIds: [2, 3], delayMs: 25, jitterMs: 5, dropProbability: 0.25 });
        const [view] = await a.clusterStatus();
        expect(view?.status?.transportFailpoint).toMatchObject({ enabled: true, active: true, delayMs: 25 });
        await expect(a.setTransportFailpoint(c.address(1), { dropProbability: 2 })).rejects.toThrow(/drop_probability/);
        expect(await a.setTransportFailpoint(c.address(1), undefined)).toMatchObject({ enabled: true, active: false });
      } finally {
        a.close();
      }
    },
    60_000,
  );
});
