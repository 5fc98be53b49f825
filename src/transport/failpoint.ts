// A transport failpoint (in the spirit of etcd's gofail): delay and drop outgoing Raft messages to
// chosen peers. Fault-injection tests use it where the kernel has no netem (the Jepsen suite's
// `latency` nemesis). It exists only when kvd runs with --failpoints; it is then set (and cleared)
// through Admin.SetTransportFailpoint and reported in Admin.ClusterStatus.
//
// Semantics, per flush of the batches for one peer the failpoint covers: each message is dropped
// with probability dropProbability (Snap messages never are: Raft keeps a follower in Snapshot
// state until it hears about the transfer, so a silently lost snapshot would stall it), and what
// remains is handed to the network after delayMs plus a uniform jitter in [0, jitterMs). With
// jitter, later batches may overtake earlier ones, as on a real network; Raft tolerates both.

import type { RangeMessage } from './transport';
import { MessageType } from '../raft';

/** Upper bound of delayMs and jitterMs, in milliseconds. */
export const FAILPOINT_MAX_DELAY_MS = 60_000;

export interface RaftSendFailpoint {
  /** Peers whose outgoing messages are affected; empty = every peer. */
  readonly peers: readonly number[];
  /** Delay added to every affected batch, in milliseconds (0 = none). */
  readonly delayMs: number;
  /** Uniformly random extra delay in [0, jitterMs), in milliseconds. */
  readonly jitterMs: number;
  /** Probability in [0, 1] that an affected message is dropped. */
  readonly dropProbability: number;
}

export interface TransportFailpointStatus {
  /** The current failpoint; undefined when none is set. */
  readonly active: RaftSendFailpoint | undefined;
  /** Messages dropped by the failpoint since the node started. */
  readonly droppedMessages: number;
  /** Messages delayed by the failpoint since the node started. */
  readonly delayedMessages: number;
}

/** A failpoint with a field out of range; `field` names it. */
export class FailpointConfigError extends Error {
  readonly code = 'FAILPOINT_CONFIG';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'FailpointConfigError';
  }
}

/** What to do with one flush's messages for one peer. */
export interface FailpointPlan {
  /** The messages to hand to the network (the dropped ones removed), in their order. */
  readonly messages: RangeMessage[];
  /** How long to hold them first, in milliseconds (0 = send now). */
  readonly delayMs: number;
}

export class TransportFailpoints {
  private current: RaftSendFailpoint | undefined;
  private droppedMessages = 0;
  private delayedMessages = 0;

  /** `random` returns a uniform number in [0, 1) (injectable for tests). */
  constructor(private readonly random: () => number = Math.random) {}

  /** Sets the failpoint (validated first: nothing changes on an error), or clears it with undefined. */
  set(fp: RaftSendFailpoint | undefined): void {
    if (fp === undefined) {
      this.current = undefined;
      return;
    }
    const ms = (field: string, v: number): void => {
      if (!(Number.isInteger(v) && v >= 0 && v <= FAILPOINT_MAX_DELAY_MS)) {
        throw new FailpointConfigError(field, `must be an integer from 0 to ${FAILPOINT_MAX_DELAY_MS}, got ${v}`);
      }
    };
    ms('delay_ms', fp.delayMs);
    ms('jitter_ms', fp.jitterMs);
    if (!(Number.isFinite(fp.dropProbability) && fp.dropProbability >= 0 && fp.dropProbability <= 1)) {
      throw new FailpointConfigError('drop_probability', `must be from 0 to 1, got ${fp.dropProbability}`);
    }
    for (const p of fp.peers) {
      if (!(Number.isSafeInteger(p) && p > 0)) throw new FailpointConfigError('peer_node_ids', `must be positive integers, got ${p}`);
    }
    this.current = { peers: [...new Set(fp.peers)].sort((a, b) => a - b), delayMs: fp.delayMs, jitterMs: fp.jitterMs, dropProbability: fp.dropProbability };
  }

  status(): TransportFailpointStatus {
    return { active: this.current, droppedMessages: this.droppedMessages, delayedMessages: this.delayedMessages };
  }

  /** The fate of `messages` queued for `toNode`; undefined when the failpoint does not cover it. */
  plan(toNode: number, messages: readonly RangeMessage[]): FailpointPlan | undefined {
    const fp = this.current;
    if (!fp || (fp.peers.length > 0 && !fp.peers.includes(toNode))) return undefined;
    const kept: RangeMessage[] = [];
    for (const rm of messages) {
      if (fp.dropProbability > 0 && rm.message.type !== MessageType.Snap && this.random() < fp.dropProbability) this.droppedMessages++;
      else kept.push(rm);
    }
    const delayMs = fp.delayMs + (fp.jitterMs > 0 ? Math.floor(this.random() * fp.jitterMs) : 0);
    if (delayMs > 0) this.delayedMessages += kept.length;
    return { messages: kept, delayMs };
  }
}
