// Reading history.jsonl: typed operations with times rebased exactly (also past 2^53 ns), every
// malformed line named by number and problem, and the per-process rules of the format.

import {
  MalformedLineError,
  ProcessOverlapError,
  ProcessReusedAfterInfoError,
} from '../../scripts/jepsen/checker/errors';
import { checkProcessRules, parseHistory } from '../../scripts/jepsen/checker/history';
import { opsOf } from '../../scripts/jepsen/checker/notation';

interface Line {
  process?: unknown;
  type?: unknown;
  f?: unknown;
  key?: unknown;
  value?: unknown;
  expected?: unknown;
  result?: unknown;
  invoke?: unknown;
  complete?: unknown;
}

const GOOD: Line = { process: 1, type: 'ok', f: 'put', key: 'k1', value: 'v-1-1', expected: null, result: null, invoke: 1000, complete: 2000 };

function jsonl(...lines: Line[]): string {
  return lines.map((l) => `${JSON.stringify(l)}\n`).join('');
}

function problemOf(text: string): MalformedLineError {
  try {
    parseHistory(text);
  } catch (e) {
    if (e instanceof MalformedLineError) return e;
    throw e;
  }
  throw new Error('expected a MalformedLineError');
}

describe('history: valid files', () => {
  test('typed operations with times relative to the earliest invoke', () => {
    const text = jsonl(
      { process: 2, type: 'ok', f: 'get', key: 'k', value: null, expected: null, result: 'v-1-1', invoke: 1500, complete: 2500 },
      GOOD,
      { process: 3, type: 'info', f: 'cas', key: 'k', value: 'v-3-1', expected: null, result: null, invoke: 1200, complete: null },
      { process: 4, type: 'fail', f: 'delete', key: 'k', value: null, expected: null, result: null, invoke: 3000, complete: 3100 },
    );
    const h = parseHistory(text);
    expect(h.originNs).toBe(1000n);
    expect(h.ops).toEqual([
      { line: 1, process: 2, type: 'ok', f: 'get', key: 'k', value: null, expected: null, result: 'v-1-1', invoke: 500, complete: 1500 },
      { line: 2, process: 1, type: 'ok', f: 'put', key: 'k1', value: 'v-1-1', expected: null, result: null, invoke: 0, complete: 1000 },
      { line: 3, process: 3, type: 'info', f: 'cas', key: 'k', value: 'v-3-1', expected: null, result: null, invoke: 200, complete: null },
      { line: 4, process: 4, type: 'fail', f: 'delete', key: 'k', value: null, expected: null, result: null, invoke: 2000, complete: 2100 },
    ]);
  });

  test('clock values past 2^53 are read exactly', () => {
    const text =
      '{"process":1,"type":"ok","f":"put","key":"k","value":"a","expected":null,"result":null,"invoke":9007199254740993,"complete":9007199254740995}\n' +
      '{"process":2,"type":"ok","f":"get","key":"k","value":null,"expected":null,"result":"a","invoke":9007199254740996,"complete":9007199254740997}\n';
    const h = parseHistory(text);
    expect(h.originNs).toBe(9007199254740993n);
    expect(h.ops.map((op) => [op.invoke, op.complete])).toEqual([
      [0, 2],
      [3, 4],
    ]);
  });

  test('an empty file, a missing trailing newline, CRLF line ends and extra fields are fine', () => {
    expect(parseHistory('')).toEqual({ ops: [], originNs: 0n });
    expect(parseHistory(JSON.stringify(GOOD)).ops).toHaveLength(1);
    expect(parseHistory(`${JSON.stringify(GOOD)}\r\n`).ops).toHaveLength(1);
    expect(parseHistory(jsonl({ ...GOOD, node: 'n2' } as Line)).ops).toHaveLength(1);
  });
});

