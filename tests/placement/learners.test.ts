// Policy 3, learners per zone.

import { schedule } from '../../src/placement';
import { cluster, node, range, settle, stepsOf, TEST_CONFIG } from './fixtures';

const PER_ZONE = { votersPerRange: 3, learners: 'zones-without-voter' as const };
const nodes = [node(1, 'a'), node(2, 'b'), node(3, 'c'), node(4, 'd'), node(5, 'e'), node(6, 'a'), node(7, 'd')];

describe('learners', () => {
  it('adds a learner in a zone that has no voter, one at a time per range', () => {
    const { operators, counts } = schedule(cluster(nodes, [range(1, [1, 2, 3])], { rules: PER_ZONE }), TEST_CONFIG);
    expect(counts.learner).toBe(1);
    expect(stepsOf(operators[0]!)).toEqual(['add-learner 4']);
  });

  it('settles with exactly one learner in every zone without a voter', () => {
    const { state, violations } = settle(cluster(nodes, [range(1, [1, 2, 3]), range(2, [6, 2, 4], { leader: 2 })], { rules: PER_ZONE }));
    expect(violations).toEqual([]);
    for (const info of state.ranges) {
      const zoneOf = (id: number): string => nodes.find((candidate) => candidate.id === id)!.zone;
      const voterZones = info.replicas.filter((replica) => replica.role === 'voter').map((replica) => zoneOf(replica.nodeId));
      const learnerZones = info.replicas.filter((replica) => replica.role === 'learner').map((replica) => zoneOf(replica.nodeId));
      expect(new Set(voterZones).size).toBe(3);
      expect([...learnerZones].sort()).toEqual(['a', 'b', 'c', 'd', 'e'].filter((zone) => !voterZones.includes(zone)));
    }
  });

  it('removes a learner from a zone that holds a voter', () => {
    const { operators } = schedule(cluster(nodes, [range(1, [1, 2, 3], { learners: [4, 5, 6] })], { rules: PER_ZONE }), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['remove-replica 6']);
  });

  it('removes every learner under the rule none', () => {
    const { operators } = schedule(cluster(nodes, [range(1, [1, 2, 3], { learners: [4] })]), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['remove-replica 4']);
  });

  it('re-creates a dead learner in its zone, then removes it', () => {
    const withDead = [...nodes.filter((info) => info.id !== 4), node(4, 'd', 'down')];
    const { operators } = schedule(cluster(withDead, [range(1, [1, 2, 3], { learners: [4, 5] })], { rules: PER_ZONE }), TEST_CONFIG);
    expect(stepsOf(operators[0]!)).toEqual(['add-learner 7', 'remove-replica 4']);
  });

  it('keeps voters in the zones the rules name and learners in the others', () => {
    const rules = { votersPerRange: 3, learners: 'zones-without-voter' as const, voterZones: ['a', 'b', 'c'] };
    const zoned = [node(1, 'a'), node(2, 'b'), node(3, 'c', 'down'), node(4, 'd'), node(5, 'e'), node(6, 'c'), node(8, 'a')];
    const { state, violations } = settle(cluster(zoned, [range(1, [1, 2, 3], { learners: [4] })], { rules }));
    expect(violations).toEqual([]);
    const [info] = state.ranges;
    const voters = info!.replicas.filter((replica) => replica.role === 'voter').map((replica) => replica.nodeId).sort();
    const learners = info!.replicas.filter((replica) => replica.role === 'learner').map((replica) => replica.nodeId).sort();
    // The learner in zone d is never promoted to replace the dead voter: d holds no voters.
    expect(voters).toEqual([1, 2, 6]);
    expect(learners).toEqual([4, 5]);
  });
});
