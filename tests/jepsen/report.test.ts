// report.html: self-contained (no script, no external resource), verdict on top, plots with the
// nemesis windows, anomalies with their operations, node log links, escaping, and a bounded size
// for a 100k-operation history.

import { checkHistory } from '../../scripts/jepsen/checker/index';
import { Op } from '../../scripts/jepsen/checker/history';
import { nemesisWindows, parseNemesisLog } from '../../scripts/jepsen/checker/nemesis';
import { opsOf } from '../../scripts/jepsen/checker/notation';
import { renderReport } from '../../scripts/jepsen/checker/report';
import { simulateRegisterHistory } from '../../scripts/jepsen/checker/simulate';

function report(ops: Op[], nemesisText = '', nodeLogs: string[] = []): string {
  const events = parseNemesisLog(nemesisText, 0n);
  const { results, windows } = checkHistory({ ops, originNs: 0n }, events);
  return renderReport({ results, ops, windows, nodeLogs, title: 'run 1' });
}

/** Nothing the page would fetch or run. */
function expectSelfContained(html: string): void {
  expect(html).not.toMatch(/<script/i);
  expect(html).not.toMatch(/<link\b/i);
  expect(html).not.toMatch(/\bsrc=/i);
  expect(html).not.toMatch(/url\(/i);
  expect(html).not.toMatch(/href="https?:/i);
}

describe('report', () => {
  test('a valid run: green verdict first, both plots, the nemesis window shaded and labelled, node logs linked', () => {
    const ops = simulateRegisterHistory({ seed: 3, ops: 500, keys: 3, concurrency: 4 });
    const nemesis = '{"time": 100000000, "nemesis": "partition-isolate-leader", "event": "start", "detail": {"isolated": [2]}}\n{"time": 200000000, "nemesis": "partition-isolate-leader", "event": "stop"}\n';
    const html = report(ops, nemesis, ['nodes/n1.log', 'nodes/n2.log']);
    expectSelfContained(html);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    const verdictAt = html.indexOf('class="verdict valid"');
    expect(verdictAt).toBeGreaterThan(0);
    expect(verdictAt).toBeLessThan(html.indexOf('<svg'));
    expect(html).toContain('>VALID<');
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).toContain('fill-opacity="0.13"'); // the window, shaded in both plots
    expect(html.match(/>partition-isolate-leader<\/text>/g)).toHaveLength(2);
    expect(html).toContain('<a href="nodes/n1.log">nodes/n1.log</a>');
    expect(html).toContain('<a href="nemesis.jsonl">');
    expect(html).toContain('Anomalies</h2><p>None.');
  });

  test('an invalid run: red verdict, the anomaly with its operations in a table', () => {
    const ops = opsOf('1 ok put k7=a 0-10000000', '2 ok put k7=b 20000000-30000000', '3 ok get k7->a 40000000-50000000', '4 info put k7=c 45000000');
    const html = report(ops);
    expectSelfContained(html);
    expect(html).toContain('class="verdict invalid"');
    expect(html).toContain('Key &quot;k7&quot;: not linearizable');
    const table = html.slice(html.indexOf('Anomalies (1)'));
    expect(table).toContain('<tr class="failing"><td class="num">3</td><td class="num">3</td><td class="ok">ok</td><td>get</td><td class="mono">k7</td>');
    expect(table).toContain('The history is linearizable up to the completion of line 3 (in bold), and not beyond.');
    expect(table).toContain('<td class="num">0.040</td><td class="num">0.050</td><td class="num">10.0 ms</td>');
    expect(html).toContain('No node logs given.');
    // Where the anomaly became certain (the stale read's completion), marked in both plots.
    expect(html.match(/<line x1="[\d.]+" y1="22" x2="[\d.]+" y2="226" stroke="#c62828" stroke-width="1" stroke-dasharray="4 3"><title>Key &quot;k7&quot;: not linearizable \(0\.050 s\)<\/title>/g)).toHaveLength(2);
  });

  test('an unknown run is amber', () => {
    const hard = Array.from({ length: 12 }, (_, p) => `${p} ok put x=v${p} 0-1000`);
    const ops = opsOf(...hard, '99 ok get x->never 0-1000');
    const { results, windows } = checkHistory({ ops, originNs: 0n }, [], { keyStepLimit: 10 });
    const html = renderReport({ results, ops, windows });
    expect(html).toContain('class="verdict unknown"');
    expect(html).toContain('<td class="mono">x</td><td>step-limit</td>');
  });

  test('values are escaped', () => {
    const ops = opsOf('1 ok put <b>=<script>x</script> 0-10', '1 ok put <b>=y 20-30', '2 ok get <b>-><script>x</script> 40-50', '3 ok get k->"&" 0-10');
    const html = report(ops, '', ['nodes/"n1".log']);
    expect(html).not.toContain('<script>');
    expect(html).toContain('Key &quot;&lt;b&gt;&quot;: not linearizable');
    expect(html).toContain('<td class="mono">&lt;script&gt;x&lt;/script&gt;</td>');
    expect(html).toContain('<td class="mono">&quot;&amp;&quot;</td>');
    expect(html).toContain('href="nodes/&quot;n1&quot;.log"');
  });

  test('time ticks of a very short history keep their decimals', () => {
    const html = report(opsOf('1 ok put x=a 0-20', '2 ok get x->a 30-50'));
    expect(html).toContain('>0.000000050</text>');
  });

  test('100k operations make a page of bounded size', () => {
    const ops = simulateRegisterHistory({ seed: 9, ops: 100_000, keys: 200, concurrency: 20 });
    const windows = nemesisWindows(parseNemesisLog('{"time": 1000000000, "nemesis": "kill", "event": "start"}\n', 0n));
    const { results } = checkHistory({ ops, originNs: 0n }, parseNemesisLog('{"time": 1000000000, "nemesis": "kill", "event": "start"}\n', 0n));
    const started = Date.now();
    const html = renderReport({ results, ops, windows });
    process.stdout.write(`report: 100k ops rendered in ${Date.now() - started} ms, ${(html.length / 1024).toFixed(0)} KiB\n`);
    expect(html.length).toBeLessThan(400_000);
    expectSelfContained(html);
  });
});
