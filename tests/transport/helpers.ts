// Shared helpers of the transport tests: a recording handler, condition waits, message builders.

import { Entry, EntryType, Message, MessageType, makeMessage } from '../../src/raft';
import type { RangeMessage, TransportHandler } from '../../src/transport';

export interface Delivery {
  readonly from: number;
  readonly messages: readonly RangeMessage[];
}

export interface Report {
  readonly to: number;
  readonly messages: readonly RangeMessage[];
}

/** Records everything a transport hands to its handler. */
export class RecordingHandler implements TransportHandler {
  readonly deliveries: Delivery[] = [];
  readonly reports: Report[] = [];

  receive(fromNode: number, messages: readonly RangeMessage[]): void {
    this.deliveries.push({ from: fromNode, messages });
  }

  unreachable(toNode: number, messages: readonly RangeMessage[]): void {
    this.reports.push({ to: toNode, messages });
  }

  /** Every message received from `from`, in arrival order. */
  receivedFrom(from: number): RangeMessage[] {
    return this.deliveries.filter((d) => d.from === from).flatMap((d) => [...d.messages]);
  }

  received(): RangeMessage[] {
    return this.deliveries.flatMap((d) => [...d.messages]);
  }

  /** Every message reported unreachable for `to`. */
  reportedFor(to: number): RangeMessage[] {
    return this.reports.filter((r) => r.to === to).flatMap((r) => [...r.messages]);
  }
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. Never a fixed sleep. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5_000, pollMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * Runs `step` repeatedly until `cond` holds (e.g. keep flushing heartbeats until the peer is
 * reported unreachable): Raft keeps sending, and so do these tests.
 */
export async function repeatUntil(what: string, step: () => void, cond: () => boolean, timeoutMs = 5_000, pollMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    step();
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    if (cond()) return;
  }
}

export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + seed * 17 + (i >> 8)) & 0xff;
  return out;
}

export function entry(index: number, term: number, dataBytes = 8, type = EntryType.Normal): Entry {
  return { index, term, type, data: bytes(dataBytes, index) };
}

/** An App message whose `index` is a sequence number, so that order can be checked. */
export function app(rangeId: number, from: number, to: number, seq: number, entries: Entry[] = []): RangeMessage {
  return { rangeId, message: makeMessage({ type: MessageType.App, from, to, term: 3, index: seq, logTerm: 2, commit: seq, entries }) };
}

export function heartbeat(rangeId: number, from: number, to: number): RangeMessage {
  return { rangeId, message: makeMessage({ type: MessageType.Heartbeat, from, to, term: 3, commit: 1 }) };
}

/** A plain, comparable view of a message: byte fields become number arrays. */
export function view(rm: RangeMessage): unknown {
  const m: Message = rm.message;
  return {
    rangeId: rm.rangeId,
    type: m.type,
    from: m.from,
    to: m.to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    rejectHintTerm: m.rejectHintTerm,
    context: Array.from(m.context),
    entries: m.entries.map((e) => ({ term: e.term, index: e.index, type: e.type, data: Array.from(e.data) })),
    snapshot: m.snapshot
      ? {
          index: m.snapshot.metadata.index,
          term: m.snapshot.metadata.term,
          voters: [...m.snapshot.metadata.confState.voters],
          learners: [...m.snapshot.metadata.confState.learners],
          dataLength: m.snapshot.data.length,
          data: m.snapshot.data.length <= 4096 ? Array.from(m.snapshot.data) : undefined,
        }
      : undefined,
  };
}

/** `${rangeId}/${type}/${index}` keys: a cheap identity for messages in ordering checks. */
export function keys(msgs: readonly RangeMessage[]): string[] {
  return msgs.map((rm) => `${rm.rangeId}/${rm.message.type}/${rm.message.index}`);
}
