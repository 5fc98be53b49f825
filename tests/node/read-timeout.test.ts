// Bounded waits on a replica: a linearizable read that cannot be served here (no read index comes
// back, or this replica's applied state does not reach it) is refused after readTimeoutMs with
// ReadTimeoutError, so a client tries another replica instead of spending its deadline on this one.
// And a snapshot payload keeps its LevelDB view open from the moment it is handed out.
import { Node, ReadTimeoutError } from '../../src/node';
import type { Replica } from '../../src/node';
import { MessageType } from '../../src/raft';
import type { RangeMessage, TransportHandler } from '../../src/transport';
import { NodeCluster, waitFor } from './fixture';

const RANGE = 1;

/** Filters what `n` receives until the returned function is called. */
function dropIncoming(n: Node, drop: (m: RangeMessage) => boolean): { restore: () => void; dropped: () => number } {
  const handler = n as unknown as TransportHandler;
  const original = handler.receive.bind(handler);
  let dropped = 0;
  handler.receive = (from: number, msgs: readonly RangeMessage[]): void => {
    const kept = msgs.filter((m) => {
      if (!drop(m)) return true;
      dropped++;
      return false;
    });
    original(from, kept);
  };
  return { restore: () => (handler.receive = original), dropped: () => dropped };
}

async function outcome(p: Promise<unknown>, withinMs: number): Promise<unknown> {
  return Promise.race([
    p.then(
      () => 'served',
      (err: unknown) => err,
    ),
    new Promise((resolve) => setTimeout(() => resolve(`still waiting after ${withinMs} ms`), withinMs)),
  ]);
}

describe('node: linearizable reads that cannot be served here are refused in bounded time', () => {
  let c: NodeCluster;
  afterEach(async () => {
    await c.stopAll();
  });

  it('no read index ever comes back: refused with ReadTimeoutError after readTimeoutMs (asked again meanwhile)', async () => {
    c = new NodeCluster([1, 2, 3], { electionTicks: 10, readTimeoutMs: 600, quiesceAfterTicks: 0 });
    await c.startAll();
    await c.put('a', '1', RANGE);
    const follower = [...c.nodes.values()].find((n) => !n.replica(RANGE).isLeader())!;
    await waitFor('follower knows the leader', () => (follower.replica(RANGE).rawNode.status().leader ? true : undefined));
    const cut = dropIncoming(follower, (m) => m.rangeId === RANGE && m.message.type === MessageType.ReadIndexResp);
    const started = Date.now();
    const got = await outcome(follower.readBarrier(RANGE), 5_000);
    cut.restore();
    expect(got).toBeInstanceOf(ReadTimeoutError);
    const err = got as ReadTimeoutError;
    expect(err.readIndex).toBeUndefined();
    expect(err.waitedMs).toBeGreaterThan(600);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    // Asked more than once (a round is re-issued every election timeout, 100 ms here).
    expect(cut.dropped()).toBeGreaterThanOrEqual(2);
    expect(follower.replica(RANGE).pendingReads()).toBe(0);
    // Nothing stuck behind it: with answers flowing again the next read is served.
    await expect(follower.readBarrier(RANGE)).resolves.toBeGreaterThan(0);
  });

  it('a follower whose log lags the read index: refused naming both indexes; served once it catches up', async () => {
    c = new NodeCluster([1, 2, 3], { electionTicks: 10, readTimeoutMs: 600, quiesceAfterTicks: 0 });
    await c.startAll();
    await c.put('a', '1', RANGE);
    const leader = await c.leader(RANGE);
    const follower = [...c.nodes.values()].find((n) => n !== leader)!;
    await waitFor('follower applied a', () => follower.replica(RANGE).sm.get(Buffer.from('a')) !== undefined);
    // The follower stops receiving entries (its heartbeats still arrive, so it keeps its leader).
    const cut = dropIncoming(follower, (m) => m.rangeId === RANGE && m.message.type === MessageType.App);
    await c.put('b', '2', RANGE); // committed by the leader and the third node
    const r: Replica = follower.replica(RANGE);
    const appliedBefore = r.appliedIndex;
    const got = await outcome(follower.readBarrier(RANGE), 5_000);
    expect(got).toBeInstanceOf(ReadTimeoutError);
    const err = got as ReadTimeoutError;
    expect(err.readIndex).toBeGreaterThan(appliedBefore);
    expect(err.appliedIndex).toBe(appliedBefore);
    expect(err.message).toContain(`read index ${err.readIndex}`);
    cut.restore();
    await expect(follower.readBarrier(RANGE)).resolves.toBeGreaterThanOrEqual(err.readIndex!);
    expect(r.sm.get(Buffer.from('b'))?.value.toString()).toBe('2');
  });
});

describe('node: snapshot payloads and their read views', () => {
  let c: NodeCluster;
  afterEach(async () => {
    await c.stopAll();
  });

  /** Private state reached for on purpose: the test is about when the view closes. */
  interface HandleView {
    snapHandle?: { index: number; readers: number; retired: boolean; view: { close(): Promise<void> } };
  }

  async function putUntilNewSnapshot(r: Replica, from: number): Promise<void> {
    let i = 0;
    while (r.storage.snapshot().metadata.index === from) {
      await c.put(`k${i++}`, 'v'.repeat(32), RANGE);
      if (i > 500) throw new Error('no new snapshot after 500 writes');
    }
  }

  /** Three nodes snapshotting every 10 entries; 12 keys written; the leader's replica once it holds a view for its snapshot. */
  async function leaderWithSnapshot(): Promise<{ r: Replica; snap: ReturnType<Replica['storage']['snapshot']> }> {
    c = new NodeCluster([1, 2, 3], { snapshotEveryEntries: 10, compactionSlackEntries: 2, quiesceAfterTicks: 0 });
    await c.startAll();
    for (let i = 0; i < 12; i++) await c.put(`a${i}`, 'x', RANGE);
    const r = (await c.leader(RANGE)).replica(RANGE);
    const snap = r.storage.snapshot();
    expect(snap.metadata.index).toBeGreaterThan(0);
    await waitFor('a view for the snapshot', () => (r as unknown as HandleView).snapHandle?.index === snap.metadata.index);
    return { r, snap };
  }

  it('a payload handed out before a newer snapshot replaces its view still reads it whole', async () => {
    const { r, snap } = await leaderWithSnapshot();
    const payload = r.snapshotPayload(snap, 64);
    // Not read yet: a newer snapshot retires its view now.
    await putUntilNewSnapshot(r, snap.metadata.index);
    let bytes = 0;
    for await (const chunk of payload) bytes += chunk.length;
    // Twelve keys "a0".."a11" at least, each with its 8-byte record header.
    expect(bytes).toBeGreaterThan(12 * 8);
  });

  it('a payload abandoned before its first read releases the view: a retired view closes', async () => {
    const { r, snap } = await leaderWithSnapshot();
    const h = (r as unknown as HandleView).snapHandle!;
    let closed = 0;
    const close = h.view.close.bind(h.view);
    h.view.close = () => {
      closed++;
      return close();
    };
    const payload = r.snapshotPayload(snap, 64)[Symbol.asyncIterator]();
    expect(h.readers).toBe(1);
    await putUntilNewSnapshot(r, snap.metadata.index);
    expect(h.retired).toBe(true);
    expect(closed).toBe(0); // its reader still holds it
    await payload.return?.();
    expect(h.readers).toBe(0);
    expect(closed).toBe(1);
    await payload.return?.(); // twice is harmless
    expect(h.readers).toBe(0);
  });
});
