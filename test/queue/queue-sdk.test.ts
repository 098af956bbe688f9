// The SDK's queue client (src/client/queues.ts, queue-consumer.ts) against a real three-pod
// queue cluster: plain calls and their typed errors, a publish retried with its requestId,
// and consume(): acks on success, nacks and redelivers on failure, keeps a long handler's
// lease so that its message is not delivered again, and stops gracefully on abort.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  batch, DsyncClient, DsyncError, InvalidArgumentError, NotFoundError, type ConsumeOptions,
  type ConsumeStats, type QueueMessage,
} from '../../src/client/index.js';
import { Cluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

let cluster: Cluster;
let client: DsyncClient;

beforeAll(async () => {
  cluster = await Cluster.start({ service: 'queue', startTimeoutMs: 60_000 });
  client = new DsyncClient({ queue: cluster.nodes.map((n) => n.url), timeoutMs: 30_000 });
  // Every partition has a leader once a topic config can be written.
  await waitFor('the queue to take a config', () => client.queues.put('sdk/ready', {}), 60_000);
});
afterAll(async () => {
  await client.close();
  await cluster.stop();
});

async function apiError(p: Promise<unknown>): Promise<DsyncError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(DsyncError);
  return err as DsyncError;
}

/** ready + inflight of a group, as the topic's view tells. */
async function counts(topic: string, group = 'default'): Promise<[number, number]> {
  const v = await client.queues.get(topic);
  const g = v?.groups[group];
  return [g?.ready ?? 0, g?.inflight ?? 0];
}

/** Runs consume() until `until` holds, then aborts it and returns what it resolved with. */
async function consumeUntil<T>(topic: string, opts: ConsumeOptions,
  handler: (m: QueueMessage<T>, signal: AbortSignal) => Promise<void>, until: () => boolean):
  Promise<ConsumeStats> {
  const stop = new AbortController();
  const done = client.queues.consume<T>(topic, (m, ctx) => handler(m, ctx.signal),
    { ...opts, signal: stop.signal });
  await waitFor('the consumer to get there', until, 60_000);
  stop.abort();
  return done;
}

