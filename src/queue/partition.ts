// A queue partition: the pure, deterministic state machine of one Raft group of the queue
// service. It knows nothing of Raft, HTTP or clocks: each command arrives with the leader's
// clock and yields one result for the requester plus events for OTHER requests (topics whose
// long-polls should retry). docs/queue.md states the semantics; the decisions in short:
//
// - Ids and receipts come from the partition's own counters (several commands may share one
//   Raft entry, so the index cannot be an id). Time is max(leader clock, last time seen).
// - Every command first performs what is due at its time, at most dueItemsPerCommandMax
//   items: lease expiries (→ redelivery, or the DLQ at maxDeliveries), delayed nacks becoming
//   ready, delayed messages entering their topic, retention trims. `expire` does only that.
// - A group is created by its first receive and sees every message still retained. A message
//   is deleted once every group that existed finished it (acked, dead-lettered), or when its
//   retention passes; with no group at all it waits for retention.
// - First deliveries follow log order (FIFO per key, and across keys); redeliveries come
//   first, in the order they became ready. A delayed message takes its place in the log when
//   its delay ends, as if published then.
// - An ack counts when its receipt names the group's current delivery of the message, in
//   flight or already expired but not yet delivered again; anything else counts 0.
// - Dead letters go to `{topic}.dlq` (same partition: placement strips `.dlq`), keeping id,
//   key, body and publishedAt; in a DLQ a message at maxDeliveries is parked instead (kept,
//   no longer delivered to that group, still redrivable). Redrive returns a dead letter to
//   the group that dead-lettered it, with its delivery count reset.
// - Every bound is an `exhausted` result, checked before anything changes (a publish is all
//   or nothing); dead-letters are never refused.
import { assert } from '../assert.js';
import {
  dlqTopicOf, type DeliveredMessage, type PublishMessage, type QueueCommand, type QueueEvent,
  type QueueResult, type TopicConfigView,
} from './partition-commands.js';
import {
  bodyBytes, exhausted, messageBytes, newPartitionState, PartitionCore, type PartitionOptions,
} from './partition-core.js';
import { checkPartitionInvariants } from './partition-invariants.js';
import { MESSAGE_OVERHEAD_BYTES, type PartitionLimits } from './partition-limits.js';
import { publishRefusalOf, topicRefusalOf } from './partition-precheck.js';
import { formatReceipt, parseReceipt, receiptTag } from './partition-receipt.js';
import { decodePartitionState, encodePartitionState } from './partition-snapshot.js';
import type { PartitionState } from './partition-state.js';
import { TIMER_LEASE, TIMER_SCHEDULED } from './partition-timers.js';
import { type Delivery, type Entry, Group, Topic } from './partition-topic.js';
import {
  groupMessagesOf, logOf, metricsOf, topicViewOf, type GroupMessageView, type LogEntryView,
  type PartitionMetrics, type TopicView,
} from './partition-views.js';

export type { PartitionOptions } from './partition-core.js';

export interface ApplyOutput {
  readonly result: QueueResult;
  readonly events: readonly QueueEvent[];
}

/** What a command needs of the Raft entry: the leader's clock, Unix ms. */
export interface PartitionApplyContext {
  readonly nowMs: number;
}

type Cmd<T extends QueueCommand['type']> = Extract<QueueCommand, { type: T }>;

export class QueuePartition extends PartitionCore {
  constructor(opts: PartitionOptions = {}, state?: PartitionState) {
    super(opts, state);
  }

  get limits(): PartitionLimits {
    return this.s.limits;
  }

  apply(cmd: QueueCommand, ctx: PartitionApplyContext): ApplyOutput {
    this.begin(ctx.nowMs);
    // A new leader's clock may already be past leases that the old leader's holders kept
    // extending: extendLeases must run before anything expires them.
    if (cmd.type !== 'extendLeases') this.runDue();
    const result = this.dispatch(cmd);
    const events: QueueEvent[] = [...this.available].sort()
      .map((topic) => ({ type: 'available', topic }));
    return { result, events };
  }

