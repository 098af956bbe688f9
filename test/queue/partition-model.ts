// A naive model of a queue partition, written from docs/queue.md without the partition's
// indexes: plain arrays and maps, linear scans, due work found by scanning everything and
// taking the smallest (time, kind, topic, group, position). Property tests compare every
// result, event and per-message state of QueuePartition with it; the Raft simulation uses it
// as the expected state of the committed log.
import {
  dlqTopicOf, isDlqTopic, topicOfDlq, type DeliveredMessage, type MessageBody, type PublishMessage,
  type QueueCommand,
  type QueueEvent, type QueueResult,
} from '../../src/queue/partition-commands.js';
import {
  DEDUP_WINDOW_MS, DEFAULT_TOPIC_CONFIG, MESSAGE_OVERHEAD_BYTES, parsePartitionLimits,
  type PartitionLimits, type TopicConfig,
} from '../../src/queue/partition-limits.js';
import { formatReceipt, parseReceipt, receiptTag } from '../../src/queue/partition-receipt.js';
import type { GroupMessageView } from '../../src/queue/partition-views.js';

interface MEntry {
  pos: number; seq: number; key: string | null; body: MessageBody; publishedAt: number;
  atMs: number; only: string | null; origin: string | null; bytes: number;
}
type Kind = 'inflight' | 'ready' | 'delayed' | 'parked';
interface MDel { pos: number; kind: Kind; deliveries: number; tag: number; atMs: number;
  readyOrder: number }
interface MGroup { name: string; delivered: Set<number>; dels: Map<number, MDel> }
interface MSched { seq: number; key: string | null; body: MessageBody; publishedAt: number;
  availableAt: number; bytes: number }
interface MTopic { name: string; config: TopicConfig; nextPos: number; log: MEntry[];
  scheduled: MSched[]; groups: MGroup[] }
interface Due { atMs: number; kind: number; topic: string; group: string; pos: number }

function size(body: MessageBody, key: string | null | undefined): number {
  const enc = new TextEncoder();
  const b = typeof body === 'string' ? enc.encode(body).length : body.length;
  return b + (key == null ? 0 : enc.encode(key).length);
}

function dueLess(a: Due, b: Due): boolean {
  if (a.atMs !== b.atMs) return a.atMs < b.atMs;
  if (a.kind !== b.kind) return a.kind < b.kind;
  if (a.topic !== b.topic) return a.topic < b.topic;
  if (a.group !== b.group) return a.group < b.group;
  return a.pos < b.pos;
}

export class PartitionModel {
  readonly limits: PartitionLimits;
  now = 0;
  private seq = 1;
  private deliveryCount = 0;
  private readyOrder = 0;
  private budget = 0;
  private dueDone = 0;
  readonly topics = new Map<string, MTopic>();
  private dedup: { topic: string; id: string; seq: number; atMs: number }[] = [];
  private available = new Set<string>();

  constructor(limits: Partial<PartitionLimits> = {}, private readonly salt = 0) {
    this.limits = parsePartitionLimits(limits);
  }

  apply(cmd: QueueCommand, nowMs: number): { result: QueueResult; events: QueueEvent[] } {
    this.now = Math.max(this.now, nowMs);
    this.budget = this.limits.dueItemsPerCommandMax;
    this.dueDone = 0;
    this.available = new Set();
    this.dedup = this.dedup.filter((d) => this.now < d.atMs + DEDUP_WINDOW_MS);
    if (cmd.type !== 'extendLeases') this.runDue();
    const result = this.dispatch(cmd);
    const events = [...this.available].sort().map((topic) => ({ type: 'available' as const,
      topic }));
    return { result, events };
  }

  private dispatch(cmd: QueueCommand): QueueResult {
    switch (cmd.type) {
      case 'publish': return this.publish(cmd.topic, cmd.messages);
      case 'receive': return this.receive(cmd.topic, cmd.group, cmd.max, cmd.visibilityMs);
      case 'ack': return this.ack(cmd.topic, cmd.group, cmd.receipts);
      case 'nack': return this.nack(cmd.topic, cmd.group, cmd.receipts, cmd.delayMs);
      case 'extend': return this.extend(cmd.topic, cmd.group, cmd.receipts, cmd.visibilityMs);
      case 'redrive': return this.redrive(cmd.topic, cmd.max);
      case 'putConfig': return this.putConfig(cmd);
      case 'expire': return { type: 'expired', due: this.dueDone };
      case 'extendLeases':
        for (const t of this.topics.values()) {
          for (const g of t.groups) {
            for (const d of g.dels.values()) if (d.kind === 'inflight') d.atMs += cmd.byMs;
          }
        }
        return { type: 'ok' };
    }
  }

