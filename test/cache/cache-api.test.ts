// Black-box tests of the cache service's HTTP API (API.md, "Cache" and "Common to every
// node") against three real `dsync serve --service cache` processes with a real redis-server
// behind them, plus the embedded store (no Redis) in a cluster of its own. Run `npm run
// build` first: the nodes run dist/. Every test uses keys of its own.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DsyncClient } from '../../src/client/index.js';
import { BIN, Cluster, type ClusterNode } from '../support/cluster.js';
import { call, get, post, type JsonResponse } from '../support/http.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

/** Node start-up on a loaded two-core machine can take many seconds. */
const START_TIMEOUT_MS = 45_000;

interface ReadBody { key: string; value: unknown; state: string; hit: boolean; version: number }
interface WriteBody { key: string; state: string; version: number }
interface StateBody { key: string; state: string; home: string; absent?: boolean }
interface StatsBody {
  entries: number; bytes: number; capacityBytes: number; hits: number; misses: number;
  evictions: number; states: { M: number; E: number; S: number };
  dirtyLines: number; dirtyBytes: number;
}
interface ErrorBody { error: { code: string; message: string; [k: string]: unknown } }

const path = (key: string, suffix = ''): string => `/v1/cache/${encodeURIComponent(key)}${suffix}`;
const put = (n: ClusterNode, key: string, value: unknown) =>
  call<WriteBody & ErrorBody>(n.url, 'PUT', path(key), { value });
const read = (n: ClusterNode, key: string) => get<ReadBody & ErrorBody>(n.url, path(key));
const del = (n: ClusterNode, key: string) =>
  call<{ deleted: boolean } & ErrorBody>(n.url, 'DELETE', path(key));
const state = async (n: ClusterNode, key: string): Promise<string> =>
  (await get<StateBody>(n.url, path(key, '/state'))).body.state;

