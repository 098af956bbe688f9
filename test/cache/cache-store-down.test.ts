// A dead backing store fails fast and says so (API.md: 503 UNAVAILABLE with a Retry-After):
// real cache nodes in front of a real redis-server that is killed with SIGKILL and later
// restarted on the same port. While it is down, what needs the store answers 503 with
// `reason: "store_unavailable"` (not a request timeout that blames the key's home), what the
// cache holds is still served, /ready and dsync_cache_store_up say so; once the store is
// back everything recovers without a restart. Run `npm run build` first: nodes run dist/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type ClusterNode } from '../support/cluster.js';
import { call, get, type JsonResponse } from '../support/http.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

/** Node start-up on a loaded two-core machine can take many seconds. */
const START_TIMEOUT_MS = 45_000;

interface ErrorBody { error: { code: string; message: string; reason?: string } }

const path = (key: string): string => `/v1/cache/${encodeURIComponent(key)}`;

async function storeUpGauge(n: ClusterNode): Promise<number | null> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const m = /^dsync_cache_store_up(?:\{[^}]*\})? (\S+)$/m.exec(text);
  return m === null ? null : Number(m[1]);
}

function expectStoreDown(r: JsonResponse<unknown>, what: string): void {
  expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(503);
  const e = (r.body as ErrorBody).error;
  expect(e.code).toBe('UNAVAILABLE');
  expect(e.reason, what).toBe('store_unavailable');
  expect(e.message).toMatch(/backing store/);
  expect(e.message).not.toMatch(/did not answer/);
  expect(r.headers.get('retry-after'), what).not.toBeNull();
}

describe('cache with its Redis killed and restarted', () => {
  let redis: RedisServer;
  let revived: RedisServer | null = null;
  let cluster: Cluster;

  beforeAll(async () => {
    redis = await startRedis();
    cluster = await Cluster.start({ service: 'cache', size: 2,
      env: { DSYNC_REDIS_URL: redis.url }, startTimeoutMs: START_TIMEOUT_MS });
  });
  afterAll(async () => {
    await cluster?.stop();
    await revived?.stop();
    await redis?.stop();
  });

  it('answers 503 store_unavailable at once, keeps serving its lines, and recovers',
    async () => {
      const [n0, n1] = cluster.nodes as [ClusterNode, ClusterNode];
      expect((await call(n0.url, 'PUT', path('warm'), { value: 'w' })).status).toBe(200);
      for (const n of cluster.nodes) expect(await storeUpGauge(n)).toBe(1);

      process.kill(redis.pid, 'SIGKILL');
      for (const n of cluster.nodes) {
        const ready = await waitFor(`${n.id} /ready reports the store down`, async () => {
          const r = await get<ErrorBody>(n.url, '/ready');
          return r.status === 503 ? r : null;
        }, 20_000);
        expect(ready.body.error.message).toMatch(/store_unavailable/);
        expect(await storeUpGauge(n)).toBe(0);
      }
      // Keys no pod has loaded, so their homes (either node) would need the store: every
      // route answers 503 naming the store, through the home itself and through the other
      // pod.
      for (const [i, n] of [n0, n1, n0, n1].entries()) {
        const key = `cold-${i}`;
        expectStoreDown(await call(n.url, 'PUT', path(key), { value: i }), `PUT ${key}`);
        expectStoreDown(await call(n.url, 'GET', path(key)), `GET ${key}`);
        expectStoreDown(await call(n.url, 'DELETE', path(key)), `DELETE ${key}`);
      }
      // What the cache holds is still served: the writer's own line, and (write-back) a new
      // version of it.
      const hit = await get<{ value: unknown; hit: boolean }>(n0.url, path('warm'));
      expect(hit.status).toBe(200);
      expect(hit.body).toMatchObject({ value: 'w', hit: true });
      expect((await call(n0.url, 'PUT', path('warm'), { value: 'w2' })).status).toBe(200);

      // The store comes back on the same port: nodes reconnect and recover by themselves.
      revived = await startRedis({ port: redis.port });
      for (const n of cluster.nodes) {
        await waitFor(`${n.id} /ready after the store is back`, async () =>
          (await get(n.url, '/ready')).status === 200, 20_000);
        expect(await storeUpGauge(n)).toBe(1);
      }
      for (const [i, n] of [n1, n0, n1, n0].entries()) {
        const key = `cold-${i}`;
        expect((await call(n.url, 'PUT', path(key), { value: i })).status).toBe(200);
      }
      for (const [i, n] of [n0, n1, n0, n1].entries()) {
        const r = await get<{ value: unknown }>(n.url, path(`cold-${i}`));
        expect(r.status).toBe(200);
        expect(r.body.value).toBe(i);
      }
      expect((await get<{ value: unknown }>(n1.url, path('warm'))).body.value).toBe('w2');
    }, 120_000);
});

describe('write-through cache with its Redis killed', () => {
  let redis: RedisServer;
  let cluster: Cluster;

  beforeAll(async () => {
    redis = await startRedis();
    cluster = await Cluster.start({ service: 'cache', size: 1,
      extraArgs: ['--write-policy', 'write-through'], env: { DSYNC_REDIS_URL: redis.url },
      startTimeoutMs: START_TIMEOUT_MS });
  });
  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  it('refuses a write on a line it owns before applying it, and still serves reads', async () => {
    const [n0] = cluster.nodes as [ClusterNode];
    expect((await call(n0.url, 'PUT', path('owned'), { value: 1 })).status).toBe(200);
    process.kill(redis.pid, 'SIGKILL');
    await waitFor('/ready reports the store down', async () =>
      (await get(n0.url, '/ready')).status === 503, 20_000);
    // The pod holds the key in M: without the check the write would be applied and then
    // wait for a store that cannot take it (INDETERMINATE after the request timeout).
    expectStoreDown(await call(n0.url, 'PUT', path('owned'), { value: 2 }), 'PUT owned');
    expectStoreDown(await call(n0.url, 'DELETE', path('owned')), 'DELETE owned');
    const r = await get<{ value: unknown }>(n0.url, path('owned'));
    expect(r.status).toBe(200);
    expect(r.body.value).toBe(1);
  });
});
