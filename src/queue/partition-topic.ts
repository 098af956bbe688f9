// The records of a queue partition: a topic's log of entries, its delayed messages, and its
// consumer groups with one delivery record per message a group has received and not finished.
//
// A group's view of its topic's log:
// - fresh: a live entry at or after the group's cursor that applies to the group (never
//   delivered to it). First deliveries walk the cursor forward, so they follow log order,
//   which is FIFO per key (and across keys).
// - delivered: an entry before the cursor with a Delivery record: in flight, ready for
//   redelivery, delayed (nacked with a delay) or parked (at maxDeliveries in a DLQ).
// - finished: before the cursor without a record (acked, dead-lettered, or never for it).
// A message is therefore in exactly one of these per group by construction; the invariant
// checks (partition-invariants.ts) state it once more against the counters.
import { assert } from '../assert.js';
import type { MessageBody } from './partition-commands.js';
import { ArrayQueue } from './partition-queue.js';
import type { TopicConfig } from './partition-limits.js';

export interface Entry {
  /** Position in the topic's log, from 1, strictly increasing, never reused. */
  readonly pos: number;
  /** The message id's number (kept when a message is dead-lettered or redriven). */
  readonly seq: number;
  readonly key: string | null;
  readonly body: MessageBody;
  readonly publishedAt: number;
  /** When it entered this log: retention counts from here. Non-decreasing along the log. */
  readonly atMs: number;
  /** The one group a redriven message is for; null: every group. */
  readonly only: string | null;
  /** In a DLQ: the group that dead-lettered it (a redrive returns it to that group). */
  readonly origin: string | null;
  /** Body, key and MESSAGE_OVERHEAD_BYTES. */
  readonly bytes: number;
  /** Derived: groups that have not finished it. */
  pending: number;
  /** Derived: removed from the log (the slot is dropped lazily). */
  gone: boolean;
}

export type DeliveryKind = 'inflight' | 'ready' | 'delayed' | 'parked';

export interface Delivery {
  readonly entry: Entry;
  kind: DeliveryKind;
  /** Deliveries of this message to this group so far, >= 1. */
  deliveries: number;
  /** The tag of the current delivery's receipt. */
  tag: number;
  /** inflight: lease deadline; delayed: when it becomes ready; ready and parked: 0. */
  atMs: number;
}

/** A message published with a delay: it enters the log (and takes its FIFO place) when due. */
export interface Scheduled {
  readonly seq: number;
  readonly key: string | null;
  readonly body: MessageBody;
  readonly publishedAt: number;
  readonly availableAt: number;
  readonly bytes: number;
}

/** Counters for metrics. Not replicated state: they count what this replica applied since
 * it started or restored a snapshot, like any process counter. */
export interface GroupCounters {
  delivered: number;
  redelivered: number;
  acked: number;
  nacked: number;
  expired: number;
  deadLettered: number;
}

export interface TopicCounters {
  published: number;
  dedupHits: number;
  trimmed: number;
  redriven: number;
}

export class Group {
  /** Entries at or after the cursor are fresh for this group. */
  cursor = 0;
  /** pos → the delivery record; only for entries before the cursor. */
  readonly states = new Map<number, Delivery>();
  /** Deliveries ready for redelivery, in the order they became ready. Lazy: an item is live
   * only while it is its entry's record and of kind `ready`. */
  readonly retry = new ArrayQueue<Delivery>();
  fresh = 0;
  readonly count: Record<DeliveryKind, number> = { inflight: 0, ready: 0, delayed: 0, parked: 0 };
  readonly counters: GroupCounters = { delivered: 0, redelivered: 0, acked: 0, nacked: 0,
    expired: 0, deadLettered: 0 };

  constructor(readonly name: string) {}

  applies(e: Entry): boolean {
    return e.only === null || e.only === this.name;
  }

  isFresh(e: Entry): boolean {
    return !e.gone && e.pos >= this.cursor && this.applies(e);
  }

  /** Adds a record (the caller queues a `ready` one for redelivery itself). */
  addState(d: Delivery): void {
    assert(!this.states.has(d.entry.pos), `group ${this.name} already holds ${d.entry.pos}`);
    assert(d.entry.pos < this.cursor, 'a delivered entry lies before the cursor');
    this.states.set(d.entry.pos, d);
    this.count[d.kind]++;
  }

  setKind(d: Delivery, kind: DeliveryKind, atMs: number): void {
    assert(this.states.get(d.entry.pos) === d, 'the delivery is this group\'s record');
    this.count[d.kind]--;
    d.kind = kind;
    d.atMs = atMs;
    this.count[kind]++;
    if (kind === 'ready') this.retry.push(d);
  }

  removeState(d: Delivery): void {
    assert(this.states.get(d.entry.pos) === d, 'the delivery is this group\'s record');
    this.states.delete(d.entry.pos);
    this.count[d.kind]--;
  }

  isLiveRetry(d: Delivery): boolean {
    return d.kind === 'ready' && this.states.get(d.entry.pos) === d;
  }
}

/** Shared byte account of a partition: every topic adds to it as it adds to its own. */
export interface ByteAccount {
  bytes: number;
}

