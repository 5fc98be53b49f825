// The client library's public surface.
export { KvClient, Consistency } from './client';
export type { ClientOptions, GetResult, KeyValue, CasExpected } from './client';
export { ClientError, InvalidRequestError, UnavailableError, IndeterminateError } from './errors';
export { AdminClient } from './admin-client';
export type { ClusterStatus, RangeStatus, NodeStatus } from './admin-client';
export { RangeCache, compareEpochs } from './range-cache';
export type { CachedRange, RangeEpoch, RangeReplica } from './range-cache';
