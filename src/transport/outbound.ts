// Messages queued per destination between send() and flush(), shared by every Transport.

import type { RangeMessage } from './transport';

export class OutboundQueues {
  private queued = new Map<number, RangeMessage[]>();

  add(toNode: number, messages: readonly RangeMessage[]): void {
    if (messages.length === 0) return;
    let q = this.queued.get(toNode);
    if (!q) {
      q = [];
      this.queued.set(toNode, q);
    }
    for (const m of messages) q.push(m);
  }

  /** Everything queued, per destination; the queues start empty again. */
  take(): Map<number, RangeMessage[]> {
    const out = this.queued;
    this.queued = new Map();
    return out;
  }

  clear(): void {
    this.queued = new Map();
  }
}
