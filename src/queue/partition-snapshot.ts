// The snapshot bytes of a queue partition: msgpack of rows, deterministic for equal states.
// Topics and groups sorted by name, delivery records by position; the log, the delayed
// messages, retry queues and the dedup window in their own (replicated) order. Only
// replicated state is written; every index (pending and fresh counts, timers, byte totals)
// is rebuilt on restore, and a decoded snapshot is checked row by row.
import { assert } from '../assert.js';
import { decode, encode } from '../runtime/envelope.js';
import type { MessageBody } from './partition-commands.js';
import {
  MAX_DELIVERIES_MAX, MAX_DELIVERIES_MIN, RETENTION_MS_MAX, RETENTION_MS_MIN, VISIBILITY_MS_MAX,
  VISIBILITY_MS_MIN,
} from './partition-limits.js';
import { countFreeDlqs, type PartitionState } from './partition-state.js';
import {
  TIMER_DELAYED, TIMER_LEASE, TIMER_RETENTION, TIMER_SCHEDULED,
} from './partition-timers.js';
import {
  Group, Topic, type Delivery, type DeliveryKind, type Entry, type Scheduled,
} from './partition-topic.js';

const FORMAT_VERSION = 1;

type EntryRow = [number, number, string | null, MessageBody, number, number, string | null,
  string | null, number];
type ScheduledRow = [number, string | null, MessageBody, number, number, number];
type StateRow = [number, number, number, number, number];
type GroupRow = [string, number, StateRow[], number[]];
type TopicRow = [string, number, number, number, number, EntryRow[], ScheduledRow[],
  GroupRow[]];
type DedupRow = [string, string, number, number];

const KINDS: readonly DeliveryKind[] = ['inflight', 'ready', 'delayed', 'parked'];

