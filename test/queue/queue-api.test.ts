// Black-box tests of the queue service's HTTP API (API.md, "Queues") against three real
// `dsync serve --service queue` processes with fsync on. One cluster for the whole file;
// every test uses topics of its own. Requests go to different pods on purpose: any pod
// serves any request (it forwards to the partition's leader).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../support/cluster.js';
import { get } from '../support/http.js';
import { waitFor } from '../support/wait.js';
import {
  expectError, leaders, partitionOfTopic, partitionsOf, QueueApi, startQueueCluster, topicPath,
} from './queue-cluster.js';

const PARTITIONS = 4;
let cluster: Cluster;
let api: QueueApi[];

beforeAll(async () => {
  cluster = await startQueueCluster({ partitions: PARTITIONS });
  api = cluster.nodes.map((n) => new QueueApi(n.url));
});
afterAll(async () => { await cluster.stop(); });

/** Some pod: the tests spread their requests over all three. */
const pod = (i: number): QueueApi => api[i % api.length]!;

describe('publish', () => {
  it('answers 201 with one id per message, for one message and for a batch', async () => {
    const one = await pod(0).publish('pub-one', { body: { n: 1 } });
    expect(one).toHaveLength(1);
    const batch = await pod(1).publish('pub-one', { body: 'a' }, { body: [1, 2] },
      { body: null, key: 'k' });
    expect(batch).toHaveLength(3);
    const ids = [...one, ...batch].map(Number);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(4);
    expect((await pod(2).topic('pub-one')).messages).toBe(4);
  });

  it('a dedupId within 5 minutes returns the first id and publishes nothing', async () => {
    const [first] = await pod(0).publish('pub-dedup', { body: 1, dedupId: 'order-7' });
    const [again] = await pod(1).publish('pub-dedup', { body: 2, dedupId: 'order-7' });
    expect(again).toBe(first);
    const batch = await pod(2).publish('pub-dedup', { body: 3, dedupId: 'x' },
      { body: 4, dedupId: 'x' });
    expect(batch[1]).toBe(batch[0]);
    expect((await pod(0).topic('pub-dedup')).messages).toBe(2);
  });

  it('a retry with the same requestId and client gets the first answer', async () => {
    const client = new QueueApi(cluster.nodes[1]!.url, 'client-retry');
    const body = { body: 'once', requestId: 'req-1' };
    const a = await client.publishRaw('pub-retry', body);
    const b = await new QueueApi(cluster.nodes[2]!.url, 'client-retry')
      .publishRaw('pub-retry', body);
    expect(a.status).toBe(201);
    expect(b.body).toEqual(a.body);
    expect((await pod(0).topic('pub-retry')).messages).toBe(1);
  });
});

