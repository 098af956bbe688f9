// The queue partition's semantics, one rule per test (API.md "Queues", docs/queue.md).
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/assert.js';
import { InvalidArgumentError } from '../../src/errors.js';
import {
  QueueCmd, decodeQueueCommand, encodeQueueCommand, isFinalQueueResult, parseTopicName,
  type DeliveredMessage, type PublishMessage, type QueueCommand, type QueueResult,
} from '../../src/queue/partition-commands.js';
import { DEDUP_WINDOW_MS, type PartitionLimits } from '../../src/queue/partition-limits.js';
import { QueuePartitionMachine } from '../../src/queue/partition-state-machine.js';
import { QueuePartition } from '../../src/queue/partition.js';
import { encode } from '../../src/runtime/envelope.js';

const T0 = 1_700_000_000_000;

/** A partition with a clock, checked after every command. */
class Q {
  p: QueuePartition;
  now = T0;
  constructor(limits: Partial<PartitionLimits> = {}) {
    this.p = new QueuePartition({ limits, receiptSalt: 7 });
  }
  run(cmd: QueueCommand): QueueResult {
    const { result } = this.p.apply(cmd, { nowMs: this.now });
    this.p.checkInvariants();
    return result;
  }
  publish(topic: string, ...messages: PublishMessage[]): string[] {
    const r = this.run(QueueCmd.publish(topic, messages));
    if (r.type !== 'published') throw new Error(`publish: ${JSON.stringify(r)}`);
    return [...r.ids];
  }
  receive(topic: string, group = 'g', max = 10, vis?: number): DeliveredMessage[] {
    const r = this.run(QueueCmd.receive(topic, group, max, vis));
    if (r.type !== 'received') throw new Error(`receive: ${JSON.stringify(r)}`);
    return [...r.messages];
  }
  ack(topic: string, ms: readonly DeliveredMessage[], group = 'g'): number {
    const r = this.run(QueueCmd.ack(topic, group, ms.map((m) => m.receipt)));
    if (r.type !== 'acked') throw new Error(`ack: ${JSON.stringify(r)}`);
    return r.acked;
  }
  tick(ms: number): QueueResult {
    this.now += ms;
    return this.run(QueueCmd.expire());
  }
}

const body = (s: string): PublishMessage => ({ body: JSON.stringify(s) });
const ids = (ms: readonly DeliveredMessage[]): string[] => ms.map((m) => m.id);

describe('queue partition: publish and receive', () => {
  it('answers ids in order and delivers in publish order, FIFO per key', () => {
    const q = new Q();
    const [a, b, c, d] = q.publish('t', { body: '1', key: 'k1' }, { body: '2', key: 'k2' },
      { body: '3', key: 'k1' }, { body: '4' });
    expect([a, b, c, d]).toEqual(['1', '2', '3', '4']);
    const got = q.receive('t', 'g', 2);
    expect(ids(got)).toEqual(['1', '2']);
    expect(got[0]).toMatchObject({ body: '1', key: 'k1', deliveries: 1, publishedAt: T0 });
    expect(got[1]?.key).toBe('k2');
    expect(ids(q.receive('t'))).toEqual(['3', '4']);
    expect(q.receive('t')).toEqual([]);
  });

  it('keeps bodies as text or bytes', () => {
    const q = new Q();
    q.publish('t', { body: new Uint8Array([0, 255, 7]) }, { body: '{"a":1}' });
    const [x, y] = q.receive('t');
    expect(x?.body).toEqual(new Uint8Array([0, 255, 7]));
    expect(y?.body).toBe('{"a":1}');
  });

  it('a receive on a topic that never existed returns nothing and creates nothing', () => {
    const q = new Q();
    expect(q.receive('never')).toEqual([]);
    expect(q.p.topicView('never')).toBeNull();
    expect(q.p.topicNames()).toEqual([]);
  });

  it('a topic exists from its first publish or PUT; GET shows groups and the DLQ count', () => {
    const q = new Q();
    expect(q.run(QueueCmd.putConfig('cfg', { maxDeliveries: 3 }))).toEqual({ type: 'config',
      topic: 'cfg', maxDeliveries: 3, visibilityMs: 30_000, retentionMs: 4 * 86_400_000 });
    expect(q.p.topicView('cfg')).toMatchObject({ topic: 'cfg', messages: 0, groups: [], dlq: 0 });
    q.publish('t', body('a'), body('b'));
    q.receive('t', 'g1', 1);
    expect(q.p.topicView('t')?.groups).toEqual([
      { group: 'g1', ready: 1, inflight: 1, delayed: 0, parked: 0 }]);
  });

  it('bounds a receive by receiveBytesMax but always returns one ready message', () => {
    const q = new Q({ receiveBytesMax: 5 });
    q.publish('t', body('0123456789'), body('x'), body('y'));
    expect(ids(q.receive('t'))).toEqual(['1']);
    expect(ids(q.receive('t'))).toEqual(['2']);
  });
});

