// The placement scheduler's public surface: what the placement service, kvctl and tests may use.
export type * from './types';
export { schedule } from './scheduler';
export { checkStep, quorumSize } from './safety';
export type { StepContext, StepVerdict } from './safety';
export { drainProgress, nodeLoads } from './drain-progress';
export { DEFAULT_PLACEMENT_RULES, DEFAULT_SCHEDULER_CONFIG, MAX_VOTERS_PER_RANGE, resolveSchedulerConfig, validateRules } from './config';
export type { SchedulerConfig } from './config';
export * from './errors';
