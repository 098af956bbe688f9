// k6 thresholds, evaluated over the samples of a run: `metric{tag:value,...}` keys with
// expressions such as `p(99)<250`, `avg<=100`, `rate<0.01`, `count>0`, `value>=1`.
import type { MetricSeries, Sample } from './runtime.js';

export interface ThresholdResult {
  readonly key: string;
  readonly expression: string;
  readonly ok: boolean;
  /** The aggregate compared (NaN when the metric has no matching sample). */
  readonly value: number;
  /** A latency threshold: what it measures is this machine as much as the script. */
  readonly timing: boolean;
}

const OPS: Record<string, (a: number, b: number) => boolean> = {
  '<': (a, b) => a < b, '<=': (a, b) => a <= b, '>': (a, b) => a > b,
  '>=': (a, b) => a >= b, '==': (a, b) => a === b, '===': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};
const EXPR_RE = /^\s*(p\(\d+(?:\.\d+)?\)|avg|min|max|med|rate|count|value)\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;
const KEY_RE = /^([A-Za-z_][A-Za-z0-9_]*)(?:\{([^}]*)\})?$/;

/** `name{a:b,c:d}` → the metric name and the tag filter. */
export function parseKey(key: string): { name: string; tags: Record<string, string> } {
  const m = KEY_RE.exec(key.trim());
  if (m === null) throw new Error(`threshold key ${key}: expected metric or metric{tag:value}`);
  const tags: Record<string, string> = {};
  for (const pair of (m[2] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = pair.indexOf(':');
    if (i <= 0) throw new Error(`threshold key ${key}: tag filter ${pair} is not tag:value`);
    tags[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return { name: m[1]!, tags };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

/** The aggregate an expression compares, over the samples of one metric. */
export function aggregate(m: MetricSeries, samples: readonly Sample[], agg: string): number {
  const values = samples.map((s) => s.value);
  if (agg === 'count') return values.length;
  if (values.length === 0) return Number.NaN;
  if (agg === 'rate') return values.filter((v) => v !== 0).length / values.length;
  if (agg === 'value') return values[values.length - 1]!;
  const sorted = [...values].sort((a, b) => a - b);
  if (agg === 'avg') return values.reduce((a, b) => a + b, 0) / values.length;
  if (agg === 'min') return sorted[0]!;
  if (agg === 'max') return sorted[sorted.length - 1]!;
  if (agg === 'med') return percentile(sorted, 50);
  const p = /^p\((.+)\)$/.exec(agg);
  if (p === null) throw new Error(`unknown aggregate ${agg} for ${m.name}`);
  return percentile(sorted, Number(p[1]));
}

type ThresholdSpec = string | { threshold: string; abortOnFail?: boolean };

export function evaluateThresholds(thresholds: Record<string, readonly ThresholdSpec[]>,
  metrics: ReadonlyMap<string, MetricSeries>): ThresholdResult[] {
  const out: ThresholdResult[] = [];
  for (const [key, specs] of Object.entries(thresholds)) {
    const { name, tags } = parseKey(key);
    const m = metrics.get(name);
    const samples = (m?.samples ?? []).filter((s) =>
      Object.entries(tags).every(([k, v]) => s.tags[k] === v));
    for (const spec of specs) {
      const expression = typeof spec === 'string' ? spec : spec.threshold;
      const e = EXPR_RE.exec(expression);
      if (e === null) throw new Error(`threshold ${key}: cannot read "${expression}"`);
      const [, agg, op, bound] = e as unknown as [string, string, string, string];
      // A metric nobody fed: a count is 0; anything else has no value and fails.
      const value = m === undefined ? (agg === 'count' ? 0 : Number.NaN)
        : aggregate(m, samples, agg);
      const ok = !Number.isNaN(value) && OPS[op]!(value, Number(bound));
      const timing = m?.isTime === true && agg !== 'count' && agg !== 'rate';
      out.push({ key, expression, ok, value, timing });
    }
  }
  return out;
}