describe('queue partition: leases, receipts, redelivery', () => {
  it('redelivers after visibilityMs with deliveries + 1; the old receipt then counts 0', () => {
    const q = new Q();
    q.publish('t', body('a'));
    const [first] = q.receive('t', 'g', 1, 1000);
    expect(q.p.nextDeadline()).toBe(T0 + 1000);
    q.tick(1000);
    const [second] = q.receive('t');
    expect(second).toMatchObject({ id: first?.id, deliveries: 2 });
    expect(second?.receipt).not.toBe(first?.receipt);
    expect(q.ack('t', [first!])).toBe(0);
    expect(q.p.topicView('t')?.groups[0]?.inflight).toBe(1);
    expect(q.ack('t', [second!])).toBe(1);
    expect(q.p.topicView('t')?.messages).toBe(0);
  });

  it('an ack after the lease ran out but before a redelivery still counts', () => {
    const q = new Q();
    q.publish('t', body('a'));
    const got = q.receive('t', 'g', 1, 100);
    q.tick(500);
    expect(q.p.topicView('t')?.groups[0]).toMatchObject({ ready: 1, inflight: 0 });
    expect(q.ack('t', got)).toBe(1);
    expect(q.receive('t')).toEqual([]);
  });

  it('a receipt is for its group: another group acking with it changes nothing', () => {
    const q = new Q();
    q.publish('t', body('a'));
    const got = q.receive('t', 'g1');
    q.receive('t', 'g2');
    expect(q.ack('t', got, 'g2')).toBe(0);
    expect(q.ack('t', got, 'g1')).toBe(1);
    expect(q.run(QueueCmd.ack('t', 'g1', ['garbage', '1.1.0']))).toEqual({ type: 'acked',
      acked: 0 });
  });

  it('extend keeps a long job\'s lease; nack with a delay redelivers after it', () => {
    const q = new Q();
    q.publish('t', body('a'), body('b'));
    const [a, b] = q.receive('t', 'g', 2, 1000);
    q.now += 900;
    expect(q.run(QueueCmd.extend('t', 'g', [a!.receipt], 5000))).toEqual({ type: 'extended',
      extended: 1 });
    expect(q.run(QueueCmd.nack('t', 'g', [b!.receipt], 2000))).toEqual({ type: 'nacked',
      nacked: 1, deadLettered: 0 });
    expect(q.p.topicView('t')?.groups[0]).toMatchObject({ inflight: 1, delayed: 1 });
    q.tick(1999);
    expect(q.receive('t')).toEqual([]);
    q.tick(1);
    expect(q.receive('t').map((m) => [m.id, m.deliveries])).toEqual([['2', 2]]);
    q.tick(3000);
    expect(q.receive('t').map((m) => [m.id, m.deliveries])).toEqual([['1', 2]]);
  });

  it('receipts are replicated state: they work on a partition restored from a snapshot', () => {
    const q = new Q();
    q.publish('t', body('a'));
    const got = q.receive('t');
    q.p = QueuePartition.restore(q.p.snapshot(), { receiptSalt: 7 });
    expect(q.ack('t', got)).toBe(1);
  });

  it('extendLeases pushes every in-flight deadline out (a new leader\'s first command)', () => {
    const q = new Q();
    q.publish('t', body('a'));
    q.receive('t', 'g', 1, 1000);
    q.now += 5000;
    expect(q.run(QueueCmd.extendLeases(5000))).toEqual({ type: 'ok' });
    expect(q.p.nextDeadline()).toBe(T0 + 6000);
    expect(q.p.topicView('t')?.groups[0]?.inflight).toBe(1);
  });
});

