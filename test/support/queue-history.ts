// A history checker for black-box queue tests (real processes, faults): clients record what
// they sent and what came back, on one monotonic clock (HistoryRecorder in history.ts), and
// checkQueueHistory looks for anomalies afterwards. The system under test is never asked.
//
// Every published message carries a client-made token in its body (unique per message), so a
// delivery can be matched to its publish even when the publish's answer was lost. Reports:
// - lost: a message whose publish returned 201 (outcome 'ok') was never delivered to a group
//   that must see every message (`groups`);
// - unknown: a delivery whose token no publish sent; failedButDelivered: a delivery of a
//   message whose publish definitely failed (4xx, or refused before it was sent);
// - idMismatch: a delivery whose id is not the one the publish answered, or one id for two
//   tokens;
// - redeliveredAfterAck: a message delivered to a group after an ack of it returned with
//   every receipt counted (acked messages are finished);
// - fifo: per (topic, group, key), first deliveries out of publish order: a was published
//   before b (a's publish returned before b's was sent, or a comes first in b's batch), yet b
//   was first delivered before a (b's receive returned before a's was sent, or b comes first
//   in the same answer). Only deliveries with `deliveries: 1` count as first ones (a first
//   delivery in a lost answer is unknowable), and delayed messages are exempt (so are
//   histories with redrive: a redriven message is delivered with `deliveries: 1` again);
// - duplicates (not a failure: at-least-once): extra deliveries to a group, and their ids.

export type QueueOutcome = 'ok' | 'failed' | 'indeterminate';

export interface PublishedMessage {
  /** Unique per message; carried in the body. */
  readonly token: string;
  readonly key?: string;
  /** Published with delayMs > 0 (exempt from the FIFO check). */
  readonly delayed?: boolean;
}

export interface QueuePublishRecord {
  readonly type: 'publish';
  readonly topic: string;
  readonly messages: readonly PublishedMessage[];
  /** ok = 201; failed = definitely not published (4xx, never sent); else indeterminate. */
  readonly outcome: QueueOutcome;
  /** With 'ok': the ids answered, one per message. */
  readonly ids?: readonly string[];
  readonly sentAt: number;
  readonly returnedAt: number;
}

export interface DeliveredRecordMessage {
  readonly id: string;
  readonly token: string;
  readonly key?: string;
  readonly deliveries: number;
}

export interface QueueReceiveRecord {
  readonly type: 'receive';
  readonly topic: string;
  readonly group: string;
  /** In the order of the answer. */
  readonly messages: readonly DeliveredRecordMessage[];
  readonly sentAt: number;
  readonly returnedAt: number;
}

export interface QueueAckRecord {
  readonly type: 'ack';
  readonly topic: string;
  readonly group: string;
  /** The messages whose receipts the ack carried. */
  readonly ids: readonly string[];
  readonly outcome: QueueOutcome;
  /** With 'ok': the count answered. */
  readonly acked?: number;
  readonly sentAt: number;
  readonly returnedAt: number;
}

export type QueueRecord = QueuePublishRecord | QueueReceiveRecord | QueueAckRecord;

export interface MessageRef {
  readonly topic: string;
  readonly group?: string;
  readonly id?: string;
  readonly token: string;
}

export interface FifoViolation {
  readonly topic: string;
  readonly group: string;
  readonly key: string;
  /** Published first, delivered second. */
  readonly first: string;
  readonly second: string;
  readonly message: string;
}

export interface QueueHistoryReport {
  /** Messages whose publish returned 201. */
  readonly acknowledged: number;
  readonly indeterminate: number;
  /** Distinct (group, message) pairs delivered. */
  readonly delivered: number;
  readonly lost: readonly MessageRef[];
  readonly unknown: readonly MessageRef[];
  readonly failedButDelivered: readonly MessageRef[];
  readonly idMismatch: readonly string[];
  readonly redeliveredAfterAck: readonly MessageRef[];
  readonly fifo: readonly FifoViolation[];
  readonly duplicates: { readonly count: number; readonly ids: readonly string[] };
  /** None of the failures above (duplicates are allowed). */
  readonly ok: boolean;
}

export interface QueueHistoryOptions {
  /** Groups that must receive every acknowledged message of every topic. */
  readonly groups: readonly string[];
  /** Most findings listed per kind; default: all of them. */
  readonly listMax?: number;
}

interface Published {
  readonly topic: string;
  readonly token: string;
  readonly key: string;
  readonly delayed: boolean;
  readonly outcome: QueueOutcome;
  readonly id: string | undefined;
  readonly record: QueuePublishRecord;
  readonly index: number;
}

