import { Cluster } from './harness';
import { StateType } from '../../src/raft';

describe('raft smoke', () => {
  it('elects a leader by timeout and replicates a proposal to all', () => {
    const c = new Cluster([1, 2, 3]);
    c.tickUntil(() => c.leader() !== undefined, 100);
    const l = c.leader()!;
    c.propose(l.id, 'hello');
    c.tick(3);
    for (const n of c.nodes.values()) expect(n.appliedData()).toEqual(['hello']);
    expect([...c.nodes.values()].filter((n) => n.state === StateType.Leader)).toHaveLength(1);
  });
});