describe('queue partition: dead letters and redrive', () => {
  it('after maxDeliveries moves to {topic}.dlq keeping id, body and key; redrive returns it',
    () => {
      const q = new Q();
      q.run(QueueCmd.putConfig('t', { maxDeliveries: 2 }));
      q.publish('t', { body: '"x"', key: 'k' });
      q.receive('t', 'g', 1, 100);
      q.tick(100);
      const [again] = q.receive('t', 'g', 1, 100);
      expect(again?.deliveries).toBe(2);
      q.tick(100);
      expect(q.receive('t')).toEqual([]);
      expect(q.p.topicView('t')?.dlq).toBe(1);
      expect(q.p.log('t.dlq')).toMatchObject([{ id: '1', key: 'k', origin: 'g' }]);
      const [dead] = q.receive('t.dlq', 'inspect');
      expect(dead).toMatchObject({ id: '1', body: '"x"', key: 'k', deliveries: 1 });
      expect(q.run(QueueCmd.redrive('t', 10))).toEqual({ type: 'redriven', moved: 1 });
      expect(q.p.topicView('t')?.dlq).toBe(0);
      // Back to the group that dead-lettered it, with its deliveries counted afresh.
      expect(q.receive('t', 'g').map((m) => [m.id, m.deliveries])).toEqual([['1', 1]]);
    });

  it('a nack at maxDeliveries dead-letters at once', () => {
    const q = new Q();
    q.run(QueueCmd.putConfig('t', { maxDeliveries: 1 }));
    q.publish('t', body('a'));
    const [m] = q.receive('t');
    expect(q.run(QueueCmd.nack('t', 'g', [m!.receipt]))).toEqual({ type: 'nacked', nacked: 1,
      deadLettered: 1 });
    expect(q.p.topicView('t')?.dlq).toBe(1);
  });

  it('only the group that exhausted its deliveries loses the message', () => {
    const q = new Q();
    q.run(QueueCmd.putConfig('t', { maxDeliveries: 1 }));
    q.publish('t', body('a'));
    q.receive('t', 'bad', 1, 100);
    q.receive('t', 'good');
    q.tick(100);
    expect(q.p.topicView('t')?.groups).toMatchObject([
      { group: 'bad', ready: 0, inflight: 0 }, { group: 'good', inflight: 1 }]);
    expect(q.p.topicView('t')?.dlq).toBe(1);
  });

  it('in a DLQ a message at maxDeliveries is parked, kept and still redrivable', () => {
    const q = new Q();
    q.run(QueueCmd.putConfig('t', { maxDeliveries: 1 }));
    q.run(QueueCmd.putConfig('t.dlq', { maxDeliveries: 1 }));
    q.publish('t', body('a'));
    q.receive('t', 'g', 1, 100);
    q.tick(100);
    q.receive('t.dlq', 'd', 1, 100);
    q.tick(100);
    expect(q.p.topicView('t.dlq')?.groups).toMatchObject([{ group: 'd', parked: 1, ready: 0 }]);
    expect(q.p.topicNames()).toEqual(['t', 't.dlq']);
    expect(q.run(QueueCmd.redrive('t', 5))).toEqual({ type: 'redriven', moved: 1 });
  });
});

describe('queue partition: groups, dedup, delay, retention', () => {
  it('groups are independent; a late group sees what is retained; all acked → deleted', () => {
    const q = new Q();
    q.publish('t', body('a'), body('b'));
    expect(q.ack('t', q.receive('t', 'g1'), 'g1')).toBe(2);
    // No other group existed: both are gone for good.
    expect(q.p.topicView('t')?.messages).toBe(0);
    q.publish('t', body('c'));
    expect(ids(q.receive('t', 'g2'))).toEqual(['3']);
    expect(ids(q.receive('t', 'g1'))).toEqual(['3']);
  });

  it('with no group yet, messages wait for the first one (until retention)', () => {
    const q = new Q();
    q.run(QueueCmd.putConfig('t', { retentionMs: 10_000 }));
    q.publish('t', body('a'));
    q.tick(5000);
    q.publish('t', body('b'));
    q.tick(5000);
    expect(q.p.topicView('t')?.messages).toBe(1);
    expect(ids(q.receive('t', 'late'))).toEqual(['2']);
  });

  it('retention trims messages, in flight or not', () => {
    const q = new Q();
    q.run(QueueCmd.putConfig('t', { retentionMs: 1000 }));
    q.publish('t', body('a'));
    const got = q.receive('t');
    expect(q.p.nextDeadline()).toBe(T0 + 1000);
    expect(q.tick(1000)).toEqual({ type: 'expired', due: 1 });
    expect(q.p.topicView('t')).toMatchObject({ messages: 0, bytes: 0 });
    expect(q.ack('t', got)).toBe(0);
  });

  it('a dedupId makes a re-publish within 5 minutes a no-op that returns the first id', () => {
    const q = new Q();
    expect(q.publish('t', { body: '1', dedupId: 'x' }, { body: '2', dedupId: 'x' }))
      .toEqual(['1', '1']);
    q.now += DEDUP_WINDOW_MS - 1;
    expect(q.run(QueueCmd.publish('t', [{ body: '3', dedupId: 'x' }]))).toEqual({
      type: 'published', ids: ['1'], dedupHits: 1 });
    q.now += 1;
    expect(q.publish('t', { body: '4', dedupId: 'x' })).toEqual(['2']);
    expect(q.publish('u', { body: '5', dedupId: 'x' })).toEqual(['3']);
  });

  it('a delayed message enters the topic (and its key\'s sequence) when its delay ends', () => {
    const q = new Q();
    q.publish('t', { body: '1', key: 'k', delayMs: 1000 }, { body: '2', key: 'k' });
    expect(q.p.topicView('t')).toMatchObject({ messages: 1, delayed: 1 });
    expect(ids(q.receive('t', 'g', 1))).toEqual(['2']);
    expect(q.p.nextDeadline()).toBe(T0 + 1000);
    q.tick(1000);
    expect(ids(q.receive('t'))).toEqual(['1']);
  });

  it('splits due work over commands at dueItemsPerCommandMax', () => {
    const q = new Q({ dueItemsPerCommandMax: 2 });
    q.publish('t', body('a'), body('b'), body('c'));
    q.receive('t', 'g', 3, 100);
    expect(q.tick(100)).toEqual({ type: 'expired', due: 2 });
    expect(q.p.nextDeadline()).toBe(T0 + 100);
    expect(q.tick(0)).toEqual({ type: 'expired', due: 1 });
    expect(q.p.nextDeadline()).toBe(T0 + 4 * 86_400_000);
  });
});