  private dispatch(cmd: QueueCommand): QueueResult {
    switch (cmd.type) {
      case 'publish':
        return this.publish(cmd);
      case 'receive':
        return this.receive(cmd);
      case 'ack':
        return this.ack(cmd);
      case 'nack':
        return this.nack(cmd);
      case 'extend':
        return this.extend(cmd);
      case 'redrive':
        return this.redrive(cmd);
      case 'putConfig':
        return this.putConfig(cmd);
      case 'expire':
        return { type: 'expired', due: this.dueDone };
      case 'extendLeases':
        return this.extendLeases(cmd.byMs);
    }
  }

  // ---- publish ---------------------------------------------------------------------------

  private publish(cmd: Cmd<'publish'>): QueueResult {
    const s = this.s;
    const t0 = s.topics.get(cmd.topic);
    // Plan first, change nothing until every bound is known to hold: all or nothing.
    const hits = this.dedupHits(cmd.topic, cmd.messages);
    let newDedup = 0;
    let bytes = 0;
    for (const [i, m] of cmd.messages.entries()) {
      const size = messageBytes(m);
      if (size > s.limits.messageBytesMax) {
        return exhausted('messageBytes', s.limits.messageBytesMax);
      }
      if (hits[i] !== undefined) continue;
      bytes += size + MESSAGE_OVERHEAD_BYTES;
      if (m.dedupId !== undefined) newDedup++;
    }
    if (s.dedup.size + newDedup > s.limits.dedupEntriesMax) {
      return exhausted('dedupEntries', s.limits.dedupEntriesMax);
    }
    if ((t0?.bytes ?? 0) + bytes > s.limits.topicRetainedBytesMax) {
      return exhausted('topicRetainedBytes', s.limits.topicRetainedBytesMax);
    }
    if (s.acct.bytes + bytes > s.limits.partitionRetainedBytesMax) {
      return exhausted('partitionRetainedBytes', s.limits.partitionRetainedBytesMax);
    }
    const t = this.topicOrCreate(cmd.topic);
    if (!(t instanceof Topic)) return t;
    const ids = cmd.messages.map((m, i) => String(hits[i] ?? this.publishOne(t, m)));
    const dedupHits = hits.filter((h) => h !== undefined).length;
    t.counters.published += cmd.messages.length - dedupHits;
    t.counters.dedupHits += dedupHits;
    return { type: 'published', ids, dedupHits };
  }

  /** Per message, the seq of an earlier publish with the same dedupId (in the window, or
   * earlier in this batch), or a hole. A later duplicate in the batch points at the seq the
   * first will get: publishOne hands seqs out in order. */
  private dedupHits(topic: string, messages: readonly PublishMessage[]): (number | undefined)[] {
    const s = this.s;
    const inBatch = new Map<string, number>();
    let next = s.nextSeq;
    return messages.map((m) => {
      if (m.dedupId === undefined) {
        next++;
        return undefined;
      }
      const hit = s.dedup.lookup(topic, m.dedupId, s.nowMs) ?? inBatch.get(m.dedupId);
      if (hit !== undefined) return hit;
      inBatch.set(m.dedupId, next++);
      return undefined;
    });
  }

  private publishOne(t: Topic, m: PublishMessage): number {
    const s = this.s;
    const seq = s.nextSeq++;
    const key = m.key ?? null;
    const bytes = messageBytes(m) + MESSAGE_OVERHEAD_BYTES;
    if (m.dedupId !== undefined) {
      s.dedup.remember({ topic: t.name, dedupId: m.dedupId, seq, atMs: s.nowMs });
    }
    if (m.delayMs !== undefined && m.delayMs > 0) {
      const availableAt = s.nowMs + m.delayMs;
      t.schedule({ seq, key, body: m.body, publishedAt: s.nowMs, availableAt, bytes });
      if (t.scheduled[0]?.seq === seq) {
        this.pushTimer(availableAt, TIMER_SCHEDULED, t.name, '', 0);
      }
      return seq;
    }
    this.appendEntry(t, { seq, key, body: m.body, publishedAt: s.nowMs, atMs: s.nowMs,
      only: null, origin: null, bytes });
    return seq;
  }

