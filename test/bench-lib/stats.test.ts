// The benchmark statistics: percentiles against a naive sort, exact count/mean/max under
// reservoir sampling, ratios that pair rows by setting.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LatencyRecorder, makeRow, markdownTable, percentileOfSorted, ratiosTo,
} from '../../benchmarks/lib/stats.js';

function naivePercentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  for (const v of sorted) {
    if (sorted.filter((x) => x <= v).length >= q * sorted.length) return v;
  }
  return sorted[sorted.length - 1] ?? 0;
}

describe('LatencyRecorder', () => {
  it('agrees with a naive percentile while every sample is kept', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: 1e9 }), { minLength: 1, maxLength: 300 }),
      (values) => {
        const rec = new LatencyRecorder();
        for (const v of values) rec.record(v);
        const s = rec.summary();
        expect(s.count).toBe(values.length);
        expect(s.p50Ms).toBe(naivePercentile(values, 0.5) / 1e6);
        expect(s.p99Ms).toBe(naivePercentile(values, 0.99) / 1e6);
        expect(s.maxMs).toBe(Math.max(...values) / 1e6);
      }));
  });

  it('keeps count, mean and max exact beyond its sample bound', () => {
    const rec = new LatencyRecorder(100, 7);
    for (let i = 1; i <= 10_000; i++) rec.record(i * 1000);
    const s = rec.summary();
    expect(s.count).toBe(10_000);
    expect(s.maxMs).toBe(10);
    expect(s.meanMs).toBeCloseTo(5.0005, 6);
    // A uniform reservoir of 100 out of 1..10000 µs: the median lands near the middle.
    expect(s.p50Ms).toBeGreaterThan(2);
    expect(s.p50Ms).toBeLessThan(8);
  });

  it('merges another recorder, including what its reservoir dropped', () => {
    const a = new LatencyRecorder();
    const b = new LatencyRecorder(10);
    a.record(1e6);
    for (let i = 0; i < 50; i++) b.record(2e6);
    b.record(9e6);
    a.merge(b);
    const s = a.summary();
    expect(s.count).toBe(52);
    expect(s.maxMs).toBe(9);
    expect(s.meanMs).toBeCloseTo((1 + 100 + 9) / 52, 9);
  });

  it('rejects negative or non-finite latencies and bad bounds', () => {
    const rec = new LatencyRecorder();
    expect(() => rec.record(-1)).toThrow(/non-negative/);
    expect(() => rec.record(Number.NaN)).toThrow(/finite/);
    expect(() => new LatencyRecorder(0)).toThrow(/samplesMax/);
  });

  it('reports zeros when nothing was recorded', () => {
    expect(new LatencyRecorder().summary()).toEqual(
      { count: 0, meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 });
    expect(percentileOfSorted([], 0.5)).toBe(0);
  });
});

describe('rows and tables', () => {
  const latency = { count: 1, meanMs: 1, p50Ms: 1, p99Ms: 2, maxMs: 3 };
  const rows = [
    makeRow('etcd', '1 in flight', { ops: 100, errors: 0, elapsedMs: 1000, latency }),
    makeRow('etcd', '64 in flight', { ops: 800, errors: 0, elapsedMs: 1000, latency }),
    makeRow('dsync', '64 in flight', { ops: 400, errors: 0, elapsedMs: 2000, latency }),
    makeRow('dsync', '128 in flight', { ops: 400, errors: 2, elapsedMs: 1000, latency,
      loadAvg: { start: 9.54, end: 11.2 } }),
  ];

  it('computes ops/s from ops and elapsed time', () => {
    expect(rows.map((r) => r.opsPerSec)).toEqual([100, 800, 200, 400]);
  });

  it('divides by the reference row of the same setting, null without one', () => {
    expect(ratiosTo(rows, 'etcd')).toEqual([1, 1, 0.25, null]);
  });

  it('renders system | setting | ops/s | p50 | p99 | ratio | load', () => {
    const lines = markdownTable(rows, 'etcd').split('\n');
    expect(lines[0]).toBe('| system | setting | ops/s | p50 | p99 | ratio | load |');
    expect(lines[4]).toBe('| dsync | 64 in flight | 200 | 1.00 ms | 2.00 ms | 0.25 | — |');
    expect(lines[5]).toContain('128 in flight (2 errors)');
    // No reference row, and the load average at the start and end of the measured phase.
    expect(lines[5]).toMatch(/\| — \| 9\.5–11\.2 \|$/);
  });
});
