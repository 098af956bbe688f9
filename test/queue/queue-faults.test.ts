// The queue across a crash of a partition's leader (kill -9, no shutdown hooks), with three
// real pods and fsync on: every publish answered 201 is still there under the new leader,
// receipts of deliveries made by the old leader still ack, and the killed pod comes back from
// its disk and catches up.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Cluster, ClusterNode } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import {
  leaders, partitionOfTopic, partitionsOf, QueueApi, startQueueCluster, topicPath, waitReady,
} from './queue-cluster.js';

const PARTITIONS = 2;
const TOPIC = 'crash-orders';
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startQueueCluster({ partitions: PARTITIONS });
});
afterAll(async () => { await cluster.stop(); });

/** Publishes batches through `via` until `stop` says so; returns the ids answered 201. A 503
 * (no leader for a moment) is retried; its batch may or may not have been applied. */
async function publishLoop(via: () => QueueApi, stop: () => boolean, acked: Set<string>):
  Promise<number> {
  let batches = 0;
  for (let b = 0; !stop(); b++) {
    const messages = Array.from({ length: 10 }, (_, i) => ({ body: { b, i }, key: `k${i % 3}` }));
    const r = await via().publishRaw(TOPIC, { messages }).catch(() => null);
    if (r?.status === 201) {
      for (const id of r.body.ids) acked.add(id);
      batches++;
    } else if (r !== null && r.status !== 503) {
      throw new Error(`publish answered ${r.status}: ${JSON.stringify(r.body)}`);
    }
  }
  return batches;
}

it('kill -9 of the leader: nothing answered 201 is lost, old receipts still ack, the pod ' +
  'catches up after a restart', async () => {
  const p = partitionOfTopic(TOPIC, PARTITIONS);
  const leaderId = (await leaders(cluster.nodes, PARTITIONS)).get(p)!;
  const leader = cluster.node(leaderId);
  const survivors = cluster.nodes.filter((n) => n !== leader);
  const apis = survivors.map((n) => new QueueApi(n.url));
  let turn = 0;
  const via = (): QueueApi => apis[turn++ % apis.length]!;

  const published = new Set<string>();
  await publishLoop(via, () => published.size >= 100, published);
  const leased = await apis[0]!.receive(TOPIC, { max: 30, visibilityMs: 60_000 });
  expect(leased).toHaveLength(30);

  // Publishes keep going while the leader dies.
  let crashed = false;
  let after = 0;
  const loop = publishLoop(via, () => crashed && after++ >= 5, published);
  await leader.crash();
  crashed = true;
  await loop;
  await leaders(survivors, PARTITIONS);

  // Deliveries made by the old leader keep their receipts.
  expect(await apis[1]!.ack(TOPIC, leased.map((m) => m.receipt))).toBe(30);
  const delivered = new Set(leased.map((m) => m.id));
  for (;;) {
    const got = await via().receive(TOPIC, { max: 100, visibilityMs: 60_000 });
    if (got.length === 0) break;
    for (const m of got) delivered.add(m.id);
    expect(await via().ack(TOPIC, got.map((m) => m.receipt))).toBe(got.length);
  }
  const lost = [...published].filter((id) => !delivered.has(id));
  expect(lost, 'ids answered 201 and never delivered').toEqual([]);

  // The killed pod restarts from its own disk and catches up with the partition.
  leader.start();
  await waitReady([leader]);
  await waitCaughtUp(leader, survivors, p);
  const view = await new QueueApi(leader.url).topic(TOPIC);
  expect(view.groups.default).toMatchObject({ ready: 0, inflight: 0 });
});

async function waitCaughtUp(node: ClusterNode, others: ClusterNode[], p: number): Promise<void> {
  await waitFor(`${node.id} caught up on partition ${p}`, async () => {
    const commits = await Promise.all(others.map(async (o) =>
      (await partitionsOf(o))?.find((r) => r.partition === p)?.commitIndex ?? 0));
    const mine = (await partitionsOf(node))?.find((r) => r.partition === p);
    return mine !== undefined && mine.appliedIndex >= Math.max(...commits);
  }, 30_000);
}

it('a request for a topic answers while its partition has no quorum: 503 with Retry-After',
  async () => {
    // Two of three pods down: the survivor cannot elect a leader for any partition.
    const [a, b, c] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await b.crash();
    await c.crash();
    const r = await fetch(`${a.url}${topicPath(TOPIC, 'messages')}`, {
      method: 'POST', body: JSON.stringify({ body: 1 }),
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(15_000),
    });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('UNAVAILABLE');
    b.start();
    c.start();
    await waitReady(cluster.nodes);
  });
