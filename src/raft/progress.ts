// The leader's view of one follower: how far its log matches, what to send next, and the flow
// control state that bounds what is in flight to it.

import { NodeId } from './types';

export enum ProgressState {
  /** We do not know where the follower's log matches: send one append at a time and wait. */
  Probe = 'Probe',
  /** The follower is in sync: stream appends optimistically, bounded by the inflight window. */
  Replicate = 'Replicate',
  /** The follower needs a snapshot; nothing else is sent until it lands or fails. */
  Snapshot = 'Snapshot',
}

/**
 * A bounded window of in-flight append messages, remembered by the last index each carried.
 * When it is full the leader stops sending until acknowledgements free slots.
 */
export class Inflights {
  private readonly buffer: number[] = [];
  constructor(readonly capacity: number) {}

  add(lastIndex: number): void {
    if (this.full()) throw new Error(`inflights: window of ${this.capacity} is full`);
    this.buffer.push(lastIndex);
  }

  /** Frees every message whose last index is <= `to`. */
  freeLE(to: number): void {
    let n = 0;
    while (n < this.buffer.length && (this.buffer[n] as number) <= to) n++;
    if (n > 0) this.buffer.splice(0, n);
  }

  freeFirstOne(): void {
    this.buffer.shift();
  }

  full(): boolean {
    return this.buffer.length >= this.capacity;
  }

  count(): number {
    return this.buffer.length;
  }

  reset(): void {
    this.buffer.length = 0;
  }
}

export class Progress {
  /** Highest index known to be replicated on the follower. */
  match = 0;
  /** Index of the next entry to send. Invariant: match < next. */
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In Snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = false;
  /** In Probe state: an append was sent and we wait for its answer (or a heartbeat reply). */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(
    readonly id: NodeId,
    next: number,
    maxInflight: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // Coming back from a snapshot: the follower has at least the snapshot.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** The follower acknowledged index n. Returns false if the ack is stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Replicate state: entries up to n were sent; assume they will be accepted. */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * The follower rejected an append at index `rejected`; `matchHint` is where the logs may match.
   * Returns false if the rejection is stale (from an earlier probe).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending appends to this follower should wait. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}
