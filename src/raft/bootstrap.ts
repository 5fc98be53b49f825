// Bootstrapping a new group: the initial membership is written INTO THE LOG, as committed
// AddVoter entries at indexes 1..N of term 1, so every node that later joins learns it by
// replication (or from a snapshot taken after it). Putting it only in each founder's storage
// would let a node added later apply "AddVoter(itself)" on an empty membership and elect itself.

import { ConfChangeType, Entry, EntryType, HardState, NodeId, encodeConfChange } from './types';

export interface BootstrapState {
  /** Entries 1..N to persist before the first RawNode is created. */
  readonly entries: readonly Entry[];
  /** Term 1, no vote, commit N. */
  readonly hardState: HardState;
}

/** The bootstrap log of a group of `voters` (AddVoter entries first) plus optional `learners`. */
export function bootstrapState(voters: readonly NodeId[], learners: readonly NodeId[] = []): BootstrapState {
  if (voters.length === 0) throw new TypeError('bootstrap: at least one voter is required');
  const seen = new Set<NodeId>();
  for (const id of [...voters, ...learners]) {
    if (!(Number.isInteger(id) && id > 0)) throw new TypeError(`bootstrap: voter ids must be positive integers, got ${id}`);
    if (seen.has(id)) throw new TypeError(`bootstrap: voter ${id} is listed twice`);
    seen.add(id);
  }
  const changes = [
    ...voters.map((nodeId) => ({ type: ConfChangeType.AddVoter, nodeId })),
    ...learners.map((nodeId) => ({ type: ConfChangeType.AddLearner, nodeId })),
  ];
  const entries = changes.map((cc, i) => ({
    term: 1,
    index: i + 1,
    type: EntryType.ConfChange,
    data: encodeConfChange({ ...cc, context: new Uint8Array(0) }),
  }));
  return { entries, hardState: { term: 1, vote: 0, commit: entries.length } };
}
