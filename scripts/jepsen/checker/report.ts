// report.html: one self-contained page (inline CSS and SVG; no script, no network) showing the
// verdict, throughput and latency over time with the nemesis windows shaded, the nemesis figures,
// every anomaly with its operations, and links to the node logs. Points are binned (a fixed number
// of bins whatever the history's length), so the page stays small for 100k operations.

import type { Op, OpType } from './history';
import type { NemesisWindow } from './nemesis';
import type { Anomaly, OpCounts, Results } from './results';

export interface ReportInput {
  readonly results: Results;
  readonly ops: readonly Op[];
  readonly windows: readonly NemesisWindow[];
  /** Links to node logs, relative to the report's directory (e.g. `nodes/n1.log`). */
  readonly nodeLogs?: readonly string[];
  /** Shown in the title; e.g. the run directory's name. */
  readonly title?: string;
}

/** Bins of the plots. */
const BINS = 240;
/** Operations shown per anomaly (the rest are in results.json). */
const ANOMALY_ROWS_MAX = 200;
/** Anomalies shown (the rest are in results.json). */
const ANOMALIES_MAX = 50;
/** Characters of a fault's detail shown in the windows table. */
const DETAIL_CHARS_MAX = 160;

const COLOR: Record<OpType, string> = { ok: '#2e7d32', fail: '#ef6c00', info: '#c62828' };
const NEMESIS_COLORS = ['#5c6bc0', '#8d6e63', '#26a69a', '#ab47bc', '#78909c', '#d4a017', '#ec407a', '#7cb342'];

