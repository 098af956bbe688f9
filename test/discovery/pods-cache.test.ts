// Cache pods that find each other by headless-Service DNS (a real DNS server on loopback) over
// a real redis-server: the ring is the pods 0..replicas-1 under their stable DNS names, a value
// written on one pod is read on another, GET /v1/cluster lists the ring; SIGTERM of the pod
// holding a dirty line (write-back) flushes it to Redis and exits with code 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, get } from '../support/http.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';
import { PodCluster } from './pod-cluster.js';

const START_MS = 60_000;
let redis: RedisServer;
let pods: PodCluster;

beforeAll(async () => {
  redis = await startRedis();
  pods = await PodCluster.create({ service: 'cache', replicas: 3,
    extraArgs: ['--redis-url', redis.url, '--write-policy', 'write-back',
      '--flush-interval-ms', '60000'] });
});
afterAll(async () => {
  await pods?.stop();
  await redis?.stop();
});

describe('cache pods discovered by headless-Service DNS', () => {
  it('form one ring; a write on one pod is read on another; GET /v1/cluster lists them',
    async () => {
      for (const i of [0, 1, 2]) pods.start(i);
      await Promise.all([0, 1, 2].map((i) => waitFor(`cache-${i} /ready`, async () =>
        (await fetch(`${pods.pod(i).url}/ready`)).ok, START_MS, 100)));
      const put = await call(pods.pod(1).url, 'PUT', '/v1/cache/greeting', { value: 'hello' });
      expect(put.status, JSON.stringify(put.body)).toBe(200);
      const read = await get<{ value: unknown }>(pods.pod(2).url, '/v1/cache/greeting');
      expect(read.body.value).toBe('hello');
      const c = await get<{ members: Array<{ id: string; url: string | null }> }>(
        pods.pod(0).url, '/v1/cluster');
      expect(c.status).toBe(200);
      expect(c.body.members.map((m) => m.id).sort()).toEqual(['cache-0', 'cache-1', 'cache-2']);
      expect(c.body.members.every((m) => m.url?.includes('.cache-headless.') === true))
        .toBe(true);
    });

  it('SIGTERM flushes the dirty line it holds to the store and exits with code 0', async () => {
    const put = await call<{ state: string }>(pods.pod(1).url, 'PUT', '/v1/cache/dirty',
      { value: 42 });
    expect(put.body.state).toBe('M');
    // What Redis holds, read directly (the home of the key may be the pod that leaves).
    const { Redis } = await import('ioredis');
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      expect(await client.keys('*dirty*'), 'write-back: not in Redis yet').toEqual([]);
      const victim = pods.pod(1);
      const exit = new Promise<number | null>((r) => victim.proc!.once('exit', (c) => r(c)));
      await victim.stop(30_000);
      expect(await exit).toBe(0);
      const keys = await client.keys('*dirty*');
      expect(keys.length, 'the dirty line reached Redis').toBeGreaterThan(0);
    } finally {
      client.disconnect();
    }
  });
});
