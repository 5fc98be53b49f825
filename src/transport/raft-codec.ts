// Raft messages <-> the protobuf shapes of raft.proto, size estimates for batching, and the
// chunking / reassembly of snapshots carried by the SendSnapshot stream.
//
// Decoding is strict: it runs on bytes from the network. Every number must be a safe non-negative
// integer, the message type must be a network type (a peer may never inject Hup, Beat,
// CheckQuorum, Unreachable or SnapStatus), and decoded byte fields are copied out of the receive
// buffer so that a small entry kept in the log does not pin a whole multi-MiB batch in memory.

import {
  ConfState,
  Entry,
  EntryType,
  Message,
  MessageType,
  Snapshot,
  SnapshotMetadata,
  isLocalMessage,
} from '../raft';
import { RaftCodecError, SnapshotTooLargeError } from './errors';
import type {
  RaftConfStateWire,
  RaftEntryWire,
  RaftMessageBatchWire,
  RaftMessageWire,
  RaftSnapshotMetadataWire,
  SnapshotChunkWire,
} from './proto';
import type { RangeMessage } from './transport';

const EMPTY_BYTES = new Uint8Array(0);

const NETWORK_MESSAGE_TYPES: ReadonlySet<string> = new Set(
  Object.values(MessageType).filter((t) => !isLocalMessage(t)),
);

function checkUint(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RaftCodecError(field, `must be a non-negative safe integer, got ${String(v)}`);
  }
  return v;
}

function checkBytes(field: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new RaftCodecError(field, 'must be bytes');
  return v;
}

/** A private copy (never a view into the receive buffer); empty input gives a shared empty array. */
function copyBytes(b: Uint8Array): Uint8Array {
  return b.length === 0 ? EMPTY_BYTES : new Uint8Array(b);
}

