// checkStep: the rules every step must keep at the moment it is executed, whatever the plan said.

import { checkStep, InvalidClusterStateError, type NodeInfo, type Operator, type OperatorStep, type RangeInfo } from '../../src/placement';
import { node, range, RULES_3 } from './fixtures';

const NODES: NodeInfo[] = [
  node(1, 'a'),
  node(2, 'b'),
  node(3, 'c'),
  node(4, 'a'),
  node(5, 'b', 'draining'),
  node(6, 'c', 'down'),
  node(7, 'a', 'suspect'),
  node(8, 'b', 'down'),
];
const nodes = new Map(NODES.map((info) => [info.id, info]));

function op(rangeInfo: RangeInfo, ...steps: OperatorStep[]): Operator {
  return { id: 'test', rangeId: rangeInfo.id, epoch: rangeInfo.epoch, purpose: 'repair', steps };
}

function verdict(rangeInfo: RangeInfo | undefined, step: OperatorStep, rangeIdForOp = 1): string {
  const operator: Operator = { id: 'test', rangeId: rangeIdForOp, epoch: rangeInfo?.epoch ?? { confVersion: 1, version: 1 }, purpose: 'repair', steps: [step] };
  return checkStep({ range: rangeInfo, nodes, rules: RULES_3 }, { operator, nextStep: 0 }).status;
}

describe('checkStep: add-learner', () => {
  const r = range(1, [1, 2, 3]);
  it('is ready on an up node that holds no replica', () => {
    expect(verdict(r, { kind: 'add-learner', rangeId: 1, nodeId: 4 })).toBe('ready');
  });
  it('is done when the node already holds a replica (a retry)', () => {
    expect(verdict(r, { kind: 'add-learner', rangeId: 1, nodeId: 2 })).toBe('done');
  });
  it.each([5, 6, 7])('aborts on node %i, which is not up (draining, down, suspect)', (nodeId) => {
    expect(verdict(r, { kind: 'add-learner', rangeId: 1, nodeId })).toBe('abort');
  });
  it('aborts on a node that is not in the cluster', () => {
    expect(verdict(r, { kind: 'add-learner', rangeId: 1, nodeId: 99 })).toBe('abort');
  });
  it('waits while the range has no quorum', () => {
    expect(verdict(range(1, [1, 6, 8]), { kind: 'add-learner', rangeId: 1, nodeId: 4 })).toBe('wait');
  });
  it('aborts when the range no longer exists', () => {
    expect(verdict(undefined, { kind: 'add-learner', rangeId: 1, nodeId: 4 })).toBe('abort');
  });
});

describe('checkStep: promote-learner', () => {
  it('waits while the learner catches up, then is ready', () => {
    expect(verdict(range(1, [1, 2, 3], { learners: [4], caughtUp: false }), { kind: 'promote-learner', rangeId: 1, nodeId: 4 })).toBe('wait');
    expect(verdict(range(1, [1, 2, 3], { learners: [4], caughtUp: true }), { kind: 'promote-learner', rangeId: 1, nodeId: 4 })).toBe('ready');
  });
  it('is done when the replica is already a voter', () => {
    expect(verdict(range(1, [1, 2, 4]), { kind: 'promote-learner', rangeId: 1, nodeId: 4 })).toBe('done');
  });
  it('aborts when the learner is gone (an aborted earlier step)', () => {
    expect(verdict(range(1, [1, 2, 3]), { kind: 'promote-learner', rangeId: 1, nodeId: 4 })).toBe('abort');
  });
  it('aborts when the learner node is no longer up', () => {
    expect(verdict(range(1, [1, 2, 3], { learners: [5] }), { kind: 'promote-learner', rangeId: 1, nodeId: 5 })).toBe('abort');
  });
  it('waits while the range has no live majority (no membership change can commit)', () => {
    // 4 voters, 2 of them down: 2 live of 4.
    expect(verdict(range(1, [1, 2, 6, 8], { learners: [4] }), { kind: 'promote-learner', rangeId: 1, nodeId: 4 })).toBe('wait');
  });
  it('is ready with one voter down: the larger set keeps a live majority', () => {
    // 3 voters, 6 down: promoting 4 gives 3 live of 4.
    expect(verdict(range(1, [1, 2, 6], { learners: [4] }), { kind: 'promote-learner', rangeId: 1, nodeId: 4 })).toBe('ready');
  });
});

