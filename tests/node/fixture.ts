// Shared by tests that run in-process Nodes (local or gRPC transport).

import { Command, CommandStatus, Node, OpKind } from '../../src/node';
import { NotLeaderError } from '../../src/raft';

/** Polls `f` until it returns a value other than undefined/false; that value is returned. */
export async function waitFor<T>(what: string, f: () => T | undefined | false, timeoutMs = 10_000, pollMs = 5): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The node whose replica of `rangeId` leads, once there is one. */
export function leaderOf(nodes: () => Iterable<Node>, rangeId: number): Promise<Node> {
  return waitFor('a leader', () => [...nodes()].find((n) => n.replicas.get(rangeId)?.isLeader() === true));
}

/** A put command (clientId/sequence make it exactly-once across the retries below). */
export function putCommand(clientId: number, sequence: number, key: string, value: string): Command {
  return {
    clientId,
    sequence,
    answeredBelow: 0,
    proposedAtMs: Date.now(),
    epochVersion: 1,
    ops: [{ kind: OpKind.Put, key: Buffer.from(key), value: Buffer.from(value) }],
  };
}

/** Proposes `cmd` on whichever node leads, retrying definite refusals as a client would; returns its index. */
export async function proposeOnLeader(nodes: () => Iterable<Node>, rangeId: number, cmd: Command): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const l = await leaderOf(nodes, rangeId);
    try {
      const { result, index } = await l.propose(rangeId, cmd);
      if (result.status !== CommandStatus.Ok) throw new Error(`put refused with status ${CommandStatus[result.status]}`);
      return index;
    } catch (e) {
      if (!(e instanceof NotLeaderError) && (e as { definite?: boolean }).definite !== true) throw e;
    }
  }
  throw new Error('proposal did not succeed in 50 attempts');
}
