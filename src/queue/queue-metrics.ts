// The queue's metrics (the Helm chart's dashboards and alerts use these names). Per topic and
// group, read from the partitions at scrape time and emitted only by each partition's leader,
// so that summing over pods does not count a partition three times. The partitions' counters
// count what this replica applied since it started (or last restored a snapshot), so a
// counter series restarts from its replica's count when leadership moves: rate() handles that
// as a counter reset. Label series are bounded: the `seriesMax` (topic, group) pairs with the
// largest backlog are emitted by name; the rest are summed into topic="(other)".
// Per partition, leader, term and commit lag are the Raft series (group = partition number).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { PartitionMetrics } from './partition-views.js';

/** (topic, group) series emitted per pod at most, by default. */
export const DEFAULT_METRIC_SERIES_MAX = 200;
/** The label of everything beyond the bound. */
export const OTHER_LABEL = '(other)';
/** A scrape reads the partitions once, however many series it collects. */
const SNAPSHOT_TTL_MS = 250;

export interface QueueMetrics {
  /** Requests refused by a bound before or when they applied, by limit. */
  readonly refused: Counter<'limit'>;
}

interface Row {
  topic: string;
  group: string;
  ready: number;
  inflight: number;
  oldestAgeSeconds: number;
  delivered: number;
  acked: number;
  redelivered: number;
  deadLettered: number;
}

interface TopicRow {
  topic: string;
  published: number;
  dedupHits: number;
}

interface Collected {
  readonly atMs: number;
  readonly rows: Row[];
  readonly topics: TopicRow[];
}

/** Folds the partitions this pod leads into bounded rows. */
export function collectRows(led: readonly PartitionMetrics[], seriesMax: number, nowMs: number):
  Omit<Collected, 'atMs'> {
  const rows: Row[] = [];
  const topics: TopicRow[] = [];
  for (const pm of led) {
    for (const t of pm.topics) {
      topics.push({ topic: t.topic, published: t.counters.published,
        dedupHits: t.counters.dedupHits });
      for (const g of t.groups) {
        rows.push({ topic: t.topic, group: g.group, ready: g.ready, inflight: g.inflight,
          oldestAgeSeconds: g.oldestPublishedAt === null ? 0
            : Math.max(0, (nowMs - g.oldestPublishedAt) / 1000),
          delivered: g.counters.delivered, acked: g.counters.acked,
          redelivered: g.counters.redelivered, deadLettered: g.counters.deadLettered });
      }
    }
  }
  return { rows: bound(rows, seriesMax), topics: boundTopics(topics, seriesMax) };
}

function bound(rows: Row[], max: number): Row[] {
  if (rows.length <= max) return rows;
  rows.sort((a, b) => (b.ready + b.inflight) - (a.ready + a.inflight) ||
    (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.group < b.group ? -1 : 1));
  const kept = rows.slice(0, max - 1);
  const other: Row = { topic: OTHER_LABEL, group: OTHER_LABEL, ready: 0, inflight: 0,
    oldestAgeSeconds: 0, delivered: 0, acked: 0, redelivered: 0, deadLettered: 0 };
  for (const r of rows.slice(max - 1)) {
    other.ready += r.ready;
    other.inflight += r.inflight;
    other.oldestAgeSeconds = Math.max(other.oldestAgeSeconds, r.oldestAgeSeconds);
    other.delivered += r.delivered;
    other.acked += r.acked;
    other.redelivered += r.redelivered;
    other.deadLettered += r.deadLettered;
  }
  kept.push(other);
  return kept;
}

function boundTopics(topics: TopicRow[], max: number): TopicRow[] {
  if (topics.length <= max) return topics;
  topics.sort((a, b) => b.published - a.published || (a.topic < b.topic ? -1 : 1));
  const kept = topics.slice(0, max - 1);
  const other: TopicRow = { topic: OTHER_LABEL, published: 0, dedupHits: 0 };
  for (const t of topics.slice(max - 1)) {
    other.published += t.published;
    other.dedupHits += t.dedupHits;
  }
  kept.push(other);
  return kept;
}

/** Registers the queue series; `led()` gives the metrics of the partitions this pod leads. */
export function createQueueMetrics(registry: Registry, led: () => PartitionMetrics[],
  opts: { seriesMax?: number; longPolls: () => number }): QueueMetrics {
  const seriesMax = opts.seriesMax ?? DEFAULT_METRIC_SERIES_MAX;
  let last: Collected | null = null;
  const collected = (): Collected => {
    const now = Date.now();
    if (last === null || now - last.atMs > SNAPSHOT_TTL_MS) {
      last = { atMs: now, ...collectRows(led(), seriesMax, now) };
    }
    return last;
  };
  const registers = [registry];
  const groupGauge = (name: string, help: string, pick: (r: Row) => number): void => {
    new Gauge({ name, help, labelNames: ['topic', 'group'] as const, registers, collect() {
      this.reset();
      for (const r of collected().rows) this.set({ topic: r.topic, group: r.group }, pick(r));
    } });
  };
  const groupCounter = (name: string, help: string, pick: (r: Row) => number): void => {
    new Counter({ name, help, labelNames: ['topic', 'group'] as const, registers, collect() {
      this.reset();
      for (const r of collected().rows) this.inc({ topic: r.topic, group: r.group }, pick(r));
    } });
  };
  const topicCounter = (name: string, help: string, pick: (t: TopicRow) => number): void => {
    new Counter({ name, help, labelNames: ['topic'] as const, registers, collect() {
      this.reset();
      for (const t of collected().topics) this.inc({ topic: t.topic }, pick(t));
    } });
  };
  groupGauge('dsync_queue_ready_messages', 'Messages a receive of the group could take now',
    (r) => r.ready);
  groupGauge('dsync_queue_inflight_messages', 'Deliveries of the group not yet acked or expired',
    (r) => r.inflight);
  groupGauge('dsync_queue_oldest_message_age_seconds',
    'Age of the oldest message the group has not finished', (r) => r.oldestAgeSeconds);
  topicCounter('dsync_queue_published_total', 'Messages published (dedup hits excluded)',
    (t) => t.published);
  topicCounter('dsync_queue_dedup_hits_total', 'Publishes answered by a dedupId seen before',
    (t) => t.dedupHits);
  groupCounter('dsync_queue_delivered_total', 'Deliveries to the group (redeliveries included)',
    (r) => r.delivered);
  groupCounter('dsync_queue_acked_total', 'Deliveries acked by the group', (r) => r.acked);
  groupCounter('dsync_queue_redeliveries_total', 'Deliveries after the first',
    (r) => r.redelivered);
  groupCounter('dsync_queue_dead_letters_total', 'Messages the group moved to the DLQ',
    (r) => r.deadLettered);
  new Gauge({ name: 'dsync_queue_long_polls', help: 'Receives waiting on this node',
    registers, collect() { this.set(opts.longPolls()); } });
  return {
    refused: new Counter({ name: 'dsync_queue_refused_total',
      help: 'Requests refused by a bound (429/413), by limit', labelNames: ['limit'],
      registers }),
  };
}