  // ---- helpers ------------------------------------------------------------------------

  private applies(g: MGroup, e: MEntry): boolean {
    return e.only === null || e.only === g.name;
  }

  private isFresh(g: MGroup, e: MEntry): boolean {
    return this.applies(g, e) && !g.delivered.has(e.pos);
  }

  topicBytes(t: MTopic): number {
    return t.log.reduce((n, e) => n + e.bytes, 0) + t.scheduled.reduce((n, m) => n + m.bytes, 0);
  }

  private partitionBytes(): number {
    let n = 0;
    for (const t of this.topics.values()) n += this.topicBytes(t);
    return n;
  }

  private counted(names: Iterable<string>): number {
    const all = new Set(names);
    let n = 0;
    for (const x of all) {
      const base = topicOfDlq(x);
      if (base === null || !all.has(base)) n++;
    }
    return n;
  }

  private getOrCreate(name: string): MTopic | QueueResult {
    const t = this.topics.get(name);
    if (t !== undefined) return t;
    const before = this.counted(this.topics.keys());
    const after = this.counted([...this.topics.keys(), name]);
    if (after > before && before >= this.limits.topicsMax) {
      return { type: 'exhausted', limit: 'topics', max: this.limits.topicsMax };
    }
    return this.create(name);
  }

  private create(name: string): MTopic {
    const t: MTopic = { name, config: DEFAULT_TOPIC_CONFIG, nextPos: 1, log: [], scheduled: [],
      groups: [] };
    this.topics.set(name, t);
    return t;
  }

  private append(t: MTopic, e: Omit<MEntry, 'pos'>): void {
    t.log.push({ ...e, pos: t.nextPos++ });
    this.available.add(t.name);
  }

  /** A group is done with an entry: delete it once every group it applies to is done. */
  private finish(t: MTopic, e: MEntry): void {
    const holders = t.groups.filter((g) => this.applies(g, e) &&
      (!g.delivered.has(e.pos) || g.dels.has(e.pos)));
    if (holders.length === 0) t.log = t.log.filter((x) => x !== e);
  }

  private removeEverywhere(t: MTopic, e: MEntry): void {
    for (const g of t.groups) g.dels.delete(e.pos);
    t.log = t.log.filter((x) => x !== e);
  }

  private setReady(t: MTopic, d: MDel): void {
    d.kind = 'ready';
    d.atMs = 0;
    d.readyOrder = ++this.readyOrder;
    this.available.add(t.name);
  }

  // ---- due work -----------------------------------------------------------------------

  private dueItems(): Due[] {
    const out: Due[] = [];
    for (const t of this.topics.values()) {
      for (const g of t.groups) {
        for (const d of g.dels.values()) {
          if ((d.kind === 'inflight' || d.kind === 'delayed') && d.atMs <= this.now) {
            out.push({ atMs: d.atMs, kind: d.kind === 'inflight' ? 0 : 1, topic: t.name,
              group: g.name, pos: d.pos });
          }
        }
      }
      const s = t.scheduled[0];
      if (s !== undefined && s.availableAt <= this.now) {
        out.push({ atMs: s.availableAt, kind: 2, topic: t.name, group: '', pos: 0 });
      }
      const first = t.log[0];
      if (first !== undefined && first.atMs + t.config.retentionMs <= this.now) {
        out.push({ atMs: first.atMs + t.config.retentionMs, kind: 3, topic: t.name, group: '',
          pos: 0 });
      }
    }
    return out;
  }

  private runDue(): void {
    while (this.budget > 0) {
      const items = this.dueItems();
      if (items.length === 0) return;
      const next = items.reduce((a, b) => (dueLess(b, a) ? b : a));
      this.budget--;
      this.dueDone++;
      const t = this.topics.get(next.topic);
      if (t === undefined) throw new Error('model: due item without topic');
      if (next.kind === 3) {
        const e = t.log[0];
        if (e !== undefined) this.removeEverywhere(t, e);
      } else if (next.kind === 2) {
        const m = t.scheduled.shift();
        if (m === undefined) throw new Error('model: no scheduled');
        this.append(t, { seq: m.seq, key: m.key, body: m.body, publishedAt: m.publishedAt,
          atMs: this.now, only: null, origin: null, bytes: m.bytes });
      } else {
        const g = t.groups.find((x) => x.name === next.group);
        const d = g?.dels.get(next.pos);
        if (g === undefined || d === undefined) throw new Error('model: due delivery missing');
        if (next.kind === 1) this.setReady(t, d);
        else this.endLease(t, g, d, 0);
      }
    }
  }

