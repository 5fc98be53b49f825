// The LevelDB key layout of a node (one database per node, see DESIGN.md). Every key starts
// with a one-byte prefix naming its keyspace; numbers are 8-byte big-endian so that byte order
// is numeric order.
//
//   0x01 'format' | 'cluster' | 'node'            node metadata
//   0x02 groupId(8) 0x01                          hard state of a raft group
//   0x02 groupId(8) 0x02                          apply state (applied index + membership)
//   0x02 groupId(8) 0x03                          snapshot metadata + data
//   0x02 groupId(8) 0x04 index(8)                 raft log entry
//   0x02 groupId(8) 0x05                          compaction point (index + term of the last discarded entry)
//   0x03 userKey                                  user data (shared by all ranges on the node)
//   0x04 rangeId(8) clientId(8)                    exactly-once session of a client on a range
//   0x04 rangeId(8) clientId(8) sequence(8)        the first result of that client's write
//   0x05 rangeId(8)                                descriptor of a range hosted on this node
//   0x06 nodeId(8)                                 address of a peer node (learned from membership changes)
//   0x07 rangeId(8) snapIndex(8) seq(8)            a staged chunk of an incoming snapshot payload
//   0x08 rangeId(8)                                snapshot install marker (the Raft snapshot being installed)
//   0x09 rangeId(8)                                tombstone of a range this node was removed from
//   0x0a metaKey                                   the meta range's data (range 0, the placement service)

export const PREFIX_META = 0x01;
export const PREFIX_GROUP = 0x02;
export const PREFIX_DATA = 0x03;
export const PREFIX_SESSION = 0x04;
export const PREFIX_RANGE = 0x05;
export const PREFIX_PEER = 0x06;
export const PREFIX_STAGING = 0x07;
export const PREFIX_INSTALL_MARKER = 0x08;
export const PREFIX_TOMBSTONE = 0x09;
export const PREFIX_META_DATA = 0x0a;

/** The meta range (the placement service's Raft group) has id 0 by convention (DESIGN.md). */
export const META_RANGE_ID = 0;

/** The data keyspace of a range: the meta range's keys never mix with user keys. */
export function dataPrefixOf(rangeId: number): number {
  return rangeId === META_RANGE_ID ? PREFIX_META_DATA : PREFIX_DATA;
}

export const GROUP_HARD_STATE = 0x01;
export const GROUP_APPLY_STATE = 0x02;
export const GROUP_SNAPSHOT = 0x03;
export const GROUP_LOG = 0x04;
export const GROUP_COMPACTED = 0x05;

const TWO_32 = 0x1_0000_0000;

export function writeU64(buf: Buffer, offset: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`u64: ${v} is not a non-negative safe integer`);
  buf.writeUInt32BE(Math.floor(v / TWO_32), offset);
  buf.writeUInt32BE(v >>> 0, offset + 4);
}

export function readU64(buf: Uint8Array, offset: number): number {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return b.readUInt32BE(offset) * TWO_32 + b.readUInt32BE(offset + 4);
}

/** A key made of a one-byte prefix and 8-byte big-endian numbers. */
export function numericKey(prefix: number, ...nums: number[]): Buffer {
  const k = Buffer.alloc(1 + 8 * nums.length);
  k[0] = prefix;
  nums.forEach((n, i) => writeU64(k, 1 + 8 * i, n));
  return k;
}

/** [gte, lt) of every key that starts with `prefix` (prefix must not be all 0xff bytes). */
export function prefixRange(prefix: Buffer): { gte: Buffer; lt: Buffer } {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if ((prefix[i] as number) < 0xff) {
      const lt = Buffer.from(prefix.subarray(0, i + 1));
      lt[i] = (lt[i] as number) + 1;
      return { gte: prefix, lt };
    }
  }
  throw new TypeError('prefixRange: a prefix of only 0xff bytes has no upper bound');
}

export function metaKey(name: 'format' | 'cluster' | 'node'): Buffer {
  return Buffer.concat([Buffer.from([PREFIX_META]), Buffer.from(name, 'utf8')]);
}

function groupKey(groupId: number, kind: number, extra = 0): Buffer {
  const k = Buffer.alloc(10 + extra);
  k[0] = PREFIX_GROUP;
  writeU64(k, 1, groupId);
  k[9] = kind;
  return k;
}

