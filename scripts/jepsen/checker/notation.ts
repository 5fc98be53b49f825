// A one-line notation for operations, for tests and bug reports (times in any unit, used as ns):
//
//   "1 ok put x=a 0-10"         process 1 put a on key x, invoked at 0, completed at 10
//   "2 ok get x->a 5-15"        get of x returned a ("x->nil": returned absent)
//   "3 ok cas x a->b 0-10"      cas of x from a to b ("nil->b": from absent)
//   "4 ok delete x 20-30"
//   "5 info put x=c 3"          info: invoked at 3, never answered
//   "6 fail cas x a->b 0-10"

import type { Op, OpFunction, OpType } from './history';

const PATTERN = /^(\d+) (ok|fail|info) (get|put|delete|cas) (\S+?)(?:=(\S+)|->(\S+)| (\S+)->(\S+))? (\d+)(?:-(\d+))?$/;

function nil(v: string | undefined): string | null {
  return v === undefined || v === 'nil' ? null : v;
}

/** Parses one operation; `line` names it. Throws TypeError on a typo (a programmer mistake). */
export function parseOpNotation(text: string, line: number): Op {
  const m = PATTERN.exec(text.trim());
  if (m === null) throw new TypeError(`bad operation notation: ${JSON.stringify(text)}`);
  const [, process, type, f, key, putValue, getResult, casFrom, casTo, invoke, complete] = m;
  const fn = f as OpFunction;
  const t = type as OpType;
  const value = fn === 'put' ? (putValue ?? null) : fn === 'cas' ? nil(casTo) : null;
  if ((fn === 'put' || fn === 'cas') && value === null) throw new TypeError(`a ${fn} needs a value: ${JSON.stringify(text)}`);
  if ((t === 'info') !== (complete === undefined)) throw new TypeError(`exactly info operations have no complete: ${JSON.stringify(text)}`);
  return {
    line,
    process: Number(process),
    type: t,
    f: fn,
    key: key as string,
    value,
    expected: fn === 'cas' ? nil(casFrom) : null,
    result: fn === 'get' && t === 'ok' ? nil(getResult) : null,
    invoke: Number(invoke),
    complete: complete === undefined ? null : Number(complete),
  };
}

/** Parses operations, numbering them 1.. in the order given. */
export function opsOf(...lines: string[]): Op[] {
  return lines.map((l, i) => parseOpNotation(l, i + 1));
}

/** The notation of an operation (inverse of parseOpNotation). */
export function formatOp(op: Op): string {
  const n = (v: string | null): string => v ?? 'nil';
  const args =
    op.f === 'put' ? `${op.key}=${n(op.value)}` : op.f === 'get' ? (op.type === 'ok' ? `${op.key}->${n(op.result)}` : op.key) : op.f === 'cas' ? `${op.key} ${n(op.expected)}->${n(op.value)}` : op.key;
  return `${op.process} ${op.type} ${op.f} ${args} ${op.invoke}${op.complete === null ? '' : `-${op.complete}`}`;
}
