// The placement layer's public surface: the meta state (range map, node registry, range ids) kept
// in the meta range, the leader's in-memory liveness and load, and the scheduler (pure logic).
export * from './scheduler';
export * from './meta';
export * from './placement';
export * from './reporter';
export * from './driver';