describe('checkStep: remove-replica', () => {
  it('aborts removing a voter when the range would go below its voter count (replacement not promoted yet)', () => {
    // Voters 1, 2, 6 (6 is down), learner 4 not promoted: removing 6 now would leave 2 voters.
    expect(verdict(range(1, [1, 2, 6], { learners: [4] }), { kind: 'remove-replica', rangeId: 1, nodeId: 6 })).toBe('abort');
  });
  it('is ready once the replacement is a voter', () => {
    expect(verdict(range(1, [1, 2, 6, 4]), { kind: 'remove-replica', rangeId: 1, nodeId: 6 })).toBe('ready');
  });
  it('aborts removing the leader (leadership must be transferred first)', () => {
    expect(verdict(range(1, [1, 2, 3, 4], { leader: 1 }), { kind: 'remove-replica', rangeId: 1, nodeId: 1 })).toBe('abort');
  });
  it('waits when the remaining voters would not have a live majority', () => {
    // 4 voters: 1, 2 live, 6, 8 down. Removing 2 leaves 1 live of 3.
    expect(verdict(range(1, [1, 2, 6, 8]), { kind: 'remove-replica', rangeId: 1, nodeId: 2 })).toBe('wait');
  });
  it('counts a suspect voter as not alive', () => {
    // 4 voters: 1, 2 live, 7 suspect, 3 live. Removing 2 leaves 1, 3 live of 3: fine; removing 3 too would not be.
    expect(verdict(range(1, [1, 2, 7, 3]), { kind: 'remove-replica', rangeId: 1, nodeId: 2 })).toBe('ready');
    expect(verdict(range(1, [1, 2, 7, 6]), { kind: 'remove-replica', rangeId: 1, nodeId: 2 })).toBe('wait');
  });
  it('removes a learner whatever the voters', () => {
    expect(verdict(range(1, [1, 2, 3], { learners: [4] }), { kind: 'remove-replica', rangeId: 1, nodeId: 4 })).toBe('ready');
  });
  it('is done when the replica is already gone', () => {
    expect(verdict(range(1, [1, 2, 3]), { kind: 'remove-replica', rangeId: 1, nodeId: 4 })).toBe('done');
  });
});

describe('checkStep: transfer-leader', () => {
  it('is ready toward an up voter', () => {
    expect(verdict(range(1, [1, 2, 3], { leader: 1 }), { kind: 'transfer-leader', rangeId: 1, fromNodeId: 1, toNodeId: 2 })).toBe('ready');
  });
  it('aborts toward a draining voter', () => {
    expect(verdict(range(1, [1, 5, 3], { leader: 1 }), { kind: 'transfer-leader', rangeId: 1, fromNodeId: 1, toNodeId: 5 })).toBe('abort');
  });
  it('aborts toward a suspect voter or a learner', () => {
    expect(verdict(range(1, [1, 7, 3], { leader: 1 }), { kind: 'transfer-leader', rangeId: 1, fromNodeId: 1, toNodeId: 7 })).toBe('abort');
    expect(verdict(range(1, [1, 2, 3], { leader: 1, learners: [4] }), { kind: 'transfer-leader', rangeId: 1, fromNodeId: 1, toNodeId: 4 })).toBe('abort');
  });
  it('is done once `from` no longer leads', () => {
    expect(verdict(range(1, [1, 2, 3], { leader: 3 }), { kind: 'transfer-leader', rangeId: 1, fromNodeId: 1, toNodeId: 2 })).toBe('done');
  });
});

describe('checkStep: split-range and sequencing', () => {
  it('is ready at the planned version and done after a split', () => {
    const r = range(1, [1, 2, 3]);
    const operator: Operator = { ...op(r, { kind: 'split-range', rangeId: 1, reason: 'size' }), purpose: 'split' };
    expect(checkStep({ range: r, nodes, rules: RULES_3 }, { operator, nextStep: 0 }).status).toBe('ready');
    const split = { ...r, epoch: { ...r.epoch, version: r.epoch.version + 1 } };
    expect(checkStep({ range: split, nodes, rules: RULES_3 }, { operator, nextStep: 0 }).status).toBe('done');
  });
  it('is complete past the last step and refuses an index outside the steps', () => {
    const r = range(1, [1, 2, 3]);
    const operator = op(r, { kind: 'add-learner', rangeId: 1, nodeId: 4 });
    expect(checkStep({ range: r, nodes, rules: RULES_3 }, { operator, nextStep: 1 }).status).toBe('complete');
    expect(() => checkStep({ range: r, nodes, rules: RULES_3 }, { operator, nextStep: 2 })).toThrow(InvalidClusterStateError);
  });
});
