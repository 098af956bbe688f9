// The Grafana dashboards of the Helm chart (helm/dsync/dashboards/*.json), generated from the
// short descriptions below so that every panel has the same shape and the queries use the
// metric names the nodes really export (test/k8s/dashboards.test.ts checks both: the files
// match this script, and every metric named exists in src/ or is an agreed queue metric).
//
//   npx tsx scripts/dashboards.ts          rewrite the JSON files
//   npx tsx scripts/dashboards.ts --check  exit 1 when a file differs from what it would write
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DASHBOARD_DIR = resolve(import.meta.dirname, '..', 'helm', 'dsync', 'dashboards');

type Unit = 'short' | 's' | 'bytes' | 'percentunit' | 'reqps' | 'ops';

interface PanelSpec {
  readonly title: string;
  readonly description: string;
  /** PromQL and legend, one pair per series. */
  readonly targets: ReadonlyArray<readonly [expr: string, legend: string]>;
  readonly unit?: Unit;
  /** stat: one big number; timeseries otherwise. */
  readonly stat?: boolean;
  /** Width in grid columns (24 per row); default 8 (three per row). */
  readonly width?: number;
}

interface DashboardSpec {
  readonly file: string;
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly panels: readonly PanelSpec[];
}

/** p99 of a histogram, by some labels; `selector` like `{service="queue"}`. */
const p99 = (metric: string, by: string, selector = ''): string =>
  `histogram_quantile(0.99, sum by (le, ${by}) (rate(${metric}_bucket${selector}[5m])))`;

const OVERVIEW: DashboardSpec = {
  file: 'dsync-overview.json', uid: 'dsync-overview', title: 'dsync / Cluster overview',
  description: 'Leaders, request rates, errors and latency of the lock, queue and cache services',
  panels: [
    { title: 'Lock has a leader', stat: true, width: 6,
      description: '1 when a lock node leads; 0 means writes fail with UNAVAILABLE',
      targets: [['max(dsync_raft_is_leader{service="lock"})', 'leader']] },
    { title: 'Queue partitions with a leader', stat: true, width: 6,
      description: 'Partitions (Raft groups) whose leader is known',
      targets: [['count(max by (group) (dsync_raft_is_leader{service="queue"}) == 1)',
        'partitions']] },
    { title: 'Leader changes (15 min)', stat: true, width: 6,
      description: 'Elections in the last 15 minutes, most seen by any node per group',
      targets: [['sum by (service) (max by (service, group) ' +
        '(increase(dsync_raft_leader_changes_total[15m])))', '{{service}}']] },
    { title: 'Cache hit ratio', stat: true, width: 6, unit: 'percentunit',
      description: 'Operations served from the pod\'s own line',
      targets: [['sum(rate(dsync_cache_hits_total[5m])) / (sum(rate(dsync_cache_hits_total[5m]))' +
        ' + sum(rate(dsync_cache_misses_total[5m])))', 'hit ratio']] },
    { title: 'Requests by service', unit: 'reqps', description: 'HTTP requests answered',
      targets: [['sum by (service) (rate(dsync_http_requests_total[1m]))', '{{service}}']] },
    { title: 'Errors by service and status', unit: 'reqps',
      description: '4xx (caller) and 5xx (server) answers',
      targets: [['sum by (service, status) (rate(dsync_http_requests_total{status=~"[45].."}[1m]))',
        '{{service}} {{status}}']] },
    { title: 'Request latency p99', unit: 's', description: 'Per service, all routes',
      targets: [[p99('dsync_http_request_duration_seconds', 'service'), '{{service}}']] },
    { title: 'Raft commit latency p99', unit: 's', description: 'Proposal to local apply',
      targets: [[p99('dsync_raft_commit_latency_seconds', 'service'), '{{service}}']] },
    { title: 'Commit/apply lag', unit: 'short',
      description: 'Entries committed but not yet applied, per node',
      targets: [['max by (node) (dsync_raft_commit_index - dsync_raft_applied_index)', '{{node}}']] },
    { title: 'WAL fsync p99', unit: 's', description: 'Every commit waits for it',
      targets: [[p99('dsync_wal_fsync_duration_seconds', 'node'), '{{node}}']] },
    { title: 'Forwarded requests', unit: 'reqps',
      description: 'Requests a node passed to the leader or home node',
      targets: [['sum by (service, outcome) (rate(dsync_http_forwarded_total[1m]))',
        '{{service}} {{outcome}}']] },
    { title: 'Resident memory', unit: 'bytes', description: 'Per node',
      targets: [['max by (node) (process_resident_memory_bytes{service=~"lock|queue|cache"})',
        '{{node}}']] },
    { title: 'Event loop lag p99', unit: 's', description: 'Per node; high values delay heartbeats',
      targets: [['max by (node) (nodejs_eventloop_lag_p99_seconds{service=~"lock|queue|cache"})',
        '{{node}}']] },
  ],
};