export function hardStateKey(groupId: number): Buffer {
  return groupKey(groupId, GROUP_HARD_STATE);
}

export function applyStateKey(groupId: number): Buffer {
  return groupKey(groupId, GROUP_APPLY_STATE);
}

export function snapshotKey(groupId: number): Buffer {
  return groupKey(groupId, GROUP_SNAPSHOT);
}

export function logKey(groupId: number, index: number): Buffer {
  const k = groupKey(groupId, GROUP_LOG, 8);
  writeU64(k, 10, index);
  return k;
}

/** [start, end) covering every log key of the group. */
export function logKeyRange(groupId: number): { gte: Buffer; lt: Buffer } {
  return { gte: groupKey(groupId, GROUP_LOG), lt: groupKey(groupId, GROUP_LOG + 1) };
}

/** [start, end) covering every key of the group. */
export function groupKeyRange(groupId: number): { gte: Buffer; lt: Buffer } {
  return prefixRange(numericKey(PREFIX_GROUP, groupId));
}

export function logIndexOfKey(key: Uint8Array): number {
  return readU64(key, 10);
}

export function dataKey(userKey: Uint8Array, prefix: number = PREFIX_DATA): Buffer {
  const k = Buffer.allocUnsafe(1 + userKey.length);
  k[0] = prefix;
  k.set(userKey, 1);
  return k;
}

export function compactedKey(groupId: number): Buffer {
  return groupKey(groupId, GROUP_COMPACTED);
}

/** The user key of a data key. */
export function userKeyOf(key: Uint8Array): Uint8Array {
  return key.subarray(1);
}

/** [start, end) of the data keys for user keys in [start, end); an empty end means the keyspace end. */
export function dataKeyRange(start: Uint8Array, end: Uint8Array, prefix: number = PREFIX_DATA): { gte: Buffer; lt: Buffer } {
  return { gte: dataKey(start, prefix), lt: end.length === 0 ? Buffer.from([prefix + 1]) : dataKey(end, prefix) };
}

export function sessionKey(rangeId: number, clientId: number): Buffer {
  return numericKey(PREFIX_SESSION, rangeId, clientId);
}

export function sessionResultKey(rangeId: number, clientId: number, sequence: number): Buffer {
  return numericKey(PREFIX_SESSION, rangeId, clientId, sequence);
}

/** [start, end) of every session key of a range. */
export function sessionKeyRange(rangeId: number): { gte: Buffer; lt: Buffer } {
  return prefixRange(numericKey(PREFIX_SESSION, rangeId));
}

export function rangeDescriptorKey(rangeId: number): Buffer {
  return numericKey(PREFIX_RANGE, rangeId);
}

export function rangeDescriptorKeyRange(): { gte: Buffer; lt: Buffer } {
  return prefixRange(Buffer.from([PREFIX_RANGE]));
}

export function peerAddressKey(nodeId: number): Buffer {
  return numericKey(PREFIX_PEER, nodeId);
}

export function peerAddressKeyRange(): { gte: Buffer; lt: Buffer } {
  return prefixRange(Buffer.from([PREFIX_PEER]));
}

/** Staged chunks of incoming snapshot payloads: [prefix][rangeId][snapshot index][chunk seq]. */
export function stagingKey(rangeId: number, snapIndex?: number, seq?: number): Buffer {
  const nums = [rangeId];
  if (snapIndex !== undefined) nums.push(snapIndex);
  if (seq !== undefined) nums.push(seq);
  return numericKey(PREFIX_STAGING, ...nums);
}

/** The install marker of a range: the Raft snapshot being installed. */
export function installMarkerKey(rangeId: number): Buffer {
  return numericKey(PREFIX_INSTALL_MARKER, rangeId);
}

/** The tombstone of a range this node was removed from: its replica is never recreated here. */
export function tombstoneKey(rangeId: number): Buffer {
  return numericKey(PREFIX_TOMBSTONE, rangeId);
}

export function tombstoneKeyRange(): { gte: Buffer; lt: Buffer } {
  return prefixRange(Buffer.from([PREFIX_TOMBSTONE]));
}
