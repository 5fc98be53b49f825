// TypeScript shapes of the API messages as @grpc/proto-loader decodes them (camelCase fields,
// longs as numbers, bytes as Buffers, defaults filled in, oneof names as virtual fields).

export interface RangeEpochMsg {
  version: number;
  confVersion: number;
}

export interface RequestHeaderMsg {
  rangeId: number;
  epoch: RangeEpochMsg | null;
  clientId: number;
  sequence: number;
  answeredBelow: number;
}

export interface NodeAddressMsg {
  nodeId: number;
  address: string;
}

export interface ReplicaMsg {
  nodeId: number;
  role: number;
}

export interface RangeDescriptorMsg {
  rangeId: number;
  startKey: Buffer;
  endKey: Buffer;
  epoch: RangeEpochMsg;
  replicas: ReplicaMsg[];
}

export interface RoutingErrorMsg {
  message: string;
  notLeader?: { rangeId: number; leader: NodeAddressMsg | null };
  epochNotMatch?: { current: RangeDescriptorMsg[] };
  keyNotInRange?: { key: Buffer; rangeId: number; startKey: Buffer; endKey: Buffer };
  rangeNotFound?: { rangeId: number };
  serverBusy?: { reason: string; retryAfterMs: number };
}

export interface ResponseHeaderMsg {
  rangeId: number;
  nodeId: number;
  appliedIndex: number;
  error: RoutingErrorMsg | null;
}

export interface KeyValueMsg {
  key: Buffer;
  value: Buffer;
  version: number;
}

export interface GetRequestMsg {
  header: RequestHeaderMsg | null;
  key: Buffer;
  consistency: number;
}

export interface PutRequestMsg {
  header: RequestHeaderMsg | null;
  key: Buffer;
  value: Buffer;
}

export interface DeleteRequestMsg {
  header: RequestHeaderMsg | null;
  key: Buffer;
}

export interface ScanRequestMsg {
  header: RequestHeaderMsg | null;
  startKey: Buffer;
  endKey: Buffer;
  limit: number;
  consistency: number;
  keysOnly: boolean;
}

export interface CompareAndSwapRequestMsg {
  header: RequestHeaderMsg | null;
  key: Buffer;
  expected?: 'expectedValue' | 'expectedAbsent' | 'expectedVersion';
  expectedValue?: Buffer;
  expectedAbsent?: boolean;
  expectedVersion?: number;
  newValue: Buffer;
  delete: boolean;
}

export interface BatchOpMsg {
  op?: 'get' | 'put' | 'delete' | 'compareAndSwap';
  get?: GetRequestMsg;
  put?: PutRequestMsg;
  delete?: DeleteRequestMsg;
  compareAndSwap?: CompareAndSwapRequestMsg;
}

export interface BatchRequestMsg {
  header: RequestHeaderMsg | null;
  ops: BatchOpMsg[];
}

export type MultiplexMethod = 'get' | 'put' | 'delete' | 'compareAndSwap' | 'batch';

export interface MultiplexItemMsg {
  id: number;
  timeoutMs: number;
  request?: MultiplexMethod;
  get?: GetRequestMsg | null;
  put?: PutRequestMsg | null;
  delete?: DeleteRequestMsg | null;
  compareAndSwap?: CompareAndSwapRequestMsg | null;
  batch?: BatchRequestMsg | null;
}

export interface MultiplexRequestMsg {
  items: MultiplexItemMsg[];
}

export interface MultiplexResultMsg {
  id: number;
  code: number;
  message: string;
  get?: object;
  put?: object;
  delete?: object;
  compareAndSwap?: object;
  batch?: object;
}

export enum ReadConsistencyValue {
  Unspecified = 0,
  Linearizable = 1,
  Lease = 2,
  Stale = 3,
}
