// Message <-> protobuf conversion, through the real protobuf serializers of raft.proto.
import { EntryType, Message, MessageType, makeMessage } from '../../src/raft';
import { dirname, join } from 'node:path';
import { ProtoFilesNotFoundError, RaftCodecError, SnapshotTooLargeError } from '../../src/transport/errors';
import { RaftMessageWire, SnapshotChunkWire, raftServiceDefinition, findProtoRoot } from '../../src/transport/proto';
import {
  SnapshotAssembler,
  decodeRaftMessage,
  encodeBatch,
  encodeRaftMessage,
  estimateEncodedBytes,
  snapshotChunks,
} from '../../src/transport/raft-codec';
import type { RangeMessage } from '../../src/transport';
import { bytes, entry, view } from './helpers';

const svc = raftServiceDefinition();

/** Through the wire: encode, serialize, deserialize, decode. */
function roundTrip(rm: RangeMessage): RangeMessage {
  const wire = encodeBatch(1, 2, 'c', [encodeRaftMessage(rm)]);
  const buf = svc.SendMessages.requestSerialize(wire);
  const back = svc.SendMessages.requestDeserialize(buf);
  expect(back.messages).toHaveLength(1);
  return decodeRaftMessage(back.messages[0]!);
}

function fullMessage(overrides: Partial<Message> = {}): RangeMessage {
  return {
    rangeId: 2 ** 40 + 3,
    message: makeMessage({
      type: MessageType.AppResp,
      from: 3,
      to: 1,
      term: 2 ** 35,
      logTerm: 17,
      index: Number.MAX_SAFE_INTEGER,
      commit: 12,
      entries: [entry(5, 2, 0), entry(6, 2, 300), entry(7, 3, 5, EntryType.ConfChange)],
      reject: true,
      rejectHint: 44,
      rejectHintTerm: 9,
      context: new Uint8Array([0, 1, 2, 254, 255]),
      ...overrides,
    }),
  };
}