describe('DsyncClient queues', { timeout: 120_000 }, () => {
  it('publish one or a batch, receive, ack, get and put', async () => {
    const q = client.queues;
    expect(await q.get('sdk/none')).toBeUndefined();
    const cfg = await q.put('sdk/a', { maxDeliveries: 3 });
    expect(cfg).toMatchObject({ topic: 'sdk/a', maxDeliveries: 3 });
    const one = await q.publish('sdk/a', { n: 1 }, { key: 'k' });
    const many = await q.publish('sdk/a', batch([{ body: [2] }, { body: 'three', key: 'k' }]));
    expect(one.ids).toHaveLength(1);
    expect(many.ids).toHaveLength(2);
    const got = await q.receive('sdk/a', { max: 10, visibilityMs: 30_000 });
    expect(got.map((m) => m.body)).toEqual([{ n: 1 }, [2], 'three']);
    expect(got.map((m) => m.id)).toEqual([...one.ids, ...many.ids]);
    expect(got[0]).toMatchObject({ key: 'k', deliveries: 1 });
    const v = await q.get('sdk/a');
    expect(v).toMatchObject({ topic: 'sdk/a', groups: { default: { ready: 0, inflight: 3 } },
      dlq: 0 });
    expect(await q.extend('sdk/a', got.slice(0, 1), 60_000)).toBe(1);
    expect(await q.nack('sdk/a', got.slice(1, 2))).toBe(1);
    expect(await q.ack('sdk/a', [got[0]!, got[2]!])).toBe(2);
    const again = await q.receive('sdk/a', { waitMs: 5000 });
    expect(again.map((m) => [m.body, m.deliveries])).toEqual([[[2], 2]]);
    expect(await q.ack('sdk/a', again.map((m) => m.receipt))).toBe(1);
    // A receipt of a finished delivery counts 0.
    expect(await q.ack('sdk/a', again)).toBe(0);
  });

  it('a publish retried with its requestId is answered with the first ids', async () => {
    const q = client.queues;
    const a = await q.publish('sdk/dedup', 'x', { requestId: 'sdk-req-1' });
    const b = await q.publish('sdk/dedup', 'x', { requestId: 'sdk-req-1' });
    expect(b.ids).toEqual(a.ids);
    const got = await q.receive('sdk/dedup', { max: 10 });
    expect(got.map((m) => m.id)).toEqual(a.ids);
  });

  it('errors arrive as DsyncApiError with the API code, status and field', async () => {
    const q = client.queues;
    const e1 = await apiError(q.receive('sdk/a', { visibilityMs: 99 }));
    expect(e1).toBeInstanceOf(InvalidArgumentError);
    expect([e1.code, e1.status, e1.retryable, e1.details.field])
      .toEqual(['INVALID_ARGUMENT', 400, false, 'visibilityMs']);
    const e2 = await apiError(q.publish('sdk/a', batch([])));
    expect([e2.code, e2.details.field]).toEqual(['INVALID_ARGUMENT', 'messages']);
    const e3 = await apiError(q.put('sdk/a', { maxDeliveries: 0 }));
    expect(e3.code).toBe('INVALID_ARGUMENT');
    await expect(q.consume('sdk/a', () => undefined, { concurrency: 0 })).rejects
      .toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'concurrency' } });
    // A bad topic name is not worth retrying: consume rejects.
    await expect(q.consume('', () => undefined, { pollWaitMs: 0 })).rejects
      .toBeInstanceOf(NotFoundError);
  });

  it('consume acks every message its handler took', async () => {
    const topic = 'sdk/consume-ok';
    const n = 40;
    const { ids } = await client.queues.publishBatch(topic, Array.from({ length: n },
      (_, i) => ({ body: i })));
    const seen: number[] = [];
    const stats = await consumeUntil<number>(topic, { concurrency: 8, pollWaitMs: 1000 },
      async (m) => { seen.push(m.body); await Promise.resolve(); }, () => seen.length >= n);
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(stats).toMatchObject({ received: n, acked: n, nacked: 0, failed: 0, abandoned: 0 });
    expect(ids).toHaveLength(n);
    expect(await counts(topic)).toEqual([0, 0]);
  });

  it('consume nacks a failed message with backoff, and it is delivered again', async () => {
    const topic = 'sdk/consume-fail';
    await client.queues.publishBatch(topic, [{ body: 'a' }, { body: 'b' }]);
    const tries: Array<[string, number]> = [];
    const stats = await consumeUntil<string>(topic, { concurrency: 2, pollWaitMs: 1000,
      backoffBaseMs: 50 }, (m) => {
      tries.push([m.body, m.deliveries]);
      return m.deliveries < 3 ? Promise.reject(new Error('not yet')) : Promise.resolve();
    }, () => tries.filter(([, d]) => d === 3).length === 2);
    expect([...tries].sort()).toEqual([['a', 1], ['a', 2], ['a', 3], ['b', 1], ['b', 2],
      ['b', 3]]);
    expect(stats).toMatchObject({ failed: 4, nacked: 4, acked: 2 });
    expect(await counts(topic)).toEqual([0, 0]);
  });

  it('consume extends a long handler\'s lease: its message is not delivered again',
    async () => {
      const topic = 'sdk/consume-long';
      await client.queues.publish(topic, 'long job');
      const visibilityMs = 1500;
      let calls = 0;
      let release!: () => void;
      const released = new Promise<void>((r) => { release = r; });
      const stop = new AbortController();
      const done = client.queues.consume<string>(topic, async (m) => {
        calls++;
        expect(m.deliveries).toBe(1);
        await released;
      }, { visibilityMs, pollWaitMs: 1000, signal: stop.signal });
      await waitFor('the handler to start', () => calls === 1, 30_000);
      // Another consumer of the group waits out several visibilities and gets nothing, as
      // the lease keeps being extended.
      const other = await client.queues.receive(topic, { waitMs: visibilityMs * 3 });
      expect(other).toEqual([]);
      expect(await counts(topic)).toEqual([0, 1]);
      release();
      await waitFor('the ack', async () => (await counts(topic))[1] === 0, 30_000);
      stop.abort();
      const stats = await done;
      expect(calls).toBe(1);
      expect(stats.extended).toBeGreaterThanOrEqual(2);
      expect(stats).toMatchObject({ received: 1, acked: 1, leasesLost: 0 });
    });

  it('on abort consume stops receiving, lets running handlers finish and acks them',
    async () => {
      const topic = 'sdk/consume-stop';
      await client.queues.publishBatch(topic, [{ body: 1 }, { body: 2 }]);
      let started = 0;
      let release!: () => void;
      const released = new Promise<void>((r) => { release = r; });
      const stop = new AbortController();
      let resolved = false;
      const done = client.queues.consume<number>(topic, async () => {
        started++;
        await released;
      }, { concurrency: 4, pollWaitMs: 20_000, signal: stop.signal })
        .finally(() => { resolved = true; });
      await waitFor('both handlers to run', () => started === 2, 30_000);
      stop.abort();
      // Published after the abort: the stopped consumer must not take it.
      await client.queues.publish(topic, 3);
      await waitFor('the late message to be ready', async () =>
        (await counts(topic))[0] === 1, 30_000);
      expect(resolved).toBe(false);
      release();
      const stats = await done;
      expect(stats).toMatchObject({ received: 2, acked: 2, abandoned: 0 });
      expect(await counts(topic)).toEqual([1, 0]);
    });

  it('a handler still running when the drain time ends is abandoned and its message nacked',
    async () => {
      const topic = 'sdk/consume-abandon';
      await client.queues.publish(topic, 'stuck');
      let signal: AbortSignal | null = null;
      const stop = new AbortController();
      const done = client.queues.consume(topic, (_m, ctx) => {
        signal = ctx.signal;
        return new Promise<void>(() => undefined);
      }, { pollWaitMs: 1000, drainTimeoutMs: 100, signal: stop.signal });
      await waitFor('the handler to run', () => signal !== null, 30_000);
      stop.abort();
      const stats = await done;
      expect(stats).toMatchObject({ received: 1, abandoned: 1, nacked: 1, acked: 0 });
      expect((signal as AbortSignal | null)?.aborted).toBe(true);
      expect(await counts(topic)).toEqual([1, 0]);
    });
});
