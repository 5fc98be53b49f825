// Safety checkers of the deterministic simulator. Each checker is fed observations (a leader seen
// in a term, a log as one node holds it, a commit advanced by a leader, an entry applied, a hard
// state persisted, a read requested and released) and throws a `Violation` the moment an
// invariant breaks. They know nothing about the scheduler, so tests can feed them fabricated
// histories (tests/sim/sim.test.ts does).
//
// Invariants (DESIGN.md, "Invariants the tests must check"):
//   - election safety: at most one leader per term; a follower only ever follows that leader;
//     a node never votes for two candidates in one term (checked on persisted hard states);
//   - log matching: an (index, term) pair names one entry, preceded by one term, in every log ever;
//   - leader completeness: an entry committed by the leader of term U is in the log of every
//     leader of a term T > U (see LeaderCompletenessChecker for why "ever applied" alone is not it);
//   - state machine safety: no two nodes apply different entries (or reach different state) at
//     an index, and nothing is applied that no leader committed;
//   - durability: the persisted term and commit index never go back; after a restart the core
//     resumes from the persisted applied index and commit, and hands out entries in order, each
//     already in stable storage;
//   - persist before speak: a message leaves only once the term, vote and entries it vouches for
//     are on the sender's disk;
//   - linearizable reads: a read released at index i has i >= the highest index applied anywhere
//     (acknowledged to some client) when the read was requested.

import { Entry, EntryType, HardState, Message, MessageType, NodeId } from '../../src/raft';

/** An invariant was broken. `checker` names the invariant; the message says what was seen. */
export class Violation extends Error {
  constructor(
    readonly checker: string,
    message: string,
  ) {
    super(`${checker}: ${message}`);
    this.name = 'Violation';
  }
}

/** Read access to one node's log (stable storage plus the unstable tail), as the checkers need it. */
export interface LogView {
  /** First index still available (entries below it are compacted into a snapshot). */
  firstIndex(): number;
  lastIndex(): number;
  /** Term of entry i for i in [firstIndex() - 1, lastIndex()]. */
  term(i: number): number;
  /** Entries in [lo, hi), firstIndex() <= lo <= hi <= lastIndex() + 1. */
  slice(lo: number, hi: number): readonly Entry[];
}

/** A string that identifies an entry's content (type and data bytes). */
export function entryKey(e: Entry): string {
  let s = e.type === EntryType.ConfChange ? 'C' : 'N';
  const d = e.data;
  for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i] as number);
  return s;
}

/** Short printable form of an entry key for violation messages. */
export function describeKey(key: string): string {
  const kind = key[0] === 'C' ? 'conf' : 'normal';
  let hex = '';
  for (let i = 1; i < key.length && i <= 12; i++) hex += key.charCodeAt(i).toString(16).padStart(2, '0');
  if (key.length > 13) hex += `...(${key.length - 1} bytes)`;
  return `${kind}[${hex === '' ? 'empty' : hex}]`;
}

const FNV_PRIME = 16777619;
export const HASH_SEED = 2166136261;