export type EntryFields = Omit<Entry, 'pos' | 'pending' | 'gone'>;

export class Topic {
  config: TopicConfig;
  nextPos = 1;
  /** Entries in log order; slots from `head` on, gone ones among them dropped lazily. */
  private log: Entry[] = [];
  private head = 0;
  private goneSlots = 0;
  /** Live entries in the log. */
  live = 0;
  /** Retained bytes: live entries and scheduled messages. */
  bytes = 0;
  /** Delayed messages by (availableAt, seq). */
  readonly scheduled: Scheduled[] = [];
  readonly groups = new Map<string, Group>();
  readonly counters: TopicCounters = { published: 0, dedupHits: 0, trimmed: 0, redriven: 0 };

  constructor(readonly name: string, config: TopicConfig, private readonly acct: ByteAccount) {
    this.config = config;
  }

  /** The oldest live entry. */
  first(): Entry | undefined {
    const e = this.log[this.head];
    assert(e === undefined || !e.gone, 'the log head is live');
    return e;
  }

  *entries(): IterableIterator<Entry> {
    for (let i = this.head; i < this.log.length; i++) {
      const e = this.log[i];
      if (e !== undefined && !e.gone) yield e;
    }
  }

  /** Appends an entry; it is pending (and fresh) for every group it applies to. */
  append(fields: EntryFields): Entry {
    const f = fields;
    // Spelled out (no spread): this runs once per message.
    const e: Entry = { pos: this.nextPos++, seq: f.seq, key: f.key, body: f.body,
      publishedAt: f.publishedAt, atMs: f.atMs, only: f.only, origin: f.origin, bytes: f.bytes,
      pending: 0, gone: false };
    const last = this.log[this.log.length - 1];
    assert(last === undefined || last.atMs <= e.atMs, 'log time is non-decreasing');
    for (const g of this.groups.values()) {
      if (!g.applies(e)) continue;
      e.pending++;
      g.fresh++;
    }
    this.log.push(e);
    this.live++;
    this.addBytes(e.bytes);
    return e;
  }

  /** Restore: puts a decoded entry at the end of the log (counts are rebuilt after). */
  restoreEntry(e: Entry): void {
    const last = this.log[this.log.length - 1];
    assert(last === undefined || (last.pos < e.pos && last.atMs <= e.atMs),
      'snapshot: log in position and time order');
    this.log.push(e);
    this.live++;
    this.addBytes(e.bytes);
  }

  /** Removes a live entry from the log: the caller has dropped every group's hold on it. */
  forget(e: Entry): void {
    assert(!e.gone, `entry ${e.pos} of ${this.name} is forgotten twice`);
    e.gone = true;
    this.live--;
    this.goneSlots++;
    this.addBytes(-e.bytes);
    while (this.log[this.head]?.gone === true) {
      this.head++;
      this.goneSlots--;
    }
    const slots = this.log.length - this.head;
    if (this.goneSlots > 64 && this.goneSlots * 2 > slots) {
      this.log = [...this.entries()];
      this.head = 0;
      this.goneSlots = 0;
    } else if (this.head > 1024 && this.head * 2 > this.log.length) {
      this.log = this.log.slice(this.head);
      this.head = 0;
    }
  }

  addBytes(delta: number): void {
    this.bytes += delta;
    this.acct.bytes += delta;
    assert(this.bytes >= 0 && this.acct.bytes >= 0, 'retained bytes stay non-negative');
  }

  /** The group's next fresh entry, without taking it. Moves the cursor past entries that are
   * gone or for other groups (neither changes what the group sees). */
  nextFresh(g: Group): Entry | undefined {
    if (g.fresh === 0) return undefined;
    for (let i = this.firstAtOrAfter(g.cursor); i < this.log.length; i++) {
      const e = this.log[i];
      assert(e !== undefined, 'log slot in range');
      if (e.gone) continue;
      if (g.applies(e)) return e;
      g.cursor = e.pos + 1;
    }
    assert(false, `group ${g.name} counts ${g.fresh} fresh entries but has none`);
  }

  /** The group's next fresh entry, changing nothing (views). */
  peekFresh(g: Group): Entry | undefined {
    if (g.fresh === 0) return undefined;
    for (let i = this.firstAtOrAfter(g.cursor); i < this.log.length; i++) {
      const e = this.log[i];
      if (e !== undefined && !e.gone && g.applies(e)) return e;
    }
    return undefined;
  }

  /** Index of the first slot at or after `head` whose pos >= `pos`. */
  private firstAtOrAfter(pos: number): number {
    let lo = this.head;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.log[mid];
      assert(e !== undefined, 'binary search in range');
      if (e.pos < pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Inserts a delayed message in (availableAt, seq) order. */
  schedule(s: Scheduled): void {
    let i = this.scheduled.length;
    while (i > 0) {
      const prev = this.scheduled[i - 1];
      assert(prev !== undefined, 'schedule slot in range');
      if (prev.availableAt < s.availableAt ||
        (prev.availableAt === s.availableAt && prev.seq < s.seq)) break;
      i--;
    }
    this.scheduled.splice(i, 0, s);
    this.addBytes(s.bytes);
  }
}