  // ---- receive ---------------------------------------------------------------------------

  private receive(cmd: Cmd<'receive'>): QueueResult {
    const s = this.s;
    const t = s.topics.get(cmd.topic);
    // A topic that never existed: nothing to receive, and nothing is created.
    if (t === undefined) return { type: 'received', messages: [] };
    let g = t.groups.get(cmd.group);
    if (g === undefined) {
      if (t.groups.size >= s.limits.groupsPerTopicMax) {
        return exhausted('groupsPerTopic', s.limits.groupsPerTopicMax);
      }
      g = this.createGroup(t, cmd.group);
    }
    const visibilityMs = cmd.visibilityMs ?? t.config.visibilityMs;
    const out: DeliveredMessage[] = [];
    let bytes = 0;
    while (out.length < cmd.max) {
      if (g.count.inflight >= s.limits.inflightPerGroupMax) {
        if (out.length === 0 && (g.count.ready > 0 || g.fresh > 0)) {
          return exhausted('inflightPerGroup', s.limits.inflightPerGroupMax);
        }
        break;
      }
      const next = this.nextCandidate(t, g);
      if (next === undefined) break;
      const size = bodyBytes(next.entry.body);
      if (out.length > 0 && bytes + size > s.limits.receiveBytesMax) break;
      bytes += size;
      out.push(this.deliver(t, g, next.entry, next.retry, visibilityMs));
    }
    return { type: 'received', messages: out };
  }

  private createGroup(t: Topic, name: string): Group {
    const g = new Group(name);
    for (const e of t.entries()) {
      // A redriven entry is for the group that dead-lettered it, never for a new one.
      if (!g.applies(e)) continue;
      e.pending++;
      g.fresh++;
    }
    t.groups.set(name, g);
    return g;
  }

  /** The next message to deliver: a redelivery first, else the next fresh entry. Drops stale
   * retry items and dead-letters those at maxDeliveries (the topic's bound may have been
   * lowered since) as far as the due budget allows. */
  private nextCandidate(t: Topic, g: Group): { entry: Entry; retry: Delivery | null } |
    undefined {
    for (let d = g.retry.peek(); d !== undefined; d = g.retry.peek()) {
      if (!g.isLiveRetry(d)) {
        g.retry.shift();
        continue;
      }
      if (d.deliveries < t.config.maxDeliveries) return { entry: d.entry, retry: d };
      if (this.budget <= 0) break;
      this.budget--;
      g.retry.shift();
      this.deadLetter(t, g, d);
    }
    const e = t.nextFresh(g);
    return e === undefined ? undefined : { entry: e, retry: null };
  }

  private deliver(t: Topic, g: Group, e: Entry, retry: Delivery | null, visibilityMs: number):
    DeliveredMessage {
    const s = this.s;
    const deadline = s.nowMs + visibilityMs;
    const tag = receiptTag(++s.deliveryCount, s.receiptSalt);
    let d: Delivery;
    if (retry === null) {
      assert(g.isFresh(e), 'a first delivery takes a fresh entry');
      g.cursor = e.pos + 1;
      g.fresh--;
      d = { entry: e, kind: 'inflight', deliveries: 1, tag, atMs: deadline };
      g.addState(d);
    } else {
      assert(g.retry.shift() === retry, 'a redelivery takes the head of the retry queue');
      d = retry;
      d.deliveries++;
      d.tag = tag;
      g.setKind(d, 'inflight', deadline);
      g.counters.redelivered++;
    }
    assert(d.deliveries <= t.config.maxDeliveries,
      () => `delivery ${d.deliveries} of ${t.name}/${e.seq} exceeds maxDeliveries`);
    g.counters.delivered++;
    this.pushTimer(deadline, TIMER_LEASE, t.name, g.name, e.pos);
    const receipt = formatReceipt({ pos: e.pos, deliveries: d.deliveries, tag });
    const id = String(e.seq);
    // Spelled out (no spread): this runs once per delivered message.
    return e.key === null ?
      { id, body: e.body, receipt, deliveries: d.deliveries, publishedAt: e.publishedAt } :
      { id, body: e.body, receipt, deliveries: d.deliveries, publishedAt: e.publishedAt,
        key: e.key };
  }