function mix32(h: number, v: number): number {
  h = Math.imul(h ^ (v & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((v >>> 8) & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((v >>> 16) & 0xff), FNV_PRIME);
  return Math.imul(h ^ ((v >>> 24) & 0xff), FNV_PRIME);
}

/** The application's running state hash after applying `e` on top of state hash `h` (FNV-1a). */
export function hashApply(h: number, e: Entry): number {
  h = mix32(h, e.index);
  h = mix32(h, e.term);
  h = Math.imul(h ^ e.type, FNV_PRIME);
  const d = e.data;
  for (let i = 0; i < d.length; i++) h = Math.imul(h ^ (d[i] as number), FNV_PRIME);
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------

/** At most one leader per term, and followers only follow that leader. */
export class ElectionSafetyChecker {
  private readonly leaders = new Map<number, NodeId>();

  /** `id` is in state Leader at `term`. */
  observeLeader(id: NodeId, term: number): void {
    const known = this.leaders.get(term);
    if (known === undefined) {
      this.leaders.set(term, id);
      return;
    }
    if (known !== id) {
      throw new Violation('election safety', `two leaders in term ${term}: ${known} and ${id}`);
    }
  }

  /** `observer` (not a leader) believes `leader` leads `term`. */
  observeFollower(observer: NodeId, term: number, leader: NodeId): void {
    const known = this.leaders.get(term);
    if (known === undefined) {
      throw new Violation(
        'election safety',
        `node ${observer} follows ${leader} in term ${term}, but no node was ever seen leading term ${term}`,
      );
    }
    if (known !== leader) {
      throw new Violation('election safety', `node ${observer} follows ${leader} in term ${term}, whose leader was ${known}`);
    }
  }

  leaderOf(term: number): NodeId | undefined {
    return this.leaders.get(term);
  }

  termsWithLeader(): number {
    return this.leaders.size;
  }
}

// ---------------------------------------------------------------------------------------------

interface IndexTermRecord {
  readonly key: string;
  /** Term of the entry just before; -1 while unknown (the entry was only seen at a log's start). */
  prevTerm: number;
  /** The node that first showed this entry (for messages). */
  readonly firstSeenOn: NodeId;
}

const TERM_LIMIT = 1 << 20;

/**
 * Log matching, checked against every log ever observed rather than pairwise at one instant: an
 * (index, term) pair is created by exactly one leader, once, so all logs that ever held it must
 * hold the same entry there, preceded by the same term. By induction over the preceding terms this
 * gives the textbook property (two logs holding the same (index, term) are equal up to it) over
 * everything still available in both, and it also catches a node rewriting an entry in place.
 *
 * `checkIncremental` is cheap: it walks a node's log from the end and stops at the first entry it
 * already verified with the same term. `checkFull` re-verifies a whole log (run periodically, so
 * that an in-place rewrite below the tail is caught too).
 */
export class LogMatchingChecker {
  private readonly records = new Map<number, IndexTermRecord>();
  /** Per node: the term last verified at each index. */
  private readonly verified = new Map<NodeId, number[]>();

  forget(id: NodeId): void {
    this.verified.delete(id);
  }

  checkIncremental(id: NodeId, log: LogView): void {
    let cache = this.verified.get(id);
    if (!cache) {
      cache = [];
      this.verified.set(id, cache);
    }
    const last = log.lastIndex();
    const first = log.firstIndex();
    if (cache.length > last + 1) cache.length = last + 1;
    let lo = last + 1;
    while (lo > first && lo > 1) {
      const i = lo - 1;
      if (cache[i] === log.term(i)) break;
      lo = i;
    }
    if (lo > last) return;
    this.verifyRange(id, log, lo, last, cache);
  }

  checkFull(id: NodeId, log: LogView): void {
    const cache: number[] = [];
    this.verified.set(id, cache);
    const first = Math.max(log.firstIndex(), 1);
    const last = log.lastIndex();
    if (first > last) return;
    this.verifyRange(id, log, first, last, cache);
  }

  private verifyRange(id: NodeId, log: LogView, lo: number, hi: number, cache: number[]): void {
    const ents = log.slice(lo, hi + 1);
    if (ents.length !== hi + 1 - lo) {
      throw new Violation('log matching', `node ${id}: log slice [${lo}, ${hi + 1}) returned ${ents.length} entries`);
    }
    const first = log.firstIndex();
    let prevTerm = lo - 1 >= first - 1 ? log.term(lo - 1) : -1;
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k] as Entry;
      const i = lo + k;
      if (e.index !== i) throw new Violation('log matching', `node ${id}: entry at position ${i} carries index ${e.index}`);
      const t = log.term(i);
      if (e.term !== t) throw new Violation('log matching', `node ${id}: entry ${i} has term ${e.term} but term(${i}) = ${t}`);
      if (t < prevTerm) {
        throw new Violation('log matching', `node ${id}: terms go down in the log: entry ${i - 1} term ${prevTerm}, entry ${i} term ${t}`);
      }
      this.verifyEntry(id, e, prevTerm);
      cache[i] = t;
      prevTerm = t;
    }
  }

  /** One entry seen in `id`'s log, preceded by an entry of term `prevTerm` (-1: unknown). */
  verifyEntry(id: NodeId, e: Entry, prevTerm: number): void {
    if (e.term >= TERM_LIMIT) throw new Violation('log matching', `term ${e.term} is beyond the simulator's limit`);
    const k = e.index * TERM_LIMIT + e.term;
    const key = entryKey(e);
    const rec = this.records.get(k);
    if (!rec) {
      this.records.set(k, { key, prevTerm, firstSeenOn: id });
      return;
    }
    if (rec.key !== key) {
      throw new Violation(
        'log matching',
        `entry (index ${e.index}, term ${e.term}) is ${describeKey(key)} on node ${id} but was ${describeKey(rec.key)} on node ${rec.firstSeenOn}`,
      );
    }
    if (prevTerm >= 0) {
      if (rec.prevTerm < 0) rec.prevTerm = prevTerm;
      else if (rec.prevTerm !== prevTerm) {
        throw new Violation(
          'log matching',
          `entry (index ${e.index}, term ${e.term}) follows an entry of term ${prevTerm} on node ${id} but of term ${rec.prevTerm} elsewhere (first seen on node ${rec.firstSeenOn})`,
        );
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

interface CommitRecord {
  readonly term: number;
  readonly key: string;
  /** Lowest term of a leader that was seen committing this index. */
  byTerm: number;
}

/**
 * Leader completeness: an entry committed by the leader of term U is in the log of every leader
 * of a term T > U (Raft §5.4). Commits are recorded when a leader's commit index is seen to
 * advance. The weaker-sounding "every entry ever applied is in the current leader's log" is NOT an
 * invariant: a stale leader of an old term, cut off in a minority, still believes it leads while
 * a newer leader commits different entries at the same indexes; nor does "applied before the
 * leader's election (in simulated time)" work, since a candidate of an old term can collect
 * delayed votes after a newer leader has committed. The term of the committing leader is what
 * orders them.
 */
export class LeaderCompletenessChecker {
  private readonly committed: (CommitRecord | undefined)[] = [];
  private maxCommitted = 0;

  /**
   * The leader `id` of `term` advanced its commit index over `ents` (consecutive, from its own log).
   * Returns the lowest index whose record is new or whose byTerm went down (to re-check leaders), or 0.
   */
  observeLeaderCommit(id: NodeId, term: number, ents: readonly Entry[]): number {
    let changedFrom = 0;
    for (const e of ents) {
      const key = entryKey(e);
      const rec = this.committed[e.index];
      if (!rec) {
        this.committed[e.index] = { term: e.term, key, byTerm: term };
        if (e.index > this.maxCommitted) this.maxCommitted = e.index;
        if (changedFrom === 0) changedFrom = e.index;
        continue;
      }
      if (rec.term !== e.term || rec.key !== key) {
        throw new Violation(
          'leader completeness',
          `leader ${id} of term ${term} committed (index ${e.index}, term ${e.term}, ${describeKey(key)}) but (term ${rec.term}, ${describeKey(rec.key)}) was committed there by a leader of term ${rec.byTerm}`,
        );
      }
      if (term < rec.byTerm) {
        rec.byTerm = term;
        if (changedFrom === 0) changedFrom = e.index;
      }
    }
    return changedFrom;
  }

  committedAt(index: number): { term: number; key: string; byTerm: number } | undefined {
    return this.committed[index];
  }

  highestCommitted(): number {
    return this.maxCommitted;
  }

  /**
   * Checks that leader `id` of `term` holds every entry committed by a leader of an earlier term,
   * among indexes >= `fromIndex` (entries below its first index are compacted: not checkable).
   */
  checkLeader(id: NodeId, term: number, log: LogView, fromIndex = 1): void {
    const first = log.firstIndex();
    const last = log.lastIndex();
    let highestNeeded = 0;
    for (let i = this.maxCommitted; i >= fromIndex; i--) {
      const rec = this.committed[i];
      if (rec && rec.byTerm < term) {
        highestNeeded = i;
        break;
      }
    }
    if (highestNeeded === 0) return;
    if (highestNeeded > last) {
      const rec = this.committed[highestNeeded] as CommitRecord;
      throw new Violation(
        'leader completeness',
        `leader ${id} of term ${term} lacks entry ${highestNeeded} (committed by the leader of term ${rec.byTerm}); its log ends at ${last}`,
      );
    }
    const lo = Math.max(fromIndex, first);
    if (lo > highestNeeded) return;
    const ents = log.slice(lo, highestNeeded + 1);
    for (const e of ents) {
      const rec = this.committed[e.index];
      if (!rec || rec.byTerm >= term) continue;
      if (e.term !== rec.term || entryKey(e) !== rec.key) {
        throw new Violation(
          'leader completeness',
          `leader ${id} of term ${term} has (term ${e.term}, ${describeKey(entryKey(e))}) at index ${e.index}, but (term ${rec.term}, ${describeKey(rec.key)}) was committed there by the leader of term ${rec.byTerm}`,
        );
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

interface AppliedRecord {
  readonly term: number;
  readonly key: string;
  /** The application's state hash after applying this index. */
  readonly hash: number;
  readonly firstAppliedBy: NodeId;
}

/**
 * State machine safety: every node applies the same entry at each index and reaches the same state
 * (a running hash of everything applied, which also covers state installed from snapshots).
 */
export class StateMachineChecker {
  private readonly applied: (AppliedRecord | undefined)[] = [];
  /** The highest index any node has applied: acknowledged to some client. */
  maxApplied = 0;
  appliedCount = 0;

  constructor(private readonly commits?: LeaderCompletenessChecker) {}

  /** Node `id` applied `e`, and its state hash is now `hash`. */
  observeApply(id: NodeId, e: Entry, hash: number): void {
    this.appliedCount++;
    const key = entryKey(e);
    const rec = this.applied[e.index];
    if (!rec) {
      if (this.commits) {
        const c = this.commits.committedAt(e.index);
        if (!c) {
          throw new Violation('state machine safety', `node ${id} applied index ${e.index} (term ${e.term}) that no leader was seen to commit`);
        }
        if (c.term !== e.term || c.key !== key) {
          throw new Violation(
            'state machine safety',
            `node ${id} applied (index ${e.index}, term ${e.term}, ${describeKey(key)}) but the leader of term ${c.byTerm} committed (term ${c.term}, ${describeKey(c.key)}) there`,
          );
        }
      }
      this.applied[e.index] = { term: e.term, key, hash, firstAppliedBy: id };
      if (e.index > this.maxApplied) this.maxApplied = e.index;
      return;
    }
    if (rec.term !== e.term || rec.key !== key) {
      throw new Violation(
        'state machine safety',
        `node ${id} applied (term ${e.term}, ${describeKey(key)}) at index ${e.index}, but node ${rec.firstAppliedBy} applied (term ${rec.term}, ${describeKey(rec.key)})`,
      );
    }
    if (rec.hash !== hash) {
      throw new Violation(
        'state machine safety',
        `node ${id} reached state hash ${hash.toString(16)} at index ${e.index}, but node ${rec.firstAppliedBy} reached ${rec.hash.toString(16)} (an earlier entry differs or was skipped)`,
      );
    }
  }

  /** Node `id` installed a snapshot of application state: `hash` at `index` (of term `term`). */
  observeSnapshotInstall(id: NodeId, index: number, term: number, hash: number): void {
    const rec = this.applied[index];
    if (!rec) {
      throw new Violation('state machine safety', `node ${id} installed a snapshot at index ${index} that no node ever applied`);
    }
    if (rec.term !== term) {
      throw new Violation('state machine safety', `node ${id} installed a snapshot at index ${index} with term ${term}, but the entry applied there has term ${rec.term}`);
    }
    if (rec.hash !== hash) {
      throw new Violation(
        'state machine safety',
        `node ${id} installed a snapshot at index ${index} with state hash ${hash.toString(16)}, but the state there is ${rec.hash.toString(16)}`,
      );
    }
  }

  appliedAt(index: number): { term: number; key: string; hash: number } | undefined {
    return this.applied[index];
  }
}

// ---------------------------------------------------------------------------------------------

/** What survives crashes: persisted hard state, applied index, and apply order. */
export class DurabilityChecker {
  /** A node persists `next` over `prev` (its previous persisted hard state). */
  observePersistHardState(id: NodeId, prev: HardState, next: HardState): void {
    if (next.term < prev.term) {
      throw new Violation('durability', `node ${id} persisted term ${next.term} over term ${prev.term}`);
    }
    if (next.term === prev.term && prev.vote !== 0 && next.vote !== prev.vote) {
      throw new Violation('election safety', `node ${id} changed its vote in term ${next.term} from ${prev.vote} to ${next.vote}`);
    }
    if (next.commit < prev.commit) {
      throw new Violation('durability', `node ${id} persisted commit ${next.commit} over commit ${prev.commit}`);
    }
  }

  /** After a restart: the core must resume from what was persisted. */
  observeRestart(id: NodeId, persisted: { commit: number; applied: number }, core: { commit: number; applied: number }): void {
    if (core.applied < persisted.applied) {
      throw new Violation('durability', `node ${id} restarted with applied ${core.applied} below its persisted applied index ${persisted.applied}`);
    }
    if (core.commit < persisted.commit) {
      throw new Violation('durability', `node ${id} restarted with commit ${core.commit} below its persisted commit ${persisted.commit}`);
    }
  }

  /** The core hands `index` to apply when the application's applied index is `applied`. */
  observeApplyOrder(id: NodeId, applied: number, index: number): void {
    if (index !== applied + 1) {
      throw new Violation(
        'durability',
        index <= applied
          ? `node ${id} was handed entry ${index} to apply again (applied is ${applied})`
          : `node ${id} was handed entry ${index} to apply, skipping ${applied + 1}..${index - 1}`,
      );
    }
  }

  /** An entry handed out for applying must already be in stable storage with the same term. */
  observeApplyStable(id: NodeId, e: Entry, storedTerm: number | undefined): void {
    if (storedTerm === undefined) return; // below the storage's snapshot: stable by definition
    if (storedTerm !== e.term) {
      throw new Violation(
        'durability',
        `node ${id} was handed entry ${e.index} (term ${e.term}) to apply, but stable storage has term ${storedTerm === -1 ? 'none (not persisted)' : storedTerm} there`,
      );
    }
  }
}

/**
 * "Persist before you speak" (DESIGN.md): a message may leave a node only once everything it
 * vouches for is on the node's disk. Checked for every message handed to the network, against the
 * node's persisted hard state and stable log at that moment.
 */
export class PersistBeforeSpeakChecker {
  /**
   * A message sent before its Ready was persisted (Ready.earlyMessages): only a leader's append
   * or heartbeat of the persisted term, whose commit index covers nothing beyond the sender's
   * stable log. Its entries may not be on the sender's disk yet: that is the point.
   */
  observeEarlySend(id: NodeId, m: Message, persisted: HardState, stableLastIndex: number): void {
    if (m.type !== MessageType.App && m.type !== MessageType.Heartbeat) {
      throw new Violation('persist before speak', `node ${id} sent ${m.type} to ${m.to} before persisting its Ready`);
    }
    if (m.term !== persisted.term) {
      throw new Violation('persist before speak', `node ${id} sent ${m.type} of term ${m.term} to ${m.to} early with term ${persisted.term} on disk`);
    }
    if (m.commit > stableLastIndex) {
      throw new Violation(
        'persist before speak',
        `node ${id} sent ${m.type} with commit ${m.commit} to ${m.to} before persisting, with its stable log ending at ${stableLastIndex}`,
      );
    }
  }

  observeSend(
    id: NodeId,
    m: Message,
    persisted: HardState,
    stableLastIndex: number,
    stableTerm: (i: number) => number | undefined,
  ): void {
    // A pre-vote and its answers speak of a future term: nothing to persist.
    if (m.type === MessageType.PreVote || m.type === MessageType.PreVoteResp) return;
    if (m.term > persisted.term) {
      throw new Violation('persist before speak', `node ${id} sent ${m.type} of term ${m.term} to ${m.to} with only term ${persisted.term} on disk`);
    }
    if (m.type === MessageType.VoteResp && !m.reject) {
      // Granted: the vote must be on disk, unless the node has since moved to a later term.
      if (persisted.term === m.term && persisted.vote !== m.to) {
        throw new Violation(
          'persist before speak',
          `node ${id} granted its vote in term ${m.term} to ${m.to} with vote ${persisted.vote} on disk`,
        );
      }
    }
    // An ack of entries the node no longer has is tolerated only if it is of an older term: the
    // node took entries from the leader of term T, then (in the same Ready window) a leader of a
    // later term truncated them, and the Ready still carries the term-T ack. That deposed leader
    // can never count it toward a commit: the truncating leader was elected by a majority that
    // includes this node or a real holder of the entries, each of which voted with the entries in
    // its log, so that leader (and all later ones) would hold them — a contradiction. Within one
    // term a follower never loses what it acked.
    if (m.type === MessageType.AppResp && !m.reject && m.index > 0 && m.term === persisted.term) {
      if (m.index > stableLastIndex) {
        throw new Violation(
          'persist before speak',
          `node ${id} acknowledged index ${m.index} to ${m.to} with its stable log ending at ${stableLastIndex}`,
        );
      }
    }
    if (m.type === MessageType.App && m.entries.length > 0 && m.term === persisted.term) {
      // The Ready contract sends messages after persisting, and a message only carries entries
      // from this Ready or an earlier one, so they are stable on the sender — unless the sender
      // has since moved to a later term and a newer leader overwrote them (a stale App from a
      // deposed leader: harmless, receivers at the new term reject it). Within one term a
      // leader's entries are never rewritten, so for messages of the persisted term this holds.
      for (const e of m.entries) {
        const t = stableTerm(e.index);
        if (t !== undefined && t !== e.term) {
          throw new Violation(
            'persist before speak',
            `node ${id} sent entry ${e.index} (term ${e.term}) to ${m.to} but has ${t === -1 ? 'nothing' : `term ${t}`} there on disk`,
          );
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

interface ReadRecord {
  readonly node: NodeId;
  readonly minIndex: number;
  readonly step: number;
  released: number;
}

/** Linearizable reads never go back in time. */
export class ReadIndexChecker {
  private readonly reads = new Map<number, ReadRecord>();
  released = 0;
  dropped = 0;

  /** Read `ctx` asked on `node` when the highest index applied anywhere was `minIndex`. */
  requested(ctx: number, node: NodeId, minIndex: number, step: number): void {
    if (this.reads.has(ctx)) throw new Violation('read index', `read context ${ctx} requested twice (simulator bug)`);
    this.reads.set(ctx, { node, minIndex, step, released: 0 });
  }

  /** Read `ctx` released on `node` at read index `index`. */
  observeRelease(ctx: number, node: NodeId, index: number): void {
    const r = this.reads.get(ctx);
    if (!r) throw new Violation('read index', `node ${node} released read context ${ctx} that nobody requested`);
    if (r.node !== node) {
      throw new Violation('read index', `read ${ctx} asked on node ${r.node} was released on node ${node}`);
    }
    if (index < r.minIndex) {
      throw new Violation(
        'read index',
        `read ${ctx} on node ${node} released at index ${index}, but index ${r.minIndex} was already applied (acknowledged) when it was requested at step ${r.step}: the read goes back in time`,
      );
    }
    if (r.released === 0) this.released++;
    r.released++;
  }

  observeDrop(ctx: number): void {
    if (this.reads.has(ctx)) this.dropped++;
  }
}

/** All checkers of one simulated cluster. */
export class Checkers {
  readonly election = new ElectionSafetyChecker();
  readonly logMatching = new LogMatchingChecker();
  readonly completeness = new LeaderCompletenessChecker();
  readonly stateMachine = new StateMachineChecker(this.completeness);
  readonly durability = new DurabilityChecker();
  readonly persistBeforeSpeak = new PersistBeforeSpeakChecker();
  readonly reads = new ReadIndexChecker();
}