const LOCKS: DashboardSpec = {
  file: 'dsync-locks.json', uid: 'dsync-locks', title: 'dsync / Locks',
  description: 'The lock service: table size, grants, waits, deadlocks, Raft state',
  panels: [
    { title: 'Held locks', stat: true, width: 6, description: 'Locks held or waited on',
      targets: [['max(dsync_lock_locks)', 'locks']] },
    { title: 'Holders', stat: true, width: 6, description: 'Grants in the table',
      targets: [['max(dsync_lock_holders)', 'holders']] },
    { title: 'Waiters', stat: true, width: 6, description: 'Requests queued behind holders',
      targets: [['max(dsync_lock_waiters)', 'waiters']] },
    { title: 'Term', stat: true, width: 6, description: 'Raft term of the lock group',
      targets: [['max(dsync_raft_term{service="lock"})', 'term']] },
    { title: 'Grants', unit: 'ops', description: 'Locks granted per second',
      targets: [['sum(rate(dsync_lock_grants_total[1m]))', 'grants']] },
    { title: 'Acquire wait', unit: 's', description: 'From request to answer, p50 and p99',
      targets: [
        ['histogram_quantile(0.5, sum by (le) (rate(dsync_lock_acquire_wait_seconds_bucket[5m])))',
          'p50'],
        ['histogram_quantile(0.99, sum by (le) (rate(dsync_lock_acquire_wait_seconds_bucket[5m])))',
          'p99'],
      ] },
    { title: 'Deadlocks and lease expiries', unit: 'short',
      description: 'Acquires refused as deadlocks; leases that ran out (per 5 min)',
      targets: [
        ['sum(increase(dsync_lock_deadlocks_total[5m]))', 'deadlocks'],
        ['sum(increase(dsync_lock_lease_expiries_total[5m]))', 'expiries'],
      ] },
    { title: 'Leader', unit: 'short', description: '1 on the node that leads',
      targets: [['max by (node) (dsync_raft_is_leader{service="lock"})', '{{node}}']] },
    { title: 'Proposals by outcome', unit: 'ops', description: 'ok, not_leader, timeout…',
      targets: [['sum by (outcome) (rate(dsync_raft_proposals_total{service="lock"}[1m]))',
        '{{outcome}}']] },
    { title: 'Requests by route', unit: 'reqps', description: 'Lock API calls',
      targets: [['sum by (route, status) (rate(dsync_http_requests_total{service="lock"}[1m]))',
        '{{route}} {{status}}']] },
  ],
};

