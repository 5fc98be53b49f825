// The nemesis log, results.json (verdict, counts, per-nemesis availability) and the CLI on run
// directories: exit codes 0 valid, 1 invalid, 3 unknown, 2 bad input.

import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../scripts/jepsen/checker/cli';
import { MalformedLineError, NemesisSequenceError } from '../../scripts/jepsen/checker/errors';
import { checkHistory, checkRun, findNodeLogs, Results } from '../../scripts/jepsen/checker/index';
import { parseHistory } from '../../scripts/jepsen/checker/history';
import { nemesisWindows, parseNemesisLog } from '../../scripts/jepsen/checker/nemesis';
import { opsOf } from '../../scripts/jepsen/checker/notation';
import { summarizeNemeses } from '../../scripts/jepsen/checker/results';
import { toJsonl } from '../../scripts/jepsen/checker/simulate';

function nemesisLine(time: number | string, nemesis: string, event: string, detail?: object): string {
  return `{"time": ${time}, "nemesis": ${JSON.stringify(nemesis)}, "event": ${JSON.stringify(event)}${detail === undefined ? '' : `, "detail": ${JSON.stringify(detail)}`}}\n`;
}

describe('nemesis log', () => {
  test('events rebased on the history origin, paired into windows; an open one runs to the end', () => {
    const text =
      nemesisLine(1500, 'partition-isolate-leader', 'start', { isolated: [2] }) +
      nemesisLine(900, 'kill', 'start') +
      nemesisLine(2500, 'partition-isolate-leader', 'stop', {}) +
      nemesisLine(3000, 'partition-isolate-leader', 'start', { isolated: [1] });
    const events = parseNemesisLog(text, 1000n);
    expect(events[0]).toEqual({ line: 1, time: 500, nemesis: 'partition-isolate-leader', event: 'start', detail: { isolated: [2] } });
    expect(events[1]?.time).toBe(-100);
    expect(nemesisWindows(events)).toEqual([
      { nemesis: 'kill', start: -100, stop: null, detail: null, stopDetail: null, startLine: 2 },
      { nemesis: 'partition-isolate-leader', start: 500, stop: 1500, detail: { isolated: [2] }, stopDetail: {}, startLine: 1 },
      { nemesis: 'partition-isolate-leader', start: 2000, stop: null, detail: { isolated: [1] }, stopDetail: null, startLine: 4 },
    ]);
  });

  test('times past 2^53 are exact', () => {
    const events = parseNemesisLog(nemesisLine('9007199254740995', 'kill', 'start'), 9007199254740993n);
    expect(events[0]?.time).toBe(2);
  });

  test.each<[string, string, string]>([
    ['not JSON', 'oops', 'not JSON'],
    ['a bad time', '{"time": "1", "nemesis": "kill", "event": "start"}', "'time' must be an integer"],
    ['no name', '{"time": 1, "nemesis": "", "event": "start"}', "'nemesis' must be a non-empty string"],
    ['a bad event', '{"time": 1, "nemesis": "kill", "event": "begin"}', `'event' must be "start" or "stop"`],
    ['a bad detail', '{"time": 1, "nemesis": "kill", "event": "start", "detail": [1]}', "'detail' must be a JSON object"],
  ])('malformed: %s', (_name, line, problem) => {
    let error: unknown;
    try {
      parseNemesisLog(nemesisLine(0, 'kill', 'start') + nemesisLine(1, 'kill', 'stop') + line + '\n', 0n);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MalformedLineError);
    expect(error).toMatchObject({ line: 3, file: 'nemesis' });
    expect((error as MalformedLineError).problem).toContain(problem);
  });

  test('a stop without start, or two starts, is a sequence error', () => {
    expect(() => nemesisWindows(parseNemesisLog(nemesisLine(5, 'kill', 'stop'), 0n))).toThrow(NemesisSequenceError);
    expect(() => nemesisWindows(parseNemesisLog(nemesisLine(5, 'kill', 'start') + nemesisLine(6, 'kill', 'start'), 0n))).toThrow(
      'nemesis line 2: kill starts again before its start at line 1 stopped',
    );
  });
});