  private endLease(t: MTopic, g: MGroup, d: MDel, delayMs: number): boolean {
    if (d.deliveries >= t.config.maxDeliveries) {
      this.deadLetter(t, g, d);
      return true;
    }
    if (delayMs > 0) {
      d.kind = 'delayed';
      d.atMs = this.now + delayMs;
    } else {
      this.setReady(t, d);
    }
    return false;
  }

  private deadLetter(t: MTopic, g: MGroup, d: MDel): void {
    if (isDlqTopic(t.name)) {
      d.kind = 'parked';
      d.atMs = 0;
      return;
    }
    const e = t.log.find((x) => x.pos === d.pos);
    if (e === undefined) throw new Error('model: dead letter without entry');
    g.dels.delete(d.pos);
    this.finish(t, e);
    const name = dlqTopicOf(t.name);
    const dlq = this.topics.get(name) ?? this.create(name);
    this.append(dlq, { seq: e.seq, key: e.key, body: e.body, publishedAt: e.publishedAt,
      atMs: this.now, only: null, origin: g.name, bytes: e.bytes });
  }

  // ---- commands -------------------------------------------------------------------------

  private publish(topic: string, messages: readonly PublishMessage[]): QueueResult {
    const t0 = this.topics.get(topic);
    const hits: (number | undefined)[] = [];
    const inBatch = new Map<string, number>();
    let next = this.seq;
    for (const m of messages) {
      const hit = m.dedupId === undefined ? undefined :
        this.dedup.find((d) => d.topic === topic && d.id === m.dedupId)?.seq ??
        inBatch.get(m.dedupId);
      hits.push(hit);
      if (hit === undefined) {
        if (m.dedupId !== undefined) inBatch.set(m.dedupId, next);
        next++;
      }
    }
    let bytes = 0;
    let newDedup = 0;
    for (const [i, m] of messages.entries()) {
      if (size(m.body, m.key) > this.limits.messageBytesMax) {
        return { type: 'exhausted', limit: 'messageBytes', max: this.limits.messageBytesMax };
      }
      if (hits[i] !== undefined) continue;
      bytes += size(m.body, m.key) + MESSAGE_OVERHEAD_BYTES;
      if (m.dedupId !== undefined) newDedup++;
    }
    const l = this.limits;
    if (this.dedup.length + newDedup > l.dedupEntriesMax) {
      return { type: 'exhausted', limit: 'dedupEntries', max: l.dedupEntriesMax };
    }
    if ((t0 === undefined ? 0 : this.topicBytes(t0)) + bytes > l.topicRetainedBytesMax) {
      return { type: 'exhausted', limit: 'topicRetainedBytes', max: l.topicRetainedBytesMax };
    }
    if (this.partitionBytes() + bytes > l.partitionRetainedBytesMax) {
      return { type: 'exhausted', limit: 'partitionRetainedBytes',
        max: l.partitionRetainedBytesMax };
    }
    const t = this.getOrCreate(topic);
    if ('type' in t) return t;
    const ids = messages.map((m, i) => {
      const hit = hits[i];
      if (hit !== undefined) return String(hit);
      const seq = this.seq++;
      const key = m.key ?? null;
      const b = size(m.body, m.key) + MESSAGE_OVERHEAD_BYTES;
      if (m.dedupId !== undefined) {
        this.dedup.push({ topic, id: m.dedupId, seq, atMs: this.now });
      }
      if ((m.delayMs ?? 0) > 0) {
        t.scheduled.push({ seq, key, body: m.body, publishedAt: this.now,
          availableAt: this.now + (m.delayMs ?? 0), bytes: b });
        t.scheduled.sort((a, c) => a.availableAt - c.availableAt || a.seq - c.seq);
      } else {
        this.append(t, { seq, key, body: m.body, publishedAt: this.now, atMs: this.now,
          only: null, origin: null, bytes: b });
      }
      return String(seq);
    });
    return { type: 'published', ids, dedupHits: hits.filter((h) => h !== undefined).length };
  }

