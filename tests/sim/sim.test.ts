// The deterministic simulator, run from jest: a few seeds through the same engine as the CLI
// (tests/sim/run.ts runs thousands), determinism of a seed, and the checkers themselves: each is
// fed a fabricated history that breaks its invariant (it must object) and a legal history that
// looks suspicious (it must not).

import { Entry, EntryType, HardState, MessageType, makeMessage } from '../../src/raft';
import {
  Checkers,
  DurabilityChecker,
  ElectionSafetyChecker,
  LeaderCompletenessChecker,
  LogMatchingChecker,
  LogView,
  PersistBeforeSpeakChecker,
  ReadIndexChecker,
  StateMachineChecker,
  Violation,
  hashApply,
  HASH_SEED,
} from './checkers';
import { runSeed } from './cluster';

function entry(index: number, term: number, data = `e${index}t${term}`, type = EntryType.Normal): Entry {
  return { index, term, type, data: new TextEncoder().encode(data) };
}

/** A log view over a plain array of entries, with entries below `first` compacted. */
function logOf(ents: readonly Entry[], first = 1, snapshotTerm = 0): LogView {
  const byIndex = new Map(ents.map((e) => [e.index, e]));
  const last = ents.length === 0 ? first - 1 : (ents[ents.length - 1] as Entry).index;
  return {
    firstIndex: () => first,
    lastIndex: () => last,
    term: (i) => {
      if (i === first - 1) return i === 0 ? 0 : snapshotTerm;
      const e = byIndex.get(i);
      if (!e) throw new RangeError(`no entry ${i}`);
      return e.term;
    },
    slice: (lo, hi) => ents.filter((e) => e.index >= lo && e.index < hi),
  };
}

function expectViolation(fn: () => void, checker: string, fragment?: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(Violation);
  expect((caught as Violation).checker).toBe(checker);
  if (fragment) expect((caught as Violation).message).toContain(fragment);
}

describe('simulator: whole clusters under faults', () => {
  const seeds = Array.from({ length: 20 }, (_, k) => k + 1);

  test.each(seeds)('seed %i: no violation in 2000 steps, then liveness', (seed) => {
    const r = runSeed({ seed, steps: 2000 });
    if (r.violation) {
      throw new Error(
        `seed ${seed} step ${r.violation.step} (${r.violation.phase}): ${r.violation.text}\nreplay: node dist/tests/sim/run.js --seed ${seed} --steps 2000`,
      );
    }
    expect(r.steps).toBeGreaterThanOrEqual(2000);
    expect(r.stats.leaderTerms).toBeGreaterThan(0);
  });

  test('a seed replays exactly', () => {
    const lines1: string[] = [];
    const lines2: string[] = [];
    const a = runSeed({ seed: 4242, steps: 1500, trace: (l) => lines1.push(l), traceSteps: true });
    const b = runSeed({ seed: 4242, steps: 1500, trace: (l) => lines2.push(l), traceSteps: true });
    expect(b).toEqual(a);
    expect(lines2).toEqual(lines1);
  });
});

