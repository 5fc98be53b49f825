// The storage layer's public surface.
export { Engine, WriteBatch, FORMAT_VERSION, DEFAULT_ROW_CACHE_BYTES } from './engine';
export type { EngineOptions, BatchOp } from './engine';
export { RaftLogStorage } from './raft-log-storage';
export type { ApplyState } from './codec';
export { StorageError, CorruptDataError, DataDirMismatchError, DataDirMissingError } from './errors';
export { dataKey } from './keys';