/** A Buffer over the same memory (no copy): what the protobuf writer handles fastest. */
function bufferView(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Encoding

function encodeConfState(cs: ConfState): RaftConfStateWire {
  return {
    voters: cs.voters.map((v, i) => checkUint(`snapshot.metadata.confState.voters[${i}]`, v)),
    learners: cs.learners.map((v, i) => checkUint(`snapshot.metadata.confState.learners[${i}]`, v)),
  };
}

function encodeSnapshotMetadata(md: SnapshotMetadata): RaftSnapshotMetadataWire {
  return {
    index: checkUint('snapshot.metadata.index', md.index),
    term: checkUint('snapshot.metadata.term', md.term),
    confState: encodeConfState(md.confState),
  };
}

function encodeEntry(e: Entry, i: number): RaftEntryWire {
  return {
    term: checkUint(`entries[${i}].term`, e.term),
    index: checkUint(`entries[${i}].index`, e.index),
    type: checkUint(`entries[${i}].type`, e.type),
    data: bufferView(checkBytes(`entries[${i}].data`, e.data)),
  };
}

export interface EncodeOptions {
  /**
   * Whether a snapshot's data goes into `snapshot_data` (inline). False for the header of a
   * SendSnapshot stream, whose data follows in chunks. Default true.
   */
  readonly inlineSnapshotData?: boolean;
}

/** Converts one message to its protobuf shape. Throws RaftCodecError on a value the wire cannot carry. */
export function encodeRaftMessage(rm: RangeMessage, options: EncodeOptions = {}): RaftMessageWire {
  const m = rm.message;
  if (!NETWORK_MESSAGE_TYPES.has(m.type)) {
    throw new RaftCodecError('type', `${m.type} is a local message type and never goes on the wire`);
  }
  const snapshot = m.snapshot;
  const inline = options.inlineSnapshotData ?? true;
  return {
    rangeId: checkUint('rangeId', rm.rangeId),
    type: m.type,
    from: checkUint('from', m.from),
    to: checkUint('to', m.to),
    term: checkUint('term', m.term),
    logTerm: checkUint('logTerm', m.logTerm),
    index: checkUint('index', m.index),
    entries: m.entries.map(encodeEntry),
    commit: checkUint('commit', m.commit),
    reject: m.reject,
    rejectHint: checkUint('rejectHint', m.rejectHint),
    rejectHintTerm: checkUint('rejectHintTerm', m.rejectHintTerm),
    context: bufferView(checkBytes('context', m.context)),
    snapshotMetadata: snapshot ? encodeSnapshotMetadata(snapshot.metadata) : null,
    snapshotData: snapshot && inline ? bufferView(checkBytes('snapshot.data', snapshot.data)) : EMPTY_BYTES,
  };
}

export function encodeBatch(
  fromNodeId: number,
  toNodeId: number,
  clusterId: string,
  messages: RaftMessageWire[],
): RaftMessageBatchWire {
  return { fromNodeId, toNodeId, clusterId, messages };
}

// ---------------------------------------------------------------------------------------------
// Size estimates: upper bounds of the encoded size, so a batch cut by them stays under its limit.

/** Tag + 10-byte varint, per numeric field. */
const VARINT_FIELD_MAX_BYTES = 11;
/** Tag + length prefix of a length-delimited field or sub-message. */
const LENGTH_DELIMITED_OVERHEAD_BYTES = 6;
/** Every fixed field of RaftMessage (10 varints, the type name, reject) and its own framing in a batch. */
const MESSAGE_FIXED_BYTES = 10 * VARINT_FIELD_MAX_BYTES + 32 + 2 + 3 * LENGTH_DELIMITED_OVERHEAD_BYTES;
const ENTRY_FIXED_BYTES = 3 * VARINT_FIELD_MAX_BYTES + 2 * LENGTH_DELIMITED_OVERHEAD_BYTES;
/** from/to/cluster id (ids are short) of a RaftMessageBatch. */
export const BATCH_ENVELOPE_BYTES = 2 * VARINT_FIELD_MAX_BYTES + LENGTH_DELIMITED_OVERHEAD_BYTES + 256;

/** An upper bound of the message's encoded size inside a batch, in bytes. */
export function estimateEncodedBytes(m: Message, inlineSnapshotData = true): number {
  let n = MESSAGE_FIXED_BYTES + m.context.length;
  for (const e of m.entries) n += ENTRY_FIXED_BYTES + e.data.length;
  const s = m.snapshot;
  if (s) {
    const cs = s.metadata.confState;
    n += 4 * LENGTH_DELIMITED_OVERHEAD_BYTES + 2 * VARINT_FIELD_MAX_BYTES;
    n += (cs.voters.length + cs.learners.length) * VARINT_FIELD_MAX_BYTES;
    if (inlineSnapshotData) n += s.data.length;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Decoding

function decodeConfState(w: RaftConfStateWire | null): ConfState {
  if (w === null) return { voters: [], learners: [] };
  return {
    voters: w.voters.map((v, i) => checkUint(`snapshot_metadata.conf_state.voters[${i}]`, v)),
    learners: w.learners.map((v, i) => checkUint(`snapshot_metadata.conf_state.learners[${i}]`, v)),
  };
}

function decodeEntry(w: RaftEntryWire, i: number): Entry {
  const type = checkUint(`entries[${i}].type`, w.type);
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
    throw new RaftCodecError(`entries[${i}].type`, `unknown entry type ${type}`);
  }
  return {
    term: checkUint(`entries[${i}].term`, w.term),
    index: checkUint(`entries[${i}].index`, w.index),
    type,
    data: copyBytes(checkBytes(`entries[${i}].data`, w.data)),
  };
}

/**
 * Converts a protobuf message back. `snapshotData`, when given, replaces the inline
 * `snapshot_data` (used by the reassembler; it is not copied again).
 */
export function decodeRaftMessage(w: RaftMessageWire, snapshotData?: Uint8Array): RangeMessage {
  if (!NETWORK_MESSAGE_TYPES.has(w.type)) {
    throw new RaftCodecError('type', `"${String(w.type)}" is not a network message type`);
  }
  const fields: { -readonly [K in keyof Message]: Message[K] } = {
    type: w.type as MessageType,
    from: checkUint('from', w.from),
    to: checkUint('to', w.to),
    term: checkUint('term', w.term),
    logTerm: checkUint('log_term', w.logTerm),
    index: checkUint('index', w.index),
    entries: w.entries.map(decodeEntry),
    commit: checkUint('commit', w.commit),
    reject: w.reject === true,
    rejectHint: checkUint('reject_hint', w.rejectHint),
    rejectHintTerm: checkUint('reject_hint_term', w.rejectHintTerm),
    context: copyBytes(checkBytes('context', w.context)),
  };
  if (w.snapshotMetadata !== null && w.snapshotMetadata !== undefined) {
    const md = w.snapshotMetadata;
    const snapshot: Snapshot = {
      metadata: {
        index: checkUint('snapshot_metadata.index', md.index),
        term: checkUint('snapshot_metadata.term', md.term),
        confState: decodeConfState(md.confState),
      },
      data: snapshotData ?? copyBytes(checkBytes('snapshot_data', w.snapshotData)),
    };
    fields.snapshot = snapshot;
  }
  return { rangeId: checkUint('range_id', w.rangeId), message: fields };
}

// ---------------------------------------------------------------------------------------------
// Snapshots in chunks (SendSnapshot)

/**
 * The chunks of a Snap message: the first carries the message (metadata, no data) as its header,
 * every chunk carries at most `chunkBytes` of data (views, no copies), the last has `last` set.
 * A snapshot with empty data is one chunk.
 */
export function* snapshotChunks(rm: RangeMessage, chunkBytes: number): Generator<SnapshotChunkWire> {
  const s = rm.message.snapshot;
  if (rm.message.type !== MessageType.Snap || !s) {
    throw new RaftCodecError('snapshot', `a ${rm.message.type} message without a snapshot cannot be chunked`);
  }
  if (!(Number.isSafeInteger(chunkBytes) && chunkBytes > 0)) {
    throw new TypeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
  }
  const header = encodeRaftMessage(rm, { inlineSnapshotData: false });
  const data = bufferView(s.data);
  let offset = 0;
  do {
    const end = Math.min(offset + chunkBytes, data.length);
    yield { header: offset === 0 ? header : null, data: data.subarray(offset, end), last: end === data.length };
    offset = end;
  } while (offset < data.length);
}

/** Reassembles one SendSnapshot stream, refusing more than `maxBytes` of data. */
export class SnapshotAssembler {
  private headerWire: RaftMessageWire | undefined;
  private headerMessage: RangeMessage | undefined;
  private readonly pieces: Uint8Array[] = [];
  private receivedBytes = 0;
  private complete = false;

  constructor(private readonly maxBytes: number) {}

  /** The decoded header (without data), once the first chunk arrived. */
  get header(): RangeMessage | undefined {
    return this.headerMessage;
  }

  get bytes(): number {
    return this.receivedBytes;
  }

  get done(): boolean {
    return this.complete;
  }

  /** Adds a chunk; returns the whole Snap message after the last one. */
  push(chunk: SnapshotChunkWire): RangeMessage | undefined {
    if (this.complete) throw new RaftCodecError('last', 'a chunk arrived after the last one');
    if (this.headerWire === undefined) {
      if (chunk.header === null || chunk.header === undefined) {
        throw new RaftCodecError('header', 'the first snapshot chunk has no header');
      }
      const decoded = decodeRaftMessage(chunk.header, EMPTY_BYTES);
      if (decoded.message.type !== MessageType.Snap || !decoded.message.snapshot) {
        throw new RaftCodecError('header', `the header must be a Snap message with snapshot metadata, got ${decoded.message.type}`);
      }
      this.headerWire = chunk.header;
      this.headerMessage = decoded;
    } else if (chunk.header !== null && chunk.header !== undefined) {
      throw new RaftCodecError('header', 'only the first snapshot chunk may carry a header');
    }
    const data = checkBytes('data', chunk.data);
    this.receivedBytes += data.length;
    if (this.receivedBytes > this.maxBytes) {
      this.pieces.length = 0;
      throw new SnapshotTooLargeError(this.receivedBytes, this.maxBytes, this.headerMessage?.rangeId ?? 0);
    }
    if (data.length > 0) this.pieces.push(data);
    if (!chunk.last) return undefined;

    this.complete = true;
    const whole = new Uint8Array(this.receivedBytes);
    let offset = 0;
    for (const p of this.pieces) {
      whole.set(p, offset);
      offset += p.length;
    }
    this.pieces.length = 0;
    return decodeRaftMessage(this.headerWire, whole);
  }
}
