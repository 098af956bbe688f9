// The base of a queue partition: its state, the bookkeeping of topics, entries and timers,
// and the due work every command performs first (lease expiries and the dead-letters they
// cause, delayed nacks, delayed messages, retention). The commands themselves and the views
// are in partition.ts; docs/queue.md states the semantics.
import { assert } from '../assert.js';
import { utf8Bytes } from '../cache/coherence-config.js';
import {
  dlqTopicOf, isDlqTopic, topicOfDlq, type MessageBody, type QueueResult,
} from './partition-commands.js';
import { DedupWindow } from './partition-dedup.js';
import {
  DEFAULT_TOPIC_CONFIG, parsePartitionLimits, type PartitionLimits, type QueueLimitName,
} from './partition-limits.js';
import {
  countedTopics, creationCounts, isTimerLive, type PartitionState,
} from './partition-state.js';
import {
  TIMER_DELAYED, TIMER_LEASE, TIMER_RETENTION, TIMER_SCHEDULED, TimerIndex, type Timer,
} from './partition-timers.js';
import { type Delivery, type Entry, type Group, Topic } from './partition-topic.js';

export interface PartitionOptions {
  /** Bounds; every replica of a partition must use the same. */
  readonly limits?: Partial<PartitionLimits>;
  /** Mixed into receipt tags (partition-receipt.ts): the same on every replica of a
   * partition; the shell derives it from the cluster's secret and the partition number.
   * A 32-bit unsigned integer, default 0. */
  readonly receiptSalt?: number;
}

export function bodyBytes(body: MessageBody): number {
  return typeof body === 'string' ? utf8Bytes(body) : body.length;
}

export function messageBytes(m: { readonly body: MessageBody; readonly key?: string | null }):
  number {
  return bodyBytes(m.body) + (m.key == null ? 0 : utf8Bytes(m.key));
}

export function exhausted(limit: QueueLimitName, max: number): QueueResult {
  return { type: 'exhausted', limit, max };
}

export function newPartitionState(opts: PartitionOptions): PartitionState {
  const salt = opts.receiptSalt ?? 0;
  assert(salt >>> 0 === salt, 'receiptSalt is a 32-bit unsigned integer');
  const s: PartitionState = {
    limits: parsePartitionLimits(opts.limits), receiptSalt: salt, nowMs: 0, nextSeq: 1,
    deliveryCount: 0, topics: new Map(), acct: { bytes: 0 }, dedup: new DedupWindow(),
    timers: new TimerIndex((t) => isTimerLive(s, t)), freeDlqs: 0,
  };
  return s;
}

export class PartitionCore {
  protected readonly s: PartitionState;
  /** Work left for due items in the current command. */
  protected budget = 0;
  protected dueDone = 0;
  /** Topics that got something receivable in the current command. */
  protected readonly available = new Set<string>();

  constructor(opts: PartitionOptions, state?: PartitionState) {
    this.s = state ?? newPartitionState(opts);
  }

  /** Starts a command at `nowMs`: the clock, the budget, the dedup window. */
  protected begin(nowMs: number): void {
    assert(Number.isSafeInteger(nowMs) && nowMs >= 0, `bad apply time ${nowMs}`);
    const s = this.s;
    s.nowMs = Math.max(s.nowMs, nowMs);
    this.budget = s.limits.dueItemsPerCommandMax;
    this.dueDone = 0;
    this.available.clear();
    s.dedup.evict(s.nowMs);
  }

  // ---- topics and entries -------------------------------------------------------------

  protected topicOrCreate(name: string): Topic | QueueResult {
    const existing = this.s.topics.get(name);
    if (existing !== undefined) return existing;
    if (creationCounts(this.s, name) && countedTopics(this.s) >= this.s.limits.topicsMax) {
      return exhausted('topics', this.s.limits.topicsMax);
    }
    return this.createTopic(name);
  }

  /** Creates a topic; a DLQ made by dead-lettering comes here directly (never refused). */
  protected createTopic(name: string): Topic {
    const s = this.s;
    assert(!s.topics.has(name), `topic ${name} created twice`);
    const base = topicOfDlq(name);
    if (base !== null && s.topics.has(base)) s.freeDlqs++;
    if (s.topics.has(dlqTopicOf(name))) s.freeDlqs++;
    const t = new Topic(name, DEFAULT_TOPIC_CONFIG, s.acct);
    s.topics.set(name, t);
    return t;
  }

  protected appendEntry(t: Topic, fields: Omit<Entry, 'pos' | 'pending' | 'gone'>): Entry {
    const e = t.append(fields);
    if (t.live === 1) this.armRetention(t);
    this.available.add(t.name);
    return e;
  }

