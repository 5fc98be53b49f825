// `node dist/scripts/jepsen/summary.js DIR`: one line per run directory under DIR (as run-all.sh
// makes them): ops, ok/fail/info, valid, availability (share of ok operations) while a fault was
// on and outside the fault windows (the share of operations answered: ok, or a cas whose condition
// did not hold), and the run's seed.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface Share {
  ops: number;
  answered: number;
  availability: number | null;
}
interface RunSummary {
  options: { nemesis: string; workload: string; seed: number; timeSeconds: number };
  counts?: { ok: number; fail: number; info: number };
  availability?: { during: Record<string, Share>; outside: Share };
  valid?: boolean | 'unknown' | null;
  recovered?: boolean;
  failure?: string | null;
  seconds?: number;
}

function pct(s: Share | undefined): string {
  return s && s.availability !== null ? `${Math.round(s.availability * 100)}% of ${s.ops}` : '-';
}

export function summarize(dir: string): string {
  const rows: string[][] = [['RUN', 'OPS', 'OK', 'FAIL', 'INFO', 'VALID', 'AVAIL DURING FAULTS', 'AVAIL OUTSIDE', 'SECONDS', 'SEED']];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name, 'run.json');
    if (!statSync(join(dir, name)).isDirectory() || !existsSync(path)) continue;
    const r = JSON.parse(readFileSync(path, 'utf8')) as RunSummary;
    const c = r.counts ?? { ok: 0, fail: 0, info: 0 };
    const during: Share = { ops: 0, answered: 0, availability: null };
    for (const s of Object.values(r.availability?.during ?? {})) {
      during.ops += s.ops;
      during.answered += s.answered;
    }
    if (during.ops > 0) during.availability = during.answered / during.ops;
    const valid = r.failure ? `${String(r.valid)} (no recovery)` : String(r.valid);
    rows.push([name, String(c.ok + c.fail + c.info), String(c.ok), String(c.fail), String(c.info), valid, pct(during), pct(r.availability?.outside), String(r.seconds ?? '-'), String(r.options.seed)]);
  }
  const widths = (rows[0] as string[]).map((_c, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd()).join('\n');
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node dist/scripts/jepsen/summary.js DIR\n');
    process.exit(2);
  }
  process.stdout.write(`${summarize(dir)}\n`);
}