  // ---- ack, nack, extend -----------------------------------------------------------------

  /** The group's record of the delivery a receipt names, or undefined. */
  private held(g: Group, receipt: string): Delivery | undefined {
    const parts = parseReceipt(receipt);
    if (parts === null) return undefined;
    const d = g.states.get(parts.pos);
    if (d === undefined || d.deliveries !== parts.deliveries || d.tag !== parts.tag) {
      return undefined;
    }
    return d;
  }

  private groupOf(topic: string, group: string): [Topic, Group] | undefined {
    const t = this.s.topics.get(topic);
    const g = t?.groups.get(group);
    return t === undefined || g === undefined ? undefined : [t, g];
  }

  private ack(cmd: Cmd<'ack'>): QueueResult {
    const tg = this.groupOf(cmd.topic, cmd.group);
    if (tg === undefined) return { type: 'acked', acked: 0 };
    const [t, g] = tg;
    let acked = 0;
    for (const r of cmd.receipts) {
      const d = this.held(g, r);
      // Parked is dead-lettered: its last receipt is no longer an ack.
      if (d === undefined || d.kind === 'parked') continue;
      g.removeState(d);
      this.finish(t, d.entry);
      g.counters.acked++;
      acked++;
    }
    return { type: 'acked', acked };
  }

  private nack(cmd: Cmd<'nack'>): QueueResult {
    const tg = this.groupOf(cmd.topic, cmd.group);
    if (tg === undefined) return { type: 'nacked', nacked: 0, deadLettered: 0 };
    const [t, g] = tg;
    let nacked = 0;
    let deadLettered = 0;
    for (const r of cmd.receipts) {
      const d = this.held(g, r);
      if (d?.kind !== 'inflight') continue;
      nacked++;
      g.counters.nacked++;
      if (this.endLease(t, g, d, cmd.delayMs)) deadLettered++;
    }
    return { type: 'nacked', nacked, deadLettered };
  }

  private extend(cmd: Cmd<'extend'>): QueueResult {
    const tg = this.groupOf(cmd.topic, cmd.group);
    if (tg === undefined) return { type: 'extended', extended: 0 };
    const [t, g] = tg;
    let extended = 0;
    for (const r of cmd.receipts) {
      const d = this.held(g, r);
      if (d?.kind !== 'inflight') continue;
      g.setKind(d, 'inflight', this.s.nowMs + cmd.visibilityMs);
      this.pushTimer(d.atMs, TIMER_LEASE, t.name, g.name, d.entry.pos);
      extended++;
    }
    return { type: 'extended', extended };
  }

  private extendLeases(byMs: number): QueueResult {
    for (const t of this.s.topics.values()) {
      for (const g of t.groups.values()) {
        for (const d of g.states.values()) {
          if (d.kind !== 'inflight') continue;
          g.setKind(d, 'inflight', d.atMs + byMs);
          this.pushTimer(d.atMs, TIMER_LEASE, t.name, g.name, d.entry.pos);
        }
      }
    }
    return { type: 'ok' };
  }

  // ---- redrive and config -----------------------------------------------------------------

  private redrive(cmd: Cmd<'redrive'>): QueueResult {
    const s = this.s;
    const dlq = s.topics.get(dlqTopicOf(cmd.topic));
    if (dlq === undefined || dlq.live === 0) return { type: 'redriven', moved: 0 };
    const t = this.topicOrCreate(cmd.topic);
    if (!(t instanceof Topic)) return t;
    let moved = 0;
    for (let e = dlq.first(); e !== undefined && moved < cmd.max; e = dlq.first()) {
      if (t.bytes + e.bytes > s.limits.topicRetainedBytesMax) {
        if (moved === 0) return exhausted('topicRetainedBytes', s.limits.topicRetainedBytesMax);
        break;
      }
      this.dropHolds(dlq, e);
      this.removeEntry(dlq, e);
      const only = e.origin !== null && t.groups.has(e.origin) ? e.origin : null;
      this.appendEntry(t, { seq: e.seq, key: e.key, body: e.body, publishedAt: e.publishedAt,
        atMs: s.nowMs, only, origin: null, bytes: e.bytes });
      moved++;
    }
    t.counters.redriven += moved;
    return { type: 'redriven', moved };
  }

