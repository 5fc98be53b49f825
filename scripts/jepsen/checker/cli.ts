// node dist/scripts/jepsen/checker/cli.js DIR [options]
//
// Checks DIR/history.jsonl (+ DIR/nemesis.jsonl when present), writes DIR/results.json and
// DIR/report.html, prints one verdict line and the report's path (see index.ts for the API).
// Exit codes: 0 valid, 1 invalid, 3 unknown (some key undecided within its budget), 2 usage error
// or bad input (missing or malformed file; the message names the line), 4 the checker crashed.

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CheckerError } from './errors';
import { RunOptions, checkRun } from './index';

const EXIT_VALID = 0;
const EXIT_INVALID = 1;
const EXIT_USAGE = 2;
const EXIT_UNKNOWN = 3;
const EXIT_CRASH = 4;

function nonNegative(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !(n >= 0)) throw new InvalidArgumentError(`must be a non-negative number, got '${v}'`);
  return n;
}

function collect(v: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), v];
}

function setMode(v: string): boolean | 'auto' {
  if (v === 'auto') return 'auto';
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new InvalidArgumentError(`expected auto, on or off, got '${v}'`);
}

interface CliOptions {
  keyTimeLimitMs: number;
  totalTimeLimitMs: number;
  keyStepLimit: number;
  shrinkTimeLimitMs: number;
  nodeLog?: string[];
  title?: string;
  set: boolean | 'auto';
}

/** Output of the CLI; tests pass their own. */
export interface CliOutput {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const STDIO: CliOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Runs the CLI on `argv` (as process.argv: node, script, arguments...); returns the exit code. */
export function runCli(argv: readonly string[], io: CliOutput = STDIO): number {
  let code = EXIT_USAGE;
  const program = new Command('checker')
    .description('check a Jepsen-style history: linearizability per key, set lost writes, nemesis availability; writes results.json and report.html')
    .argument('<dir>', 'run directory holding history.jsonl (and nemesis.jsonl)')
    .addOption(new Option('--key-time-limit-ms <ms>', "one key's search budget; past it the key is unknown").default(10_000).argParser(nonNegative))
    .addOption(new Option('--total-time-limit-ms <ms>', 'budget of the whole check; keys left are unknown').default(Infinity, 'none').argParser(nonNegative))
    .addOption(new Option('--key-step-limit <n>', "one key's search steps").default(50_000_000).argParser(nonNegative))
    .addOption(new Option('--shrink-time-limit-ms <ms>', 'budget for shrinking each anomaly').default(5_000).argParser(nonNegative))
    .addOption(new Option('--node-log <path>', 'node log to link from the report, relative to DIR (repeatable; default: DIR/nodes/**/*.log)').argParser(collect))
    .option('--title <text>', "the report's title")
    .addOption(new Option('--set <mode>', 'set-workload checker: auto (when s: keys exist), on, off').default('auto').argParser(setMode))
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .action((dir: string, o: CliOptions) => {
      const options: RunOptions = {
        keyTimeLimitMs: o.keyTimeLimitMs,
        totalTimeLimitMs: o.totalTimeLimitMs,
        keyStepLimit: o.keyStepLimit,
        shrinkTimeLimitMs: o.shrinkTimeLimitMs,
        set: o.set,
        ...(o.nodeLog === undefined ? {} : { nodeLogs: o.nodeLog }),
        ...(o.title === undefined ? {} : { title: o.title }),
      };
      const { results, reportPath } = checkRun(dir, options);
      const counts = `${results.ops} ops (${results.ok} ok, ${results.fail} fail, ${results.info} info), ${results.linearizability.keys} keys`;
      let line: string;
      if (results.valid === true) {
        line = `VALID: ${counts}`;
        code = EXIT_VALID;
      } else if (results.valid === false) {
        const named = results.anomalies
          .slice(0, 5)
          .map((a) => (a.kind === 'nonlinearizable' ? `key ${a.key} not linearizable from line ${a.failLine}` : `${a.kind} ${a.element}`))
          .join('; ');
        line = `INVALID: ${results.anomalies.length} anomal${results.anomalies.length === 1 ? 'y' : 'ies'} (${named}${results.anomalies.length > 5 ? '; ...' : ''}); ${counts}`;
        code = EXIT_INVALID;
      } else {
        const keys = results.linearizability.unknownKeys.map((k) => `${k.key}: ${k.reason ?? '?'}`);
        line = `UNKNOWN: undecided ${keys.length > 0 ? keys.slice(0, 5).join(', ') : 'set final read'}${keys.length > 5 ? ', ...' : ''}; ${counts}`;
        code = EXIT_UNKNOWN;
      }
      io.out(`${line} (checked in ${(results.checkerElapsedMs / 1000).toFixed(2)} s)\nreport: ${reportPath}\n`);
    });

  try {
    program.parse([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_VALID : EXIT_USAGE;
    if (err instanceof CheckerError) {
      io.err(`checker: ${err.message} [${err.code}]\n`);
      return EXIT_USAGE;
    }
    if (typeof err === 'object' && err !== null && 'syscall' in err) {
      // Writing results.json or report.html failed (a system error; not a crash of the checker).
      io.err(`checker: ${String((err as { message?: unknown }).message)}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  return code;
}

if (require.main === module) {
  try {
    process.exitCode = runCli(process.argv);
  } catch (err) {
    process.stderr.write(`checker: internal error: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT_CRASH;
  }
}
