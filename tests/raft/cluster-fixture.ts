// Shared by the raft test files: clusters made with newCluster() are checked for safety
// (one leader per term, same entry at each applied index, log matching) after every test.

import { Cluster, HarnessOptions } from './harness';

const clusters: Cluster[] = [];

export function newCluster(ids: number[], opts: HarnessOptions = {}): Cluster {
  const c = new Cluster(ids, opts);
  clusters.push(c);
  return c;
}

afterEach(() => {
  for (const c of clusters.splice(0)) c.assertSafety();
});

/** Runs fn, which must throw, and returns what it threw. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception, none was thrown');
}