describe('queue partition: limits answer exhausted and change nothing', () => {
  const exhausted = (limit: string): object => expect.objectContaining({ type: 'exhausted',
    limit });

  it('topics (a DLQ made by dead-lettering does not count), groups, in-flight', () => {
    const q = new Q({ topicsMax: 1, groupsPerTopicMax: 1, inflightPerGroupMax: 1 });
    q.publish('t', body('a'), body('b'));
    expect(q.run(QueueCmd.publish('u', [body('x')]))).toEqual(exhausted('topics'));
    expect(q.run(QueueCmd.putConfig('u', {}))).toEqual(exhausted('topics'));
    expect(q.run(QueueCmd.putConfig('t.dlq', {}))).toMatchObject({ type: 'config' });
    expect(q.receive('t', 'g1')).toHaveLength(1);
    expect(q.run(QueueCmd.receive('t', 'g2', 1))).toEqual(exhausted('groupsPerTopic'));
    expect(q.run(QueueCmd.receive('t', 'g1', 1))).toEqual(exhausted('inflightPerGroup'));
    expect(q.p.topicNames()).toEqual(['t', 't.dlq']);
  });

  it('message bytes, retained bytes per topic and partition, dedup entries', () => {
    const q = new Q({ messageBytesMax: 10, topicRetainedBytesMax: 1024,
      partitionRetainedBytesMax: 1500, dedupEntriesMax: 1 });
    expect(q.run(QueueCmd.publish('t', [body('a'), { body: 'x'.repeat(11) }])))
      .toEqual(exhausted('messageBytes'));
    // 68 bytes each (4 of body, 64 of overhead): 15 fill 1020 of 1024.
    const fill = Array.from({ length: 15 }, () => body('aa'));
    q.publish('t', ...fill);
    expect(q.run(QueueCmd.publish('t', [body('a')]))).toEqual(exhausted('topicRetainedBytes'));
    q.publish('u', ...fill.slice(0, 7));
    expect(q.run(QueueCmd.publish('u', [body('a')])))
      .toEqual(exhausted('partitionRetainedBytes'));
    expect(q.run(QueueCmd.publish('v', [{ body: '1', dedupId: 'a' },
      { body: '2', dedupId: 'b' }]))).toEqual(exhausted('dedupEntries'));
    // All or nothing: the refused batches left no trace.
    expect(q.p.topicView('t')?.messages).toBe(15);
    expect(q.p.topicView('v')).toBeNull();
    expect(isFinalQueueResult({ type: 'exhausted', limit: 'topics', max: 1 })).toBe(false);
  });

  it('refuses bad limits at start-up, naming the field', () => {
    expect(() => new QueuePartition({ limits: { topicsMax: 0 } })).toThrow(/topicsMax/);
    expect(() => new QueuePartition({ limits: { messageBytesMax: 2048,
      topicRetainedBytesMax: 1024 } })).toThrow(/messageBytesMax/);
  });
});