describe('receive, ack, nack, extend', () => {
  it('receives with a receipt, acks once, and a second ack counts 0', async () => {
    const [id] = await pod(0).publish('rx-ack', { body: { hello: 'world' }, key: 'k1' });
    const [m] = await pod(1).receive('rx-ack', { max: 10 });
    expect(m).toMatchObject({ id, body: { hello: 'world' }, key: 'k1', deliveries: 1 });
    expect(typeof m!.receipt).toBe('string');
    expect(m!.publishedAt).toBeGreaterThan(0);
    expect(await pod(2).ack('rx-ack', [m!.receipt])).toBe(1);
    expect(await pod(0).ack('rx-ack', [m!.receipt])).toBe(0);
    expect(await pod(1).receive('rx-ack')).toEqual([]);
  });

  it('a lease that runs out delivers again with deliveries + 1; the old receipt acks 0',
    async () => {
      const [id] = await pod(0).publish('rx-expire', { body: 'x' });
      const [first] = await pod(1).receive('rx-expire', { visibilityMs: 200 });
      expect(first?.deliveries).toBe(1);
      const again = await waitFor('the redelivery', async () =>
        (await pod(2).receive('rx-expire', { visibilityMs: 30_000 }))[0]);
      expect(again).toMatchObject({ id, deliveries: 2 });
      expect(await pod(0).ack('rx-expire', [first!.receipt])).toBe(0);
      expect(await pod(0).ack('rx-expire', [again.receipt])).toBe(1);
    });

  it('nack with a delay makes the message ready again after the delay', async () => {
    await pod(0).publish('rx-nack', { body: 'n' });
    const [m] = await pod(1).receive('rx-nack');
    expect(await pod(2).nack('rx-nack', [m!.receipt], 300)).toBe(1);
    const view = await pod(0).topic('rx-nack');
    expect(view.groups.default).toMatchObject({ inflight: 0, delayed: 1 });
    const again = await waitFor('the nacked message', async () =>
      (await pod(1).receive('rx-nack'))[0]);
    expect(again.deliveries).toBe(2);
    expect(await pod(2).nack('rx-nack', [again.receipt])).toBe(1);
    expect((await pod(0).receive('rx-nack'))[0]?.deliveries).toBe(3);
  });

  it('extend keeps a lease past its first deadline', async () => {
    await pod(0).publish('rx-extend', { body: 'long job', key: 'a' }, { body: 'short', key: 'b' });
    const got = await pod(1).receive('rx-extend', { max: 2, visibilityMs: 300 });
    expect(got).toHaveLength(2);
    const [long, short] = got;
    expect(await pod(2).extend('rx-extend', [long!.receipt], 60_000)).toBe(1);
    // The short one was leased at the same moment for as long: once it is delivered again,
    // the long job's first deadline has passed as well.
    const redelivered = await waitFor('the unextended lease to run out', async () =>
      (await pod(0).receive('rx-extend'))[0]);
    expect(redelivered.id).toBe(short!.id);
    expect((await pod(1).topic('rx-extend')).groups.default?.inflight).toBe(2);
    expect(await pod(2).ack('rx-extend', [long!.receipt])).toBe(1);
  });

  it('first deliveries are FIFO per key, across batches and pods', async () => {
    const keys = ['a', 'b', 'c'];
    const sent: Array<{ key: string; n: number }> = [];
    for (let round = 0; round < 3; round++) {
      const batch = keys.flatMap((key) => [0, 1].map((i) => ({ key, n: round * 2 + i })));
      await pod(round).publish('rx-fifo', ...batch.map((m) => ({ body: m, key: m.key })));
      sent.push(...batch);
    }
    const seen = new Map<string, number[]>();
    for (;;) {
      const got = await pod(seen.size).receive('rx-fifo', { max: 4 });
      if (got.length === 0) break;
      for (const m of got) {
        const b = m.body as { key: string; n: number };
        seen.set(b.key, [...(seen.get(b.key) ?? []), b.n]);
      }
      await pod(1).ack('rx-fifo', got.map((m) => m.receipt));
    }
    for (const key of keys) expect(seen.get(key)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('consumer groups are independent: each sees every message', async () => {
    const [id] = await pod(0).publish('rx-groups', { body: 'both' });
    const a = await pod(1).receive('rx-groups', { group: 'billing' });
    const b = await pod(2).receive('rx-groups', { group: 'shipping' });
    expect(a.map((m) => m.id)).toEqual([id]);
    expect(b.map((m) => m.id)).toEqual([id]);
    expect(await pod(0).ack('rx-groups', [a[0]!.receipt], 'billing')).toBe(1);
    // A receipt of one group is nothing to another.
    expect(await pod(0).ack('rx-groups', [a[0]!.receipt], 'shipping')).toBe(0);
    const view = await pod(1).topic('rx-groups');
    expect(view.groups).toMatchObject({ billing: { ready: 0, inflight: 0 },
      shipping: { ready: 0, inflight: 1 } });
  });

  it('a topic that never existed: receive is 200 with nothing, GET is 404', async () => {
    expect(await pod(0).receive('never-ever', { max: 5 })).toEqual([]);
    expectError(await pod(1).topicRaw('never-ever'), 404, 'NOT_FOUND');
  });

  it('a long poll is answered as soon as a publish commits', async () => {
    const waiting = pod(0).receive('rx-long', { waitMs: 15_000, group: 'g' }, 20_000);
    // The poll waits on the leader; let it arrive there before the publish.
    await waitFor('the long poll to be parked', async () => {
      const text = await (await fetch(`${cluster.nodes[0]!.url}/metrics`)).text() +
        await (await fetch(`${cluster.nodes[1]!.url}/metrics`)).text() +
        await (await fetch(`${cluster.nodes[2]!.url}/metrics`)).text();
      return /dsync_queue_long_polls\{[^}]*\} [1-9]/.test(text);
    });
    const [id] = await pod(1).publish('rx-long', { body: 'wake up' });
    const got = await waiting;
    expect(got.map((m) => m.id)).toEqual([id]);
  });
});

describe('dead letters and redrive', () => {
  it('after maxDeliveries a message moves to {topic}.dlq, keeping id, body and key; redrive' +
    ' brings it back', async () => {
    const config = await pod(0).configure('dl', { maxDeliveries: 2, visibilityMs: 100 });
    expect(config.status).toBe(200);
    expect(config.body).toEqual({ topic: 'dl', maxDeliveries: 2, visibilityMs: 100,
      retentionMs: 4 * 86_400_000 });
    const [id] = await pod(1).publish('dl', { body: { job: 1 }, key: 'k' });
    for (let d = 1; d <= 2; d++) {
      const m = await waitFor(`delivery ${d}`, async () => (await pod(2).receive('dl'))[0]);
      expect(m.deliveries).toBe(d);
    }
    await waitFor('the dead letter', async () => (await pod(0).topic('dl')).dlq === 1);
    const [dead] = await pod(1).receive('dl.dlq', { visibilityMs: 60_000 });
    expect(dead).toMatchObject({ id, body: { job: 1 }, key: 'k', deliveries: 1 });
    await pod(2).nack('dl.dlq', [dead!.receipt]);
    expect(await pod(0).redrive('dl')).toBe(1);
    expect((await pod(1).topic('dl')).dlq).toBe(0);
    const back = await pod(2).receive('dl', { visibilityMs: 60_000 });
    expect(back[0]).toMatchObject({ id, deliveries: 1 });
  });
});

describe('topics, errors and the node routes', () => {
  it('PUT creates a topic and changes its configuration; GET shows it', async () => {
    expectError(await pod(0).topicRaw('cfg'), 404, 'NOT_FOUND');
    const r = await pod(1).configure('cfg', { retentionMs: 60_000 });
    expect(r.body).toMatchObject({ topic: 'cfg', maxDeliveries: 5, retentionMs: 60_000 });
    const v = await pod(2).topic('cfg');
    expect(v).toMatchObject({ topic: 'cfg', partition: partitionOfTopic('cfg', PARTITIONS),
      groups: {}, dlq: 0 });
    expect(cluster.nodes.map((n) => n.id)).toContain(v.leader);
  });

  it('GET /v1/queues lists every topic of every partition, from any pod', async () => {
    await pod(0).publish('listed-a', { body: 1 });
    await pod(1).publish('listed-b', { body: 2 });
    await pod(2).receive('listed-b', { group: 'g' });
    const r = await get<{ topics: Array<{ topic: string; partition: number; leader: string;
      groups: Record<string, { ready: number; inflight: number }>; oldestAgeMs?: number }> }>(
      cluster.nodes[1]!.url, '/v1/queues');
    expect(r.status).toBe(200);
    const names = r.body.topics.map((t) => t.topic);
    expect(names).toEqual([...names].sort());
    const b = r.body.topics.find((t) => t.topic === 'listed-b');
    expect(b).toMatchObject({ partition: partitionOfTopic('listed-b', PARTITIONS),
      groups: { g: { ready: 0, inflight: 1 } } });
    expect(b?.oldestAgeMs).toBeGreaterThanOrEqual(0);
    expect(names).toContain('listed-a');
    const p = partitionOfTopic('listed-a', PARTITIONS);
    const one = await get<{ topics: Array<{ partition: number }> }>(cluster.nodes[2]!.url,
      `/v1/queues?partition=${p}`);
    expect(one.body.topics.every((t) => t.partition === p)).toBe(true);
    expectError(await get(cluster.nodes[0]!.url, `/v1/queues?partition=${PARTITIONS}`), 400,
      'INVALID_ARGUMENT');
  });

  it('bad input is the documented 4xx, naming the field', async () => {
    const cases: Array<[string, unknown, number, string, string?]> = [
      ['messages', {}, 400, 'INVALID_ARGUMENT', 'body'],
      ['messages', { messages: [] }, 400, 'INVALID_ARGUMENT', 'messages'],
      ['messages', { body: 1, delayMs: 1.5 }, 400, 'INVALID_ARGUMENT', 'delayMs'],
      ['messages', { messages: [{ body: 1 }, { key: 'k' }] }, 400, 'INVALID_ARGUMENT',
        'messages.1.body'],
      ['messages', { body: 'x'.repeat(300 * 1024) }, 413, 'PAYLOAD_TOO_LARGE'],
      ['receive', { max: 0 }, 400, 'INVALID_ARGUMENT', 'max'],
      ['receive', { waitMs: 20_001 }, 400, 'INVALID_ARGUMENT', 'waitMs'],
      ['receive', { visibilityMs: 99 }, 400, 'INVALID_ARGUMENT', 'visibilityMs'],
      ['receive', { group: '' }, 400, 'INVALID_ARGUMENT', 'group'],
      ['ack', { receipts: [] }, 400, 'INVALID_ARGUMENT', 'receipts'],
      ['nack', { receipts: ['r'], delayMs: -1 }, 400, 'INVALID_ARGUMENT', 'delayMs'],
      ['extend', { receipts: ['r'] }, 400, 'INVALID_ARGUMENT', 'visibilityMs'],
      ['redrive', { max: 0 }, 400, 'INVALID_ARGUMENT', 'max'],
    ];
    for (const [i, [op, body, status, code, field]] of cases.entries()) {
      const e = expectError(await pod(i).post(topicPath('bad', op), body), status, code);
      if (field !== undefined) expect(e.field, `${op} ${JSON.stringify(body)}`).toBe(field);
    }
    const tooBig = await pod(1).post(topicPath('bad', 'messages'),
      { body: 'x'.repeat(1100 * 1024) });
    expectError(tooBig, 413, 'PAYLOAD_TOO_LARGE');
    const long = await pod(2).post(topicPath('x'.repeat(257), 'receive'), {});
    expect(expectError(long, 400, 'INVALID_ARGUMENT').field).toBe('topic');
    const put = await pod(0).configure('bad', { maxDeliveries: 1001 });
    expect(expectError(put, 400, 'INVALID_ARGUMENT').field).toBe('maxDeliveries');
    expectError(await get(cluster.nodes[0]!.url, '/v1/queues/bad/nowhere'), 404, 'NOT_FOUND');
    const wrong = await fetch(`${cluster.nodes[0]!.url}${topicPath('bad', 'ack')}`);
    expect(wrong.status).toBe(405);
    expect((await pod(1).topicRaw('bad')).status).toBe(404);
  });

  it('/health lists every partition the pod hosts; /metrics has the queue series', async () => {
    await leaders(cluster.nodes, PARTITIONS);
    for (const n of cluster.nodes) {
      const rows = await partitionsOf(n);
      expect(rows?.map((r) => r.partition)).toEqual([0, 1, 2, 3]);
      for (const r of rows ?? []) {
        expect(['leader', 'follower']).toContain(r.state);
        expect(r.voters).toHaveLength(3);
      }
    }
    await pod(0).publish('metered', { body: 1 });
    const text = (await Promise.all(cluster.nodes.map(async (n) =>
      (await fetch(`${n.url}/metrics`)).text()))).join('\n');
    // Only the partition's leader reports it, so a sum over pods counts it once.
    expect(text.match(/dsync_queue_published_total\{[^}]*topic="metered"[^}]*\} \d+/g))
      .toEqual([expect.stringMatching(/ 1$/)]);
    expect(text).toMatch(/dsync_raft_is_leader\{[^}]*group="0"/);
  });
});
