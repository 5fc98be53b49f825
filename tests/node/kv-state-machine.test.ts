import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Engine, WriteBatch } from '../../src/storage';
import {
  Command,
  CommandResult,
  CommandStatus,
  OpKind,
  Op,
  decodeCommand,
  decodeResult,
  encodeCommand,
  encodeResult,
  CommandDecodeError,
} from '../../src/node/command';
import { KvStateMachine, RangeBounds } from '../../src/node/kv-state-machine';

const b = (s: string): Buffer => Buffer.from(s);
const FULL: RangeBounds = { start: Buffer.alloc(0), end: Buffer.alloc(0), epochVersion: 1, confVersion: 0 };

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function open(bounds = FULL, opts = {}): Promise<{ engine: Engine; sm: KvStateMachine; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rangekv-sm-'));
  dirs.push(dir);
  const engine = await Engine.open({ dir, nodeId: 1, clusterId: 'c' });
  return { engine, sm: await KvStateMachine.load(engine, 1, bounds, opts), dir };
}

function cmd(ops: Op[], clientId = 0, sequence = 0, proposedAtMs = 1000, epochVersion = 1): Command {
  return { clientId, sequence, answeredBelow: 0, proposedAtMs, epochVersion, ops };
}

/** Applies commands at consecutive indexes starting at `from`, one batch each. */
async function applyAll(engine: Engine, sm: KvStateMachine, from: number, cmds: Command[]) {
  const out = [];
  for (let i = 0; i < cmds.length; i++) {
    const batch = new WriteBatch();
    out.push(await sm.apply(batch, from + i, cmds[i] as Command));
    sm.flushSessions(batch);
    await engine.write(batch);
    sm.batchWritten();
  }
  return out;
}

describe('command codec', () => {
  it('round-trips every op kind', () => {
    const c = cmd(
      [
        { kind: OpKind.Put, key: b('k'), value: b('v') },
        { kind: OpKind.Delete, key: b('d') },
        { kind: OpKind.Get, key: b('g') },
        { kind: OpKind.Cas, key: b('c1'), expected: { kind: 'value', value: b('old') }, newValue: b('new'), delete: false },
        { kind: OpKind.Cas, key: b('c2'), expected: { kind: 'absent' }, newValue: b('x'), delete: false },
        { kind: OpKind.Cas, key: b('c3'), expected: { kind: 'version', version: 2 ** 40 }, newValue: b(''), delete: true },
      ],
      2 ** 52,
      77,
      1_700_000_000_000,
      9,
    );
    const d = decodeCommand(encodeCommand(c));
    expect(JSON.parse(JSON.stringify(d))).toEqual(JSON.parse(JSON.stringify(c)));
  });

  it('round-trips arbitrary puts (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 50 }), fc.uint8Array({ maxLength: 200 })), { maxLength: 10 }), (kvs) => {
        const c = cmd(kvs.map(([key, value]) => ({ kind: OpKind.Put as const, key, value })));
        const d = decodeCommand(encodeCommand(c));
        expect(d.ops.map((o) => (o.kind === OpKind.Put ? [Buffer.from(o.key), Buffer.from(o.value)] : null))).toEqual(
          kvs.map(([k, v]) => [Buffer.from(k), Buffer.from(v)]),
        );
      }),
    );
  });

  it('refuses truncated, trailing and unknown bytes with a typed error', () => {
    const enc = encodeCommand(cmd([{ kind: OpKind.Put, key: b('k'), value: b('v') }]));
    expect(() => decodeCommand(enc.subarray(0, enc.length - 1))).toThrow(CommandDecodeError);
    expect(() => decodeCommand(Buffer.concat([enc, b('x')]))).toThrow(/trailing/);
    const bad = Buffer.from(enc);
    bad[0] = 9;
    expect(() => decodeCommand(bad)).toThrow(/entry kind 9/);
  });

  it('round-trips results', () => {
    const r = {
      status: CommandStatus.Ok,
      results: [
        { kind: OpKind.Put as const, version: 5 },
        { kind: OpKind.Cas as const, succeeded: false, version: 3, previous: { value: b('p'), version: 3 } },
      ],
    };
    expect(JSON.parse(JSON.stringify(decodeResult(encodeResult(r))))).toEqual(JSON.parse(JSON.stringify(r)));
  });
});