export function renderReport(input: ReportInput): string {
  const { results, ops, windows } = input;
  const title = input.title ?? 'RangeKV Jepsen-style run';
  const end = Math.max(results.durationNs, ...windows.map((w) => w.stop ?? w.start), 1);
  const start = Math.min(0, ...windows.map((w) => w.start));
  const nemesisColor = new Map<string, string>();
  for (const w of windows) {
    if (!nemesisColor.has(w.nemesis)) nemesisColor.set(w.nemesis, NEMESIS_COLORS[nemesisColor.size % NEMESIS_COLORS.length] as string);
  }
  const anomalyMarks = results.anomalies.slice(0, ANOMALIES_MAX).map((a) => ({ ns: anomalyTime(a), label: anomalyTitle(a) }));
  const axis: TimeAxis = { startNs: start, endNs: end, windows, nemesisColor, anomalyMarks };

  const parts: string[] = [];
  parts.push(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head><body>`);
  parts.push(`<h1>${esc(title)}</h1>`);
  parts.push(verdictBanner(results));
  parts.push('<h2>Throughput</h2>', throughputPlot(ops, axis));
  parts.push('<h2>Latency</h2>', latencyPlot(ops, axis));
  parts.push(nemesisSection(results, nemesisColor));
  parts.push(anomalySection(results));
  parts.push(checkSection(results));
  parts.push(filesSection(input.nodeLogs ?? [], windows.length > 0));
  parts.push('</body></html>\n');
  return parts.join('\n');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#222}
h1{font-size:20px;margin:0 0 12px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.verdict{padding:18px 22px;border-radius:8px;color:#fff;margin-bottom:8px}
.verdict .big{font-size:34px;font-weight:700;letter-spacing:1px}
.verdict.valid{background:#2e7d32}.verdict.invalid{background:#c62828}.verdict.unknown{background:#b7791f}
.summary{color:#444}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.pending td{background:#fff8e1}tr.failing td{font-weight:600}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.ok{color:${COLOR.ok}}.fail{color:${COLOR.fail}}.info{color:${COLOR.info}}
.legend span{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
svg{background:#fff;border:1px solid #e3e3e3}
.muted{color:#777}
`;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

function seconds(ns: number): string {
  return (ns / 1e9).toFixed(3);
}

function percent(x: number | null): string {
  return x === null ? '–' : `${(x * 100).toFixed(1)}%`;
}

function duration(ns: number): string {
  if (ns < 1e6) return `${(ns / 1e3).toFixed(0)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

function verdictBanner(r: Results): string {
  const cls = r.valid === true ? 'valid' : r.valid === false ? 'invalid' : 'unknown';
  const word = r.valid === true ? 'VALID' : r.valid === false ? 'INVALID' : 'UNKNOWN';
  let why = '';
  if (r.valid === false) why = `${r.anomalies.length} anomal${r.anomalies.length === 1 ? 'y' : 'ies'}`;
  else if (r.valid === 'unknown') why = `undecided: ${r.linearizability.unknownKeys.length} key(s)${r.set !== null && r.set.valid === 'unknown' ? ', set final read incomplete' : ''}`;
  else why = 'linearizable, no lost writes';
  return (
    `<div class="verdict ${cls}"><div class="big">${word}</div><div>${esc(why)}</div></div>` +
    `<div class="summary">${r.ops} operations: <span class="ok">${r.ok} ok</span>, <span class="fail">${r.fail} fail</span>, ` +
    `<span class="info">${r.info} info</span> over ${duration(r.durationNs)}; ${r.linearizability.keys} keys checked in ` +
    `${(r.checkerElapsedMs / 1000).toFixed(2)} s. Times are seconds since the first invoke.</div>`
  );
}

// ---------------------------------------------------------------------------------------------
// Plots

interface TimeAxis {
  readonly startNs: number;
  readonly endNs: number;
  readonly windows: readonly NemesisWindow[];
  readonly nemesisColor: ReadonlyMap<string, string>;
  /** Where anomalies became certain: drawn as red dashed lines. */
  readonly anomalyMarks: readonly { readonly ns: number; readonly label: string }[];
}

const W = 1000;
const H = 260;
const M = { left: 62, right: 14, top: 22, bottom: 34 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

function xOf(axis: TimeAxis, ns: number): number {
  return M.left + ((ns - axis.startNs) / (axis.endNs - axis.startNs)) * PW;
}

function binOf(axis: TimeAxis, ns: number): number {
  const b = Math.floor(((ns - axis.startNs) / (axis.endNs - axis.startNs)) * BINS);
  return Math.min(BINS - 1, Math.max(0, b));
}

function binCenter(axis: TimeAxis, b: number): number {
  return axis.startNs + ((b + 0.5) / BINS) * (axis.endNs - axis.startNs);
}

/** A "nice" step (1, 2 or 5 times a power of ten) giving about `count` ticks over `range`. */
function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

function fmtNumber(x: number): string {
  if (x === 0) return '0';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return Number(x.toPrecision(3)).toString();
}

/** Frame, time ticks, nemesis shading (behind the data) and labels. */
function frame(axis: TimeAxis, yTicks: readonly { y: number; label: string }[], yTitle: string): string {
  const out: string[] = [];
  for (const w of axis.windows) {
    const x0 = xOf(axis, w.start);
    const x1 = xOf(axis, w.stop ?? axis.endNs);
    const color = axis.nemesisColor.get(w.nemesis) ?? '#888';
    const detail = w.detail === null ? '' : ` ${JSON.stringify(w.detail)}`;
    out.push(
      `<rect x="${x0.toFixed(1)}" y="${M.top}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${PH}" fill="${color}" fill-opacity="0.13">` +
        `<title>${esc(`${w.nemesis}: ${seconds(w.start)} s – ${w.stop === null ? 'end' : `${seconds(w.stop)} s`}${detail}`)}</title></rect>`,
      `<text x="${(x0 + 2).toFixed(1)}" y="${M.top - 6}" font-size="10" fill="${color}">${esc(w.nemesis)}</text>`,
    );
  }
  for (const m of axis.anomalyMarks) {
    const x = xOf(axis, m.ns).toFixed(1);
    out.push(
      `<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + PH}" stroke="${COLOR.info}" stroke-width="1" stroke-dasharray="4 3">` +
        `<title>${esc(`${m.label} (${seconds(m.ns)} s)`)}</title></line>`,
    );
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${PW}" height="${PH}" fill="none" stroke="#999"/>`);
  const span = (axis.endNs - axis.startNs) / 1e9;
  const step = niceStep(span, 10);
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  for (let k = Math.ceil(axis.startNs / 1e9 / step); k * step <= axis.endNs / 1e9 * (1 + 1e-12); k++) {
    const t = k * step;
    const x = xOf(axis, t * 1e9);
    out.push(
      `<line x1="${x.toFixed(1)}" y1="${M.top + PH}" x2="${x.toFixed(1)}" y2="${M.top + PH + 4}" stroke="#999"/>`,
      `<text x="${x.toFixed(1)}" y="${M.top + PH + 16}" font-size="11" text-anchor="middle">${t.toFixed(decimals)}</text>`,
    );
  }
  out.push(`<text x="${M.left + PW / 2}" y="${H - 3}" font-size="11" text-anchor="middle">time (s)</text>`);
  for (const t of yTicks) {
    out.push(
      `<line x1="${M.left}" y1="${t.y.toFixed(1)}" x2="${M.left + PW}" y2="${t.y.toFixed(1)}" stroke="#eee"/>`,
      `<text x="${M.left - 5}" y="${(t.y + 4).toFixed(1)}" font-size="11" text-anchor="end">${esc(t.label)}</text>`,
    );
  }
  out.push(`<text transform="translate(13 ${M.top + PH / 2}) rotate(-90)" font-size="11" text-anchor="middle">${esc(yTitle)}</text>`);
  return out.join('');
}