  /** Removes an entry every group is done with (or that no group holds any more). */
  protected removeEntry(t: Topic, e: Entry): void {
    const wasFirst = t.first() === e;
    t.forget(e);
    if (wasFirst) this.armRetention(t);
  }

  /** A group finished an entry (its record, if any, already removed). */
  protected finish(t: Topic, e: Entry): void {
    assert(e.pending >= 1, `entry ${e.pos} of ${t.name} finished by more groups than hold it`);
    e.pending--;
    if (e.pending === 0) this.removeEntry(t, e);
  }

  /** Drops every group's hold on an entry that leaves the topic (trim, redrive). */
  protected dropHolds(t: Topic, e: Entry): void {
    for (const g of t.groups.values()) {
      const d = g.states.get(e.pos);
      if (d !== undefined) g.removeState(d);
      else if (g.isFresh(e)) g.fresh--;
    }
    e.pending = 0;
  }

  protected armRetention(t: Topic): void {
    const first = t.first();
    if (first === undefined) return;
    this.pushTimer(first.atMs + t.config.retentionMs, TIMER_RETENTION, t.name, '', 0);
  }

  protected pushTimer(atMs: number, kind: Timer['kind'], topic: string, group: string,
    pos: number): void {
    this.s.timers.push({ atMs, kind, topic, group, pos });
  }

  // ---- due work -------------------------------------------------------------------------

  protected runDue(): void {
    const s = this.s;
    while (this.budget > 0) {
      const timer = s.timers.popDue(s.nowMs);
      if (timer === undefined) return;
      this.budget--;
      this.dueDone++;
      const t = s.topics.get(timer.topic);
      assert(t !== undefined, 'a live timer has its topic');
      if (timer.kind === TIMER_RETENTION) this.trimFirst(t);
      else if (timer.kind === TIMER_SCHEDULED) this.releaseScheduled(t);
      else this.expireDelivery(t, timer);
    }
  }

  protected expireDelivery(t: Topic, timer: Timer): void {
    const g = t.groups.get(timer.group);
    const d = g?.states.get(timer.pos);
    assert(g !== undefined && d !== undefined, 'a live delivery timer has its delivery');
    if (timer.kind === TIMER_DELAYED) {
      g.setKind(d, 'ready', 0);
      this.available.add(t.name);
      return;
    }
    assert(timer.kind === TIMER_LEASE, 'lease timer');
    g.counters.expired++;
    this.endLease(t, g, d, 0);
  }

  /** A lease ended without an ack (expiry or nack): redeliver later, or dead-letter. */
  protected endLease(t: Topic, g: Group, d: Delivery, delayMs: number): boolean {
    if (d.deliveries >= t.config.maxDeliveries) {
      this.deadLetter(t, g, d);
      return true;
    }
    if (delayMs > 0) {
      g.setKind(d, 'delayed', this.s.nowMs + delayMs);
      this.pushTimer(d.atMs, TIMER_DELAYED, t.name, g.name, d.entry.pos);
    } else {
      g.setKind(d, 'ready', 0);
      this.available.add(t.name);
    }
    return false;
  }

  protected deadLetter(t: Topic, g: Group, d: Delivery): void {
    g.counters.deadLettered++;
    if (isDlqTopic(t.name)) {
      g.setKind(d, 'parked', 0);
      return;
    }
    const e = d.entry;
    g.removeState(d);
    this.finish(t, e);
    const dlqName = dlqTopicOf(t.name);
    const dlq = this.s.topics.get(dlqName) ?? this.createTopic(dlqName);
    this.appendEntry(dlq, { seq: e.seq, key: e.key, body: e.body, publishedAt: e.publishedAt,
      atMs: this.s.nowMs, only: null, origin: g.name, bytes: e.bytes });
  }

  protected trimFirst(t: Topic): void {
    const e = t.first();
    assert(e !== undefined && e.atMs + t.config.retentionMs <= this.s.nowMs,
      'retention trims a due first entry');
    this.dropHolds(t, e);
    this.removeEntry(t, e);
    t.counters.trimmed++;
  }

  protected releaseScheduled(t: Topic): void {
    const m = t.scheduled.shift();
    assert(m !== undefined && m.availableAt <= this.s.nowMs, 'a due delayed message');
    t.addBytes(-m.bytes);
    this.appendEntry(t, { seq: m.seq, key: m.key, body: m.body, publishedAt: m.publishedAt,
      atMs: this.s.nowMs, only: null, origin: null, bytes: m.bytes });
    const next = t.scheduled[0];
    if (next !== undefined) this.pushTimer(next.availableAt, TIMER_SCHEDULED, t.name, '', 0);
  }
}