describe('history: malformed lines are errors naming the line', () => {
  test.each<[string, Line | string, string]>([
    ['not JSON', '{"process": 1,', 'not JSON'],
    ['not an object', '[1,2]', 'not a JSON object'],
    ['a missing field', (() => {
      const { result: _result, ...rest } = GOOD;
      return rest;
    })(), "missing field 'result'"],
    ['a negative process', { ...GOOD, process: -1 }, "'process' must be a non-negative integer"],
    ['a fractional process', { ...GOOD, process: 1.5 }, "'process' must be a non-negative integer"],
    ['an unknown type', { ...GOOD, type: 'timeout' }, "'type' must be one of ok, fail, info"],
    ['an unknown f', { ...GOOD, f: 'scan' }, "'f' must be one of get, put, delete, cas"],
    ['a non-string key', { ...GOOD, key: 7 }, "'key' must be a string"],
    ['a put without value', { ...GOOD, value: null }, "'value' of a put must be a string"],
    ['a get with a value', { ...GOOD, f: 'get', value: 'x' }, "'value' of a get must be null"],
    ['a numeric expected', { ...GOOD, f: 'cas', expected: 3 }, "'expected' of a cas must be a string or null"],
    ['expected on a put', { ...GOOD, expected: 'x' }, "'expected' of a put must be null"],
    ['a result on a put', { ...GOOD, result: 'x' }, "'result' must be null except for an ok get"],
    ['a result on a failed get', { ...GOOD, f: 'get', type: 'fail', value: null, result: 'x' }, "'result' must be null except for an ok get"],
    ['a string invoke', { ...GOOD, invoke: '1000' }, "'invoke' must be an integer"],
    ['a null invoke', { ...GOOD, invoke: null }, "'invoke' must be an integer"],
    ['a fractional complete', { ...GOOD, complete: 1500.5 }, "'complete' must be an integer"],
    ['complete before invoke', { ...GOOD, complete: 999 }, "'complete' (999) is before 'invoke' (1000)"],
    ['an info with a complete', { ...GOOD, type: 'info' }, "'complete' of an info operation must be null"],
    ['an ok without complete', { ...GOOD, complete: null }, "'complete' of an ok operation must be an integer"],
  ])('%s', (_name, bad, problem) => {
    const text = `${JSON.stringify(GOOD)}\n${typeof bad === 'string' ? bad : JSON.stringify(bad)}\n${JSON.stringify({ ...GOOD, process: 9 })}\n`;
    const e = problemOf(text);
    expect(e.code).toBe('CHECKER_MALFORMED_LINE');
    expect(e.line).toBe(2);
    expect(e.problem).toContain(problem);
    expect(e.message).toMatch(/^history line 2: /);
  });

  test('an empty line in the middle is malformed, never skipped', () => {
    const e = problemOf(`${JSON.stringify(GOOD)}\n\n${JSON.stringify({ ...GOOD, process: 2 })}\n`);
    expect([e.line, e.problem]).toEqual([2, 'empty line']);
  });

  test('the first malformed line is the one reported', () => {
    const e = problemOf(`${JSON.stringify(GOOD)}\n${JSON.stringify(GOOD)}\nnope\n{}\n`);
    expect(e.line).toBe(3);
  });
});

describe('history: process rules', () => {
  test('a process running an operation after an info one', () => {
    const text = jsonl(
      { ...GOOD, type: 'info', complete: null, invoke: 1000 },
      { ...GOOD, invoke: 5000, complete: 6000 },
    );
    expect(() => parseHistory(text)).toThrow(ProcessReusedAfterInfoError);
    try {
      parseHistory(text);
    } catch (e) {
      expect(e).toMatchObject({ code: 'CHECKER_PROCESS_REUSED_AFTER_INFO', process: 1, line: 2, infoLine: 1 });
    }
  });

  test('overlapping operations of one process', () => {
    const text = jsonl({ ...GOOD, invoke: 1000, complete: 3000 }, { ...GOOD, invoke: 2000, complete: 4000 });
    expect(() => parseHistory(text)).toThrow(ProcessOverlapError);
    try {
      parseHistory(text);
    } catch (e) {
      expect(e).toMatchObject({ code: 'CHECKER_PROCESS_OVERLAP', process: 1, line: 2, otherLine: 1 });
      expect((e as Error).message).toBe('history line 2: process 1 invokes an operation before its operation at line 1 completed');
    }
  });

  test('back-to-back operations of one process (complete = next invoke) are fine', () => {
    expect(parseHistory(jsonl({ ...GOOD, invoke: 1000, complete: 2000 }, { ...GOOD, invoke: 2000, complete: 3000 })).ops).toHaveLength(2);
  });

  test('every violation is listed for histories built in memory', () => {
    const v = checkProcessRules(opsOf('1 ok put x=a 0-10', '1 ok put x=b 5-20', '2 info put x=c 0', '2 ok get x->a 30-40', '3 ok get x->a 0-10'));
    expect(v.map((e) => [e.code, e.process, e.line])).toEqual([
      ['CHECKER_PROCESS_OVERLAP', 1, 2],
      ['CHECKER_PROCESS_REUSED_AFTER_INFO', 2, 4],
    ]);
  });
});
