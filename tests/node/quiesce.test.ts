// Quiescing: an idle range stops ticking and heartbeating on its leader and followers; traffic
// wakes it; a follower whose leader's node falls silent wakes up and elects a new leader; idle
// ranges cost the transport one liveness beat per peer per heartbeat interval, not one message
// per range.
import { Node, NODE_BEAT_RANGE_ID } from '../../src/node';
import { MessageType } from '../../src/raft';
import type { RangeMessage, TransportHandler } from '../../src/transport';
import { NodeCluster, waitFor } from './fixture';

const RANGE = 1;

function allQuiesced(nodes: Iterable<Node>): boolean {
  for (const n of nodes) for (const r of n.replicas.values()) if (!r.quiesced) return false;
  return true;
}

/**
 * Waits until every replica is quiet and has stayed quiet for 20 ticks (of 10 ms) in a row. A
 * follower marks itself quiet when the leader's last heartbeat arrives, before its answer to it
 * has reached the leader: when allQuiesced first holds, those answers may still be on their way
 * (they land within a tick or two). A test that counts messages from then on must wait them out.
 */
async function settledQuiet(c: NodeCluster): Promise<void> {
  await waitFor('every replica quiesced', () => allQuiesced(c.nodes.values()), 20_000);
  let quietSince = Date.now();
  await waitFor('quiet for 20 ticks in a row', () => {
    if (!allQuiesced(c.nodes.values())) quietSince = Date.now();
    return Date.now() - quietSince >= 200 || undefined;
  }, 20_000);
}

