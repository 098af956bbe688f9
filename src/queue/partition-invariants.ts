// The invariants of a queue partition, checked against the replicated state and the derived
// indexes together. A broken one is a bug: the assertion propagates and the node stops.
import { assert } from '../assert.js';
import { utf8Bytes } from '../cache/coherence-config.js';
import { isDlqTopic } from './partition-commands.js';
import { MAX_DELIVERIES_MAX, MESSAGE_OVERHEAD_BYTES } from './partition-limits.js';
import {
  countFreeDlqs, countedTopics, isTimerLive, type PartitionState,
} from './partition-state.js';
import {
  TIMER_DELAYED, TIMER_LEASE, TIMER_RETENTION, TIMER_SCHEDULED, type Timer,
} from './partition-timers.js';
import type { DeliveryKind, Entry, Group, Topic } from './partition-topic.js';

function timerKey(t: Pick<Timer, 'atMs' | 'kind' | 'topic' | 'group' | 'pos'>): string {
  return `${t.atMs}/${t.kind}/${t.topic}\u0000${t.group}\u0000${t.pos}`;
}

function entryBytes(e: { readonly body: string | Uint8Array; readonly key: string | null }):
  number {
  const body = typeof e.body === 'string' ? utf8Bytes(e.body) : e.body.length;
  return body + (e.key === null ? 0 : utf8Bytes(e.key)) + MESSAGE_OVERHEAD_BYTES;
}

/** A message is in exactly one state per group: fresh (at or after the cursor, no record),
 * delivered (before the cursor, one record), or finished (before, none). */
function checkGroup(t: Topic, g: Group, entries: ReadonlyMap<number, Entry>, inflightMax: number,
  live: Set<string>): void {
  const where = `${t.name}/${g.name}`;
  const count: Record<DeliveryKind, number> = { inflight: 0, ready: 0, delayed: 0, parked: 0 };
  for (const [pos, d] of g.states) {
    assert(d.entry.pos === pos && entries.get(pos) === d.entry,
      `${where}: delivery ${pos} names a retained entry`);
    assert(pos < g.cursor, `${where}: delivered ${pos} is also fresh (cursor ${g.cursor})`);
    assert(g.applies(d.entry), `${where}: holds an entry for another group`);
    assert(d.deliveries >= 1 && d.deliveries <= MAX_DELIVERIES_MAX,
      `${where}: ${pos} has ${d.deliveries} deliveries`);
    assert(d.kind !== 'parked' || isDlqTopic(t.name), `${where}: parked outside a DLQ`);
    count[d.kind]++;
    if (d.kind === 'inflight' || d.kind === 'delayed') {
      const kind = d.kind === 'inflight' ? TIMER_LEASE : TIMER_DELAYED;
      assert(live.has(timerKey({ atMs: d.atMs, kind, topic: t.name, group: g.name, pos })),
        `${where}: ${d.kind} ${pos} has no timer`);
    } else {
      assert(d.atMs === 0, `${where}: ${d.kind} ${pos} keeps a time`);
    }
  }
  for (const k of Object.keys(count) as DeliveryKind[]) {
    assert(count[k] === g.count[k], `${where}: ${k} counted ${g.count[k]}, is ${count[k]}`);
  }
  assert(g.count.inflight <= inflightMax, `${where}: over inflightPerGroupMax`);
  const queued = g.retry.toArray().filter((d) => g.isLiveRetry(d));
  assert(queued.length === count.ready && new Set(queued).size === queued.length,
    `${where}: every ready delivery is queued once`);
  let fresh = 0;
  for (const e of entries.values()) if (g.isFresh(e)) fresh++;
  assert(fresh === g.fresh, `${where}: fresh counted ${g.fresh}, is ${fresh}`);
}

function checkLog(t: Topic): Map<number, Entry> {
  const entries = new Map<number, Entry>();
  let lastPos = 0;
  let lastAt = -Infinity;
  let bytes = 0;
  for (const e of t.entries()) {
    assert(e.pos > lastPos && e.pos < t.nextPos, `${t.name}: log positions in order`);
    assert(e.atMs >= lastAt, `${t.name}: log times in order`);
    assert(e.bytes === entryBytes(e), `${t.name}: entry ${e.pos} counts ${e.bytes} bytes`);
    assert(e.only === null || t.groups.has(e.only), `${t.name}: entry for a missing group`);
    lastPos = e.pos;
    lastAt = e.atMs;
    bytes += e.bytes;
    entries.set(e.pos, e);
  }
  assert(entries.size === t.live, `${t.name}: live counted ${t.live}, is ${entries.size}`);
  let previous: { availableAt: number; seq: number } | undefined;
  for (const m of t.scheduled) {
    assert(previous === undefined || previous.availableAt < m.availableAt ||
      (previous.availableAt === m.availableAt && previous.seq < m.seq),
    `${t.name}: delayed messages in order`);
    assert(m.bytes === entryBytes(m), `${t.name}: delayed ${m.seq} counts ${m.bytes} bytes`);
    bytes += m.bytes;
    previous = m;
  }
  assert(bytes === t.bytes, `${t.name}: bytes counted ${t.bytes}, are ${bytes}`);
  return entries;
}

function checkTopic(s: PartitionState, t: Topic, live: Set<string>): void {
  const entries = checkLog(t);
  assert(t.groups.size <= s.limits.groupsPerTopicMax, `${t.name}: over groupsPerTopicMax`);
  for (const g of t.groups.values()) {
    checkGroup(t, g, entries, s.limits.inflightPerGroupMax, live);
  }
  for (const e of entries.values()) {
    let pending = 0;
    for (const g of t.groups.values()) if (g.isFresh(e) || g.states.has(e.pos)) pending++;
    assert(pending === e.pending, `${t.name}: entry ${e.pos} pending ${e.pending}, is ${pending}`);
    // Once a group exists, an entry no group holds is deleted at once.
    assert(t.groups.size === 0 || pending > 0, `${t.name}: entry ${e.pos} is held by no group`);
  }
  const next = t.scheduled[0];
  assert(next === undefined || live.has(timerKey({ atMs: next.availableAt,
    kind: TIMER_SCHEDULED, topic: t.name, group: '', pos: 0 })), `${t.name}: delayed untimed`);
  const first = t.first();
  assert(first === undefined || live.has(timerKey({ atMs: first.atMs + t.config.retentionMs,
    kind: TIMER_RETENTION, topic: t.name, group: '', pos: 0 })), `${t.name}: retention untimed`);
}

export function checkPartitionInvariants(s: PartitionState): void {
  assert(Number.isSafeInteger(s.nowMs) && s.nowMs >= 0, 'partition clock is a safe integer');
  assert(Number.isSafeInteger(s.nextSeq) && s.nextSeq >= 1, 'nextSeq is a positive integer');
  const live = new Set<string>();
  for (const t of s.timers.entries()) if (isTimerLive(s, t)) live.add(timerKey(t));
  let bytes = 0;
  for (const t of s.topics.values()) {
    checkTopic(s, t, live);
    bytes += t.bytes;
  }
  assert(bytes === s.acct.bytes, `partition bytes counted ${s.acct.bytes}, are ${bytes}`);
  assert(s.freeDlqs === countFreeDlqs(s.topics), 'free DLQ count is out of step');
  assert(countedTopics(s) <= s.limits.topicsMax, 'over topicsMax');
  s.dedup.check(s.limits.dedupEntriesMax);
  for (const d of s.dedup.rows()) {
    assert(d.seq < s.nextSeq, `dedupId ${d.dedupId} names a future message`);
  }
}
