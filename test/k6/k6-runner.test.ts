// Our k6 runner (benchmarks/k6-runner) against a tiny HTTP server on loopback: scenarios and
// executors, the k6 APIs our scripts use, metrics with tags, and thresholds that decide the
// outcome, including scripts that must fail (an error in every iteration, a failed
// threshold, a blocking call it cannot provide).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SMOKE, runK6Script } from '../../benchmarks/k6-runner/runner.js';
import { evaluateThresholds, parseKey } from '../../benchmarks/k6-runner/thresholds.js';
import type { MetricSeries } from '../../benchmarks/k6-runner/runtime.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const ok = req.url?.startsWith('/hello') === true;
    res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ok ? { hello: true } : { error: { code: 'NOT_FOUND' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('the k6 runner', () => {
  it('runs scenarios with their executors and meets the thresholds of a good script', async () => {
    const r = await runK6Script(join(FIXTURES, 'good.js'), { env: { BASE: base } });
    expect(r.ok, r.summary).toBe(true);
    expect(r.iterations).toEqual({ first: 12, second: 6 });
    expect(r.errorCount).toBe(0);
    expect(r.thresholds.every((t) => t.ok)).toBe(true);
    expect(r.thresholds.find((t) => t.key === 'http_req_duration')?.timing).toBe(true);
    expect(r.summary).toContain('fixture_seen');
  });

  it('caps a smoke run at its iteration budget', async () => {
    const r = await runK6Script(join(FIXTURES, 'good.js'), { env: { BASE: base },
      smoke: { ...DEFAULT_SMOKE, iterationsMax: 4, vusMax: 1 } });
    expect(r.iterations).toEqual({ first: 4, second: 3 });
    expect(r.ok).toBe(false); // its count thresholds expected the full run
  });

  it('fails a smoke run whose iterations throw', async () => {
    const r = await runK6Script(join(FIXTURES, 'throws.js'), { env: { BASE: base },
      smoke: DEFAULT_SMOKE });
    expect(r.ok).toBe(false);
    expect(r.errorCount).toBe(5);
    expect(r.errors[0]).toMatch(/default: TypeError/);
  });

  it('fails a run whose thresholds fail', async () => {
    const r = await runK6Script(join(FIXTURES, 'misses.js'), { env: { BASE: base } });
    expect(r.ok).toBe(false);
    expect(r.thresholds.map((t) => [t.key, t.ok])).toEqual([['http_req_failed', false],
      ['checks', false]]);
  });

  it('says that blocking http calls are not available', async () => {
    const r = await runK6Script(join(FIXTURES, 'blocking.js'), { env: { BASE: base },
      smoke: DEFAULT_SMOKE });
    expect(r.ok).toBe(false);
    expect(r.errors[0]).toContain('http.asyncRequest');
  });
});

describe('thresholds', () => {
  const series = (name: string, type: MetricSeries['type'], values: number[],
    tags: Record<string, string> = {}): MetricSeries =>
    ({ name, type, isTime: type === 'trend', samples: values.map((value) => ({ value, tags })) });

  it('reads keys with tag filters', () => {
    expect(parseKey('http_req_duration{op:acquire, scenario:x}')).toEqual(
      { name: 'http_req_duration', tags: { op: 'acquire', scenario: 'x' } });
    expect(() => parseKey('bad key')).toThrow(/metric\{tag:value\}/);
  });

  it('evaluates percentiles, rates, counts and missing metrics', () => {
    const m = new Map([
      ['t', series('t', 'trend', Array.from({ length: 100 }, (_, i) => i + 1))],
      ['r', series('r', 'rate', [1, 0, 0, 0])],
      ['c', series('c', 'counter', [1, 1, 1], { op: 'a' })],
    ]);
    const res = evaluateThresholds({ t: ['p(99)<100', 'p(50)>=50', 'avg==50.5', 'max<100'],
      r: ['rate<0.3'], 'c{op:a}': ['count==3'], 'c{op:b}': ['count==0'], gone: ['rate<1'] }, m);
    expect(res.map((x) => x.ok)).toEqual([true, true, true, false, true, true, true, false]);
    expect(res[0]?.timing).toBe(true);
    expect(res[4]?.timing).toBe(false);
    expect(() => evaluateThresholds({ t: ['p99 < 5'] }, m)).toThrow(/cannot read/);
  });
});
