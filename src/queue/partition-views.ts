// Read-only views of a partition: GET /v1/queues/{topic}, /metrics, and a per-message listing
// for diagnostics and tests. Views change nothing and list topics and groups sorted by name.
import { assert } from '../assert.js';
import { dlqTopicOf, type TopicConfigView } from './partition-commands.js';
import type { PartitionState } from './partition-state.js';
import type { DeliveryKind, Group, GroupCounters, Topic, TopicCounters } from './partition-topic.js';

export interface GroupView {
  readonly group: string;
  /** Messages a receive could take now or after their redelivery delay: never delivered to
   * the group, or ready for redelivery. Delayed nacks are counted apart, in `delayed`. */
  readonly ready: number;
  readonly inflight: number;
  /** Nacked with a delay that has not ended. */
  readonly delayed: number;
  /** In a DLQ: at maxDeliveries, kept but no longer delivered to this group. */
  readonly parked: number;
}

export interface TopicView {
  readonly topic: string;
  readonly config: TopicConfigView;
  /** Messages retained in the log (not yet deleted or trimmed). */
  readonly messages: number;
  /** Published with a delay that has not ended (not yet in the log). */
  readonly delayed: number;
  readonly bytes: number;
  /** Sorted by name. */
  readonly groups: readonly GroupView[];
  /** Messages now in `{topic}.dlq`. */
  readonly dlq: number;
}

export interface GroupMetrics extends GroupView {
  /** publishedAt of the oldest message the group has not finished, or null. */
  readonly oldestPublishedAt: number | null;
  readonly counters: Readonly<GroupCounters>;
}

export interface TopicMetrics {
  readonly topic: string;
  readonly messages: number;
  readonly delayed: number;
  readonly bytes: number;
  /** publishedAt of the oldest retained message in the log, or null. */
  readonly oldestPublishedAt: number | null;
  readonly counters: Readonly<TopicCounters>;
  readonly groups: readonly GroupMetrics[];
}

export interface PartitionMetrics {
  readonly nowMs: number;
  readonly bytes: number;
  readonly dedupEntries: number;
  readonly topics: readonly TopicMetrics[];
}

export type GroupMessageState = 'fresh' | DeliveryKind;

export interface GroupMessageView {
  readonly id: string;
  /** Position in the topic's log (what receipts name). */
  readonly pos: number;
  readonly key: string | null;
  readonly state: GroupMessageState;
  /** Deliveries so far (0 for fresh). */
  readonly deliveries: number;
  /** The lease deadline (inflight) or end of the delay (delayed); otherwise null. */
  readonly untilMs: number | null;
}

export interface LogEntryView {
  readonly id: string;
  readonly pos: number;
  readonly key: string | null;
  readonly publishedAt: number;
  /** When it entered this topic (retention counts from here). */
  readonly atMs: number;
  /** A redriven message is for this group only; null: every group. */
  readonly only: string | null;
  /** In a DLQ: the group that dead-lettered it. */
  readonly origin: string | null;
}

function groupView(g: Group): GroupView {
  return { group: g.name, ready: g.fresh + g.count.ready, inflight: g.count.inflight,
    delayed: g.count.delayed, parked: g.count.parked };
}

function sortedGroups(t: Topic): Group[] {
  return [...t.groups.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

export function topicViewOf(s: PartitionState, name: string): TopicView | null {
  const t = s.topics.get(name);
  if (t === undefined) return null;
  const c = t.config;
  return {
    topic: name,
    config: { topic: name, maxDeliveries: c.maxDeliveries, visibilityMs: c.visibilityMs,
      retentionMs: c.retentionMs },
    messages: t.live,
    delayed: t.scheduled.length,
    bytes: t.bytes,
    groups: sortedGroups(t).map(groupView),
    dlq: s.topics.get(dlqTopicOf(name))?.live ?? 0,
  };
}

function oldestOf(t: Topic, g: Group): number | null {
  let oldest = t.peekFresh(g)?.publishedAt ?? null;
  for (const d of g.states.values()) {
    if (oldest === null || d.entry.publishedAt < oldest) oldest = d.entry.publishedAt;
  }
  return oldest;
}

export function metricsOf(s: PartitionState): PartitionMetrics {
  const topics = [...s.topics.keys()].sort().map((name): TopicMetrics => {
    const t = s.topics.get(name);
    assert(t !== undefined, 'a listed topic exists');
    return {
      topic: name, messages: t.live, delayed: t.scheduled.length, bytes: t.bytes,
      oldestPublishedAt: t.first()?.publishedAt ?? null, counters: { ...t.counters },
      groups: sortedGroups(t).map((g) => ({ ...groupView(g), oldestPublishedAt: oldestOf(t, g),
        counters: { ...g.counters } })),
    };
  });
  return { nowMs: s.nowMs, bytes: s.acct.bytes, dedupEntries: s.dedup.size, topics };
}

export function groupMessagesOf(s: PartitionState, topic: string, group: string):
  GroupMessageView[] {
  const t = s.topics.get(topic);
  const g = t?.groups.get(group);
  if (t === undefined || g === undefined) return [];
  const out: GroupMessageView[] = [];
  for (const e of t.entries()) {
    const d = g.states.get(e.pos);
    if (d === undefined && !g.isFresh(e)) continue;
    out.push({ id: String(e.seq), pos: e.pos, key: e.key, state: d?.kind ?? 'fresh',
      deliveries: d?.deliveries ?? 0,
      untilMs: d !== undefined && (d.kind === 'inflight' || d.kind === 'delayed') ? d.atMs : null });
  }
  return out;
}

export function logOf(s: PartitionState, topic: string): LogEntryView[] {
  const t = s.topics.get(topic);
  if (t === undefined) return [];
  return [...t.entries()].map((e) => ({ id: String(e.seq), pos: e.pos, key: e.key,
    publishedAt: e.publishedAt, atMs: e.atMs, only: e.only, origin: e.origin }));
}
