// Step sequences. Their order is the safety argument, so they are built in one place:
// a new voter is added as a learner, promoted, and only then does the replica it replaces go;
// a leader on the replica that goes hands leadership over first.

import type { NodeSlot } from './cluster-index';
import type { RangeView } from './range-view';
import type { Round } from './round';
import { pickLeaderTarget } from './targets';
import type { OperatorStep } from './types';

/**
 * Make `to` a voter (adding it as a learner first unless it already is one), then, if `from` is
 * given, remove `from` — after transferring leadership away if `from` leads. Undefined when `from`
 * leads and no voter can take leadership.
 */
export function voterMoveSteps(round: Round, view: RangeView, to: NodeSlot, from: NodeSlot | undefined): OperatorStep[] | undefined {
  const rangeId = view.info.id;
  const steps: OperatorStep[] = [];
  if (!view.learners.includes(to)) steps.push({ kind: 'add-learner', rangeId, nodeId: to.id });
  steps.push({ kind: 'promote-learner', rangeId, nodeId: to.id });
  if (from !== undefined) {
    const removal = removalSteps(round, view, from, to);
    if (removal === undefined) return undefined;
    steps.push(...removal);
  }
  return steps;
}

/** Add a learner on `to`, then remove the learner on `from` (if any). */
export function learnerMoveSteps(view: RangeView, to: NodeSlot, from: NodeSlot | undefined): OperatorStep[] {
  const rangeId = view.info.id;
  const steps: OperatorStep[] = [{ kind: 'add-learner', rangeId, nodeId: to.id }];
  if (from !== undefined) steps.push({ kind: 'remove-replica', rangeId, nodeId: from.id });
  return steps;
}

/**
 * Remove the replica on `node`, transferring leadership first if it leads (to the best other up
 * voter, or `incoming`, a voter-to-be). Undefined when it leads and nobody can take over.
 */
export function removalSteps(round: Round, view: RangeView, node: NodeSlot, incoming?: NodeSlot): OperatorStep[] | undefined {
  const rangeId = view.info.id;
  const steps: OperatorStep[] = [];
  if (view.leader === node) {
    const heir = pickLeaderTarget(round, view, node, incoming);
    if (heir === undefined) return undefined;
    steps.push({ kind: 'transfer-leader', rangeId, fromNodeId: node.id, toNodeId: heir.id });
  }
  steps.push({ kind: 'remove-replica', rangeId, nodeId: node.id });
  return steps;
}