describe('queue partition: commands, snapshots, state machine', () => {
  it('commands round-trip through msgpack, canonical, and bad ones name the field', () => {
    const cmd = QueueCmd.publish('t', [{ body: new Uint8Array([1]), key: 'k', delayMs: 0 }]);
    expect(decodeQueueCommand(encodeQueueCommand(cmd))).toEqual({ type: 'publish', topic: 't',
      messages: [{ body: new Uint8Array([1]), key: 'k' }] });
    const bad: Array<[() => unknown, string]> = [
      [() => QueueCmd.publish('', [body('a')]), 'topic'],
      [() => QueueCmd.publish('t', []), 'messages'],
      [() => QueueCmd.publish('t', [{ body: '1', key: 'a\u0001' }]), 'messages.0.key'],
      [() => QueueCmd.receive('t', 'g', 1001), 'max'],
      [() => QueueCmd.receive('t', 'g', 1, 99), 'visibilityMs'],
      [() => QueueCmd.putConfig('t', { maxDeliveries: 1001 }), 'maxDeliveries'],
      [() => QueueCmd.nack('t', 'g', ['r'], -1), 'delayMs'],
      [() => decodeQueueCommand(encode({ type: 'drop' })), 'type'],
      [() => decodeQueueCommand(new Uint8Array([0x81])), 'command'],
    ];
    for (const [make, field] of bad) {
      let err: unknown;
      try { make(); } catch (e) { err = e; }
      expect(err, field).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).details.field).toBe(field);
    }
    expect(parseTopicName(`${'x'.repeat(256)}.dlq`)).toHaveLength(260);
    expect(() => parseTopicName(`${'x'.repeat(257)}`)).toThrow(InvalidArgumentError);
  });

  it('equal states give byte-identical snapshots; restore validates', () => {
    const a = new Q();
    const b = new Q();
    for (const q of [a, b]) {
      q.publish('z', body('1'), { body: '2', key: 'k', delayMs: 50 });
      q.publish('a', { body: '3', dedupId: 'd' });
      q.receive('z', 'g2', 1);
      q.receive('z', 'g1', 1);
    }
    b.p = QueuePartition.restore(b.p.snapshot(), { receiptSalt: 7 });
    for (const q of [a, b]) q.tick(60);
    expect(Buffer.from(a.p.snapshot()).equals(Buffer.from(b.p.snapshot()))).toBe(true);
    expect(() => QueuePartition.restore(encode([9]))).toThrow(AssertionError);
    expect(() => QueuePartition.restore(encode([1, 0, 1, 0, [['t', 0, 0, 0, 1, [], [], []]],
      []]))).toThrow(/maxDeliveries/);
  });

  it('the StateMachine adapter applies bytes, reports events, and stops on corruption', () => {
    const m = new QueuePartitionMachine({ receiptSalt: 1 });
    const seen: string[] = [];
    m.onEvents((evs) => { for (const e of evs) seen.push(e.topic); });
    const ctx = { index: 1, position: 0, term: 1, nowMs: T0 };
    expect(m.apply(QueuePartitionMachine.encode(QueueCmd.publish('t', [body('a')])), ctx))
      .toEqual({ type: 'published', ids: ['1'], dedupHits: 0 });
    expect(seen).toEqual(['t']);
    expect(m.isFinal({ type: 'exhausted', limit: 'topics', max: 1 })).toBe(false);
    const image = m.snapshot();
    const n = new QueuePartitionMachine({ receiptSalt: 1 });
    n.restore(image);
    expect(n.partition.topicView('t')?.messages).toBe(1);
    expect(() => m.apply(encode({ type: 'publish' }), ctx)).toThrow(AssertionError);
  });

  it('metrics count per topic and group', () => {
    const q = new Q();
    q.publish('t', { body: '1', dedupId: 'a' }, { body: '2', dedupId: 'a' });
    q.receive('t', 'g', 1, 100);
    q.tick(100);
    q.receive('t', 'g', 1, 100);
    const m = q.p.metrics();
    expect(m.topics[0]).toMatchObject({ topic: 't', messages: 1, oldestPublishedAt: T0,
      counters: { published: 1, dedupHits: 1 } });
    expect(m.topics[0]?.groups[0]).toMatchObject({ group: 'g', inflight: 1,
      oldestPublishedAt: T0, counters: { delivered: 2, redelivered: 1, expired: 1 } });
  });
});
