// LRU bounded in bytes (API.md, "Cache"): pods started with the smallest capacity hold far
// less than the data written, so lines are evicted (dirty ones written back first), and every
// key still reads its last value, from another pod or from Redis. Run `npm run build` first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type ClusterNode } from '../support/cluster.js';
import { call, get } from '../support/http.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const START_TIMEOUT_MS = 45_000;
const CAPACITY_BYTES = 1024 * 1024; // the configured minimum
const KEYS = 200;
const VALUE_BYTES = 10 * 1024; // 200 × 10 KiB ≈ 2 MiB, twice a pod's capacity

interface StatsBody { entries: number; bytes: number; capacityBytes: number; evictions: number }

const path = (key: string): string => `/v1/cache/${encodeURIComponent(key)}`;
const valueOf = (i: number, round: number): string =>
  `${round}:${i}:`.padEnd(VALUE_BYTES, String.fromCharCode(97 + (i % 26)));

describe('cache LRU', () => {
  let redis: RedisServer;
  let cluster: Cluster;

  beforeAll(async () => {
    redis = await startRedis();
    cluster = await Cluster.start({ service: 'cache', startTimeoutMs: START_TIMEOUT_MS,
      env: { DSYNC_REDIS_URL: redis.url }, extraArgs: ['--capacity-bytes', String(CAPACITY_BYTES)] });
  });
  afterAll(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  it('more data than capacity: evictions happen, bytes stay bounded, every key reads its ' +
    'last value', async () => {
    const nodes = cluster.nodes;
    const writer = (i: number): ClusterNode => nodes[i % nodes.length]!;
    for (let round = 0; round < 2; round++) {
      // The second round rewrites every third key: the last value must win over the first.
      for (let i = 0; i < KEYS; i++) {
        if (round === 1 && i % 3 !== 0) continue;
        const r = await call(writer(i + round).url, 'PUT', path(`lru-${i}`),
          { value: valueOf(i, round) });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
      }
    }
    let evictions = 0;
    for (const n of nodes) {
      const s = (await get<StatsBody>(n.url, '/v1/cache')).body;
      expect(s.capacityBytes).toBe(CAPACITY_BYTES);
      expect(s.bytes).toBeLessThanOrEqual(CAPACITY_BYTES);
      evictions += s.evictions;
    }
    expect(evictions).toBeGreaterThan(0);
    for (let i = 0; i < KEYS; i++) {
      const last = i % 3 === 0 ? 1 : 0;
      const reader = nodes[(i + 2) % nodes.length]!;
      const r = await get<{ value: string }>(reader.url, path(`lru-${i}`));
      expect(r.status, `lru-${i} via ${reader.id}`).toBe(200);
      expect(r.body.value).toBe(valueOf(i, last));
    }
  }, 180_000);
});
