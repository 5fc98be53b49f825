// The placement scheduler's scale simulation: prints figures, it is not a test.
//
//   npx tsc -p tsconfig.json && node dist/scripts/placement-sim.js [options]
//     --seed N            (default 1)
//     --nodes N           initial nodes (default 1000)
//     --zones N           (default 5)
//     --ranges N          initial ranges, 3 voters each (default 100000)
//     --voters N          voters per range (default 3)
//     --learners          one learner in every zone without a voter
//     --max-rounds N      (default 400)
//     --bound N           convergence bound: rounds after the last scenario event (default 60; 120 with --learners)
//     --every N           print a progress line every N rounds (default 10; 0: none)
//     --json              print the report as JSON only
//
// Exit code 0 when the run converged within the bound with no invariant violation, 1 otherwise,
// 2 on bad options.

import { performance } from 'node:perf_hooks';
import { DEFAULT_SIMULATION_OPTIONS, simulate, type SimulationOptions, type Spread } from '../src/placement/scheduler/simulate';

function usage(message: string): never {
  process.stderr.write(`placement-sim: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): { options: Partial<SimulationOptions>; every: number; bound: number; json: boolean } {
  const options: { -readonly [K in keyof SimulationOptions]?: SimulationOptions[K] } = {};
  let every = 10;
  let bound: number | undefined;
  let json = false;
  let voters = DEFAULT_SIMULATION_OPTIONS.rules.votersPerRange;
  let learners = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const number = (): number => {
      const value = Number(argv[++i]);
      if (!Number.isSafeInteger(value) || value < 0) usage(`${flag} needs a non-negative integer`);
      return value;
    };
    switch (flag) {
      case '--seed': options.seed = number(); break;
      case '--nodes': options.nodes = number(); break;
      case '--zones': options.zones = number(); break;
      case '--ranges': options.ranges = number(); break;
      case '--voters': voters = number(); break;
      case '--learners': learners = true; break;
      case '--max-rounds': options.maxRounds = number(); break;
      case '--every': every = number(); break;
      case '--bound': bound = number(); break;
      case '--json': json = true; break;
      default: usage(`unknown option ${flag}`);
    }
  }
  options.rules = { votersPerRange: voters, learners: learners ? 'zones-without-voter' : 'none' };
  return { options, every, bound: bound ?? (learners ? 120 : 60), json };
}

function spreadLine(spread: Spread): string {
  return (
    `up nodes ${spread.upNodes}, replicas/node ${spread.replicasMin}..${spread.replicasMax} (max/min ${spread.replicaSpread.toFixed(3)}; ` +
    `inside a zone ${spread.replicaSpreadInZones.toFixed(3)}), ` +
    `leaders/node ${spread.leadersMin}..${spread.leadersMax} (max/min ${spread.leaderSpread.toFixed(3)}), ` +
    `ranges ${spread.ranges} (${spread.rangesOutOfPlace} out of place), on down nodes ${spread.replicasOnDownNodes}, ` +
    `on draining nodes ${spread.leftOnDrainingNodes}, oversized ${spread.oversizedRanges}`
  );
}

function main(): void {
  const { options, every, bound, json } = parseArgs(process.argv.slice(2));
  const merged = { ...DEFAULT_SIMULATION_OPTIONS, ...options };
  if (!json) {
    process.stdout.write(
      `placement-sim: seed ${merged.seed}, ${merged.nodes} nodes in ${merged.zones} zones, ${merged.ranges} ranges × ${merged.rules.votersPerRange} voters` +
        `${merged.rules.learners === 'none' ? '' : ' + learners per zone'}; +${Math.round(merged.nodes * merged.joinFraction)} nodes at round ${merged.joinRound}, ` +
        `${merged.permanentFailures} permanent + ${merged.transientFailures} transient failures from round ${merged.firstFailureRound}, ` +
        `${merged.drains} drains at round ${merged.drainRound}; step failure rate ${merged.stepFailureRate}\n`,
    );
  }
  const started = performance.now();
  const report = simulate({
    ...options,
    clock: () => performance.now(),
    onRound: (summary) => {
      if (json || every === 0 || summary.round % every !== 0) return;
      process.stdout.write(`round ${summary.round}: issued ${summary.issued}, in flight ${summary.inFlight}; ${spreadLine(summary.spread)}\n`);
    },
  });
  const elapsedMs = performance.now() - started;
  const withinBound = report.convergedRound !== undefined && report.convergedRound - report.lastEventRound <= bound;
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...report, bound, withinBound, elapsedMs: Math.round(elapsedMs) }, null, 2)}\n`);
  } else {
    const converged = report.convergedRound === undefined
      ? `did NOT converge within ${report.rounds} rounds`
      : `converged at round ${report.convergedRound} (${report.convergedRound - report.lastEventRound} rounds after the last event at round ${report.lastEventRound}; ` +
        `bound ${bound}: ${withinBound ? 'within' : 'EXCEEDED'}), stable for ${report.rounds - report.convergedRound} more`;
    const lines = [
      `result: ${converged}`,
      `operators: ${report.operatorsIssued} issued (${Object.entries(report.operatorsByPurpose).map(([purpose, n]) => `${purpose} ${n}`).join(', ')}), ` +
        `${report.operatorsCompleted} completed, ${report.operatorsAborted} aborted by the step check, ${report.operatorsTimedOut} timed out`,
      `steps: ${report.stepsExecuted} executed, ${report.stepRetries} failed and retried, ${report.stepAborts} failed and abandoned their operator; ${report.splits} splits`,
      `limits: at most ${report.maxIssuedInRound} operators issued in a round, at most ${report.maxInFlightOnNode} replica additions and ${report.maxTransfersOnNode} leader transfers in flight on one node; slowest repair of a dead node ${report.maxRepairRounds} rounds`,
      `initial: ${spreadLine(report.initial)}`,
      `final:   ${spreadLine(report.final)}`,
      `time: ${(elapsedMs / 1000).toFixed(1)} s total, ${(report.scheduleMs / 1000).toFixed(1)} s in schedule() (${(report.scheduleMs / report.rounds).toFixed(1)} ms per round)`,
      `invariant violations: ${report.violations.length}`,
      ...report.violations.slice(0, 20).map((violation) => `  ${violation.rule} range ${violation.rangeId}: ${violation.detail}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  process.exit(withinBound && report.violations.length === 0 ? 0 : 1);
}

main();
