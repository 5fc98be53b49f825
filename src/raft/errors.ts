// Typed errors of the consensus core. Each has a stable `code`; messages may change, codes do not.

import type { NodeId } from './types';

export abstract class RaftError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The requested index is at or below the last compaction point: its entry is gone from the log. */
export class CompactedError extends RaftError {
  readonly code = 'RAFT_LOG_COMPACTED';
  constructor(readonly index: number, readonly firstIndex: number) {
    super(`log index ${index} is compacted (first available index is ${firstIndex})`);
  }
}

/** The requested index is past the end of the log. */
export class UnavailableError extends RaftError {
  readonly code = 'RAFT_LOG_UNAVAILABLE';
  constructor(readonly index: number, readonly lastIndex: number) {
    super(`log index ${index} is unavailable (last index is ${lastIndex})`);
  }
}

/** A snapshot older than the one already held was offered. */
export class SnapshotOutOfDateError extends RaftError {
  readonly code = 'RAFT_SNAPSHOT_OUT_OF_DATE';
  constructor(readonly index: number, readonly currentIndex: number) {
    super(`snapshot at index ${index} is older than the current snapshot at index ${currentIndex}`);
  }
}

/** The storage cannot produce a snapshot right now; the leader will retry later. */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  readonly code = 'RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE';
  constructor() {
    super('snapshot is temporarily unavailable');
  }
}

/** A proposal or read was made on a node that is not the leader; `leader` is the known leader or 0. */
export class NotLeaderError extends RaftError {
  readonly code = 'RAFT_NOT_LEADER';
  constructor(readonly leader: NodeId, readonly term: number) {
    super(leader === 0 ? `not the leader (term ${term}, leader unknown)` : `not the leader (term ${term}, leader is ${leader})`);
  }
}

/** A proposal was refused for a reason other than leadership (transfer in progress, pending conf change...). */
export class ProposalDroppedError extends RaftError {
  readonly code = 'RAFT_PROPOSAL_DROPPED';
  constructor(readonly reason: string) {
    super(`proposal dropped: ${reason}`);
  }
}

/** A membership change that would break the group's safety rules. */
export class ConfChangeRefusedError extends RaftError {
  readonly code = 'RAFT_CONF_CHANGE_REFUSED';
  constructor(readonly reason: string) {
    super(`membership change refused: ${reason}`);
  }
}

/** Invalid configuration given to the core (a programmer or operator error at construction). */
export class RaftConfigError extends RaftError {
  readonly code = 'RAFT_CONFIG_INVALID';
  constructor(readonly field: string, reason: string) {
    super(`invalid raft config: ${field}: ${reason}`);
  }
}
