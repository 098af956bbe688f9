// The cache additions of the SDK and the CLI against a real two-node cache cluster with Redis
// behind: getMany, putIfVersion (compare-and-set on `version`, 409 VERSION_MISMATCH with the
// current version) and a per-key ttlMs (the value reads as absent on every node once it has
// expired, its expiry survives a flush to Redis and a reload, and a write replaces it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DsyncClient, VersionMismatchError } from '../../src/client/index.js';
import { dsync } from '../support/cli.js';
import { Cluster } from '../support/cluster.js';
import { get } from '../support/http.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

let redis: RedisServer;
let cluster: Cluster;
let client: DsyncClient;
let urls: string;

beforeAll(async () => {
  redis = await startRedis();
  cluster = await Cluster.start({ service: 'cache', size: 2, startTimeoutMs: 45_000,
    env: { DSYNC_REDIS_URL: redis.url } });
  urls = cluster.nodes.map((n) => n.url).join(',');
  client = new DsyncClient({ cache: cluster.nodes.map((n) => n.url) });
});
afterAll(async () => {
  await client?.close();
  await cluster?.stop();
  await redis?.stop();
});

/** One node's own answer for a key (no failover): its status and body. */
const readOn = (i: number, key: string) =>
  get<{ value?: unknown; expiresAt?: number; error?: { code: string } }>(cluster.nodes[i]!.url,
    `/v1/cache/${encodeURIComponent(key)}`);

describe('cache SDK: getMany, putIfVersion, ttlMs', { timeout: 60_000 }, () => {
  it('getMany reads many keys at once and leaves missing ones out', async () => {
    for (let i = 0; i < 20; i++) await client.cache.put(`many/${i}`, { i });
    const keys = [...Array.from({ length: 20 }, (_, i) => `many/${i}`), 'many/none', 'many/3'];
    const got = await client.cache.getMany<{ i: number }>(keys, { concurrency: 4 });
    expect(got.size).toBe(20);
    expect(got.get('many/7')?.value).toEqual({ i: 7 });
    expect(got.has('many/none')).toBe(false);
  });

  it('putIfVersion writes only at the expected version; a mismatch says the current one',
    async () => {
      const first = await client.cache.putIfVersion('cas/a', 'one', 0);
      expect(first.version).toBeGreaterThanOrEqual(1);
      const err = await client.cache.putIfVersion('cas/a', 'two', 0).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VersionMismatchError);
      const vm = err as VersionMismatchError;
      expect([vm.status, vm.currentVersion]).toEqual([409, first.version]);
      // Through the other node: the comparison is made by whichever node owns the key.
      const other = new DsyncClient({ cache: [cluster.nodes[1]!.url] });
      try {
        const second = await other.cache.putIfVersion('cas/a', 'two', first.version);
        expect(second.version).toBe(first.version + 1);
      } finally {
        await other.close();
      }
      expect((await client.cache.get('cas/a'))?.value).toBe('two');
    });

  it('a value written with ttlMs reads as absent on every node once it expired', async () => {
    const put = await client.cache.put('ttl/a', { short: true }, { ttlMs: 1500 });
    expect(put.expiresAt).toBeGreaterThan(Date.now());
    // Shared by both nodes (S), and in Redis after a flush.
    for (const i of [0, 1]) {
      const r = await readOn(i, 'ttl/a');
      expect(r.status).toBe(200);
      expect(r.body.expiresAt).toBe(put.expiresAt);
    }
    await Promise.all(cluster.nodes.map((n) => client.cache.flush(n.url)));
    await waitFor('expiry on both nodes', async () =>
      (await readOn(0, 'ttl/a')).status === 404 && (await readOn(1, 'ttl/a')).status === 404,
    15_000);
    // The line is still there, and says it holds no value.
    const states = await Promise.all(cluster.nodes.map((n) => client.cache.state('ttl/a', n.url)));
    for (const s of states) if (s.state !== 'I') expect(s.absent).toBe(true);
    // An expired key has no value: ifVersion 0 matches; the new value never expires.
    const again = await client.cache.putIfVersion('ttl/a', 'forever', 0);
    expect(again.version).toBeGreaterThan(put.version);
    expect(again.expiresAt).toBeUndefined();
    expect((await client.cache.get('ttl/a'))?.value).toBe('forever');
  });

  it('ttlMs and ifVersion out of bounds are 400s naming the field', async () => {
    for (const [body, field] of [[{ value: 1, ttlMs: 99 }, 'ttlMs'],
      [{ value: 1, ifVersion: -1 }, 'ifVersion'], [{ value: 1, ttlMs: 'soon' }, 'ttlMs']] as const) {
      const r = await fetch(`${cluster.nodes[0]!.url}/v1/cache/bad`, { method: 'PUT',
        headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { field: string } }).error.field).toBe(field);
    }
  });

  it('dsync cache put --ttl / --if-version and get of several keys', async () => {
    const cli = (args: string[]) => dsync(['cache', '--endpoints', urls, '-o', 'json', ...args]);
    const p = await cli(['put', 'cli/ttl', '"x"', '--ttl', '10m']);
    expect(p.code, p.stderr).toBe(0);
    const put = JSON.parse(p.stdout) as { version: number; expiresAt: number };
    expect(put.expiresAt).toBeGreaterThan(Date.now() + 9 * 60_000);
    const stale = await cli(['put', 'cli/ttl', '"y"', '--if-version', String(put.version + 5)]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/VERSION_MISMATCH/);
    expect(stale.stderr).toMatch(/"currentVersion":\d+/);
    expect(stale.stderr).toMatch(/read it again/);
    const ok = await cli(['put', 'cli/ttl', '"y"', '--if-version', String(put.version)]);
    expect(ok.code, ok.stderr).toBe(0);
    const many = await cli(['get', 'cli/ttl', 'many/1', 'cli/none']);
    expect(many.code, many.stderr).toBe(0);
    expect((JSON.parse(many.stdout) as Array<{ key: string }>).map((v) => v.key))
      .toEqual(['cli/ttl', 'many/1']);
  });
});
