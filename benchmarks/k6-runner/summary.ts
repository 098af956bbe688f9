// The end-of-run summary, in the spirit of k6's: one line per metric, then the thresholds.
import type { MetricSeries } from './runtime.js';
import { percentile, type ThresholdResult } from './thresholds.js';

function fmt(m: MetricSeries): string {
  const v = m.samples.map((s) => s.value);
  if (m.type === 'counter') return `count=${v.reduce((a, b) => a + b, 0)}`;
  if (m.type === 'rate') {
    const hits = v.filter((x) => x !== 0).length;
    return `rate=${(100 * hits / Math.max(1, v.length)).toFixed(2)}% (${hits}/${v.length})`;
  }
  if (m.type === 'gauge') return `value=${v[v.length - 1] ?? 'none'}`;
  const sorted = [...v].sort((a, b) => a - b);
  const unit = m.isTime ? 'ms' : '';
  const f = (x: number): string => `${Number.isNaN(x) ? '-' : x.toFixed(2)}${unit}`;
  const avg = v.length === 0 ? Number.NaN : v.reduce((a, b) => a + b, 0) / v.length;
  return `avg=${f(avg)} p(50)=${f(percentile(sorted, 50))} p(90)=${f(percentile(sorted, 90))} ` +
    `p(99)=${f(percentile(sorted, 99))} max=${f(sorted[sorted.length - 1] ?? Number.NaN)}`;
}

export function summarize(script: string, metrics: ReadonlyMap<string, MetricSeries>,
  thresholds: readonly ThresholdResult[], iterations: Record<string, number>,
  errors: readonly string[], errorCount: number): string {
  const lines = [`\n${script}`,
    `  scenarios: ${Object.entries(iterations).map(([n, i]) => `${n} ${i} iterations`).join(', ')}`];
  for (const m of [...metrics.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push(`  ${m.name.padEnd(28)} ${fmt(m)}`);
  }
  lines.push('  thresholds:');
  for (const t of thresholds) {
    const mark = t.ok ? 'ok  ' : t.timing ? 'slow' : 'FAIL';
    lines.push(`    ${mark} ${t.key} ${t.expression} (${Number.isNaN(t.value) ? 'no samples'
      : t.value.toFixed(3)})${t.timing ? ' [timing]' : ''}`);
  }
  if (errorCount > 0) lines.push(`  ${errorCount} iteration error(s):`, ...errors.map((e) => `    ${e}`));
  return `${lines.join('\n')}\n`;
}
