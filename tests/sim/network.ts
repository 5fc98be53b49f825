// The simulated network: a bounded bag of in-flight messages. It reorders (the scheduler delivers
// a random deliverable message), delays (a message may become deliverable only some ticks later),
// duplicates (at send time, or much later: a replay of one of the last messages sent), drops (at delivery time, so a message in flight when a partition
// starts is lost too) and partitions (a blocked directed link drops what it would deliver; a
// two-way partition blocks both directions, a one-way link only one).
//
// Messages are immutable and passed by reference. Every message remembers the incarnation of the
// node that sent it, so transport-level reports (snapshot status, unreachable) go back only to the
// very process that sent it, never to its restarted successor.

import { Message } from '../../src/raft';
import { SeededRng } from '../../src/raft/rng';

/** Node ids in the simulator are below this bound (links are kept in a flat matrix). */
export const MAX_NODE_ID = 16;

export interface InFlight {
  readonly msg: Message;
  readonly fromIncarnation: number;
  /** Simulated tick at which the message becomes deliverable. */
  readonly deliverAt: number;
}

export interface NetworkFaults {
  /** Probability that a delivered message is lost instead. */
  dropProbability: number;
  /** Probability that a sent message is put in flight twice. */
  duplicateProbability: number;
  /** Probability that a sent message is held back for 1..maxDelayTicks ticks. */
  delayProbability: number;
  maxDelayTicks: number;
}

export class SimNetwork {
  /** Messages whose deliverAt <= now, in no particular order (delivery picks at random). */
  private deliverable: InFlight[] = [];
  /** Messages still held back. */
  private delayed: InFlight[] = [];
  private readonly blocked = new Uint8Array(MAX_NODE_ID * MAX_NODE_ID);
  private blockedCount = 0;
  now = 0;

  sent = 0;
  duplicated = 0;
  overflowDropped = 0;

  constructor(
    private readonly rng: SeededRng,
    public faults: NetworkFaults,
    /** Bound on messages in flight; past it a random in-flight message is dropped. */
    readonly maxInFlight = 4096,
  ) {}

  /** The most recently sent messages (a ring), for replays. */
  private readonly history: InFlight[] = [];
  private historyNext = 0;
  static readonly HISTORY_SIZE = 512;
  replayed = 0;

  send(msg: Message, fromIncarnation: number): void {
    this.sent++;
    const h: InFlight = { msg, fromIncarnation, deliverAt: 0 };
    if (this.history.length < SimNetwork.HISTORY_SIZE) this.history.push(h);
    else this.history[this.historyNext] = h;
    this.historyNext = (this.historyNext + 1) % SimNetwork.HISTORY_SIZE;
    this.enqueue(msg, fromIncarnation);
    if (this.faults.duplicateProbability > 0 && this.rng.chance(this.faults.duplicateProbability)) {
      this.duplicated++;
      this.enqueue(msg, fromIncarnation);
    }
  }

  /**
   * Puts a copy of one of the last HISTORY_SIZE sent messages in flight again: a duplicate that
   * arrives arbitrarily late (Raft must tolerate any duplication and reordering). Returns it.
   */
  replayOld(): Message | undefined {
    if (this.history.length === 0) return undefined;
    const h = this.history[this.rng.intn(this.history.length)] as InFlight;
    this.replayed++;
    this.enqueue(h.msg, h.fromIncarnation);
    return h.msg;
  }

  private enqueue(msg: Message, fromIncarnation: number): void {
    const f = this.faults;
    const delay = f.delayProbability > 0 && this.rng.chance(f.delayProbability) ? 1 + this.rng.intn(f.maxDelayTicks) : 0;
    const m: InFlight = { msg, fromIncarnation, deliverAt: this.now + delay };
    if (delay === 0) this.deliverable.push(m);
    else this.delayed.push(m);
    if (this.deliverable.length + this.delayed.length > this.maxInFlight) {
      this.overflowDropped++;
      // Drop a random message (from the bigger pool) to stay within the bound.
      const pool = this.deliverable.length >= this.delayed.length ? this.deliverable : this.delayed;
      removeAt(pool, this.rng.intn(pool.length));
    }
  }

  /** Advances simulated time; held-back messages that are due become deliverable. */
  advanceTo(now: number): void {
    this.now = now;
    if (this.delayed.length === 0) return;
    const still: InFlight[] = [];
    for (const m of this.delayed) {
      if (m.deliverAt <= now) this.deliverable.push(m);
      else still.push(m);
    }
    this.delayed = still;
  }

  deliverableCount(): number {
    return this.deliverable.length;
  }

  inFlightCount(): number {
    return this.deliverable.length + this.delayed.length;
  }

  /** Removes and returns a random deliverable message (the caller checks links and drops). */
  takeRandom(): InFlight | undefined {
    if (this.deliverable.length === 0) return undefined;
    return removeAt(this.deliverable, this.rng.intn(this.deliverable.length));
  }

  /** Whether the decision to drop this delivery is taken (random loss). */
  shouldDrop(): boolean {
    return this.faults.dropProbability > 0 && this.rng.chance(this.faults.dropProbability);
  }

  isBlocked(from: number, to: number): boolean {
    return this.blockedCount > 0 && this.blocked[from * MAX_NODE_ID + to] === 1;
  }

  blockOneWay(from: number, to: number): void {
    const k = from * MAX_NODE_ID + to;
    if (this.blocked[k] === 0) {
      this.blocked[k] = 1;
      this.blockedCount++;
    }
  }

  /** Blocks both directions between every member of `a` and every member of `b`. */
  partition(a: readonly number[], b: readonly number[]): void {
    for (const x of a) {
      for (const y of b) {
        this.blockOneWay(x, y);
        this.blockOneWay(y, x);
      }
    }
  }

  heal(): void {
    this.blocked.fill(0);
    this.blockedCount = 0;
  }

  describeBlocked(): string {
    if (this.blockedCount === 0) return 'none';
    const out: string[] = [];
    for (let from = 0; from < MAX_NODE_ID; from++) {
      for (let to = 0; to < MAX_NODE_ID; to++) if (this.blocked[from * MAX_NODE_ID + to] === 1) out.push(`${from}->${to}`);
    }
    return out.join(' ');
  }
}

/** Swap-remove: O(1), order is irrelevant (delivery picks at random anyway). */
function removeAt<T>(arr: T[], i: number): T {
  const item = arr[i] as T;
  const last = arr.pop() as T;
  if (i < arr.length) arr[i] = last;
  return item;
}