describe('raft codec', () => {
  it('finds proto/ above the source file, and above the compiled file in dist/', () => {
    const root = findProtoRoot();
    expect(root).toMatch(/proto$/);
    expect(findProtoRoot(join(dirname(root), 'dist', 'src', 'transport'))).toBe(root);
    expect(() => findProtoRoot('/')).toThrow(ProtoFilesNotFoundError);
  });

  it('round-trips every field of a message', () => {
    const rm = fullMessage();
    const back = roundTrip(rm);
    expect(view(back)).toEqual(view(rm));
    expect(back.message.snapshot).toBeUndefined();
  });

  it('round-trips a message with an inline snapshot (metadata and data)', () => {
    const rm = fullMessage({
      type: MessageType.Snap,
      snapshot: { metadata: { index: 90, term: 7, confState: { voters: [1, 2, 3], learners: [9] } }, data: bytes(10_000) },
    });
    expect(view(roundTrip(rm))).toEqual(view(rm));
  });

  it('keeps an empty snapshot (index 0) distinct from no snapshot', () => {
    const rm = fullMessage({
      type: MessageType.Snap,
      snapshot: { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) },
    });
    const back = roundTrip(rm);
    expect(back.message.snapshot).toBeDefined();
    expect(view(back)).toEqual(view(rm));
  });

  it('round-trips every network message type, and zero values', () => {
    for (const type of Object.values(MessageType)) {
      if (['Hup', 'Beat', 'CheckQuorum', 'Unreachable', 'SnapStatus'].includes(type)) continue;
      const rm: RangeMessage = { rangeId: 1, message: makeMessage({ type }) };
      expect(view(roundTrip(rm))).toEqual(view(rm));
    }
  });

  it('decodes byte fields into copies, not views of the receive buffer', () => {
    const wire = encodeBatch(1, 2, 'c', [encodeRaftMessage(fullMessage())]);
    const buf = svc.SendMessages.requestSerialize(wire);
    const back = decodeRaftMessage(svc.SendMessages.requestDeserialize(buf).messages[0]!);
    const data = back.message.entries[1]!.data;
    expect(data.buffer.byteLength).toBe(data.length);
    expect(back.message.context.buffer).not.toBe(buf.buffer);
  });

  it('refuses local message types in both directions', () => {
    expect(() => encodeRaftMessage({ rangeId: 1, message: makeMessage({ type: MessageType.Hup }) })).toThrow(RaftCodecError);
    const wire = encodeRaftMessage(fullMessage());
    for (const type of ['Hup', 'CheckQuorum', 'SnapStatus', 'Unreachable', 'Beat', 'Bogus', '']) {
      expect(() => decodeRaftMessage({ ...wire, type })).toThrow(RaftCodecError);
    }
  });

  it('refuses numbers the wire cannot carry exactly, and unknown entry types', () => {
    expect(() => encodeRaftMessage(fullMessage({ term: -1 }))).toThrow(/term/);
    expect(() => encodeRaftMessage(fullMessage({ index: 1.5 }))).toThrow(/index/);
    const wire: RaftMessageWire = encodeRaftMessage(fullMessage());
    expect(() => decodeRaftMessage({ ...wire, term: 2 ** 60 })).toThrow(/term/);
    const badEntry = { ...wire.entries[0]!, type: 7 };
    expect(() => decodeRaftMessage({ ...wire, entries: [badEntry] })).toThrow(/entry type 7/);
  });

  it('estimates an upper bound of the encoded size', () => {
    for (const rm of [
      fullMessage(),
      fullMessage({ entries: [] }),
      fullMessage({ entries: Array.from({ length: 50 }, (_, i) => entry(i + 1, 2 ** 40, i * 7)) }),
      fullMessage({ type: MessageType.Snap, snapshot: { metadata: { index: 2 ** 50, term: 2 ** 50, confState: { voters: [2 ** 50, 3], learners: [2 ** 50] } }, data: bytes(777) } }),
    ]) {
      const actual = svc.SendMessages.requestSerialize(encodeBatch(1, 2, '', [encodeRaftMessage(rm)])).length;
      expect(estimateEncodedBytes(rm.message)).toBeGreaterThanOrEqual(actual);
    }
  });

  describe('snapshot chunks', () => {
    const snap = (dataBytes: number): RangeMessage => ({
      rangeId: 4,
      message: makeMessage({
        type: MessageType.Snap,
        from: 1,
        to: 2,
        term: 6,
        snapshot: { metadata: { index: 100, term: 5, confState: { voters: [1, 2, 3], learners: [4] } }, data: bytes(dataBytes, 3) },
      }),
    });

    /** Chunks through the real SnapshotChunk serializer. */
    function wireChunks(rm: RangeMessage, chunkBytes: number): SnapshotChunkWire[] {
      return [...snapshotChunks(rm, chunkBytes)].map((c) => svc.SendSnapshot.requestDeserialize(svc.SendSnapshot.requestSerialize(c)));
    }

    it.each([0, 1, 999, 1000, 1001, 5000])('reassembles %i bytes sent in 1000-byte chunks', (n) => {
      const rm = snap(n);
      const chunks = wireChunks(rm, 1000);
      expect(chunks).toHaveLength(Math.max(1, Math.ceil(n / 1000)));
      expect(chunks[0]!.header).not.toBeNull();
      expect(chunks.slice(1).every((c) => c.header === null)).toBe(true);
      expect(chunks.slice(0, -1).every((c) => !c.last)).toBe(true);
      expect(chunks[chunks.length - 1]!.last).toBe(true);
      const asm = new SnapshotAssembler(10_000);
      let whole: RangeMessage | undefined;
      for (const c of chunks) {
        expect(whole).toBeUndefined();
        whole = asm.push(c);
      }
      expect(whole).toBeDefined();
      expect(view(whole!)).toEqual(view(rm));
      expect(Buffer.compare(Buffer.from(whole!.message.snapshot!.data), Buffer.from(rm.message.snapshot!.data))).toBe(0);
    });

    it('refuses a snapshot over the limit, naming the sizes', () => {
      const asm = new SnapshotAssembler(2500);
      const chunks = wireChunks(snap(4000), 1000);
      asm.push(chunks[0]!);
      asm.push(chunks[1]!);
      let err: unknown;
      try {
        asm.push(chunks[2]!);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SnapshotTooLargeError);
      expect((err as SnapshotTooLargeError).code).toBe('TRANSPORT_SNAPSHOT_TOO_LARGE');
      expect((err as Error).message).toMatch(/3000 bytes.*2500 bytes/);
    });

    it('refuses a stream without a header, a second header, a non-Snap header, and chunks after the last', () => {
      const chunks = wireChunks(snap(2500), 1000);
      expect(() => new SnapshotAssembler(1e6).push(chunks[1]!)).toThrow(/no header/);
      const twice = new SnapshotAssembler(1e6);
      twice.push(chunks[0]!);
      expect(() => twice.push(chunks[0]!)).toThrow(/only the first/);
      const notSnap = { ...chunks[0]!, header: { ...chunks[0]!.header!, type: 'App' } };
      expect(() => new SnapshotAssembler(1e6).push(notSnap)).toThrow(/must be a Snap/);
      const after = new SnapshotAssembler(1e6);
      for (const c of chunks) after.push(c);
      expect(() => after.push(chunks[2]!)).toThrow(/after the last/);
    });
  });
});