interface FirstDelivery {
  readonly record: QueueReceiveRecord;
  readonly index: number;
}

function collectPublishes(records: readonly QueueRecord[], idMismatch: string[]):
  Map<string, Published> {
  const byToken = new Map<string, Published>();
  for (const r of records) {
    if (r.type !== 'publish') continue;
    if (r.outcome === 'ok' && r.ids?.length !== r.messages.length) {
      idMismatch.push(`publish to ${r.topic} at ${r.sentAt} answered ${r.ids?.length ?? 0} ids ` +
        `for ${r.messages.length} messages`);
    }
    r.messages.forEach((m, index) => {
      if (byToken.has(m.token)) idMismatch.push(`token ${m.token} published twice`);
      byToken.set(m.token, { topic: r.topic, token: m.token, key: m.key ?? '',
        delayed: m.delayed === true, outcome: r.outcome,
        id: r.outcome === 'ok' ? r.ids?.[index] : undefined, record: r, index });
    });
  }
  return byToken;
}

/** Deliveries per (group, token), and the first one (deliveries: 1) seen. */
interface Deliveries {
  readonly count: Map<string, number>;
  readonly first: Map<string, FirstDelivery>;
}

function pairKey(group: string, token: string): string {
  return `${group}\u0000${token}`;
}

export function checkQueueHistory(records: readonly QueueRecord[], opts: QueueHistoryOptions):
  QueueHistoryReport {
  const listMax = opts.listMax ?? Number.POSITIVE_INFINITY;
  const idMismatch: string[] = [];
  const published = collectPublishes(records, idMismatch);
  const unknown: MessageRef[] = [];
  const failedButDelivered: MessageRef[] = [];
  const d: Deliveries = { count: new Map(), first: new Map() };
  const tokenOfId = new Map<string, string>();
  for (const r of records) {
    if (r.type !== 'receive') continue;
    r.messages.forEach((m, index) => {
      const ref = { topic: r.topic, group: r.group, id: m.id, token: m.token };
      const p = published.get(m.token);
      if (p === undefined) unknown.push(ref);
      else if (p.outcome === 'failed') failedButDelivered.push(ref);
      else if (p.id !== undefined && p.id !== m.id) {
        idMismatch.push(`${m.token} was published as ${p.id} and delivered as ${m.id}`);
      }
      const idKey = `${r.topic}\u0000${m.id}`;
      const other = tokenOfId.get(idKey);
      if (other !== undefined && other !== m.token) {
        idMismatch.push(`id ${m.id} of ${r.topic} delivered for ${other} and ${m.token}`);
      }
      tokenOfId.set(idKey, m.token);
      const k = pairKey(r.group, m.token);
      d.count.set(k, (d.count.get(k) ?? 0) + 1);
      if (m.deliveries === 1 && !d.first.has(k)) d.first.set(k, { record: r, index });
    });
  }
  const lost: MessageRef[] = [];
  let acknowledged = 0;
  let indeterminate = 0;
  for (const p of published.values()) {
    if (p.outcome === 'indeterminate') indeterminate++;
    if (p.outcome !== 'ok') continue;
    acknowledged++;
    for (const g of opts.groups) {
      if (!d.count.has(pairKey(g, p.token))) {
        lost.push({ topic: p.topic, group: g, token: p.token, ...(p.id === undefined ? {} :
          { id: p.id }) });
      }
    }
  }
  let extra = 0;
  const dupIds = new Set<string>();
  for (const [k, n] of d.count) {
    if (n <= 1) continue;
    extra += n - 1;
    const token = k.slice(k.indexOf('\u0000') + 1);
    dupIds.add(published.get(token)?.id ?? token);
  }
  const fifo = checkFifo(published, d.first);
  const afterAck = checkAfterAck(records, published);
  const cut = <T>(xs: T[]): T[] => xs.slice(0, listMax);
  return {
    acknowledged, indeterminate, delivered: d.count.size,
    lost: cut(lost), unknown: cut(unknown), failedButDelivered: cut(failedButDelivered),
    idMismatch: cut(idMismatch), redeliveredAfterAck: cut(afterAck), fifo: cut(fifo),
    duplicates: { count: extra, ids: cut([...dupIds].sort()) },
    ok: lost.length + unknown.length + failedButDelivered.length + idMismatch.length +
      afterAck.length + fifo.length === 0,
  };
}

