// Splits of a range across in-process nodes: the left side keeps the id, the right side is a new
// range with the same replicas, created at apply on every replica (or later, from a snapshot,
// on a replica that was away), never overlapping a range a node still hosts unsplit.
import { CommandStatus, Node, SplitRefusedError } from '../../src/node';
import { ConfChangeType } from '../../src/raft';
import { NodeCluster, putCommand, waitFor } from './fixture';

const LEFT = 1;
const RIGHT = 2;
const hex = (s: string): string => Buffer.from(s).toString('hex');

/** The bounds of a range on a node, as [startHex, endHex, version]. */
function boundsOn(n: Node, rangeId: number): [string, string, number] | undefined {
  const r = n.replicas.get(rangeId);
  if (!r || !r.initialized) return undefined;
  const b = r.sm.bounds;
  return [Buffer.from(b.start).toString('hex'), Buffer.from(b.end).toString('hex'), b.epochVersion];
}

/** Every key/value of a range on a node, read from its local state. */
async function contents(n: Node, rangeId: number): Promise<string[]> {
  const out: string[] = [];
  for await (const kv of n.replica(rangeId).sm.scan(Buffer.alloc(0), Buffer.alloc(0), 0)) out.push(`${kv.key.toString()}=${kv.value.toString()}`);
  return out;
}