describe('results', () => {
  test('per-nemesis counts during and after each window, availability and recovery', () => {
    const ops = opsOf(
      '1 ok put x=a 0-10', // before: outside
      '2 ok get x->a 100-110', // during window 1
      '3 fail put x=b 120-130', // during
      '4 info put x=c 150', // during
      '5 ok get x->a 210-260', // after window 1 (stop at 200): first ok completion 60 after the stop
      '6 fail get x 220-230', // after
      '7 ok get x->a 400-410', // during window 2
      '8 ok get x->a 600-610', // after window 2 (open to the end: no after)
    );
    const windows = nemesisWindows(parseNemesisLog(nemesisLine(100, 'pause', 'start') + nemesisLine(200, 'pause', 'stop') + nemesisLine(400, 'pause', 'start') + nemesisLine(500, 'pause', 'stop') + nemesisLine(300, 'kill', 'start'), 0n));
    const s = summarizeNemeses(ops, windows, 610);
    expect(s['pause']).toMatchObject({
      windows: 2,
      activeNs: 200,
      during: { ops: 4, ok: 2, fail: 1, info: 1, availability: 0.5 },
      after: { ops: 3, ok: 2, fail: 1, info: 0 },
      outside: { ops: 4, ok: 3, fail: 1, info: 0, availability: 0.75 },
    });
    const w1 = s['pause']?.windowList[0];
    expect(w1).toMatchObject({ start: 100, stop: 200, during: { ops: 3 }, after: { ops: 2, ok: 1, availability: 0.5 }, recoveryNs: 60 });
    // The after period of window 1 ends at the next start of any nemesis (kill at 300).
    expect(s['kill']).toMatchObject({ windows: 1, activeNs: 310, during: { ops: 2 } });
  });

  test('a stale read makes the run invalid, with the anomaly; counts match the history', () => {
    const history = { ops: opsOf('1 ok put x=a 0-10', '1 ok put x=b 20-30', '2 ok get x->a 40-50', '3 info put y=z 0', '4 fail get y 0-5'), originNs: 7n };
    const { results } = checkHistory(history);
    expect(results).toMatchObject({ valid: false, ops: 5, ok: 3, fail: 1, info: 1, originNs: '7', durationNs: 50, nemesis: {}, set: null });
    expect(results.anomalies).toHaveLength(1);
    expect(results.anomalies[0]).toMatchObject({ kind: 'nonlinearizable', key: 'x' });
    expect(results.linearizability).toMatchObject({ valid: false, keys: 2, validKeys: 1, invalidKeys: ['x'], unknownKeys: [] });
  });

  test('undecided keys make the run unknown (but an anomaly elsewhere still makes it invalid)', () => {
    const hard = Array.from({ length: 12 }, (_, p) => `${p} ok put x=v${p} 0-1000`);
    const unknown = checkHistory({ ops: opsOf(...hard, '99 ok get x->never 0-1000'), originNs: 0n }, [], { keyStepLimit: 10 });
    expect(unknown.results.valid).toBe('unknown');
    expect(unknown.results.linearizability.unknownKeys).toEqual([{ key: 'x', reason: 'step-limit', ops: 13, steps: 10 }]);
    const invalid = checkHistory({ ops: opsOf(...hard, '99 ok get x->never 0-1000', '98 ok get y->never 0-10'), originNs: 0n }, [], { keyStepLimit: 10 });
    expect(invalid.results.valid).toBe(false);
  });

  test('the set checker runs when s: keys exist; a lost add is an anomaly', () => {
    const { results } = checkHistory({ ops: opsOf('1 ok put s:1=1 0-10', '9 ok get s:1->nil 100-110'), originNs: 0n });
    expect(results.valid).toBe(false);
    expect(results.set).toMatchObject({ valid: false, lost: ['1'] });
    expect(results.anomalies.map((a) => a.kind).sort()).toEqual(['lost-add', 'nonlinearizable']);
  });
});

