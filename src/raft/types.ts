// Wire- and storage-level types of the consensus core. Everything here is plain data: the
// node layer serialises it (protobuf on the wire, LevelDB on disk), the simulator copies it.

/** A node (replica) id inside one Raft group. 0 means "none". */
export type NodeId = number;
export const NONE: NodeId = 0;

export enum EntryType {
  /** An application command (or the empty no-op a new leader appends). */
  Normal = 0,
  /** A membership change; `data` is an encoded `ConfChange` (see `encodeConfChange`). */
  ConfChange = 1,
}

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** The state that must be on disk before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Group membership. Voters elect and count toward commit; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  /** Index and term of the last entry the snapshot covers. */
  readonly index: number;
  readonly term: number;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** Opaque application state at `metadata.index`. */
  readonly data: Uint8Array;
}

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  metadata: Object.freeze({ index: 0, term: 0, confState: Object.freeze({ voters: [], learners: [] }) }),
  data: new Uint8Array(0),
});

export function isEmptySnapshot(s: Snapshot): boolean {
  return s.metadata.index === 0;
}

export enum ConfChangeType {
  /** Add a voter, or promote an existing learner to voter. */
  AddVoter = 0,
  /** Add a learner, or demote an existing voter to learner. */
  AddLearner = 1,
  /** Remove a voter or learner. */
  RemoveNode = 2,
}

/**
 * One membership change. RangeKV changes membership one node at a time (see docs/ARCHITECTURE.md):
 * a new change can be proposed only once the previous one has been applied by the leader.
 */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Opaque context for the application (e.g. the new node's address). */
  readonly context: Uint8Array;
}

export enum MessageType {
  // Local messages: never sent over the network.
  /** Start an election (the election timer fired, or the application asked). */
  Hup = 'Hup',
  /** Leader: broadcast heartbeats now. */
  Beat = 'Beat',
  /** Leader: check that a quorum was active during the last election timeout. */
  CheckQuorum = 'CheckQuorum',
  /** A proposal of new entries; forwarded to the leader only when `forwardProposals` is enabled. */
  Prop = 'Prop',
  /** The transport reports that a peer could not be reached. */
  Unreachable = 'Unreachable',
  /** The transport reports the outcome of sending a snapshot. */
  SnapStatus = 'SnapStatus',

  // Network messages.
  App = 'App',
  AppResp = 'AppResp',
  Vote = 'Vote',
  VoteResp = 'VoteResp',
  PreVote = 'PreVote',
  PreVoteResp = 'PreVoteResp',
  Snap = 'Snap',
  Heartbeat = 'Heartbeat',
  HeartbeatResp = 'HeartbeatResp',
  /** Ask the leader to hand leadership to `from` (sent by a follower) or to a named node. */
  TransferLeader = 'TransferLeader',
  /** Leader tells the transfer target to campaign at once, skipping pre-vote and lease checks. */
  TimeoutNow = 'TimeoutNow',
  /** A follower asks the leader for a read index. */
  ReadIndex = 'ReadIndex',
  ReadIndexResp = 'ReadIndexResp',
}

/**
 * One Raft message. Fields not used by a message type are left at their zero value.
 * Index arithmetic: for `App`, `index`/`logTerm` name the entry just before `entries[0]`.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** App: term of the entry at `index`. Vote/PreVote: term of the candidate's last entry. */
  readonly logTerm: number;
  /**
   * App: index of the entry before `entries[0]`. AppResp: the highest index known to match (or,
   * when rejecting, the index that was rejected). Vote/PreVote: the candidate's last index.
   * ReadIndexResp: the read index.
   */
  readonly index: number;
  readonly entries: readonly Entry[];
  /** App/Heartbeat: the leader's commit index (Heartbeat: capped at what the follower has). */
  readonly commit: number;
  readonly snapshot?: Snapshot;
  /** AppResp/VoteResp/PreVoteResp/SnapStatus: the request was refused / failed. */
  readonly reject: boolean;
  /** AppResp (reject): a hint for fast backtracking; the follower's last index or a conflict probe. */
  readonly rejectHint: number;
  /** AppResp (reject): the term of the follower's entry at `rejectHint`, 0 when unknown. */
  readonly rejectHintTerm: number;
  /** Heartbeat/HeartbeatResp/ReadIndex/ReadIndexResp: opaque request context (read-index ids). */
  readonly context: Uint8Array;
}

const EMPTY_BYTES = new Uint8Array(0);

/** Builds a message with every unspecified field at its zero value. */
export function makeMessage(
  fields: Partial<Message> & Pick<Message, 'type'>,
): Message {
  return {
    from: NONE,
    to: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    rejectHintTerm: 0,
    context: EMPTY_BYTES,
    ...fields,
  };
}

export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.CheckQuorum ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus
  );
}

export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.PreVoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.ReadIndexResp
  );
}

/** Approximate in-memory / on-wire size of an entry, used for message and batch size bounds. */
export function entrySizeBytes(e: Entry): number {
  return e.data.length + 24;
}

export enum StateType {
  Follower = 'Follower',
  PreCandidate = 'PreCandidate',
  Candidate = 'Candidate',
  Leader = 'Leader',
}

/** Volatile state that the application may want to observe; not persisted. */
export interface SoftState {
  readonly leader: NodeId;
  readonly state: StateType;
}

/** A released read-index request: reads at `index` are linearizable once `index` is applied. */
export interface ReadState {
  readonly index: number;
  readonly requestContext: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// ConfChange encoding: a small fixed layout so the core does not depend on protobuf.
// [type:u8][nodeId:u32 BE][context bytes...]

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(5 + cc.context.length);
  out[0] = cc.type;
  new DataView(out.buffer).setUint32(1, cc.nodeId);
  out.set(cc.context, 5);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < 5) {
    throw new TypeError(`conf change entry too short: ${data.length} bytes, need at least 5`);
  }
  const type = data[0] as number;
  if (type !== ConfChangeType.AddVoter && type !== ConfChangeType.AddLearner && type !== ConfChangeType.RemoveNode) {
    throw new TypeError(`unknown conf change type ${type}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { type, nodeId: view.getUint32(1), context: data.slice(5) };
}