/** Lines through the points; `null` (an empty bin) breaks the line, and a lone point is a dot. */
function polyline(points: readonly ([number, number] | null)[], color: string, width: number, dash?: string): string {
  const out: string[] = [];
  let run: [number, number][] = [];
  const flush = (): void => {
    if (run.length === 1) {
      const [x, y] = run[0] as [number, number];
      out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${(width + 0.6).toFixed(1)}" fill="${color}"/>`);
    } else if (run.length > 1) {
      const d = run.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
      out.push(`<polyline points="${d}" fill="none" stroke="${color}" stroke-width="${width}"${dash === undefined ? '' : ` stroke-dasharray="${dash}"`}/>`);
    }
    run = [];
  };
  for (const p of points) {
    if (p === null) flush();
    else run.push(p);
  }
  flush();
  return out.join('');
}

function legend(items: readonly { color: string; label: string }[]): string {
  return `<div class="legend">${items.map((i) => `<span><span class="swatch" style="background:${i.color}"></span>${esc(i.label)}</span>`).join('')}</div>`;
}

function throughputPlot(ops: readonly Op[], axis: TimeAxis): string {
  const counts: Record<OpType, number[]> = { ok: new Array<number>(BINS).fill(0), fail: new Array<number>(BINS).fill(0), info: new Array<number>(BINS).fill(0) };
  for (const op of ops) {
    const series = counts[op.type];
    const b = binOf(axis, op.complete ?? op.invoke);
    series[b] = (series[b] as number) + 1;
  }
  const binSeconds = (axis.endNs - axis.startNs) / 1e9 / BINS;
  let max = 1;
  for (const t of ['ok', 'fail', 'info'] as const) for (const c of counts[t]) max = Math.max(max, c / binSeconds);
  const step = niceStep(max, 5);
  const yMax = Math.ceil(max / step) * step;
  const yOf = (v: number): number => M.top + PH - (v / yMax) * PH;
  const ticks: { y: number; label: string }[] = [];
  for (let k = 0; k * step <= yMax * (1 + 1e-12); k++) ticks.push({ y: yOf(k * step), label: fmtNumber(k * step) });
  const series = (['ok', 'fail', 'info'] as const)
    .map((t) => polyline(counts[t].map((c, b): [number, number] => [xOf(axis, binCenter(axis, b)), yOf(c / binSeconds)]), COLOR[t], t === 'ok' ? 1.6 : 1.2))
    .join('');
  return (
    `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">${frame(axis, ticks, 'operations / s')}${series}</svg>` +
    legend([
      { color: COLOR.ok, label: 'ok (by completion)' },
      { color: COLOR.fail, label: 'fail (by completion)' },
      { color: COLOR.info, label: 'info (by invoke)' },
    ]) +
    `<div class="muted">${BINS} bins of ${binSeconds < 1 ? `${(binSeconds * 1000).toFixed(1)} ms` : `${binSeconds.toFixed(2)} s`}.` +
    `${axis.anomalyMarks.length > 0 ? ' Red dashed lines: where an anomaly became certain (hover for which).' : ''}</div>`
  );
}

