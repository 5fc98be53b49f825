// Three in-process nodes over the local transport and real LevelDB directories.
import { Node, Command, SnapshotInstallingError } from '../../src/node';
import { NodeCluster, waitFor } from './fixture';
import { ConfChangeType, MessageType, makeMessage } from '../../src/raft';

const RANGE = 1;

class TestCluster extends NodeCluster {
  /** A read barrier on `n`, once it knows a leader (a restarted node learns it from the first heartbeat). */
  override readBarrier(n: Node): Promise<number> {
    return super.readBarrier(n, RANGE);
  }

  override leader(): Promise<Node> {
    return super.leader(RANGE);
  }

  override put(key: string, value: string): Promise<number> {
    return super.put(key, value, RANGE);
  }
}

describe('node: three replicas over the local transport', () => {
  let c: TestCluster;
  afterEach(async () => {
    await c.stopAll();
  });

  it('elects a leader, replicates writes to every node, serves linearizable reads', async () => {
    c = new TestCluster([1, 2, 3]);
    await c.startAll();
    for (let i = 0; i < 20; i++) await c.put(`k${i}`, `v${i}`);
    const leader = await c.leader();
    const applied = await leader.readBarrier(RANGE);
    expect(applied).toBeGreaterThanOrEqual(20);
    expect((await leader.replica(RANGE).sm.get(Buffer.from('k19')))!.value.toString()).toBe('v19');
    // A follower's read barrier asks the leader and waits to apply.
    const follower = [...c.nodes.values()].find((n) => n !== leader)!;
    await follower.readBarrier(RANGE);
    expect((await follower.replica(RANGE).sm.get(Buffer.from('k19')))!.value.toString()).toBe('v19');
  });

  it('proposals on a follower are refused with the leader id', async () => {
    c = new TestCluster([1, 2, 3]);
    await c.startAll();
    await c.put('a', '1');
    const leader = await c.leader();
    const follower = [...c.nodes.values()].find((n) => n !== leader)!;
    await waitFor('follower knows the leader', () => (follower.replica(RANGE).rawNode.status().leader === leader.nodeId ? true : undefined));
    const cmd: Command = { clientId: 0, sequence: 0, answeredBelow: 0, proposedAtMs: 0, epochVersion: 1, ops: [] };
    await expect(follower.propose(RANGE, cmd)).rejects.toMatchObject({ code: 'RAFT_NOT_LEADER', leader: leader.nodeId });
  });

  it('a node restarted from its data directory keeps its data and catches up from the log', async () => {
    c = new TestCluster([1, 2, 3]);
    await c.startAll();
    for (let i = 0; i < 10; i++) await c.put(`k${i}`, 'before');
    const leader = await c.leader();
    const victim = [...c.nodes.keys()].find((id) => id !== leader.nodeId)!;
    await c.stop(victim);
    for (let i = 0; i < 10; i++) await c.put(`k${i}`, 'after');
    const restarted = await c.start(victim);
    await c.readBarrier(restarted);
    expect((await restarted.replica(RANGE).sm.get(Buffer.from('k9')))!.value.toString()).toBe('after');
  });

  it("the descriptor's conf version counts membership changes, survives restarts and travels in snapshots", async () => {
    c = new TestCluster([1, 2, 3], { snapshotEveryEntries: 20, compactionSlackEntries: 2 });
    await c.startAll();
    await c.put('k', 'v');
    const confVersion = (n: Node): number => n.replica(RANGE).sm.bounds.confVersion;
    // Bootstrap starts the range with its three voters at conf version 0 (no membership entries).
    for (const n of c.nodes.values()) expect(confVersion(n)).toBe(0);
    const leader = await c.leader();
    const victim = [...c.nodes.keys()].find((id) => id !== leader.nodeId)!;
    await c.stop(victim);
    await leader.proposeConfChange(RANGE, { type: ConfChangeType.AddLearner, nodeId: 9, context: new Uint8Array(0) });
    expect(confVersion(leader)).toBe(1);
    // The stopped node misses the change and enough writes that it must take a snapshot.
    for (let i = 0; i < 40; i++) await c.put(`k${i}`, `v${i}`);
    const restarted = await c.start(victim);
    await c.readBarrier(restarted);
    expect(restarted.replica(RANGE).storage.snapshot().metadata.index).toBeGreaterThan(0);
    expect(confVersion(restarted)).toBe(1);
    // And the leader keeps it across its own restart.
    const leaderId = leader.nodeId;
    await c.stop(leaderId);
    const again = await c.start(leaderId);
    expect(confVersion(again)).toBe(1);
  });

  it('a node removed from the range destroys its replica, keeps a tombstone (and its vote), and comes back only when added again', async () => {
    c = new TestCluster([1, 2, 3]);
    await c.startAll();
    for (let i = 0; i < 5; i++) await c.put(`k${i}`, 'v');
    const leader = await c.leader();
    const victimId = [...c.nodes.keys()].find((id) => id !== leader.nodeId)!;
    const victim = c.nodes.get(victimId)!;
    await waitFor('the victim applied the writes', () => victim.replica(RANGE).appliedIndex >= leader.replica(RANGE).appliedIndex || undefined);
    await leader.proposeConfChange(RANGE, { type: ConfChangeType.RemoveNode, nodeId: victimId, context: new Uint8Array(0) });
    await waitFor('the victim destroyed its replica', () => !victim.replicas.has(RANGE) || undefined);
    expect(victim.isTombstoned(RANGE)).toBe(true);
    // Its log, sessions and data go (after the replica stopped serving); node metadata, peer
    // addresses, the tombstone and the hard state (term and vote, commit 0) remain.
    const hsKey = Buffer.from([0x02, 0, 0, 0, 0, 0, 0, 0, RANGE, 0x01]);
    const rangeState = async (): Promise<string[]> => {
      const keys: string[] = [];
      for await (const k of victim.engine.db.keys()) if (![0x01, 0x06, 0x09].includes(k[0]!) && !k.equals(hsKey)) keys.push(k.toString('hex'));
      return keys;
    };
    await waitFor('its range state deleted', async () => (await rangeState()).length === 0 || undefined);
    expect(await victim.engine.db.get(Buffer.from([0x09, 0, 0, 0, 0, 0, 0, 0, RANGE]))).toBeDefined();
    expect(await victim.engine.db.get(hsKey)).toBeDefined();
    // A late message from the leader makes at most an uninitialized replica: it serves nothing.
    victim.receive(leader.nodeId, [
      { rangeId: RANGE, message: makeMessage({ type: MessageType.Heartbeat, from: leader.nodeId, to: victimId, term: leader.replica(RANGE).rawNode.status().term }) },
    ]);
    expect(victim.replicas.get(RANGE)?.initialized ?? false).toBe(false);
    expect(() => victim.replica(RANGE)).toThrow(/no replica/);
    // The other two carry on.
    await c.put('after', 'removal');
    // After a restart the node still knows.
    await c.stop(victimId);
    const again = await c.start(victimId);
    expect(again.replicas.get(RANGE)?.initialized ?? false).toBe(false);
    expect(again.isTombstoned(RANGE)).toBe(true);
    // Added back (a rebalance may move a replica back), it gets a snapshot of the new membership.
    const l = await c.leader();
    await l.proposeConfChange(RANGE, { type: ConfChangeType.AddLearner, nodeId: victimId, context: new Uint8Array(0) });
    await waitFor('the node initialized the range again', () => again.replicas.get(RANGE)?.initialized === true || undefined);
    expect(again.isTombstoned(RANGE)).toBe(false);
    await c.put('back', 'again');
    // Reads are refused while a snapshot installs (a second one may follow the first while the
    // learner catches up): that is a state to wait through, not a failure.
    const local = (k: string): Buffer | undefined => {
      try {
        return again.replica(RANGE).sm.get(Buffer.from(k))?.value;
      } catch (err) {
        if (err instanceof SnapshotInstallingError) return undefined;
        throw err;
      }
    };
    await waitFor('it applied the latest write', () => local('back') !== undefined || undefined);
    for (const k of ['k0', 'k4', 'after']) expect(await waitFor(`${k} readable here`, () => local(k))).toBeDefined();
  });

  it('a node that missed compacted entries catches up from a snapshot', async () => {
    c = new TestCluster([1, 2, 3], { snapshotEveryEntries: 20, compactionSlackEntries: 2 });
    await c.startAll();
    await c.put('first', '1');
    const leader = await c.leader();
    const victim = [...c.nodes.keys()].find((id) => id !== leader.nodeId)!;
    await c.stop(victim);
    for (let i = 0; i < 60; i++) await c.put(`k${i}`, `v${i}`);
    const l = await c.leader();
    expect(l.replica(RANGE).storage.firstIndex()).toBeGreaterThan(3); // the log was compacted
    const restarted = await c.start(victim);
    await c.readBarrier(restarted);
    const r = restarted.replica(RANGE);
    expect(r.storage.snapshot().metadata.index).toBeGreaterThan(0);
    expect((await r.sm.get(Buffer.from('k59')))!.value.toString()).toBe('v59');
    expect((await r.sm.get(Buffer.from('first')))!.value.toString()).toBe('1');
  });
});