function ok<T>(r: JsonResponse<T>): T {
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

function expectError(r: JsonResponse<unknown>, status: number, code: string): ErrorBody['error'] {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  const e = (r.body as ErrorBody).error;
  expect(e.code).toBe(code);
  expect(typeof e.message).toBe('string');
  return e;
}

describe('cache API with Redis behind', () => {
  let redis: RedisServer;
  let cluster: Cluster;
  let rc: Redis;
  let n0: ClusterNode;
  let n1: ClusterNode;
  let n2: ClusterNode;

  beforeAll(async () => {
    redis = await startRedis();
    cluster = await Cluster.start({ service: 'cache', env: { DSYNC_REDIS_URL: redis.url },
      startTimeoutMs: START_TIMEOUT_MS });
    [n0, n1, n2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    rc = new Redis(redis.url);
  });
  afterAll(async () => {
    rc?.disconnect();
    await cluster?.stop();
    await redis?.stop();
  });

  it('PUT returns M and a version; GET on the writer is a hit in M', async () => {
    const w = ok(await put(n0, 'a1', { x: [1, 'two', null] }));
    expect(w).toEqual({ key: 'a1', state: 'M', version: 1 });
    const r = ok(await read(n0, 'a1'));
    expect(r).toEqual({ key: 'a1', value: { x: [1, 'two', null] }, state: 'M', hit: true,
      version: 1 });
  });

  it('GET of a key never written is 404 NOT_FOUND', async () => {
    expectError(await read(n1, 'never-written'), 404, 'NOT_FOUND');
  });

  it('values are any JSON, null included, and come back unchanged on every node', async () => {
    const values: unknown[] = [null, 0, -1.5, 'text', '', true, [], {}, { 'ключ': ['∞', 'ü'] }];
    for (const [i, v] of values.entries()) {
      ok(await put(cluster.nodes[i % 3]!, `json-${i}`, v));
      for (const n of cluster.nodes) expect(ok(await read(n, `json-${i}`)).value).toEqual(v);
    }
  });

  it('version increases with every write, whichever node writes', async () => {
    const versions: number[] = [];
    for (let i = 0; i < 6; i++) versions.push(ok(await put(cluster.nodes[i % 3]!, 'ver', i)).version);
    expect(versions).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ok(await read(n1, 'ver'))).toMatchObject({ value: 5, version: 6 });
  });

  it('a write through one node is seen by a later read on every node', async () => {
    for (let i = 0; i < 5; i++) {
      ok(await put(cluster.nodes[i % 3]!, 'coh', `v${i}`));
      for (const n of cluster.nodes) expect(ok(await read(n, 'coh')).value).toBe(`v${i}`);
    }
  });

  it('DELETE answers deleted true, then false; the key reads 404 afterwards', async () => {
    ok(await put(n0, 'd1', 'x'));
    expect(ok(await del(n1, 'd1'))).toEqual({ deleted: true });
    for (const n of cluster.nodes) expectError(await read(n, 'd1'), 404, 'NOT_FOUND');
    expect(ok(await del(n2, 'd1'))).toEqual({ deleted: false });
    expect(ok(await del(n0, 'never-there'))).toEqual({ deleted: false });
    // Versions keep growing across a delete.
    expect(ok(await put(n2, 'd1', 'y')).version).toBeGreaterThan(1);
  });

  it('a deleted key that every pod read as 404 shows its line with absent: true', async () => {
    ok(await put(n0, 'gone', 'x'));
    expect(ok(await del(n1, 'gone'))).toEqual({ deleted: true });
    for (const n of cluster.nodes) expectError(await read(n, 'gone'), 404, 'NOT_FOUND');
    for (const n of cluster.nodes) {
      const s = ok(await get<StateBody>(n.url, path('gone', '/state')));
      // The line is a valid copy (S after reads on every pod) of "no such key".
      expect(['M', 'E', 'S']).toContain(s.state);
      expect(s.absent, `${n.id}: ${JSON.stringify(s)}`).toBe(true);
    }
    ok(await put(n2, 'gone', 'back'));
    const back = ok(await get<StateBody>(n2.url, path('gone', '/state')));
    expect(back.state).toBe('M');
    expect(back).not.toHaveProperty('absent');
  });

  it('MESI states: writer M; after a remote read both S; after a third pod writes, others I',
    async () => {
      const key = 'mesi';
      ok(await put(n0, key, 1));
      expect(await state(n0, key)).toBe('M');
      expect(await state(n1, key)).toBe('I');
      const r = ok(await read(n1, key));
      expect(r).toMatchObject({ value: 1, state: 'S', hit: false });
      expect(await state(n0, key)).toBe('S');
      expect(await state(n1, key)).toBe('S');
      // A second read on n1 is answered from its own S line.
      expect(ok(await read(n1, key))).toMatchObject({ state: 'S', hit: true });
      ok(await put(n2, key, 2));
      expect(await state(n2, key)).toBe('M');
      expect(await state(n0, key)).toBe('I');
      expect(await state(n1, key)).toBe('I');
    });

  it('a lone reader gets E and then writes locally (E→M, a hit); values come from Redis',
    async () => {
      // Written straight into Redis: no pod holds a copy, so the first reader is alone.
      await rc.hset('dsync:cache:excl', 'v', '7', 'd', '"seeded"');
      expect(ok(await read(n2, 'excl'))).toEqual({ key: 'excl', value: 'seeded', state: 'E',
        hit: false, version: 7 });
      const before = ok(await get<StatsBody>(n2.url, '/v1/cache'));
      expect(ok(await put(n2, 'excl', 'mine'))).toEqual({ key: 'excl', state: 'M', version: 8 });
      const after = ok(await get<StatsBody>(n2.url, '/v1/cache'));
      expect(after.hits).toBe(before.hits + 1);
      expect(after.misses).toBe(before.misses);
    });

  it('a GET answers the stored JSON text as it is, without re-serialising it', async () => {
    // Spacing and number spelling that JSON.stringify would not produce.
    const text = '{ "a" : [1, 2.50, "\\u00e9"] }';
    await rc.hset('dsync:cache:raw', 'v', '2', 'd', text);
    for (const expected of [false, true]) {
      const r = await fetch(`${n1.url}${path('raw')}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await r.text()).toBe(
        `{"key":"raw","value":${text},"state":"E","hit":${expected},"version":2}`);
    }
  });

  it('GET state: home is a cache node that every node agrees on; I for an unseen key, and ' +
    'asking has no side effects', async () => {
    const homes = new Set<string>();
    for (const n of cluster.nodes) {
      const before = ok(await get<StatsBody>(n.url, '/v1/cache'));
      const s = ok(await get<StateBody>(n.url, path('unseen-key', '/state')));
      expect(s.key).toBe('unseen-key');
      expect(s.state).toBe('I');
      homes.add(s.home);
      const after = ok(await get<StatsBody>(n.url, '/v1/cache'));
      expect(after).toEqual(before);
    }
    expect(homes.size).toBe(1);
    expect(cluster.nodes.map((n) => n.id)).toContain([...homes][0]);
  });

  it('GET /v1/cache: entries, bytes, capacity, hits, misses, evictions, states, dirty', async () => {
    ok(await put(n2, 'stats-key', 'v'));
    const before = ok(await get<StatsBody>(n2.url, '/v1/cache'));
    ok(await read(n2, 'stats-key'));
    const s = ok(await get<StatsBody>(n2.url, '/v1/cache'));
    expect(Object.keys(s).sort()).toEqual(['bytes', 'capacityBytes', 'dirtyBytes', 'dirtyLines',
      'entries', 'evictions', 'hits', 'misses', 'states']);
    // Write-back: the line may or may not have been flushed yet.
    expect(Number.isSafeInteger(s.dirtyLines) && s.dirtyLines >= 0).toBe(true);
    expect(Number.isSafeInteger(s.dirtyBytes) && s.dirtyBytes >= 0).toBe(true);
    expect(s.hits).toBe(before.hits + 1);
    expect(s.capacityBytes).toBe(64 * 1024 * 1024);
    expect(s.entries).toBeGreaterThan(0);
    expect(s.bytes).toBeGreaterThan(0);
    expect(s.states.M).toBeGreaterThan(0);
  });

  it('write-back: flush writes dirty lines to Redis; a dirty line also reaches it on its own',
    async () => {
      ok(await put(n1, 'wb-flush', { n: 1 }));
      const f = ok(await post<{ flushed: number }>(n1.url, '/v1/cache/flush'));
      expect(f.flushed).toBeGreaterThanOrEqual(1);
      expect(await rc.hmget('dsync:cache:wb-flush', 'v', 'd')).toEqual(['1', '{"n":1}']);
      expect(ok(await post<{ flushed: number }>(n1.url, '/v1/cache/flush')).flushed).toBe(0);
      ok(await put(n0, 'wb-periodic', 'p'));
      await waitFor('periodic write-back to Redis', async () =>
        (await rc.hget('dsync:cache:wb-periodic', 'd')) === '"p"', 10_000);
    });

  it('concurrent misses for one key on every pod load it from the store once', async () => {
    const loads = async (): Promise<number> => {
      let sum = 0;
      for (const n of cluster.nodes) {
        const text = await (await fetch(`${n.url}/metrics`)).text();
        for (const line of text.split('\n')) {
          if (line.startsWith('dsync_cache_store_duration_seconds_count{') &&
            line.includes('op="load"')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        }
      }
      return sum;
    };
    await rc.hset('dsync:cache:herd', 'v', '3', 'd', '"stored"');
    const before = await loads();
    const reads = await Promise.all(Array.from({ length: 24 }, (_, i) =>
      read(cluster.nodes[i % 3]!, 'herd')));
    for (const r of reads) expect(ok(r)).toMatchObject({ value: 'stored', version: 3 });
    expect(await loads()).toBe(before + 1);
  });

  it('a remote read of a dirty line writes it back', async () => {
    ok(await put(n0, 'wb-remote', 'r1'));
    ok(await read(n1, 'wb-remote'));
    await waitFor('write-back after a remote read', async () =>
      (await rc.hget('dsync:cache:wb-remote', 'd')) === '"r1"', 5000);
  });

  it('keys: any UTF-8 up to 256 bytes, / and % included, travel URL-encoded', async () => {
    for (const key of ['a/b c%', 'ключ/значение', '%25', 'x'.repeat(256), 'state', '🙂']) {
      ok(await put(n0, key, key));
      const r = ok(await read(n1, key));
      expect(r.key).toBe(key);
      expect(r.value).toBe(key);
      expect(ok(await get<StateBody>(n1.url, path(key, '/state'))).key).toBe(key);
    }
  });

  it('bad input on every route is the documented 4xx, never 5xx', async () => {
    const long = encodeURIComponent('k'.repeat(257));
    for (const [method, p] of [['GET', `/v1/cache/${long}`], ['PUT', `/v1/cache/${long}`],
      ['DELETE', `/v1/cache/${long}`], ['GET', `/v1/cache/${long}/state`],
      ['GET', '/v1/cache/a%01b'], ['PUT', '/v1/cache/a%7Fb'], ['GET', '/v1/cache/%zz'],
      ['DELETE', '/v1/cache/%E2%82'], ['GET', '/v1/cache/%ED%A0%80/state']] as const) {
      const r = await call(n0.url, method, p, method === 'PUT' ? { value: 1 } : undefined);
      expect(expectError(r, 400, 'INVALID_ARGUMENT').field, `${method} ${p}`).toBeDefined();
    }
    // PUT bodies.
    expect(expectError(await call(n0.url, 'PUT', path('b'), {}), 400, 'INVALID_ARGUMENT').field)
      .toBe('value');
    expectError(await call(n0.url, 'PUT', path('b'), '{"value": '), 400, 'INVALID_ARGUMENT');
    expectError(await call(n0.url, 'PUT', path('b'), '[1,2]'), 400, 'INVALID_ARGUMENT');
    expectError(await call(n0.url, 'PUT', path('b'), '"text"'), 400, 'INVALID_ARGUMENT');
    expectError(await call(n0.url, 'PUT', path('b')), 400, 'INVALID_ARGUMENT');
    // Was a 500: JSON.stringify of the value overflowed the stack.
    const deep = `{"value":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    expect(expectError(await call(n0.url, 'PUT', path('b'), deep), 400, 'INVALID_ARGUMENT'))
      .toMatchObject({ field: 'body', depthMax: 64 });
    const big = { value: 'x'.repeat(1024 * 1024 + 10) };
    expectError(await call(n0.url, 'PUT', path('b'), big), 413, 'PAYLOAD_TOO_LARGE');
    // Wrong methods and unknown routes.
    expectError(await call(n0.url, 'POST', path('b')), 405, 'METHOD_NOT_ALLOWED');
    expectError(await call(n0.url, 'DELETE', '/v1/cache'), 405, 'METHOD_NOT_ALLOWED');
    expectError(await call(n0.url, 'GET', '/v1/cache/flush/state/x'), 404, 'NOT_FOUND');
    expectError(await call(n0.url, 'PUT', path('b', '/state'), { value: 1 }), 405,
      'METHOD_NOT_ALLOWED');
    // Nothing above was written.
    expectError(await read(n1, 'b'), 404, 'NOT_FOUND');
  });

  it('/health carries the cache summary; /ready is 200; /metrics has the cache series',
    async () => {
      for (const n of cluster.nodes) {
        const h = ok(await get<Record<string, unknown>>(n.url, '/health'));
        expect(h).toMatchObject({ status: 'ok', service: 'cache', node: n.id, store: 'redis',
          storeUp: true, startupGrace: false, writePolicy: 'write-back' });
        expect(h.cache).toMatchObject({ capacityBytes: 64 * 1024 * 1024 });
        expect(ok(await get(n.url, '/ready'))).toEqual({ ready: true });
      }
      const text = await (await fetch(`${n0.url}/metrics`)).text();
      for (const series of ['dsync_cache_hits_total', 'dsync_cache_misses_total',
        'dsync_cache_evictions_total', 'dsync_cache_lines{', 'dsync_cache_messages_total{',
        'dsync_cache_store_duration_seconds_bucket', 'dsync_cache_op_duration_seconds_bucket',
        'dsync_cache_invalidations_sent_total', 'dsync_cache_recalls_total']) {
        expect(text, series).toContain(series);
      }
    });

  it('the SDK and `dsync cache` work against the service', async () => {
    const client = new DsyncClient({ cache: cluster.nodes.map((n) => n.url) });
    expect(await client.cache.put('sdk', { a: 1 })).toMatchObject({ key: 'sdk', state: 'M' });
    expect(await client.cache.get('sdk')).toMatchObject({ key: 'sdk', value: { a: 1 } });
    expect(await client.cache.get('sdk-missing')).toBeUndefined();
    expect(await client.cache.delete('sdk')).toEqual({ deleted: true });
    const urls = cluster.nodes.map((n) => n.url).join(',');
    const cli = async (...args: string[]): Promise<unknown> => JSON.parse((await promisify(
      execFile)(process.execPath, [BIN, 'cache', '-o', 'json', '--urls', urls, ...args]))
      .stdout) as unknown;
    expect(await cli('put', 'cli-key', '{"b":2}')).toMatchObject({ key: 'cli-key', state: 'M' });
    const states = await cli('state', 'cli-key') as StateBody[];
    expect(states).toHaveLength(3);
    // The put's lease may have run out while a CLI process started: any state is fine here.
    for (const s of states) expect(['M', 'E', 'S', 'I']).toContain(s.state);
    expect(await cli('stats') as StatsBody[]).toHaveLength(3);
    expect(ok(await read(n0, 'cli-key')).value).toEqual({ b: 2 });
  });
});

describe('cache API with the embedded store (no Redis)', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await Cluster.start({ service: 'cache', startTimeoutMs: START_TIMEOUT_MS });
  });
  afterAll(async () => { await cluster?.stop(); });

  it('serves coherent reads and writes, and keeps flushed values across a restart of every ' +
    'node', async () => {
    const [a, b, c] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const h = ok(await get<Record<string, unknown>>(a.url, '/health'));
    expect(h.store).toBe('embedded');
    for (let i = 0; i < 6; i++) ok(await put(cluster.nodes[i % 3]!, `e${i}`, { i }));
    ok(await put(b, 'e0', 'newer'));
    expect(ok(await read(c, 'e0')).value).toBe('newer');
    expect(ok(await del(a, 'e5'))).toEqual({ deleted: true });
    // Graceful stop hands every line home and into the store (kill -9 would not). All at
    // once, as a rolling stop of the last node would leave it no live home to hand lines to.
    await Promise.all(cluster.nodes.map((n) => n.stop()));
    for (const n of cluster.nodes) n.start();
    await Promise.all(cluster.nodes.map((n) => n.waitHealthy(START_TIMEOUT_MS)));
    // A restarted home may still be waiting out copies of its earlier life: retry 503s.
    const readAfter = (n: ClusterNode, key: string) => waitFor(`${key} after the restart`,
      async () => {
        const x = await read(n, key);
        return x.status === 503 ? null : x;
      }, 20_000);
    expect(ok(await readAfter(c, 'e0'))).toMatchObject({ value: 'newer', version: 2 });
    for (let i = 1; i < 5; i++) {
      expect(ok(await readAfter(cluster.nodes[i % 3]!, `e${i}`)).value).toEqual({ i });
    }
    expectError(await readAfter(b, 'e5'), 404, 'NOT_FOUND');
  });
});