/** Deliveries after an ack that returned with every receipt counted. */
function checkAfterAck(records: readonly QueueRecord[], published: Map<string, Published>):
  MessageRef[] {
  const ackedAt = new Map<string, number>();
  for (const r of records) {
    if (r.type !== 'ack' || r.outcome !== 'ok' || r.acked !== r.ids.length) continue;
    for (const id of r.ids) {
      const k = `${r.topic}\u0000${r.group}\u0000${id}`;
      ackedAt.set(k, Math.min(ackedAt.get(k) ?? Infinity, r.returnedAt));
    }
  }
  const out: MessageRef[] = [];
  for (const r of records) {
    if (r.type !== 'receive') continue;
    for (const m of r.messages) {
      const at = ackedAt.get(`${r.topic}\u0000${r.group}\u0000${m.id}`);
      // Sent after the ack returned: the message was already finished for the group.
      if (at !== undefined && r.sentAt > at && published.has(m.token)) {
        out.push({ topic: r.topic, group: r.group, id: m.id, token: m.token });
      }
    }
  }
  return out;
}

/** a ≺ b by publish: a's publish returned before b's was sent, or a is earlier in b's batch. */
function publishedBefore(a: Published, b: Published): boolean {
  if (a.record === b.record) return a.index < b.index;
  return a.record.returnedAt < b.record.sentAt;
}

/** b was first-delivered before a, for sure. */
function deliveredBefore(b: FirstDelivery, a: FirstDelivery): boolean {
  if (b.record === a.record) return b.index < a.index;
  return b.record.returnedAt < a.record.sentAt;
}

interface Item {
  readonly p: Published;
  readonly first: FirstDelivery;
}

function checkFifo(published: Map<string, Published>, first: Map<string, FirstDelivery>):
  FifoViolation[] {
  // Sequences: (topic, group, key) → messages with an observed first delivery.
  const seqs = new Map<string, { topic: string; group: string; key: string; items: Item[] }>();
  for (const [k, f] of first) {
    const sep = k.indexOf('\u0000');
    const group = k.slice(0, sep);
    const p = published.get(k.slice(sep + 1));
    if (p === undefined || p.delayed) continue;
    const sk = `${p.topic}\u0000${group}\u0000${p.key}`;
    const s = seqs.get(sk) ?? { topic: p.topic, group, key: p.key, items: [] };
    s.items.push({ p, first: f });
    seqs.set(sk, s);
  }
  const out: FifoViolation[] = [];
  for (const s of seqs.values()) {
    const pair = findFifoPair(s.items);
    if (pair === null) continue;
    const [a, b] = pair;
    out.push({ topic: s.topic, group: s.group, key: s.key, first: a.p.token,
      second: b.p.token, message: `${s.topic}/${s.group} key "${s.key}": ${a.p.token} ` +
        `(id ${a.p.id ?? '?'}) was published before ${b.p.token} (id ${b.p.id ?? '?'}) ` +
        'but first delivered after it' });
  }
  return out;
}

/** One pair (a, b) with a published before b and b first-delivered before a, or null.
 * Across requests a sweep in O(n log n): over b by publish send time, the candidates a whose
 * publish returned before it, keeping the one whose first receive was sent last. Within one
 * publish batch or one receive answer, the pairs are compared directly. */
function findFifoPair(items: readonly Item[]): [Item, Item] | null {
  const bySent = [...items].sort((x, y) => x.p.record.sentAt - y.p.record.sentAt);
  const byReturned = [...items].sort((x, y) => x.p.record.returnedAt - y.p.record.returnedAt);
  let j = 0;
  let latest: Item | null = null;
  for (const b of bySent) {
    for (; j < byReturned.length; j++) {
      const a = byReturned[j];
      if (a === undefined || a.p.record.returnedAt >= b.p.record.sentAt) break;
      if (latest === null || a.first.record.sentAt > latest.first.record.sentAt) latest = a;
    }
    if (latest !== null && b.first.record.returnedAt < latest.first.record.sentAt) {
      return [latest, b];
    }
  }
  return findGroupedPair(items, (x) => x.p.record) ?? findGroupedPair(items, (x) => x.first.record);
}

/** Pairs inside one batch or one answer, where the interval rule cannot see an order. */
function findGroupedPair(items: readonly Item[], groupOf: (x: Item) => object):
  [Item, Item] | null {
  const groups = new Map<object, Item[]>();
  for (const x of items) {
    const g = groups.get(groupOf(x)) ?? [];
    g.push(x);
    groups.set(groupOf(x), g);
  }
  for (const g of groups.values()) {
    for (const a of g) {
      for (const b of g) {
        if (a !== b && publishedBefore(a.p, b.p) && deliveredBefore(b.first, a.first)) {
          return [a, b];
        }
      }
    }
  }
  return null;
}
