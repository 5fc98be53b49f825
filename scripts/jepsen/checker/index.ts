// The history checker of the Jepsen-style suite: linearizability per key (register model), lost
// writes of the set workload, per-nemesis availability, results.json and report.html.
//
// From the harness (shell):
//   node dist/scripts/jepsen/checker/cli.js DIR [--key-time-limit-ms N] [--total-time-limit-ms N]
//       [--key-step-limit N] [--shrink-time-limit-ms N] [--node-log REL_PATH]... [--title TEXT]
//   reads DIR/history.jsonl (/work/shared/HISTORY-FORMAT.md) and DIR/nemesis.jsonl when present
//   (format at the top of nemesis.ts), writes DIR/results.json (results.ts) and DIR/report.html,
//   prints one verdict line and the report's path; exit 0 valid, 1 invalid, 3 unknown, 2 usage or
//   bad input (a malformed line is named with its number).
//
// From TypeScript:
//   checkRun(dir, options?): RunOutcome                       the CLI's work, without printing
//   checkHistory(history, nemesisEvents?, options?): CheckOutcome   in memory, writes nothing
//   parseHistory(text) / readHistoryFile(path): History       validated ops; times rebased (history.ts)
//   parseNemesisLog(text, history.originNs) / readNemesisFile(path, originNs): NemesisEvent[]
//   checkLinearizability(ops, options?), checkSet(ops), renderReport(input) for the parts.
//
// The set workload's conventions (keys `s:<element>`, add = put, final read = gets) are at the
// top of set.ts. Errors for bad input are `CheckerError`s with a stable `code` (errors.ts).

import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { History, readHistoryFile } from './history';
import { LinearizabilityOptions, checkLinearizability } from './linearizability';
import { NemesisEvent, NemesisWindow, nemesisWindows, readNemesisFile } from './nemesis';
import { renderReport } from './report';
import { Results, buildResults } from './results';
import { checkSet, hasSetWorkload } from './set';

export * from './errors';
export { parseHistory, readHistoryFile, checkProcessRules } from './history';
export type { History, Op, OpType, OpFunction } from './history';
export { checkLinearizability, combineVerdicts } from './linearizability';
export type { LinearizabilityOptions, LinearizabilityResult, LinearizabilityAnomaly, KeyResult, Verdict, UnknownReason } from './linearizability';
export { parseNemesisLog, readNemesisFile, nemesisWindows } from './nemesis';
export type { NemesisEvent, NemesisWindow } from './nemesis';
export { checkSet, hasSetWorkload, SET_KEY_PREFIX } from './set';
export type { SetResult, SetAnomaly } from './set';
export { buildResults } from './results';
export type { Results, Anomaly, NemesisSummary, OpCounts, WindowSummary } from './results';
export { renderReport } from './report';
export type { ReportInput } from './report';

export interface CheckOptions extends LinearizabilityOptions {
  /** Run the set checker: always, never, or 'auto' (when some key starts with `s:`). Default 'auto'. */
  set?: boolean | 'auto';
}

export interface RunOptions extends CheckOptions {
  /**
   * Node logs to link from the report, relative to DIR. Default: the `*.log` files under DIR/nodes/
   * (two levels deep), leaving out LevelDB's numbered write-ahead logs.
   */
  nodeLogs?: readonly string[];
  /** The report's title. Default: "RangeKV run <DIR's name>". */
  title?: string;
}

export interface CheckOutcome {
  readonly results: Results;
  readonly windows: readonly NemesisWindow[];
}

export interface RunOutcome extends CheckOutcome {
  readonly resultsPath: string;
  readonly reportPath: string;
}

export const HISTORY_FILE = 'history.jsonl';
export const NEMESIS_FILE = 'nemesis.jsonl';
export const RESULTS_FILE = 'results.json';
export const REPORT_FILE = 'report.html';

/** Checks a parsed history. Throws `CheckerError` for a bad nemesis sequence or set workload. */
export function checkHistory(history: History, nemesisEvents: readonly NemesisEvent[] = [], options: CheckOptions = {}): CheckOutcome {
  const started = performance.now();
  const windows = nemesisWindows(nemesisEvents);
  const runSet = options.set ?? 'auto';
  const set = runSet === true || (runSet === 'auto' && hasSetWorkload(history.ops)) ? checkSet(history.ops) : null;
  const linearizability = checkLinearizability(history.ops, options);
  const results = buildResults(history, windows, linearizability, set, performance.now() - started);
  return { results, windows };
}

/** Reads DIR's history (and nemesis log), writes DIR/results.json and DIR/report.html. */
export function checkRun(dir: string, options: RunOptions = {}): RunOutcome {
  const history = readHistoryFile(join(dir, HISTORY_FILE));
  const nemesisPath = join(dir, NEMESIS_FILE);
  const events = existsSync(nemesisPath) ? readNemesisFile(nemesisPath, history.originNs) : [];
  const { results, windows } = checkHistory(history, events, options);
  const resultsPath = join(dir, RESULTS_FILE);
  const reportPath = join(dir, REPORT_FILE);
  writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  const html = renderReport({
    results,
    ops: history.ops,
    windows,
    nodeLogs: options.nodeLogs ?? findNodeLogs(dir),
    title: options.title ?? `RangeKV run ${basename(resolve(dir))}`,
  });
  writeFileSync(reportPath, html);
  return { results, windows, resultsPath, reportPath };
}

/** `*.log` files under DIR/nodes, up to two levels deep, relative to DIR, sorted. */
export function findNodeLogs(dir: string): string[] {
  const found: string[] = [];
  const walk = (rel: string, depth: number): void => {
    let names: string[];
    try {
      names = readdirSync(join(dir, rel));
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const child = `${rel}/${name}`;
      let isDir: boolean;
      try {
        isDir = statSync(join(dir, child)).isDirectory();
      } catch {
        continue;
      }
      if (isDir) {
        if (depth < 2) walk(child, depth + 1);
      } else if (name.endsWith('.log') && !/^\d+\.log$/.test(name)) {
        found.push(child);
      }
    }
  };
  walk('nodes', 1);
  return found;
}
