// Loads the .proto contract from proto/ with @grpc/proto-loader, and names the plain-object shapes
// proto-loader produces and accepts for the internal Raft service (see proto/rangekv/v1/raft.proto).
//
// The proto/ directory is found by walking up from this file's directory, so the same code works
// from ts-jest (src/transport/) and from the compiled tree (dist/src/transport/).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ProtoFilesNotFoundError } from './errors';

/** Options for every proto-loader call in RangeKV: camelCase fields, uint64 as number, bytes as Buffer. */
export const PROTO_LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: false,
  longs: Number,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
});

/** Every .proto file of the public and internal contract, relative to the proto root. */
export const RANGEKV_PROTO_FILES: readonly string[] = Object.freeze([
  'rangekv/v1/common.proto',
  'rangekv/v1/kv.proto',
  'rangekv/v1/admin.proto',
  'rangekv/v1/raft.proto',
]);

const RAFT_PROTO_FILE = 'rangekv/v1/raft.proto';
/** A bound on the directory walk (a checkout is never this deep below its proto/). */
const MAX_PARENT_DIRS = 16;

let cachedProtoRoot: string | undefined;

/** The directory that holds `rangekv/v1/*.proto` (i.e. the repository's proto/). */
export function findProtoRoot(startDir: string = __dirname): string {
  if (startDir === __dirname && cachedProtoRoot !== undefined) return cachedProtoRoot;
  const searched: string[] = [];
  let dir = startDir;
  for (let i = 0; i < MAX_PARENT_DIRS; i++) {
    const candidate = join(dir, 'proto');
    searched.push(candidate);
    if (existsSync(join(candidate, RAFT_PROTO_FILE))) {
      if (startDir === __dirname) cachedProtoRoot = candidate;
      return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new ProtoFilesNotFoundError(searched);
}

const packageDefinitions = new Map<string, protoLoader.PackageDefinition>();

/** Loads (once per file set) the given files, relative to the proto root. */
export function loadPackageDefinition(files: readonly string[] = RANGEKV_PROTO_FILES): protoLoader.PackageDefinition {
  const key = files.join('\n');
  const cached = packageDefinitions.get(key);
  if (cached) return cached;
  const def = protoLoader.loadSync([...files], { ...PROTO_LOADER_OPTIONS, includeDirs: [findProtoRoot()] });
  packageDefinitions.set(key, def);
  return def;
}

// ---------------------------------------------------------------------------------------------
// Wire shapes of raft.proto as proto-loader hands them out (defaults: true, so every scalar and
// repeated field is present; an absent sub-message is null) and accepts them (absent = null or
// undefined; bytes may be any Uint8Array).

export interface RaftEntryWire {
  term: number;
  index: number;
  type: number;
  data: Uint8Array;
}

export interface RaftConfStateWire {
  voters: number[];
  learners: number[];
}

export interface RaftSnapshotMetadataWire {
  index: number;
  term: number;
  confState: RaftConfStateWire | null;
}

export interface RaftMessageWire {
  rangeId: number;
  type: string;
  from: number;
  to: number;
  term: number;
  logTerm: number;
  index: number;
  entries: RaftEntryWire[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  rejectHintTerm: number;
  context: Uint8Array;
  snapshotMetadata: RaftSnapshotMetadataWire | null;
  snapshotData: Uint8Array;
}

export interface RaftMessageBatchWire {
  fromNodeId: number;
  toNodeId: number;
  clusterId: string;
  messages: RaftMessageWire[];
}

export interface SnapshotChunkWire {
  header: RaftMessageWire | null;
  data: Uint8Array;
  last: boolean;
}

/** RaftAck has no fields. */
export type RaftAckWire = Record<string, never>;

export interface RaftServiceDefinition extends ServiceDefinition {
  SendMessages: MethodDefinition<RaftMessageBatchWire, RaftAckWire>;
  SendSnapshot: MethodDefinition<SnapshotChunkWire, RaftAckWire>;
}

let cachedRaftService: RaftServiceDefinition | undefined;

/** The internal Raft service (rangekv.v1.Raft), for Server.addService and for client calls. */
export function raftServiceDefinition(): RaftServiceDefinition {
  if (cachedRaftService) return cachedRaftService;
  const def = loadPackageDefinition([RAFT_PROTO_FILE])['rangekv.v1.Raft'];
  if (def === undefined || !('SendMessages' in def) || !('SendSnapshot' in def)) {
    throw new TypeError('rangekv.v1.Raft in raft.proto lacks SendMessages or SendSnapshot');
  }
  // proto-loader types every method as MethodDefinition<object, object>; the shapes above are what
  // it produces for raft.proto with PROTO_LOADER_OPTIONS, and the transport validates each value.
  cachedRaftService = def as unknown as RaftServiceDefinition;
  return cachedRaftService;
}

/**
 * Options for every gRPC server and channel RangeKV makes: channelz (grpc-js's introspection
 * service, on by default) is off. It counts and timestamps every call and message, and nothing
 * here serves it.
 */
export const GRPC_COMMON_OPTIONS = Object.freeze({ 'grpc.enable_channelz': 0 });