describe('node: replica GC', () => {
  let c: TestCluster;
  afterEach(async () => {
    await c.stopAll();
  });

  it('a replica removed while its node was down is found silent, checked against the leader, and destroyed', async () => {
    c = new TestCluster([1, 2, 3]);
    await c.startAll();
    await c.put('a', '1');
    const leader = await c.leader();
    const awayId = [...c.nodes.keys()].find((id) => id !== leader.nodeId)!;
    await c.stop(awayId);
    await leader.proposeConfChange(RANGE, { type: ConfChangeType.RemoveNode, nodeId: awayId, context: new Uint8Array(0) });
    await c.put('b', '2');
    const away = await c.start(awayId);
    // Nobody talks to it any more: it stays initialized with its old membership, a zombie.
    expect(away.replica(RANGE).confState.voters).toContain(awayId);
    const candidates = await waitFor('the zombie to be a GC candidate', () => {
      const cs = away.gcCandidates(300);
      return cs.length > 0 ? cs : undefined;
    });
    expect(candidates.map((x) => x.rangeId)).toEqual([RANGE]);
    // A member that hears its leader is never a candidate.
    const healthy = [...c.nodes.values()].find((n) => n.nodeId !== awayId && !n.replica(RANGE).isLeader())!;
    expect(healthy.gcCandidates(300)).toEqual([]);
    // The leader's descriptor lacks the node and is newer: the replica goes, with a tombstone.
    const l = await c.leader();
    const lb = l.replica(RANGE).sm.bounds;
    const seen = candidates[0]!;
    expect(away.collectReplica(RANGE, seen, { version: lb.epochVersion, confVersion: seen.confVersion })).toBe(false); // not newer
    expect(away.collectReplica(RANGE, seen, { version: lb.epochVersion, confVersion: lb.confVersion })).toBe(true);
    await waitFor('the zombie destroyed', () => !away.replicas.has(RANGE) || undefined);
    expect(away.isTombstoned(RANGE)).toBe(true);
    await c.put('c', '3');
  });
});