describe('node: quiescing idle ranges', () => {
  let c: NodeCluster;
  afterEach(async () => {
    await c.stopAll();
  });

  it('an idle range goes quiet everywhere; a write wakes it, succeeds, and it goes quiet again', async () => {
    c = new NodeCluster([1, 2, 3], { quiesceAfterTicks: 20 });
    await c.startAll();
    await c.put('a', '1', RANGE);
    await waitFor('every replica quiesced', () => allQuiesced(c.nodes.values()));
    const before = (await c.leader(RANGE)).replica(RANGE).rawNode.status().term;
    await c.put('b', '2', RANGE);
    for (const n of c.nodes.values()) await waitFor(`node ${n.nodeId} applied b`, () => n.replica(RANGE).sm.get(Buffer.from('b')) !== undefined);
    await waitFor('quiesced again', () => allQuiesced(c.nodes.values()));
    // Quiet is not an election: the same term throughout.
    expect((await c.leader(RANGE)).replica(RANGE).rawNode.status().term).toBe(before);
    // A linearizable read on a quiet follower wakes the range and is served.
    const follower = [...c.nodes.values()].find((n) => !n.replica(RANGE).isLeader())!;
    await c.readBarrier(follower, RANGE);
    expect(follower.replica(RANGE).sm.get(Buffer.from('b'))?.value.toString()).toBe('2');
  });

  it('when the leader\'s node stops, quiet followers wake and elect a new leader', async () => {
    c = new NodeCluster([1, 2, 3], { quiesceAfterTicks: 20 });
    await c.startAll();
    await c.put('a', '1', RANGE);
    await waitFor('every replica quiesced', () => allQuiesced(c.nodes.values()));
    const old = await c.leader(RANGE);
    await c.stop(old.nodeId);
    const next = await waitFor('a new leader', () => [...c.nodes.values()].find((n) => n.replica(RANGE).isLeader()), 10_000);
    expect(next.nodeId).not.toBe(old.nodeId);
    await c.put('c', '3', RANGE);
  });

  it('a follower whose read answer was lost does not go quiet with the read waiting: the read is asked again', async () => {
    // The leader goes quiet again (3 ticks) well before the follower would ask again (an
    // election timeout, 10 ticks): a follower that followed it into quiet would never tick, and
    // its read would wait forever.
    c = new NodeCluster([1, 2, 3], { quiesceAfterTicks: 3, electionTicks: 10 });
    await c.startAll();
    await c.put('a', '1', RANGE);
    await waitFor('every replica quiesced', () => allQuiesced(c.nodes.values()));
    const follower = [...c.nodes.values()].find((n) => !n.replica(RANGE).isLeader())!;
    const handler = follower as unknown as TransportHandler;
    const original = handler.receive.bind(handler);
    let dropped = 0;
    handler.receive = (from: number, msgs: readonly RangeMessage[]): void => {
      const kept = msgs.filter((m) => !(m.rangeId === RANGE && m.message.type === MessageType.ReadIndexResp && dropped++ === 0));
      original(from, kept);
    };
    const read = c.readBarrier(follower, RANGE);
    const outcome = await Promise.race([read.then(() => 'served'), new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5_000))]);
    handler.receive = original;
    expect(dropped).toBeGreaterThanOrEqual(1);
    expect(outcome).toBe('served');
  });

  it('twenty quiet ranges cost the transport only node beats', async () => {
    c = new NodeCluster([1, 2, 3], { quiesceAfterTicks: 20 });
    await c.startAll();
    let id = 2;
    // Splitting range 1 at descending keys: each split key lies inside what range 1 still holds.
    for (const k of ['t', 's', 'r', 'q', 'p', 'o', 'n', 'm', 'l', 'k', 'j', 'i', 'h', 'g', 'f', 'e', 'd', 'c', 'b']) {
      const leader = await c.leader(RANGE);
      await leader.split(RANGE, Buffer.from(k), id++);
    }
    // One write in every range: range 1 holds ['', b), range 2 [t, ''), range 3 [s, t), ...
    await c.put('a-x', 'v', 1);
    for (let r = 2; r < id; r++) await c.put(`${String.fromCharCode('t'.charCodeAt(0) - (r - 2))}-x`, 'v', r);
    await settledQuiet(c);
    // Count what node 1 receives over 1 s of quiet (the local network delivers to its handler).
    const n1 = c.nodes.get(1)!;
    const seen = { beats: 0, raft: 0, types: [] as string[] };
    const handler = n1 as unknown as TransportHandler;
    const original = handler.receive.bind(handler);
    handler.receive = (from: number, msgs: readonly RangeMessage[]): void => {
      for (const m of msgs) {
        if (m.rangeId === NODE_BEAT_RANGE_ID) seen.beats++;
        else {
          seen.raft++;
          seen.types.push(`range ${m.rangeId} ${MessageType[m.message.type]} from ${from}`);
        }
      }
      original(from, msgs);
    };
    await new Promise((r) => setTimeout(r, 1000)); // a measurement window, not a wait for a condition
    handler.receive = original;
    // Ticks are 10 ms: 2 peers beat ~100 times each. Unquiesced, 20 ranges would send 2 x 20 x 100 heartbeats.
    expect(seen.types).toEqual([]);
    expect(seen.beats).toBeGreaterThan(50);
    expect(allQuiesced(c.nodes.values())).toBe(true);
  });

  it('a stall of the whole process (GC, CPU starvation) does not wake quiet followers', async () => {
    // The three nodes share this process: a 400 ms stall (4 election timeouts of 10 ticks of
    // 10 ms) silences every peer for as long, but is one late tick of each node's own clock.
    c = new NodeCluster([1, 2, 3], { quiesceAfterTicks: 20 });
    await c.startAll();
    await c.put('a', '1', RANGE);
    // Counting starts after the stall: answers to the last heartbeat still in flight would count.
    await settledQuiet(c);
    const term = (await c.leader(RANGE)).replica(RANGE).rawNode.status().term;
    const end = Date.now() + 400;
    while (Date.now() < end) {
      // a synchronous stall: no timer, no message delivery
    }
    const raft: string[] = [];
    const restore: Array<() => void> = [];
    for (const n of c.nodes.values()) {
      const handler = n as unknown as TransportHandler;
      const original = handler.receive.bind(handler);
      handler.receive = (from: number, msgs: readonly RangeMessage[]): void => {
        for (const m of msgs) if (m.rangeId !== NODE_BEAT_RANGE_ID) raft.push(`range ${m.rangeId} ${MessageType[m.message.type]} ${from}->${n.nodeId}`);
        original(from, msgs);
      };
      restore.push(() => (handler.receive = original));
    }
    await new Promise((r) => setTimeout(r, 500)); // a measurement window, not a wait for a condition
    for (const f of restore) f();
    expect(raft).toEqual([]);
    expect(allQuiesced(c.nodes.values())).toBe(true);
    expect((await c.leader(RANGE)).replica(RANGE).rawNode.status().term).toBe(term);
  });
});
