// The placement layer's public surface. Today: the scheduler (pure logic); the meta state machine
// and the Placement service join it later.
export * from './scheduler';
