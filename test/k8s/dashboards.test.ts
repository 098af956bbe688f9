// The Grafana dashboards and alert rules of the chart: the JSON files are what
// scripts/dashboards.ts generates, and every metric they query is one the nodes export (a
// series registered in src/), one of prom-client's default process/nodejs series, or one of
// the queue metrics agreed for the queue service.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DASHBOARDS, DASHBOARD_DIR, renderDashboard } from '../../scripts/dashboards.js';
import { ROOT } from '../support/cluster.js';
import { find, render } from './helm.js';

/** The queue's series, named ahead of the queue service (labels topic, group). */
const QUEUE_METRICS = [
  'dsync_queue_ready_messages', 'dsync_queue_inflight_messages',
  'dsync_queue_oldest_message_age_seconds', 'dsync_queue_published_total',
  'dsync_queue_delivered_total', 'dsync_queue_acked_total', 'dsync_queue_redeliveries_total',
  'dsync_queue_dead_letters_total', 'dsync_queue_dedup_hits_total',
];
/** prom-client's collectDefaultMetrics series that the dashboards use. */
const DEFAULT_METRICS = ['process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory()
    ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** Metric names registered in src/: every quoted 'dsync_…' string. */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  for (const f of sourceFiles(join(ROOT, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/'(dsync_[a-z0-9_]+)'/g)) names.add(m[1]!);
  }
  return names;
}

/** Metric names in PromQL: identifiers followed by `{`, `[`, `)` or space that are not
 * functions, keywords or label names. */
function queriedMetrics(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '{}').replace(/by \([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b((?:dsync|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!)
    .map((n) => n.replace(/_(bucket|sum|count)$/, ''));
}

function expressions(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(expressions);
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) =>
    (k === 'expr' && typeof v === 'string') ? [v] : expressions(v));
}

describe('Grafana dashboards', () => {
  it('are the files that scripts/dashboards.ts generates', () => {
    const files = readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(DASHBOARDS.map((d) => d.file).sort());
    for (const d of DASHBOARDS) {
      expect(readFileSync(join(DASHBOARD_DIR, d.file), 'utf8'), `${d.file} is stale: run ` +
        'npx tsx scripts/dashboards.ts').toBe(renderDashboard(d));
    }
  });

  it('query only metrics that exist', () => {
    const known = new Set([...exportedMetrics(), ...QUEUE_METRICS, ...DEFAULT_METRICS]);
    expect(known.has('dsync_raft_is_leader')).toBe(true);
    const unknown: string[] = [];
    for (const d of DASHBOARDS) {
      const json = JSON.parse(readFileSync(join(DASHBOARD_DIR, d.file), 'utf8')) as unknown;
      for (const e of expressions(json)) {
        for (const m of queriedMetrics(e)) if (!known.has(m)) unknown.push(`${d.file}: ${m}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('cover what an operator needs on each dashboard', () => {
    const titles = (file: string): string[] => (JSON.parse(readFileSync(join(DASHBOARD_DIR, file),
      'utf8')) as { panels: Array<{ title: string }> }).panels.map((p) => p.title);
    expect(titles('dsync-overview.json')).toEqual(expect.arrayContaining(['Lock has a leader',
      'Leader changes (15 min)', 'Commit/apply lag', 'WAL fsync p99']));
    expect(titles('dsync-locks.json')).toEqual(expect.arrayContaining(['Acquire wait',
      'Deadlocks and lease expiries']));
    expect(titles('dsync-queue.json')).toEqual(expect.arrayContaining(['Ready messages by topic',
      'Oldest message age', 'Redeliveries and dead letters']));
    expect(titles('dsync-cache.json')).toEqual(expect.arrayContaining(['Hit ratio',
      'Lines by MESI state', 'Invalidations', 'Dirty bytes']));
  });
});

describe('alert rules', () => {
  it('query only metrics that exist', () => {
    const known = new Set([...exportedMetrics(), ...QUEUE_METRICS]);
    const rule = find(render(['values-prod.yaml']), 'PrometheusRule', 'dsync');
    const exprs = expressions(rule['spec']);
    expect(exprs.length).toBeGreaterThanOrEqual(7);
    const unknown = exprs.flatMap(queriedMetrics).filter((m) => !known.has(m));
    expect(unknown).toEqual([]);
  });
});