  private putConfig(cmd: Cmd<'putConfig'>): QueueResult {
    const t = this.topicOrCreate(cmd.topic);
    if (!(t instanceof Topic)) return t;
    const before = t.config;
    t.config = Object.freeze({
      maxDeliveries: cmd.maxDeliveries ?? before.maxDeliveries,
      visibilityMs: cmd.visibilityMs ?? before.visibilityMs,
      retentionMs: cmd.retentionMs ?? before.retentionMs,
    });
    if (t.config.retentionMs !== before.retentionMs) this.armRetention(t);
    return { type: 'config', ...configView(t) };
  }

  // ---- views, snapshots, invariants ---------------------------------------------------------

  /** GET /v1/queues/{topic}: null for a topic that never existed (the shell answers 404). */
  topicView(topic: string): TopicView | null {
    return topicViewOf(this.s, topic);
  }

  /** Before proposing a publish: the bound it would certainly hit now, or null (the shell
   * answers without proposing; the command checks again when it applies). */
  publishRefusal(topic: string, messages: readonly PublishMessage[]): QueueResult | null {
    return publishRefusalOf(this.s, topic, messages);
  }

  /** Before proposing what creates a topic (PUT): the bound it would hit now, or null. */
  topicRefusal(topic: string): QueueResult | null {
    return topicRefusalOf(this.s, topic);
  }

  config(topic: string): TopicConfigView | null {
    const t = this.s.topics.get(topic);
    return t === undefined ? null : configView(t);
  }

  /** The earliest time at which something is due (a lease, a delayed message, a retention
   * trim), or null. The leader proposes `expire` once its clock reaches it. */
  nextDeadline(): number | null {
    return this.s.timers.peekLive()?.atMs ?? null;
  }

  /** The clock of the last applied command. */
  get nowMs(): number {
    return this.s.nowMs;
  }

  /** Per topic and group: backlog, oldest message, counters (for /metrics). */
  metrics(): PartitionMetrics {
    return metricsOf(this.s);
  }

  /** Every message a group holds or will see, in log order (diagnostics and tests; O(n)). */
  groupMessages(topic: string, group: string): GroupMessageView[] {
    return groupMessagesOf(this.s, topic, group);
  }

  /** A topic's retained messages in log order (diagnostics and tests; O(n)). */
  log(topic: string): LogEntryView[] {
    return logOf(this.s, topic);
  }

  topicNames(): string[] {
    return [...this.s.topics.keys()].sort();
  }

  groupNames(topic: string): string[] {
    return [...(this.s.topics.get(topic)?.groups.keys() ?? [])].sort();
  }

  /** Deterministic bytes: byte-identical for equal states. */
  snapshot(): Uint8Array {
    return encodePartitionState(this.s);
  }

  /** Rebuilds a partition from snapshot bytes; validates them and the invariants. */
  static restore(data: Uint8Array, opts: PartitionOptions = {}): QueuePartition {
    const p = new QueuePartition(opts, decodePartitionState(data, newPartitionState(opts)));
    p.checkInvariants();
    return p;
  }

  /** Every invariant over the state and its derived indexes; throws AssertionError. O(n):
   * tests call it after every command, production after a restore. */
  checkInvariants(): void {
    checkPartitionInvariants(this.s);
  }
}

function configView(t: Topic): TopicConfigView {
  return { topic: t.name, maxDeliveries: t.config.maxDeliveries,
    visibilityMs: t.config.visibilityMs, retentionMs: t.config.retentionMs };
}
