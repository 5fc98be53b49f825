// Same input, same output — whatever the order of nodes, ranges and in-flight operators.

import { schedule, type ClusterState } from '../../src/placement';
import { SeededRng } from '../../src/raft';
import { cluster, node, range, TEST_CONFIG } from './fixtures';

function shuffled<T>(items: readonly T[], rng: SeededRng): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = rng.intn(i + 1);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

function busyCluster(): ClusterState {
  const nodes = [
    ...Array.from({ length: 9 }, (_, i) => node(i + 1, `z${i % 3}`)),
    node(10, 'z0', 'down'),
    node(11, 'z1', 'draining'),
    node(12, 'z2'),
    node(13, 'z0', 'suspect'),
    node(14, 'z1'),
  ];
  const rng = new SeededRng(7);
  const ranges = Array.from({ length: 60 }, (_, i) => {
    const voters = [1 + 3 * rng.intn(3), 2 + 3 * rng.intn(3), 3 + 3 * rng.intn(3)];
    if (i % 7 === 0) voters[0] = 10;
    if (i % 11 === 0) voters[1] = 11;
    if (i % 13 === 0) voters[0] = 13;
    return range(i + 1, voters, { leader: voters[1 + (i % 2)], stats: { sizeBytes: i % 17 === 0 ? 200 * 1024 * 1024 : 1024 } });
  });
  return cluster(nodes, ranges);
}

describe('determinism', () => {
  it('gives the same operators for the same input', () => {
    const state = busyCluster();
    const first = schedule(state, TEST_CONFIG);
    expect(first.operators.length).toBeGreaterThan(10);
    expect(schedule(state, TEST_CONFIG)).toEqual(first);
  });

  it('does not depend on the order of nodes, ranges or in-flight operators', () => {
    const state = busyCluster();
    const config = { ...TEST_CONFIG, maxOperatorsPerRound: 20, maxInFlightPerNode: 3 };
    const first = schedule(state, config);
    const inFlight = first.operators.slice(0, 6).map((operator) => ({ operator, nextStep: 0 }));
    const expected = schedule({ ...state, inFlight }, config);
    for (let seed = 1; seed <= 5; seed++) {
      const rng = new SeededRng(seed);
      const permuted: ClusterState = { ...state, nodes: shuffled(state.nodes, rng), ranges: shuffled(state.ranges, rng), inFlight: shuffled(inFlight, rng) };
      expect(schedule(permuted, config)).toEqual(expected);
    }
  });
});