  private receive(topic: string, group: string, max: number, vis: number | undefined):
    QueueResult {
    const t = this.topics.get(topic);
    if (t === undefined) return { type: 'received', messages: [] };
    let g = t.groups.find((x) => x.name === group);
    if (g === undefined) {
      if (t.groups.length >= this.limits.groupsPerTopicMax) {
        return { type: 'exhausted', limit: 'groupsPerTopic', max: this.limits.groupsPerTopicMax };
      }
      g = { name: group, delivered: new Set(), dels: new Map() };
      t.groups.push(g);
    }
    const out: DeliveredMessage[] = [];
    let bytes = 0;
    while (out.length < max) {
      const dels = [...g.dels.values()];
      if (dels.filter((d) => d.kind === 'inflight').length >= this.limits.inflightPerGroupMax) {
        const anyReady = dels.some((d) => d.kind === 'ready') ||
          t.log.some((e) => this.isFresh(g, e));
        if (out.length === 0 && anyReady) {
          return { type: 'exhausted', limit: 'inflightPerGroup',
            max: this.limits.inflightPerGroupMax };
        }
        break;
      }
      const pick = this.candidate(t, g);
      if (pick === undefined) break;
      const b = size(pick.entry.body, null);
      if (out.length > 0 && bytes + b > this.limits.receiveBytesMax) break;
      bytes += b;
      out.push(this.deliver(t, g, pick.entry, pick.del, vis ?? t.config.visibilityMs));
    }
    return { type: 'received', messages: out };
  }

  private candidate(t: MTopic, g: MGroup): { entry: MEntry; del: MDel | null } | undefined {
    for (;;) {
      const ready = [...g.dels.values()].filter((d) => d.kind === 'ready')
        .sort((a, b) => a.readyOrder - b.readyOrder)[0];
      if (ready === undefined) break;
      if (ready.deliveries < t.config.maxDeliveries) {
        const entry = t.log.find((e) => e.pos === ready.pos);
        if (entry === undefined) throw new Error('model: ready without entry');
        return { entry, del: ready };
      }
      if (this.budget <= 0) break;
      this.budget--;
      this.deadLetter(t, g, ready);
    }
    const fresh = t.log.find((e) => this.isFresh(g, e));
    return fresh === undefined ? undefined : { entry: fresh, del: null };
  }

  private deliver(t: MTopic, g: MGroup, e: MEntry, del: MDel | null, vis: number):
    DeliveredMessage {
    const tag = receiptTag(++this.deliveryCount, this.salt);
    let d = del;
    if (d === null) {
      g.delivered.add(e.pos);
      d = { pos: e.pos, kind: 'inflight', deliveries: 0, tag, atMs: 0, readyOrder: 0 };
      g.dels.set(e.pos, d);
    }
    d.deliveries++;
    d.tag = tag;
    d.kind = 'inflight';
    d.atMs = this.now + vis;
    const m = { id: String(e.seq), body: e.body,
      receipt: formatReceipt({ pos: e.pos, deliveries: d.deliveries, tag }),
      deliveries: d.deliveries, publishedAt: e.publishedAt };
    return e.key === null ? m : { ...m, key: e.key };
  }

  private held(t: MTopic, group: string, receipt: string): [MGroup, MDel] | undefined {
    const g = t.groups.find((x) => x.name === group);
    const p = parseReceipt(receipt);
    if (g === undefined || p === null) return undefined;
    const d = g.dels.get(p.pos);
    if (d === undefined || d.deliveries !== p.deliveries || d.tag !== p.tag) return undefined;
    return [g, d];
  }

  private ack(topic: string, group: string, receipts: readonly string[]): QueueResult {
    const t = this.topics.get(topic);
    let acked = 0;
    for (const r of t === undefined ? [] : receipts) {
      const h = this.held(t!, group, r);
      if (h === undefined || h[1].kind === 'parked') continue;
      const [g, d] = h;
      g.dels.delete(d.pos);
      const e = t!.log.find((x) => x.pos === d.pos);
      if (e !== undefined) this.finish(t!, e);
      acked++;
    }
    return { type: 'acked', acked };
  }