function byName<T extends { readonly name: string }>(xs: Iterable<T>): T[] {
  return [...xs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function groupRow(g: Group): GroupRow {
  const states = [...g.states.values()].sort((a, b) => a.entry.pos - b.entry.pos)
    .map((d): StateRow => [d.entry.pos, KINDS.indexOf(d.kind), d.deliveries, d.tag, d.atMs]);
  const retry = g.retry.toArray().filter((d) => g.isLiveRetry(d)).map((d) => d.entry.pos);
  return [g.name, g.cursor, states, retry];
}

function topicRow(t: Topic): TopicRow {
  const entries = [...t.entries()].map((e): EntryRow =>
    [e.pos, e.seq, e.key, e.body, e.publishedAt, e.atMs, e.only, e.origin, e.bytes]);
  const scheduled = t.scheduled.map((m): ScheduledRow =>
    [m.seq, m.key, m.body, m.publishedAt, m.availableAt, m.bytes]);
  const c = t.config;
  return [t.name, c.maxDeliveries, c.visibilityMs, c.retentionMs, t.nextPos, entries, scheduled,
    byName(t.groups.values()).map(groupRow)];
}

export function encodePartitionState(s: PartitionState): Uint8Array {
  const dedup = s.dedup.rows().map((d): DedupRow => [d.topic, d.dedupId, d.seq, d.atMs]);
  return encode([FORMAT_VERSION, s.nowMs, s.nextSeq, s.deliveryCount,
    byName(s.topics.values()).map(topicRow), dedup]);
}

// ---- decoding -------------------------------------------------------------------------------

function int(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  assert(typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max,
    () => `snapshot: ${what} must be an integer in ${min}..${max}, got ${String(v)}`);
  return v;
}

function str(v: unknown, what: string): string {
  assert(typeof v === 'string' && v.length > 0, `snapshot: ${what} must be a string`);
  return v;
}

function strOrNull(v: unknown, what: string): string | null {
  return v === null ? null : str(v, what);
}

function body(v: unknown): MessageBody {
  if (typeof v === 'string') return v;
  assert(v instanceof Uint8Array, 'snapshot: a body is text or bytes');
  return new Uint8Array(v);
}

function rows(v: unknown, width: number, what: string): unknown[][] {
  assert(Array.isArray(v), `snapshot: ${what} must be an array`);
  for (const r of v) {
    assert(Array.isArray(r) && r.length === width, `snapshot: ${what} rows have ${width} cells`);
  }
  return v as unknown[][];
}

function decodeEntries(t: Topic, cells: unknown): Map<number, Entry> {
  const byPos = new Map<number, Entry>();
  let lastPos = 0;
  for (const r of rows(cells, 9, 'entries')) {
    const e: Entry = { pos: int(r[0], 'pos', 1), seq: int(r[1], 'seq', 1),
      key: strOrNull(r[2], 'key'), body: body(r[3]), publishedAt: int(r[4], 'publishedAt'),
      atMs: int(r[5], 'atMs'), only: strOrNull(r[6], 'only'), origin: strOrNull(r[7], 'origin'),
      bytes: int(r[8], 'bytes', 1), pending: 0, gone: false };
    assert(e.pos > lastPos && e.pos < t.nextPos, 'snapshot: entries in log order');
    lastPos = e.pos;
    t.restoreEntry(e);
    byPos.set(e.pos, e);
  }
  return byPos;
}

function decodeScheduled(t: Topic, cells: unknown): void {
  for (const r of rows(cells, 6, 'scheduled')) {
    const m: Scheduled = { seq: int(r[0], 'seq', 1), key: strOrNull(r[1], 'key'), body: body(r[2]),
      publishedAt: int(r[3], 'publishedAt'), availableAt: int(r[4], 'availableAt'),
      bytes: int(r[5], 'bytes', 1) };
    const prev = t.scheduled[t.scheduled.length - 1];
    assert(prev === undefined || prev.availableAt < m.availableAt ||
      (prev.availableAt === m.availableAt && prev.seq < m.seq), 'snapshot: delayed in order');
    t.schedule(m);
  }
}

function decodeGroup(row: unknown[], byPos: ReadonlyMap<number, Entry>): Group {
  const g = new Group(str(row[0], 'group'));
  g.cursor = int(row[1], 'cursor');
  let lastPos = 0;
  for (const r of rows(row[2], 5, 'deliveries')) {
    const entry = byPos.get(int(r[0], 'delivery pos', 1));
    assert(entry !== undefined, 'snapshot: a delivery names a retained entry');
    assert(entry.pos > lastPos, 'snapshot: deliveries sorted by position');
    lastPos = entry.pos;
    const kind = KINDS[int(r[1], 'delivery kind', 0, KINDS.length - 1)];
    assert(kind !== undefined, 'snapshot: delivery kind');
    const d: Delivery = { entry, kind, deliveries: int(r[2], 'deliveries', 1, MAX_DELIVERIES_MAX),
      tag: int(r[3], 'tag', 0, 0xffffffff), atMs: int(r[4], 'delivery atMs') };
    g.addState(d);
  }
  assert(Array.isArray(row[3]), 'snapshot: retry queue is an array');
  for (const pos of row[3] as unknown[]) {
    const d = g.states.get(int(pos, 'retry pos', 1));
    assert(d !== undefined && d.kind === 'ready', 'snapshot: retry queue lists ready ones');
    g.retry.push(d);
  }
  assert(g.retry.length === g.count.ready, 'snapshot: every ready delivery queued once');
  return g;
}

function decodeTopic(s: PartitionState, r: unknown[]): Topic {
  const t = new Topic(str(r[0], 'topic'), Object.freeze({
    maxDeliveries: int(r[1], 'maxDeliveries', MAX_DELIVERIES_MIN, MAX_DELIVERIES_MAX),
    visibilityMs: int(r[2], 'visibilityMs', VISIBILITY_MS_MIN, VISIBILITY_MS_MAX),
    retentionMs: int(r[3], 'retentionMs', RETENTION_MS_MIN, RETENTION_MS_MAX),
  }), s.acct);
  t.nextPos = int(r[4], 'nextPos', 1);
  const byPos = decodeEntries(t, r[5]);
  decodeScheduled(t, r[6]);
  let previous = '';
  for (const row of rows(r[7], 4, 'groups')) {
    const g = decodeGroup(row, byPos);
    assert(g.name > previous, 'snapshot: groups sorted by name, no repeats');
    previous = g.name;
    t.groups.set(g.name, g);
  }
  rebuildCounts(t);
  return t;
}

/** pending per entry and fresh per group, from the cursors and the records. */
function rebuildCounts(t: Topic): void {
  for (const e of t.entries()) {
    for (const g of t.groups.values()) {
      if (!g.applies(e)) continue;
      if (e.pos >= g.cursor) {
        g.fresh++;
        e.pending++;
      } else if (g.states.has(e.pos)) {
        e.pending++;
      }
    }
  }
}

function armTimers(s: PartitionState, t: Topic): void {
  for (const g of t.groups.values()) {
    for (const d of g.states.values()) {
      if (d.kind !== 'inflight' && d.kind !== 'delayed') continue;
      s.timers.push({ atMs: d.atMs, kind: d.kind === 'inflight' ? TIMER_LEASE : TIMER_DELAYED,
        topic: t.name, group: g.name, pos: d.entry.pos });
    }
  }
  const next = t.scheduled[0];
  if (next !== undefined) {
    s.timers.push({ atMs: next.availableAt, kind: TIMER_SCHEDULED, topic: t.name, group: '',
      pos: 0 });
  }
  const first = t.first();
  if (first !== undefined) {
    s.timers.push({ atMs: first.atMs + t.config.retentionMs, kind: TIMER_RETENTION,
      topic: t.name, group: '', pos: 0 });
  }
}

/** Fills a fresh state from snapshot bytes. Snapshots are CRC-checked by storage, so
 * malformed bytes here are a bug (or a format from the future) and fail an assertion. */
export function decodePartitionState(data: Uint8Array, s: PartitionState): PartitionState {
  const doc = decode<unknown>(data);
  assert(Array.isArray(doc) && doc.length === 6, 'snapshot: a queue partition image');
  assert(doc[0] === FORMAT_VERSION, `snapshot: format version ${String(doc[0])} is unknown`);
  s.nowMs = int(doc[1], 'nowMs');
  s.nextSeq = int(doc[2], 'nextSeq', 1);
  s.deliveryCount = int(doc[3], 'deliveryCount');
  let previous = '';
  for (const r of rows(doc[4], 8, 'topics')) {
    const t = decodeTopic(s, r);
    assert(s.topics.size === 0 || t.name > previous, 'snapshot: topics sorted, no repeats');
    previous = t.name;
    s.topics.set(t.name, t);
  }
  for (const t of s.topics.values()) armTimers(s, t);
  s.freeDlqs = countFreeDlqs(s.topics);
  for (const r of rows(doc[5], 4, 'dedup')) {
    s.dedup.remember({ topic: str(r[0], 'dedup topic'), dedupId: str(r[1], 'dedupId'),
      seq: int(r[2], 'dedup seq', 1), atMs: int(r[3], 'dedup atMs') });
  }
  return s;
}
