// The heartbeat reporter skips idle, unchanged ranges; a learner that catches up is a change
// placement must hear at once (the scheduler promotes a learner only once placement sees it
// caught up), even when the range serves nothing.

import { HeartbeatReporter } from '../../src/placement';
import { ConfChangeType } from '../../src/raft';
import { NodeCluster, waitFor } from '../node/fixture';

const RANGE = 1;

describe('HeartbeatReporter', () => {
  let cluster: NodeCluster;

  afterEach(async () => {
    await cluster.stopAll();
  });

  test('an idle range is reported again when its learner catches up, and not otherwise', async () => {
    cluster = new NodeCluster([1, 2, 3]);
    await cluster.startAll();
    await cluster.put('a', '1', RANGE);
    const leader = await cluster.leader(RANGE);
    const reporter = new HeartbeatReporter(leader, '127.0.0.1:1', 'z1');
    const reported = async (): Promise<readonly number[] | undefined> =>
      (await reporter.build()).ranges.find((r) => r.descriptor.rangeId === RANGE)?.load.caughtUpLearners;

    expect(await reported()).toEqual([]);
    // Nothing changed: the range is left out.
    expect(await reported()).toBeUndefined();

    // Node 4 is added as a learner while it is not running: it cannot catch up yet.
    await leader.proposeConfChange(RANGE, { type: ConfChangeType.AddLearner, nodeId: 4, context: new Uint8Array(0) });
    expect(await reported()).toEqual([]);
    expect(await reported()).toBeUndefined();

    // It starts and catches up from a snapshot; the range applies nothing new meanwhile.
    const appliedBefore = leader.replica(RANGE).appliedIndex;
    await cluster.start(4);
    await waitFor('the learner to catch up', () => {
      const p = leader.replica(RANGE).rawNode.status().progress?.get(4);
      return p !== undefined && p.state === 'Replicate' && p.match >= appliedBefore;
    });
    expect(leader.replica(RANGE).appliedIndex).toBe(appliedBefore);
    expect(await reported()).toEqual([4]);
    expect(await reported()).toBeUndefined();
  });
});