function latencyPlot(ops: readonly Op[], axis: TimeAxis): string {
  const lat: Record<'ok' | 'fail', number[][]> = {
    ok: Array.from({ length: BINS }, () => []),
    fail: Array.from({ length: BINS }, () => []),
  };
  const infoCount = new Array<number>(BINS).fill(0);
  let lo = Infinity;
  let hi = 0;
  for (const op of ops) {
    const b = binOf(axis, op.invoke);
    if (op.type === 'info') {
      infoCount[b] = (infoCount[b] as number) + 1;
      continue;
    }
    const l = Math.max(1e3, (op.complete as number) - op.invoke); // 1 µs floor for the log scale
    (lat[op.type][b] as number[]).push(l);
    lo = Math.min(lo, l);
    hi = Math.max(hi, l);
  }
  if (hi === 0) {
    lo = 1e6;
    hi = 1e9;
  }
  const decadeLo = Math.floor(Math.log10(lo));
  const decadeHi = Math.max(decadeLo + 1, Math.ceil(Math.log10(hi)));
  const band = 14; // top band for info markers
  const yOf = (ns: number): number => M.top + band + (PH - band) * (1 - (Math.log10(ns) - decadeLo) / (decadeHi - decadeLo));
  const ticks: { y: number; label: string }[] = [];
  for (let d = decadeLo; d <= decadeHi; d++) ticks.push({ y: yOf(Math.pow(10, d)), label: duration(Math.pow(10, d)) });
  const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  const lines: string[] = [];
  for (const t of ['ok', 'fail'] as const) {
    const median: ([number, number] | null)[] = [];
    const max: ([number, number] | null)[] = [];
    lat[t].forEach((list, b) => {
      if (list.length === 0) {
        median.push(null);
        max.push(null);
        return;
      }
      list.sort((a, z) => a - z);
      const x = xOf(axis, binCenter(axis, b));
      median.push([x, yOf(quantile(list, 0.5))]);
      max.push([x, yOf(list[list.length - 1] as number)]);
    });
    lines.push(polyline(max, COLOR[t], 0.8, '3 2'), polyline(median, COLOR[t], t === 'ok' ? 1.6 : 1.2));
  }
  const marks: string[] = [];
  infoCount.forEach((c, b) => {
    if (c === 0) return;
    const x = xOf(axis, binCenter(axis, b));
    marks.push(
      `<path d="M${(x - 3).toFixed(1)},${M.top + 3} L${(x + 3).toFixed(1)},${M.top + 3} L${x.toFixed(1)},${M.top + 10} Z" fill="${COLOR.info}">` +
        `<title>${c} info operation(s) invoked around ${seconds(binCenter(axis, b))} s</title></path>`,
    );
  });
  return (
    `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">${frame(axis, ticks, 'latency (log)')}${lines.join('')}${marks.join('')}</svg>` +
    legend([
      { color: COLOR.ok, label: 'ok: median (solid), max (dashed) per bin, by invoke' },
      { color: COLOR.fail, label: 'fail: median, max' },
      { color: COLOR.info, label: 'info: ▼ markers on top (no latency: never answered)' },
    ])
  );
}

// ---------------------------------------------------------------------------------------------
// Tables

function countsCells(c: OpCounts): string {
  return `<td class="num">${c.ops}</td><td class="num">${c.ok}</td><td class="num">${c.fail}</td><td class="num">${c.info}</td><td class="num">${percent(c.availability)}</td>`;
}

