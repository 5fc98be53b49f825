// The node layer's public surface.
export { Node, NODE_BEAT_RANGE_ID, QUIESCE_CONTEXT, SPLIT_INIT_INDEX } from './node';
export type { NodeOptions, LocalRangeDescriptor } from './node';
export { Replica } from './replica';
export * from './command';
export * from './errors';
export { KvStateMachine, keyInRange } from './kv-state-machine';
export type { RangeBounds, StoredValue } from './kv-state-machine';