describe('KV state machine', () => {
  it('puts, reads back with the writing index as version, deletes', async () => {
    const { engine, sm } = await open();
    const [put, del, del2] = await applyAll(engine, sm, 10, [
      cmd([{ kind: OpKind.Put, key: b('a'), value: b('1') }]),
      cmd([{ kind: OpKind.Delete, key: b('a') }]),
      cmd([{ kind: OpKind.Delete, key: b('a') }]),
    ]);
    expect(put!.results).toEqual([{ kind: OpKind.Put, version: 10 }]);
    expect(del!.results).toEqual([{ kind: OpKind.Delete, deleted: true, version: 11 }]);
    expect(del2!.results).toEqual([{ kind: OpKind.Delete, deleted: false, version: 12 }]);
    expect(await sm.get(b('a'))).toBeUndefined();
    await engine.close();
  });

  it('compare-and-swap by value, by absence and by version; later ops in one command see earlier ones', async () => {
    const { engine, sm } = await open();
    const [r] = await applyAll(engine, sm, 5, [
      cmd([
        { kind: OpKind.Cas, key: b('k'), expected: { kind: 'absent' }, newValue: b('v1'), delete: false },
        { kind: OpKind.Cas, key: b('k'), expected: { kind: 'absent' }, newValue: b('v2'), delete: false },
        { kind: OpKind.Cas, key: b('k'), expected: { kind: 'value', value: b('v1') }, newValue: b('v3'), delete: false },
        { kind: OpKind.Cas, key: b('k'), expected: { kind: 'version', version: 4 }, newValue: b('no'), delete: false },
        { kind: OpKind.Get, key: b('k') },
      ]),
    ]);
    const res = r!.results;
    expect(res.map((x) => (x.kind === OpKind.Cas ? x.succeeded : 'get'))).toEqual([true, false, true, false, 'get']);
    const g = res[4]!;
    expect(g.kind === OpKind.Get && Buffer.from(g.value).toString()).toBe('v3');
    const [byVersion] = await applyAll(engine, sm, 6, [
      cmd([{ kind: OpKind.Cas, key: b('k'), expected: { kind: 'version', version: 5 }, newValue: b(''), delete: true }]),
    ]);
    expect(byVersion!.results[0]).toMatchObject({ succeeded: true, version: 6 });
    expect(await sm.get(b('k'))).toBeUndefined();
    await engine.close();
  });

  it('answers a retried write with its first result and applies it once', async () => {
    const { engine, sm } = await open();
    const first = cmd([{ kind: OpKind.Cas, key: b('n'), expected: { kind: 'absent' }, newValue: b('1'), delete: false }], 42, 1);
    const [a, other, retry] = await applyAll(engine, sm, 1, [
      first,
      cmd([{ kind: OpKind.Put, key: b('n'), value: b('2') }], 43, 1),
      first,
    ]);
    expect(a!.results[0]).toMatchObject({ succeeded: true, version: 1 });
    expect(other!.status).toBe(CommandStatus.Ok);
    expect(retry).toEqual(a);
    expect((await sm.get(b('n')))!.value.toString()).toBe('2');
    await engine.close();
  });

  it('remembers sessions across a restart (they are persisted with the data)', async () => {
    const { engine, sm, dir } = await open();
    const w = cmd([{ kind: OpKind.Put, key: b('x'), value: b('1') }], 7, 3);
    const [a] = await applyAll(engine, sm, 1, [w]);
    await engine.close();
    const engine2 = await Engine.open({ dir, nodeId: 1 });
    const sm2 = await KvStateMachine.load(engine2, 1, FULL);
    const [again] = await applyAll(engine2, sm2, 2, [w]);
    expect(again).toEqual(a);
    expect((await sm2.get(b('x')))!.version).toBe(1);
    await engine2.close();
  });

  it('persists the sessions of many commands applied in one batch (one session record per client)', async () => {
    const { engine, sm, dir } = await open();
    const batch = new WriteBatch();
    const first: CommandResult[] = [];
    // Client 5 pipelines 10 writes, each saying the previous were answered; client 6 writes once.
    for (let seq = 1; seq <= 10; seq++) {
      first.push(await sm.apply(batch, seq, { ...cmd([{ kind: OpKind.Put, key: b(`m${seq}`), value: b('v') }], 5, seq), answeredBelow: seq - 1 }));
    }
    first.push(await sm.apply(batch, 11, cmd([{ kind: OpKind.Put, key: b('o'), value: b('v') }], 6, 1)));
    sm.flushSessions(batch);
    const headers = batch.ops.filter((op) => op.type === 'put' && op.key.length === 17 && op.key[0] === 0x04);
    expect(headers).toHaveLength(2);
    await engine.write(batch);
    sm.batchWritten();
    await engine.close();
    const engine2 = await Engine.open({ dir, nodeId: 1 });
    const sm2 = await KvStateMachine.load(engine2, 1, FULL);
    // The floor (9) and the unanswered result (10) survived: 10 is answered as before, 8 is refused.
    const [ten, eight, other] = await applyAll(engine2, sm2, 12, [
      { ...cmd([{ kind: OpKind.Put, key: b('m10'), value: b('v') }], 5, 10), answeredBelow: 9 },
      { ...cmd([{ kind: OpKind.Put, key: b('m8'), value: b('v') }], 5, 8), answeredBelow: 9 },
      cmd([{ kind: OpKind.Put, key: b('o'), value: b('v') }], 6, 1),
    ]);
    expect(ten).toEqual(first[9]);
    expect(eight!.status).toBe(CommandStatus.SequenceTooOld);
    expect(other).toEqual(first[10]);
    await engine2.close();
  });

  it('refuses a retry that fell out of the window instead of applying it again', async () => {
    const { engine, sm } = await open(FULL, { sessionWindow: 3 });
    const puts = [1, 2, 3, 4, 5].map((seq) => cmd([{ kind: OpKind.Put, key: b(`s${seq}`), value: b('v') }], 9, seq));
    await applyAll(engine, sm, 1, puts);
    const [old, recent] = await applyAll(engine, sm, 6, [puts[0]!, puts[4]!]);
    expect(old!.status).toBe(CommandStatus.SequenceTooOld);
    expect(recent!.results[0]).toMatchObject({ version: 5 });
    await engine.close();
  });

  it('keeps the result of a slow write however many later writes overtake it, until the client says it was answered', async () => {
    const { engine, sm } = await open();
    const put = (seq: number, answeredBelow: number): Command => ({
      ...cmd([{ kind: OpKind.Put, key: b(`p${seq}`), value: b('v') }], 11, seq),
      answeredBelow,
    });
    const [slow] = await applyAll(engine, sm, 1, [put(1, 1)]);
    // 1,500 later writes are applied and answered while write 1 is still unanswered.
    await applyAll(engine, sm, 2, Array.from({ length: 1500 }, (_, i) => put(i + 2, 1)));
    const [retry] = await applyAll(engine, sm, 2000, [put(1, 1)]);
    expect(retry).toEqual(slow);
    // The client reports everything below 1,502 answered: those results are forgotten, and an
    // (impossible) retry of one is refused instead of applied twice.
    await applyAll(engine, sm, 2001, [put(1502, 1502)]);
    const [forgotten] = await applyAll(engine, sm, 2002, [put(1, 1502)]);
    expect(forgotten!.status).toBe(CommandStatus.SequenceTooOld);
    let stored = 0;
    for await (const _k of engine.db.keys({ gte: Buffer.from([0x04]), lt: Buffer.from([0x05]) })) stored++;
    expect(stored).toBe(2); // the session record and the result of 1502
    await engine.close();
  });

  it('expires idle sessions by leader timestamps at deterministic indexes', async () => {
    const { engine, sm } = await open(FULL, { sessionTtlMs: 1000, sessionSweepEveryEntries: 4 });
    await applyAll(engine, sm, 1, [
      cmd([{ kind: OpKind.Put, key: b('a'), value: b('1') }], 1, 1, 1000),
      cmd([{ kind: OpKind.Put, key: b('b'), value: b('1') }], 2, 1, 2500),
    ]);
    expect(sm.sessionCount()).toBe(2);
    // Index 3: no sweep. Index 4 (a multiple of 4) sweeps with now = 2600: client 1 idle 1600 ms > 1000.
    await applyAll(engine, sm, 3, [cmd([], 0, 0, 2600), cmd([], 0, 0, 2600)]);
    expect(sm.sessionCount()).toBe(1);
    await engine.close();
  });

  it('refuses commands routed with another epoch or outside the range, changing nothing, and remembers neither', async () => {
    const bounds: RangeBounds = { start: b('b'), end: b('m'), epochVersion: 2, confVersion: 0 };
    const { engine, sm } = await open(bounds);
    const stale = cmd([{ kind: OpKind.Put, key: b('c'), value: b('1') }], 5, 1, 1000, 1);
    const [r1, r2] = await applyAll(engine, sm, 1, [stale, cmd([{ kind: OpKind.Put, key: b('z'), value: b('1') }], 5, 2, 1000, 2)]);
    expect(r1!.status).toBe(CommandStatus.EpochNotMatch);
    expect(r2!.status).toBe(CommandStatus.KeyNotInRange);
    expect(await sm.get(b('c'))).toBeUndefined();
    // The same sequence, re-routed with the right epoch, applies.
    const [r3] = await applyAll(engine, sm, 3, [{ ...stale, epochVersion: 2 }]);
    expect(r3!.status).toBe(CommandStatus.Ok);
    await engine.close();
  });

  it('scans within the range bounds in key order with a limit', async () => {
    const { engine, sm } = await open({ start: b('b'), end: b('e'), epochVersion: 1, confVersion: 0 });
    await applyAll(engine, sm, 1, [
      cmd(['b', 'c', 'd', 'd2'].map((k) => ({ kind: OpKind.Put as const, key: b(k), value: b(k.toUpperCase()) }))),
    ]);
    const got: string[] = [];
    for await (const kv of sm.scan(Buffer.alloc(0), Buffer.alloc(0), 0)) got.push(kv.key.toString());
    expect(got).toEqual(['b', 'c', 'd', 'd2']);
    const limited: string[] = [];
    for await (const kv of sm.scan(b('c'), Buffer.alloc(0), 2)) limited.push(`${kv.key}=${kv.value}`);
    expect(limited).toEqual(['c=C', 'd=D']);
    await engine.close();
  });
});