describe('run directories and the CLI', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'checker-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function cli(...args: string[]): { code: number; out: string; err: string } {
    let out = '';
    let err = '';
    const code = runCli(['node', 'cli.js', ...args], { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }

  test('a valid run: results.json, report.html, exit 0, one verdict line', () => {
    writeFileSync(join(dir, 'history.jsonl'), toJsonl(opsOf('1 ok put x=a 1000-1010', '2 ok get x->a 1020-1030')));
    writeFileSync(join(dir, 'nemesis.jsonl'), nemesisLine(1005, 'kill', 'start', { node: 2 }) + nemesisLine(1025, 'kill', 'stop'));
    mkdirSync(join(dir, 'nodes'));
    writeFileSync(join(dir, 'nodes', 'n1.log'), 'log\n');
    const r = cli(dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^VALID: 2 ops \(2 ok, 0 fail, 0 info\), 1 keys \(checked in [\d.]+ s\)\nreport: .*report\.html\n$/);
    const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
    expect(results).toMatchObject({ valid: true, ops: 2, originNs: '1000', nemesis: { kill: { windows: 1 } } });
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('href="nodes/n1.log"');
    expect(html).toContain('VALID');
  });

  test('an invalid run exits 1 and names the key', () => {
    writeFileSync(join(dir, 'history.jsonl'), toJsonl(opsOf('1 ok put k7=a 0-10', '1 ok put k7=b 20-30', '2 ok get k7->a 40-50')));
    const r = cli(dir, '--node-log', 'elsewhere/n1.log');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^INVALID: 1 anomaly \(key k7 not linearizable from line 3\)/);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('href="elsewhere/n1.log"');
  });

  test('an undecided run exits 3', () => {
    const hard = Array.from({ length: 12 }, (_, p) => `${p} ok put x=v${p} 0-1000`);
    writeFileSync(join(dir, 'history.jsonl'), toJsonl(opsOf(...hard, '99 ok get x->never 0-1000')));
    const r = cli(dir, '--key-step-limit', '10');
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/^UNKNOWN: undecided x: step-limit/);
  });

  test('bad input and usage errors exit 2', () => {
    const missing = cli(dir);
    expect(missing).toMatchObject({ code: 2, out: '' });
    expect(missing.err).toMatch(/^checker: cannot read .*history\.jsonl: ENOENT.* \[CHECKER_INPUT_FILE\]\n$/);
    writeFileSync(join(dir, 'history.jsonl'), '{"process": 1}\n');
    const bad = cli(dir);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe("checker: history line 1: missing field 'type' [CHECKER_MALFORMED_LINE]\n");
    expect(existsSync(join(dir, 'results.json'))).toBe(false);
    expect(cli().code).toBe(2);
    expect(cli(dir, '--key-time-limit-ms', 'soon').code).toBe(2);
    expect(cli(dir, '--bogus').code).toBe(2);
  });

  test('checkRun returns what it wrote; node logs are found under nodes/, LevelDB logs left out', () => {
    writeFileSync(join(dir, 'history.jsonl'), toJsonl(opsOf('1 ok put x=a 0-10')));
    mkdirSync(join(dir, 'nodes', 'n2'), { recursive: true });
    writeFileSync(join(dir, 'nodes', 'n1.log'), '');
    writeFileSync(join(dir, 'nodes', 'n2', 'kvd.log'), '');
    writeFileSync(join(dir, 'nodes', 'n2', '000005.log'), '');
    expect(findNodeLogs(dir)).toEqual(['nodes/n1.log', 'nodes/n2/kvd.log']);
    const run = checkRun(dir, { title: 'T<1>' });
    expect(JSON.parse(readFileSync(run.resultsPath, 'utf8'))).toEqual(JSON.parse(JSON.stringify(run.results)));
    expect(readFileSync(run.reportPath, 'utf8')).toContain('<title>T&lt;1&gt;</title>');
  });
});

describe('results at the size of a full-length run', () => {
  it('summarizes a window followed by 200,000 operations (no argument spreading of huge arrays)', () => {
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) {
      lines.push(JSON.stringify({ process: i % 10, type: 'ok', f: 'put', key: `s:${i}`, value: `${i}`, expected: null, result: null, invoke: 100 + i * 10, complete: 105 + i * 10 }));
    }
    const history = parseHistory(lines.join('\n'));
    const events = parseNemesisLog(nemesisLine(0, 'kill', 'start') + nemesisLine(50, 'kill', 'stop'), history.originNs);
    const { results } = checkHistory(history, events, { set: false });
    expect(results.valid).toBe(true);
    expect(results.nemesis.kill?.after.ops).toBe(200_000);
  });
});