function nemesisSection(r: Results, colors: ReadonlyMap<string, string>): string {
  const names = Object.keys(r.nemesis);
  if (names.length === 0) return '<h2>Nemesis</h2><p class="muted">No nemesis log (nemesis.jsonl): no faults recorded.</p>';
  const rows: string[] = [];
  for (const name of names) {
    const n = r.nemesis[name];
    if (n === undefined) continue;
    const sw = `<span class="swatch" style="background:${colors.get(name) ?? '#888'}"></span>`;
    rows.push(
      `<tr><td>${sw}${esc(name)}</td><td class="num">${n.windows}</td><td class="num">${duration(n.activeNs)}</td>` +
        `${countsCells(n.during)}${countsCells(n.after)}<td class="num">${percent(n.outside.availability)}</td></tr>`,
    );
  }
  const windowRows: string[] = [];
  for (const name of names) {
    const n = r.nemesis[name];
    if (n === undefined) continue;
    for (const w of n.windowList) {
      windowRows.push(
        `<tr><td>${esc(name)}</td><td class="num">${seconds(w.start)}</td><td class="num">${w.stop === null ? 'end' : seconds(w.stop)}</td>` +
          `${detailCell(w.detail)}${countsCells(w.during)}${countsCells(w.after)}` +
          `<td class="num">${w.recoveryNs === null ? '–' : duration(w.recoveryNs)}</td></tr>`,
      );
    }
  }
  const head = '<th>ops</th><th>ok</th><th>fail</th><th>info</th><th>avail.</th>';
  return (
    '<h2>Nemesis</h2><p class="muted">An operation is <i>during</i> a fault when invoked between its start and stop, <i>after</i> it when invoked between its stop and the next fault\'s start. Availability: share of ok.</p>' +
    `<table><tr><th rowspan="2">nemesis</th><th rowspan="2">windows</th><th rowspan="2">active</th><th colspan="5">during</th><th colspan="5">after</th><th rowspan="2">avail. outside</th></tr><tr>${head}${head}</tr>${rows.join('')}</table>` +
    `<h3>Windows</h3><table><tr><th rowspan="2">nemesis</th><th rowspan="2">start (s)</th><th rowspan="2">stop (s)</th><th rowspan="2">detail</th><th colspan="5">during</th><th colspan="5">after</th><th rowspan="2">first ok after stop</th></tr><tr>${head}${head}</tr>${windowRows.join('')}</table>`
  );
}

/** A fault's detail, cut to a readable length (all of it on hover and in results.json). */
function detailCell(detail: Readonly<Record<string, unknown>> | null): string {
  const text = detail === null ? '' : JSON.stringify(detail);
  if (text.length <= DETAIL_CHARS_MAX) return `<td class="mono">${esc(text)}</td>`;
  return `<td class="mono" title="${esc(text)}">${esc(text.slice(0, DETAIL_CHARS_MAX))}…</td>`;
}

function opRow(op: Op, pending: boolean, failing = false): string {
  const v = (x: string | null): string => (x === null ? '<span class="muted">null</span>' : esc(x));
  const latency = op.complete === null ? '–' : duration(op.complete - op.invoke);
  return (
    `<tr${pending ? ' class="pending"' : failing ? ' class="failing"' : ''}><td class="num">${op.line}</td><td class="num">${op.process}</td><td class="${op.type}">${op.type}</td><td>${op.f}</td>` +
    `<td class="mono">${esc(op.key)}</td><td class="mono">${op.f === 'put' || op.f === 'cas' ? v(op.value) : ''}</td><td class="mono">${op.f === 'cas' ? v(op.expected) : ''}</td>` +
    `<td class="mono">${op.f === 'get' && op.type === 'ok' ? v(op.result) : ''}</td><td class="num">${seconds(op.invoke)}</td>` +
    `<td class="num">${op.complete === null ? '–' : seconds(op.complete)}</td><td class="num">${latency}</td></tr>`
  );
}

/** When an anomaly became certain: its last operation's completion (or invoke, for info). */
function anomalyTime(a: Anomaly): number {
  let t = 0;
  for (const op of a.ops) t = Math.max(t, op.complete ?? op.invoke);
  return a.kind === 'nonlinearizable' ? Math.min(t, a.cutNs) : t;
}

function anomalyTitle(a: Anomaly): string {
  if (a.kind === 'nonlinearizable') return `Key ${JSON.stringify(a.key)}: not linearizable`;
  if (a.kind === 'lost-add') return `Set: lost add of ${JSON.stringify(a.element)}`;
  if (a.kind === 'unexpected-element') return `Set: unexpected element ${JSON.stringify(a.element)}`;
  return `Set: failed add of ${JSON.stringify(a.element)} present`;
}