const QUEUE: DashboardSpec = {
  file: 'dsync-queue.json', uid: 'dsync-queue', title: 'dsync / Queue',
  description: 'The queue service: depth and age per topic, deliveries, redeliveries, DLQ',
  panels: [
    { title: 'Ready messages by topic', unit: 'short', width: 12,
      description: 'Messages waiting for a consumer, per topic and consumer group',
      targets: [['sum by (topic, group) (dsync_queue_ready_messages)', '{{topic}} / {{group}}']] },
    { title: 'Oldest message age', unit: 's', width: 12,
      description: 'Age of the oldest unacknowledged message',
      targets: [['max by (topic, group) (dsync_queue_oldest_message_age_seconds)',
        '{{topic}} / {{group}}']] },
    { title: 'In flight', unit: 'short', description: 'Received and not yet acked',
      targets: [['sum by (topic, group) (dsync_queue_inflight_messages)',
        '{{topic}} / {{group}}']] },
    { title: 'Publish, deliver, ack', unit: 'ops', description: 'Messages per second',
      targets: [
        ['sum(rate(dsync_queue_published_total[1m]))', 'published'],
        ['sum(rate(dsync_queue_delivered_total[1m]))', 'delivered'],
        ['sum(rate(dsync_queue_acked_total[1m]))', 'acked'],
      ] },
    { title: 'Redeliveries and dead letters', unit: 'short',
      description: 'Per 5 min: visibility ran out (redelivered); maxDeliveries reached (DLQ)',
      targets: [
        ['sum by (topic) (increase(dsync_queue_redeliveries_total[5m]))', 'redelivered {{topic}}'],
        ['sum by (topic) (increase(dsync_queue_dead_letters_total[5m]))', 'DLQ {{topic}}'],
      ] },
    { title: 'Dedup hits', unit: 'ops', description: 'Re-publishes answered with the first id',
      targets: [['sum(rate(dsync_queue_dedup_hits_total[5m]))', 'dedup hits']] },
    { title: 'Partition leaders per node', unit: 'short',
      description: 'How many partitions each node leads',
      targets: [['sum by (node) (dsync_raft_is_leader{service="queue"})', '{{node}}']] },
    { title: 'Leader changes by partition', unit: 'short', description: 'Per 15 min',
      targets: [['max by (group) (increase(dsync_raft_leader_changes_total{service="queue"}[15m]))',
        'partition {{group}}']] },
    { title: 'Commit latency p99', unit: 's', description: 'Publish/ack commands',
      targets: [[p99('dsync_raft_commit_latency_seconds', 'node', '{service="queue"}'),
        '{{node}}']] },
  ],
};

const CACHE: DashboardSpec = {
  file: 'dsync-cache.json', uid: 'dsync-cache', title: 'dsync / Cache',
  description: 'The coherent cache: hit ratio, MESI states, invalidations, dirty bytes, store',
  panels: [
    { title: 'Hit ratio', unit: 'percentunit', description: 'Hits / (hits + misses), per node',
      targets: [['sum by (node) (rate(dsync_cache_hits_total[5m])) / (sum by (node) ' +
        '(rate(dsync_cache_hits_total[5m])) + sum by (node) (rate(dsync_cache_misses_total[5m])))',
      '{{node}}']] },
    { title: 'Lines by MESI state', unit: 'short', description: 'Modified, Exclusive, Shared',
      targets: [['sum by (state) (dsync_cache_lines)', '{{state}}']] },
    { title: 'Dirty bytes', unit: 'bytes',
      description: 'Written on a pod and not yet home: lost on kill -9 in write-back mode',
      targets: [['max by (node) (dsync_cache_dirty_bytes)', '{{node}}']] },
    { title: 'Invalidations', unit: 'ops', description: 'inv messages sent and received',
      targets: [
        ['sum(rate(dsync_cache_invalidations_sent_total[1m]))', 'sent'],
        ['sum(rate(dsync_cache_invalidations_received_total[1m]))', 'received'],
      ] },
    { title: 'Recalls, write-backs, evictions', unit: 'ops', description: 'Per second',
      targets: [
        ['sum(rate(dsync_cache_recalls_total[1m]))', 'recalls'],
        ['sum(rate(dsync_cache_writebacks_total[1m]))', 'write-backs'],
        ['sum(rate(dsync_cache_evictions_total[1m]))', 'evictions'],
      ] },
    { title: 'Bytes cached', unit: 'bytes', description: 'What the LRU charges, per node',
      targets: [['max by (node) (dsync_cache_bytes)', '{{node}}']] },
    { title: 'Operation latency p99', unit: 's', description: 'read, write, delete',
      targets: [[p99('dsync_cache_op_duration_seconds', 'op'), '{{op}}']] },
    { title: 'Coherence request p99', unit: 's', description: 'getS/getM to a remote home',
      targets: [[p99('dsync_cache_coherence_request_duration_seconds', 'type'), '{{type}}']] },
    { title: 'Backing store latency p99', unit: 's', description: 'Redis or embedded store',
      targets: [[p99('dsync_cache_store_duration_seconds', 'store, op'), '{{store}} {{op}}']] },
    { title: 'Store writes by outcome', unit: 'ops', description: 'Versions written',
      targets: [['sum by (outcome) (rate(dsync_cache_store_writes_total[1m]))', '{{outcome}}']] },
    { title: 'Pending write-backs', unit: 'short', description: 'Sent home, not yet stored',
      targets: [['max by (node) (dsync_cache_pending_writebacks)', '{{node}}']] },
    { title: 'Directory entries', unit: 'short', description: 'Keys each node is home for',
      targets: [['max by (node) (dsync_cache_directory_entries)', '{{node}}']] },
  ],
};