describe('node: range splits', () => {
  let c: NodeCluster;
  afterEach(async () => {
    await c.stopAll();
  });

  it('splits on every replica: the left keeps its id, the right is a new range with the same replicas and data', async () => {
    c = new NodeCluster([1, 2, 3]);
    await c.startAll();
    for (const k of ['a', 'f', 'm', 'q', 'z']) await c.put(k, `v-${k}`, LEFT);
    const leader = await c.leader(LEFT);
    const { left, right } = await leader.split(LEFT, Buffer.from('m'), RIGHT);
    expect(Buffer.from(left.end).toString()).toBe('m');
    expect(Buffer.from(right.start).toString()).toBe('m');
    for (const n of c.nodes.values()) {
      await waitFor(`node ${n.nodeId} applied the split`, () => boundsOn(n, RIGHT) !== undefined);
      expect(boundsOn(n, LEFT)).toEqual(['', hex('m'), 2]);
      expect(boundsOn(n, RIGHT)).toEqual([hex('m'), '', 2]);
      expect(n.replica(RIGHT).confState.voters).toEqual(n.replica(LEFT).confState.voters);
    }
    // Both sides serve: the right one elects a leader (the parent's leader campaigns at once).
    await c.put('n', 'v-n', RIGHT);
    await c.put('b', 'v-b', LEFT);
    for (const n of c.nodes.values()) {
      await c.readBarrier(n, RIGHT);
      await c.readBarrier(n, LEFT);
      expect(await contents(n, LEFT)).toEqual(['a=v-a', 'b=v-b', 'f=v-f']);
      expect(await contents(n, RIGHT)).toEqual(['m=v-m', 'n=v-n', 'q=v-q', 'z=v-z']);
    }
  });

  it('refuses a command routed with the old epoch or to the wrong side, and a bad split', async () => {
    c = new NodeCluster([1, 2, 3]);
    await c.startAll();
    await c.put('a', '1', LEFT);
    const leader = await c.leader(LEFT);
    await expect(leader.split(LEFT, Buffer.alloc(0), RIGHT)).rejects.toThrow(SplitRefusedError);
    await expect(leader.split(LEFT, Buffer.from('m'), RIGHT, 7)).rejects.toThrow(/epoch version is 1, not 7/);
    await expect(leader.split(LEFT, Buffer.from('m'), 0)).rejects.toThrow(/already in use/);
    await leader.split(LEFT, Buffer.from('m'), RIGHT);
    await expect(leader.split(LEFT, Buffer.from('q'), 3)).rejects.toThrow(/not strictly inside/);
    await expect(leader.split(LEFT, Buffer.from('m'), 3)).rejects.toThrow(/not strictly inside/);
    // A put routed before the split (epoch 1) is refused at apply, not applied.
    const l = await c.leader(LEFT);
    const stale = await l.propose(LEFT, putCommand(5, 1, 'b', 'x', 1));
    expect(stale.result.status).toBe(CommandStatus.EpochNotMatch);
    const wrongSide = await l.propose(LEFT, putCommand(5, 2, 'x', 'x', 2));
    expect(wrongSide.result.status).toBe(CommandStatus.KeyNotInRange);
    expect(l.replica(LEFT).sm.get(Buffer.from('b'))).toBeUndefined();
  });

  it('the right side remembers the clients of the parent: a write retried after the split is not applied twice', async () => {
    c = new NodeCluster([1, 2, 3]);
    await c.startAll();
    const leader = await c.leader(LEFT);
    const first = await leader.propose(LEFT, putCommand(42, 7, 'x', 'first', 1));
    expect(first.result.status).toBe(CommandStatus.Ok);
    await leader.split(LEFT, Buffer.from('m'), RIGHT);
    const r = await c.leader(RIGHT);
    // The same client and sequence, re-routed to the new range (as after a lost reply): the first result.
    const retry = await r.propose(RIGHT, { ...putCommand(42, 7, 'x', 'second', 2) });
    expect(retry.result.status).toBe(CommandStatus.Ok);
    expect(retry.result.results).toEqual(first.result.results);
    expect(r.replica(RIGHT).sm.get(Buffer.from('x'))?.value.toString()).toBe('first');
  });

  it('both sides survive a restart of every node', async () => {
    c = new NodeCluster([1, 2, 3]);
    await c.startAll();
    for (const k of ['a', 'q']) await c.put(k, k, LEFT);
    await (await c.leader(LEFT)).split(LEFT, Buffer.from('m'), RIGHT);
    await c.put('r', 'r', RIGHT);
    for (const id of [1, 2, 3]) await c.stop(id);
    await c.startAll();
    await c.put('s', 's', RIGHT);
    await c.put('b', 'b', LEFT);
    for (const n of c.nodes.values()) {
      await c.readBarrier(n, LEFT);
      await c.readBarrier(n, RIGHT);
      expect(boundsOn(n, LEFT)).toEqual(['', hex('m'), 2]);
      expect(await contents(n, LEFT)).toEqual(['a=a', 'b=b']);
      expect(await contents(n, RIGHT)).toEqual(['q=q', 'r=r', 's=s']);
    }
  });

  it('a node that was down during splits catches up: from the log, or from snapshots once its ranges stop overlapping', async () => {
    c = new NodeCluster([1, 2, 3], { snapshotEveryEntries: 10, compactionSlackEntries: 1 });
    await c.startAll();
    for (let i = 0; i < 10; i++) await c.put(`k${i}`, 'old', LEFT);
    const away = 3;
    await c.stop(away);
    // Two splits and many writes on every side while node 3 is away; the logs get compacted.
    await (await c.leader(LEFT)).split(LEFT, Buffer.from('k3'), RIGHT);
    await (await c.leader(RIGHT)).split(RIGHT, Buffer.from('k6'), 3);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 10; i++) await c.put(`k${i}`, `new${round}`, i < 3 ? LEFT : i < 6 ? RIGHT : 3);
    }
    const n = await c.start(away);
    for (const id of [LEFT, RIGHT, 3]) {
      await waitFor(`node ${away} has range ${id}`, () => boundsOn(n, id) !== undefined, 20_000);
      await c.readBarrier(n, id);
    }
    const leader = await c.leader(LEFT);
    for (const id of [LEFT, RIGHT, 3]) {
      expect(boundsOn(n, id)).toEqual(boundsOn(leader, id));
      expect(await contents(n, id)).toEqual(await contents(leader, id));
    }
    expect((await contents(n, 3)).every((kv) => kv.endsWith('=new4'))).toBe(true);
  });

  it('a node added to the right side only receives it by snapshot, with its bounds and data', async () => {
    c = new NodeCluster([1, 2, 3]);
    await c.startAll();
    for (const k of ['a', 'p', 'q']) await c.put(k, k, LEFT);
    await (await c.leader(LEFT)).split(LEFT, Buffer.from('m'), RIGHT);
    const n4 = await c.start(4);
    const rl = await c.leader(RIGHT);
    await rl.proposeConfChange(RIGHT, { type: ConfChangeType.AddLearner, nodeId: 4, context: new Uint8Array(0) });
    await waitFor('node 4 initialized range 2', () => boundsOn(n4, RIGHT) !== undefined);
    await c.put('r', 'r', RIGHT);
    await c.readBarrier(n4, RIGHT);
    expect(boundsOn(n4, RIGHT)).toEqual([hex('m'), '', 2]);
    expect(await contents(n4, RIGHT)).toEqual(['p=p', 'q=q', 'r=r']);
    expect(n4.replicas.has(LEFT)).toBe(false);
    // Nothing of the left side reached node 4.
    expect(n4.replica(RIGHT).sm.get(Buffer.from('a'))).toBeUndefined();
  });
});