describe('key count', () => {
  /** Applies `cmds` at consecutive indexes from `from` in batches of 500 (fast enough for 10^4 ops). */
  async function applyBatched(engine: Engine, sm: KvStateMachine, from: number, cmds: Command[]): Promise<void> {
    for (let i = 0; i < cmds.length; i += 500) {
      const batch = new WriteBatch();
      cmds.slice(i, i + 500).forEach((c, j) => sm.apply(batch, from + i + j, c));
      sm.flushSessions(batch);
      await engine.write(batch);
      sm.batchWritten();
    }
  }
  const put = (k: string): Command => cmd([{ kind: OpKind.Put, key: b(k), value: b('v') }]);

  it('is exact in a small range; past 4,096 keys an unbiased estimate, even when new keys and overwrites alternate', async () => {
    const { engine, sm } = await open();
    // 3,000 new keys, each written twice: exact.
    const small = Array.from({ length: 3000 }, (_, i) => put(`s${i}`));
    await applyBatched(engine, sm, 1, [...small, ...small]);
    expect(sm.keyCount).toBe(3000);

    // Then a new key and an overwrite, alternating (a sampler by index parity would count all or none).
    const mixed: Command[] = [];
    for (let i = 0; i < 16_000; i++) mixed.push(put(`n${i}`), put(`s${(i * 7) % 3000}`));
    await applyBatched(engine, sm, 6001, mixed);
    const truth = 19_000;
    expect(Math.abs(sm.keyCount - truth) / truth).toBeLessThan(0.05);
    expect(await sm.recountKeys()).toBe(truth);
    await engine.close();
  });
});