  private nack(topic: string, group: string, receipts: readonly string[], delayMs: number):
    QueueResult {
    const t = this.topics.get(topic);
    let nacked = 0;
    let deadLettered = 0;
    for (const r of t === undefined ? [] : receipts) {
      const h = this.held(t!, group, r);
      if (h === undefined || h[1].kind !== 'inflight') continue;
      nacked++;
      if (this.endLease(t!, h[0], h[1], delayMs)) deadLettered++;
    }
    return { type: 'nacked', nacked, deadLettered };
  }

  private extend(topic: string, group: string, receipts: readonly string[], vis: number):
    QueueResult {
    const t = this.topics.get(topic);
    let extended = 0;
    for (const r of t === undefined ? [] : receipts) {
      const h = this.held(t!, group, r);
      if (h === undefined || h[1].kind !== 'inflight') continue;
      h[1].atMs = this.now + vis;
      extended++;
    }
    return { type: 'extended', extended };
  }

  private redrive(topic: string, max: number): QueueResult {
    const dlq = this.topics.get(dlqTopicOf(topic));
    if (dlq === undefined || dlq.log.length === 0) return { type: 'redriven', moved: 0 };
    const t = this.getOrCreate(topic);
    if ('type' in t) return t;
    let moved = 0;
    while (moved < max) {
      const e = dlq.log[0];
      if (e === undefined) break;
      if (this.topicBytes(t) + e.bytes > this.limits.topicRetainedBytesMax) {
        if (moved === 0) {
          return { type: 'exhausted', limit: 'topicRetainedBytes',
            max: this.limits.topicRetainedBytesMax };
        }
        break;
      }
      this.removeEverywhere(dlq, e);
      const only = e.origin !== null && t.groups.some((g) => g.name === e.origin) ? e.origin :
        null;
      this.append(t, { seq: e.seq, key: e.key, body: e.body, publishedAt: e.publishedAt,
        atMs: this.now, only, origin: null, bytes: e.bytes });
      moved++;
    }
    return { type: 'redriven', moved };
  }

  private putConfig(cmd: QueueCommand & { type: 'putConfig' }): QueueResult {
    const t = this.getOrCreate(cmd.topic);
    if ('type' in t) return t;
    t.config = { maxDeliveries: cmd.maxDeliveries ?? t.config.maxDeliveries,
      visibilityMs: cmd.visibilityMs ?? t.config.visibilityMs,
      retentionMs: cmd.retentionMs ?? t.config.retentionMs };
    return { type: 'config', topic: t.name, ...t.config };
  }

  // ---- views ------------------------------------------------------------------------------

  /** The same listing as QueuePartition.groupMessages. */
  groupMessages(topic: string, group: string): GroupMessageView[] {
    const t = this.topics.get(topic);
    const g = t?.groups.find((x) => x.name === group);
    if (t === undefined || g === undefined) return [];
    return t.log.filter((e) => g.dels.has(e.pos) || this.isFresh(g, e)).map((e) => {
      const d = g.dels.get(e.pos);
      return { id: String(e.seq), pos: e.pos, key: e.key, state: d?.kind ?? 'fresh',
        deliveries: d?.deliveries ?? 0,
        untilMs: d !== undefined && (d.kind === 'inflight' || d.kind === 'delayed') ? d.atMs :
          null };
    });
  }

  configOf(topic: string): TopicConfig | undefined {
    return this.topics.get(topic)?.config;
  }

  groupNames(topic: string): string[] {
    return (this.topics.get(topic)?.groups ?? []).map((g) => g.name).sort();
  }

  /** Messages of a topic in log order (ids), and the delayed ones. */
  logIds(topic: string): { log: string[]; delayed: string[] } {
    const t = this.topics.get(topic);
    return { log: (t?.log ?? []).map((e) => String(e.seq)),
      delayed: (t?.scheduled ?? []).map((m) => String(m.seq)) };
  }

  nextDeadline(): number | null {
    let best: number | null = null;
    const consider = (x: number): void => { if (best === null || x < best) best = x; };
    for (const t of this.topics.values()) {
      for (const g of t.groups) {
        for (const d of g.dels.values()) {
          if (d.kind === 'inflight' || d.kind === 'delayed') consider(d.atMs);
        }
      }
      const s = t.scheduled[0];
      if (s !== undefined) consider(s.availableAt);
      const first = t.log[0];
      if (first !== undefined) consider(first.atMs + t.config.retentionMs);
    }
    return best;
  }
}