function anomalySection(r: Results): string {
  if (r.anomalies.length === 0) return '<h2>Anomalies</h2><p>None.</p>';
  const parts: string[] = [`<h2>Anomalies (${r.anomalies.length})</h2>`];
  for (const a of r.anomalies.slice(0, ANOMALIES_MAX)) {
    parts.push(`<h3>${esc(anomalyTitle(a))}</h3><p>${esc(a.explanation)}</p>`);
    let pending = new Set<number>();
    let failLine = -1;
    if (a.kind === 'nonlinearizable') {
      pending = new Set(a.pendingLines);
      failLine = a.failLine;
      parts.push(
        `<p class="muted">${a.ops.length} operation(s)${a.minimal ? ', minimal: dropping any one read, or any one write with the operations that observed it, makes the rest linearizable' : ' (shrinking stopped early: a valid witness, perhaps not minimal)'}. ` +
          `The history is linearizable up to the completion of line ${a.failLine}${a.ops.some((op) => op.line === a.failLine) ? ' (in bold)' : ''}, and not beyond.` +
          `${pending.size > 0 ? ' Highlighted rows: treated as possibly not yet applied.' : ''}</p>`,
      );
    }
    const rows = a.ops.slice(0, ANOMALY_ROWS_MAX).map((op) => opRow(op, pending.has(op.line), op.line === failLine));
    parts.push(
      '<table><tr><th>line</th><th>process</th><th>type</th><th>f</th><th>key</th><th>value</th><th>expected</th><th>result</th><th>invoke (s)</th><th>complete (s)</th><th>latency</th></tr>' +
        `${rows.join('')}</table>`,
    );
    if (a.ops.length > ANOMALY_ROWS_MAX) parts.push(`<p class="muted">${a.ops.length - ANOMALY_ROWS_MAX} more operations in results.json.</p>`);
  }
  if (r.anomalies.length > ANOMALIES_MAX) parts.push(`<p class="muted">${r.anomalies.length - ANOMALIES_MAX} more anomalies in results.json.</p>`);
  return parts.join('');
}

function checkSection(r: Results): string {
  const l = r.linearizability;
  const parts: string[] = ['<h2>Checks</h2>'];
  parts.push(
    `<p>Linearizability (register per key): <b>${String(l.valid)}</b> — ${l.keys} keys: ${l.validKeys} linearizable, ` +
      `${l.invalidKeys.length} not, ${l.unknownKeys.length} undecided; ${l.steps.toLocaleString('en-US')} search steps.</p>`,
  );
  if (l.unknownKeys.length > 0) {
    parts.push(
      '<table><tr><th>undecided key</th><th>reason</th><th>ops</th><th>steps</th></tr>' +
        l.unknownKeys.map((k) => `<tr><td class="mono">${esc(k.key)}</td><td>${esc(k.reason ?? '')}</td><td class="num">${k.ops}</td><td class="num">${k.steps}</td></tr>`).join('') +
        '</table>',
    );
  }
  if (r.set !== null) {
    const s = r.set;
    parts.push(
      `<p>Set workload: <b>${String(s.valid)}</b> — ${s.attempted} elements attempted, ${s.acknowledged} acknowledged, ${s.present} present at the final read; ` +
        `${s.lost.length} lost, ${s.unexpected.length} unexpected, ${s.failedButPresent.length} failed but present, ${s.recovered.length} info adds present, ${s.unread.length} acknowledged but unread.</p>`,
    );
    if (s.unread.length > 0) parts.push(`<p class="muted">Unread: ${esc(s.unread.slice(0, 50).join(', '))}${s.unread.length > 50 ? ', …' : ''}</p>`);
  }
  return parts.join('');
}

function filesSection(nodeLogs: readonly string[], nemesisLog: boolean): string {
  const links = nodeLogs.map((p) => `<li><a href="${esc(p)}">${esc(p)}</a></li>`).join('');
  const nemesis = nemesisLog ? '<li><a href="nemesis.jsonl">nemesis.jsonl</a></li>' : '';
  return (
    `<h2>Files</h2><ul><li><a href="history.jsonl">history.jsonl</a></li>${nemesis}<li><a href="results.json">results.json</a></li></ul>` +
    (nodeLogs.length > 0 ? `<h3>Node logs</h3><ul>${links}</ul>` : '<p class="muted">No node logs given.</p>')
  );
}
