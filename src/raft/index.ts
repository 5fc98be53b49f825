// The consensus layer's public surface: what the node layer, the simulator and tests may use.
export * from './types';
export * from './errors';
export { SeededRng } from './rng';
export type { Rng } from './rng';
export { MemoryStorage, limitSize } from './storage';
export type { Storage, WritableStorage, InitialState } from './storage';
export { Raft } from './raft';
export type { RaftConfig, RaftLogger, Status, ProgressStatus } from './raft';
export { RawNode } from './raw-node';
export type { Ready, ProposalPosition, RawNodeConfig } from './raw-node';
export { ProgressState } from './progress';
export { RaftLog } from './log';
export { bootstrapState } from './bootstrap';
export type { BootstrapState } from './bootstrap';