describe('checkers catch fabricated violations', () => {
  test('election safety: two leaders in one term', () => {
    const c = new ElectionSafetyChecker();
    c.observeLeader(1, 3);
    c.observeLeader(1, 3); // the same leader seen again is fine
    c.observeLeader(2, 4);
    expectViolation(() => c.observeLeader(3, 3), 'election safety', 'two leaders in term 3');
  });

  test('election safety: following a node that never led that term', () => {
    const c = new ElectionSafetyChecker();
    c.observeLeader(1, 2);
    c.observeFollower(2, 2, 1);
    expectViolation(() => c.observeFollower(3, 2, 2), 'election safety');
    expectViolation(() => c.observeFollower(3, 5, 1), 'election safety');
  });

  test('log matching: same (index, term), different data', () => {
    const c = new LogMatchingChecker();
    c.checkIncremental(1, logOf([entry(1, 1), entry(2, 1, 'x')]));
    expectViolation(() => c.checkIncremental(2, logOf([entry(1, 1), entry(2, 1, 'y')])), 'log matching', 'index 2, term 1');
  });

  test('log matching: same (index, term), different history before it', () => {
    const c = new LogMatchingChecker();
    c.checkIncremental(1, logOf([entry(1, 1), entry(2, 2), entry(3, 3, 'z')]));
    expectViolation(
      () => c.checkIncremental(2, logOf([entry(1, 1), entry(2, 1), entry(3, 3, 'z')])),
      'log matching',
    );
  });

  test('log matching: a node rewriting an entry in place is caught by the full check', () => {
    const c = new LogMatchingChecker();
    c.checkIncremental(1, logOf([entry(1, 1), entry(2, 1, 'a'), entry(3, 1)]));
    // Same tail term, so the incremental walk stops early; the periodic full check does not.
    c.checkIncremental(1, logOf([entry(1, 1), entry(2, 1, 'b'), entry(3, 1)]));
    expectViolation(() => c.checkFull(1, logOf([entry(1, 1), entry(2, 1, 'b'), entry(3, 1)])), 'log matching');
  });

  test('log matching: overwriting an uncommitted suffix and compaction are legal', () => {
    const c = new LogMatchingChecker();
    c.checkIncremental(1, logOf([entry(1, 1), entry(2, 1), entry(3, 2)]));
    c.checkIncremental(1, logOf([entry(1, 1), entry(2, 1), entry(3, 3), entry(4, 3)]));
    c.checkIncremental(2, logOf([entry(3, 3), entry(4, 3)], 3, 1));
    c.checkFull(2, logOf([entry(4, 3)], 4, 3));
  });

  test('leader completeness: a new leader lacks an entry committed in an earlier term', () => {
    const c = new LeaderCompletenessChecker();
    c.observeLeaderCommit(1, 2, [entry(1, 1), entry(2, 2)]);
    expectViolation(() => c.checkLeader(3, 3, logOf([entry(1, 1)])), 'leader completeness', 'lacks entry 2');
    expectViolation(() => c.checkLeader(3, 3, logOf([entry(1, 1), entry(2, 1)])), 'leader completeness');
    c.checkLeader(3, 3, logOf([entry(1, 1), entry(2, 2), entry(3, 3)]));
  });

  test('leader completeness: a stale leader of an older term may lack newer commits', () => {
    const c = new LeaderCompletenessChecker();
    // The leader of term 5 commits index 3; a deposed leader of term 4, cut off in a minority,
    // still believes it leads with a different entry there. Legal.
    c.observeLeaderCommit(2, 5, [entry(1, 1), entry(2, 5), entry(3, 5)]);
    c.checkLeader(1, 4, logOf([entry(1, 1), entry(2, 4), entry(3, 4)]));
    // But two leaders committing different entries at one index is not.
    expectViolation(() => c.observeLeaderCommit(1, 4, [entry(2, 4)]), 'leader completeness');
  });

  test('state machine safety: two nodes apply different entries at one index', () => {
    const commits = new LeaderCompletenessChecker();
    commits.observeLeaderCommit(1, 1, [entry(1, 1), entry(2, 1, 'a')]);
    const c = new StateMachineChecker(commits);
    let h1 = HASH_SEED;
    for (const e of [entry(1, 1), entry(2, 1, 'a')]) {
      h1 = hashApply(h1, e);
      c.observeApply(1, e, h1);
    }
    expectViolation(() => c.observeApply(2, entry(2, 1, 'b'), 123), 'state machine safety');
    expectViolation(() => c.observeApply(3, entry(3, 1), 1), 'state machine safety', 'no leader was seen to commit');
    expectViolation(() => c.observeSnapshotInstall(4, 2, 1, h1 ^ 1), 'state machine safety');
    c.observeSnapshotInstall(4, 2, 1, h1);
  });

  test('durability: persisted term, vote and commit never go back', () => {
    const c = new DurabilityChecker();
    const hs = (term: number, vote: number, commit: number): HardState => ({ term, vote, commit });
    c.observePersistHardState(1, hs(2, 1, 5), hs(3, 0, 5));
    expectViolation(() => c.observePersistHardState(1, hs(3, 0, 5), hs(2, 0, 5)), 'durability');
    expectViolation(() => c.observePersistHardState(1, hs(3, 2, 5), hs(3, 3, 5)), 'election safety', 'changed its vote');
    expectViolation(() => c.observePersistHardState(1, hs(3, 2, 5), hs(3, 2, 4)), 'durability');
    expectViolation(() => c.observeRestart(1, { commit: 5, applied: 4 }, { commit: 5, applied: 3 }), 'durability');
    expectViolation(() => c.observeApplyOrder(1, 4, 6), 'durability', 'skipping');
    expectViolation(() => c.observeApplyOrder(1, 4, 4), 'durability', 'again');
    expectViolation(() => c.observeApplyStable(1, entry(5, 2), -1), 'durability');
  });

  test('persist before speak: a granted vote or an ack must be on disk', () => {
    const c = new PersistBeforeSpeakChecker();
    const stable = (): number | undefined => undefined;
    const grant = makeMessage({ type: MessageType.VoteResp, from: 1, to: 2, term: 4 });
    expectViolation(() => c.observeSend(1, grant, { term: 4, vote: 0, commit: 0 }, 10, stable), 'persist before speak');
    c.observeSend(1, grant, { term: 4, vote: 2, commit: 0 }, 10, stable);
    c.observeSend(1, grant, { term: 5, vote: 0, commit: 0 }, 10, stable); // moved on: cannot vote in 4 again
    const ack = makeMessage({ type: MessageType.AppResp, from: 1, to: 2, term: 4, index: 12 });
    expectViolation(() => c.observeSend(1, ack, { term: 4, vote: 2, commit: 0 }, 10, stable), 'persist before speak');
    const future = makeMessage({ type: MessageType.Heartbeat, from: 1, to: 2, term: 6 });
    expectViolation(() => c.observeSend(1, future, { term: 5, vote: 0, commit: 0 }, 10, stable), 'persist before speak');
  });

  test('read index: a read released below what was acknowledged when it was asked', () => {
    const c = new ReadIndexChecker();
    c.requested(1, 2, 10, 100);
    c.observeRelease(1, 2, 10);
    c.requested(2, 2, 10, 101);
    expectViolation(() => c.observeRelease(2, 2, 9), 'read index', 'back in time');
    expectViolation(() => c.observeRelease(3, 2, 50), 'read index', 'nobody requested');
    c.requested(4, 1, 0, 102);
    expectViolation(() => c.observeRelease(4, 3, 5), 'read index');
  });

  test('all checkers are wired into one bundle', () => {
    const c = new Checkers();
    c.election.observeLeader(1, 1);
    expectViolation(() => c.election.observeLeader(2, 1), 'election safety');
  });
});