export const DASHBOARDS: readonly DashboardSpec[] = [OVERVIEW, LOCKS, QUEUE, CACHE];

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

function panel(spec: PanelSpec, id: number, x: number, y: number): Record<string, unknown> {
  const w = spec.width ?? 8;
  const h = spec.stat === true ? 4 : 8;
  return {
    id, type: spec.stat === true ? 'stat' : 'timeseries', title: spec.title,
    description: spec.description, datasource: DATASOURCE,
    gridPos: { x, y, w, h },
    fieldConfig: { defaults: { unit: spec.unit ?? 'short' }, overrides: [] },
    options: spec.stat === true
      ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value' }
      : { legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'multi', sort: 'desc' } },
    targets: spec.targets.map(([expr, legendFormat], i) => ({
      datasource: DATASOURCE, expr, legendFormat, refId: String.fromCharCode(65 + i),
    })),
  };
}

/** The dashboard JSON: panels laid out left to right, wrapping at 24 columns. */
export function renderDashboard(spec: DashboardSpec): string {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const panels = spec.panels.map((p, i) => {
    const w = p.width ?? 8;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const out = panel(p, i + 1, x, y);
    x += w;
    rowHeight = Math.max(rowHeight, p.stat === true ? 4 : 8);
    return out;
  });
  const dashboard = {
    uid: spec.uid, title: spec.title, description: spec.description,
    tags: ['dsync'], editable: false, schemaVersion: 39, version: 1,
    time: { from: 'now-1h', to: 'now' }, refresh: '30s', timezone: '',
    templating: { list: [{ name: 'datasource', label: 'Data source', type: 'datasource',
      query: 'prometheus', current: {}, hide: 0 }] },
    links: DASHBOARDS.filter((d) => d.uid !== spec.uid).map((d) => ({
      title: d.title, type: 'link', url: `/d/${d.uid}`, keepTime: true })),
    panels,
  };
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}

function main(): void {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const d of DASHBOARDS) {
    const path = join(DASHBOARD_DIR, d.file);
    const want = renderDashboard(d);
    if (!check) {
      writeFileSync(path, want);
      continue;
    }
    let have = '';
    try {
      have = readFileSync(path, 'utf8');
    } catch {
      // A missing file is reported as stale below.
    }
    if (have !== want) {
      stale++;
      process.stderr.write(`${path} is stale: run npx tsx scripts/dashboards.ts\n`);
    }
  }
  if (stale > 0) process.exit(1);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === import.meta.filename) main();
