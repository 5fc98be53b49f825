// Recording the run: DIR/history.jsonl (one line per client operation, exactly as
// ../shared/HISTORY-FORMAT.md says) and DIR/nemesis.jsonl (the nemesis' start/stop events), both
// timed by one monotonic clock: nanoseconds of process.hrtime.bigint() since the run's origin.

import { createWriteStream, WriteStream } from 'node:fs';

export type OpType = 'ok' | 'fail' | 'info';
export type OpF = 'get' | 'put' | 'delete' | 'cas';

export interface HistoryOp {
  readonly process: number;
  readonly type: OpType;
  readonly f: OpF;
  readonly key: string;
  readonly value: string | null;
  readonly expected: string | null;
  readonly result: string | null;
  readonly invoke: number;
  readonly complete: number | null;
}

export interface AnsweredOp {
  readonly op: HistoryOp;
  readonly answered: boolean;
}

export interface NemesisEvent {
  readonly time: number;
  readonly nemesis: string;
  readonly event: 'start' | 'stop';
  readonly detail: Record<string, unknown>;
}

/** The run's clock: integer nanoseconds since `origin` (one process, monotonic). */
export class Clock {
  private readonly origin = process.hrtime.bigint();
  now(): number {
    return Number(process.hrtime.bigint() - this.origin);
  }
}

/** An append-only JSON-lines file. */
class JsonLines {
  private readonly out: WriteStream;
  constructor(path: string) {
    this.out = createWriteStream(path, { flags: 'w' });
  }
  write(obj: object): void {
    this.out.write(`${JSON.stringify(obj)}\n`);
  }
  close(): Promise<void> {
    return new Promise((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

export interface OpCounts {
  ok: number;
  fail: number;
  info: number;
}

export class History {
  private readonly file: JsonLines;
  readonly counts: OpCounts = { ok: 0, fail: 0, info: 0 };
  /**
   * Every operation, kept for the run's own summary (availability per nemesis window), with
   * whether the cluster answered it (an ok, or a cas whose condition did not hold: a `fail` that
   * is an answer, not an outage).
   */
  readonly ops: AnsweredOp[] = [];
  private nextProcess = 0;

  constructor(
    path: string,
    readonly clock: Clock,
  ) {
    this.file = new JsonLines(path);
  }

  /** A process id never used before in this run. */
  freshProcess(): number {
    return this.nextProcess++;
  }

  record(op: HistoryOp, answered = op.type === 'ok'): void {
    if (op.type === 'info' && op.complete !== null) throw new TypeError('an info operation has no completion time');
    this.counts[op.type]++;
    this.ops.push({ op, answered });
    this.file.write(op);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

export class NemesisLog {
  private readonly file: JsonLines;
  readonly events: NemesisEvent[] = [];

  constructor(
    path: string,
    private readonly clock: Clock,
  ) {
    this.file = new JsonLines(path);
  }

  now(): number {
    return this.clock.now();
  }

  /** `time`: when the event began (a start is logged once its details are known). Default: now. */
  record(nemesis: string, event: 'start' | 'stop', detail: Record<string, unknown>, time = this.clock.now()): void {
    const e: NemesisEvent = { time, nemesis, event, detail };
    this.events.push(e);
    this.file.write(e);
    process.stdout.write(`[nemesis] ${(e.time / 1e9).toFixed(1)}s ${nemesis} ${event} ${JSON.stringify(detail)}\n`);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
