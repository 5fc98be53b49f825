// Policy 6, splits: a range at or past a size, key-count or load threshold is split by its leader
// (which picks the key). Size first: it is what makes moves slow.

import type { SchedulerConfig } from './config';
import type { RangeStats, SplitReason } from './types';

export function splitReason(config: SchedulerConfig, stats: RangeStats): SplitReason | undefined {
  if (stats.sizeBytes >= config.splitSizeBytes) return 'size';
  if (stats.keys >= config.splitKeys) return 'keys';
  if (stats.qps >= config.splitQps) return 'load';
  return undefined;
}
