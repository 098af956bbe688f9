// GET /v1/overview and GET /v1/overview/cache/{key} (src/http/overview.ts) against real HTTP
// servers on loopback: nodes built with the app every service uses, and small servers that
// misbehave as a node might (never answers, answers too much, answers as the wrong service,
// is not running). The gathering node must show each of them for what it is, stay within its
// bounds, and ask the cluster once however many pages ask it.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../src/http/app.js';
import {
  KEY_INSPECTIONS_MAX, OVERVIEW_BODY_BYTES_MAX, OVERVIEW_LOCKS_MAX, SystemOverview,
  type Overview,
} from '../../src/http/overview.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { startTestApp, stopTestApp, type TestNode } from './helpers.js';

interface Fake {
  readonly url: string;
  /** Requests seen, by path. */
  readonly seen: Map<string, number>;
  close(): Promise<void>;
}

/** A bare HTTP server that answers `answer(path, res)`; `null` leaves the request hanging. */
async function fake(answer: (path: string, res: ServerResponse) => boolean): Promise<Fake> {
  const seen = new Map<string, number>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    seen.set(path, (seen.get(path) ?? 0) + 1);
    answer(path, res);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown): boolean {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
  return true;
}

const raft = (state: string, leader: string, term = 4) =>
  ({ raft: { state, term, leader, commitIndex: 20, appliedIndex: 19 } });

/** GET /v1/cache/{key}/state requests answered by the cacheRoutes of this file. */
let stateReads = 0;

function cacheRoutes(router: AppRouter): void {
  router.get('/v1/cache', (ctx) => {
    ctx.body = { entries: 2, bytes: 30, capacityBytes: 1024, hits: 7, misses: 1, evictions: 0,
      states: { M: 1, E: 0, S: 1 }, dirtyLines: 1, dirtyBytes: 10 };
  });
  router.get('/v1/cache/:key/state', (ctx) => {
    stateReads++;
    ctx.body = { key: ctx.params.key, state: 'S', home: 'cache-0',
      ...(ctx.params.key === 'gone' ? { absent: true } : {}) };
  });
}

describe('GET /v1/overview', () => {
  const closers: Array<() => Promise<void>> = [];
  let a: TestNode;
  let hanging: Fake;
  let huge: Fake;
  let leader: Fake;
  let stranger: Fake;
  let deadUrl: string;
  let queue: Fake;
  let cache: TestNode;

  beforeAll(async () => {
    const locks = Array.from({ length: OVERVIEW_LOCKS_MAX + 20 }, (_, i) => ({
      name: `lock-${String(i).padStart(4, '0')}`, mode: 'exclusive',
      holders: [{ owner: 'o', mode: 'exclusive', token: i + 1, expiresAt: Date.now() + 60_000 }],
      waiters: i === 0 ? [{ owner: 'w', mode: 'shared' }] : [],
    }));
    leader = await fake((path, res) => path === '/health'
      ? json(res, 200, { status: 'ok', service: 'lock', node: 'lock-1', ...raft('leader', 'lock-1') })
      : path === '/v1/locks' ? json(res, 200, { locks }) : json(res, 404, {}));
    hanging = await fake(() => false);
    huge = await fake((_p, res) => json(res, 200, { status: 'ok', service: 'lock', node: 'x',
      pad: 'x'.repeat(OVERVIEW_BODY_BYTES_MAX) }));
    stranger = await fake((_p, res) => json(res, 200, { status: 'ok', service: 'cache',
      node: 'cache-9' }));
    queue = await fake((path, res) => path === '/health'
      ? json(res, 200, { status: 'ok', service: 'queue', node: 'queue-0',
        partitions: [{ partition: 0, state: 'leader', term: 2, leader: 'queue-0' }] })
      : json(res, 404, { error: { code: 'NOT_FOUND', message: `no route GET ${path}` } }));
    deadUrl = `http://127.0.0.1:${await freePort()}`;
    cache = await startTestApp('cache-0', { service: 'cache', routes: cacheRoutes,
      health: () => ({ store: 'redis' }) });
    a = await startTestApp('lock-0', {
      health: () => raft('follower', 'lock-1'),
      systemUrls: {
        lock: [leader.url, hanging.url, huge.url, stranger.url, deadUrl],
        queue: [queue.url], cache: [cache.url],
      },
    });
    for (const f of [leader, hanging, huge, stranger, queue]) closers.push(() => f.close());
    for (const n of [a, cache]) closers.push(() => stopTestApp(n));
  });
  afterAll(async () => {
    await Promise.all(closers.map((c) => c()));
  });

  const overview = async (): Promise<Overview> => {
    const r = await fetch(`${a.url}/v1/overview`);
    expect(r.status).toBe(200);
    return await r.json() as Overview;
  };

  it('shows every node of every service, each for what it is', async () => {
    const ov = await overview();
    expect(ov.servedBy).toEqual({ service: 'lock', node: 'lock-0' });
    const byUrl = new Map(ov.services.lock.nodes.map((n) => [n.url, n]));
    // Itself, reached over HTTP like the others: the connection's own address.
    expect(byUrl.get(a.url)).toMatchObject({ node: 'lock-0', up: true,
      health: { raft: { state: 'follower' } } });
    expect(byUrl.get(leader.url)).toMatchObject({ node: 'lock-1', up: true });
    expect(byUrl.get(hanging.url)).toMatchObject({ up: false, node: null,
      error: expect.stringMatching(/no answer within \d+ ms/) });
    expect(byUrl.get(huge.url)).toMatchObject({ up: false,
      error: `the answer is over ${OVERVIEW_BODY_BYTES_MAX} bytes` });
    expect(byUrl.get(stranger.url)).toMatchObject({ up: true, node: 'cache-9',
      error: expect.stringMatching(/listed for lock but answers as cache/) });
    expect(byUrl.get(deadUrl)).toMatchObject({ up: false, error: expect.stringMatching(/refused/) });
    expect(ov.services.cache.nodes).toEqual([expect.objectContaining({ node: 'cache-0', up: true,
      stats: expect.objectContaining({ hits: 7, dirtyBytes: 10 }) })]);
    expect(ov.services.queue.nodes).toEqual([expect.objectContaining({ node: 'queue-0',
      health: expect.objectContaining({ partitions: [expect.objectContaining({ partition: 0 })] }),
    })]);
    expect(ov.services.queue).toMatchObject({ topics: null,
      topicsError: expect.stringMatching(/do not list topics/) });
  });

  it('takes the locks from the leader, at most OVERVIEW_LOCKS_MAX, with the lease left', async () => {
    const { locks, locksTotal } = (await overview()).services.lock;
    expect(leader.seen.get('/v1/locks')).toBeGreaterThan(0);
    expect(locksTotal).toBe(OVERVIEW_LOCKS_MAX + 20);
    expect(locks).toHaveLength(OVERVIEW_LOCKS_MAX);
    const first = locks![0]!;
    expect(first.waiters).toEqual([{ owner: 'w', mode: 'shared' }]);
    expect(first.holders[0]!.leaseMsRemaining).toBeGreaterThan(0);
    expect(first.holders[0]!.leaseMsRemaining).toBeLessThanOrEqual(60_000);
  });

  it('asks the cluster once for many concurrent callers and serves the copy while fresh',
    async () => {
      const o = new SystemOverview({ service: 'lock', nodeId: 'lock-0', cacheMs: 60_000,
        urls: { lock: [leader.url] } });
      try {
        const before = leader.seen.get('/health') ?? 0;
        const all = await Promise.all(Array.from({ length: 20 }, () => o.overview(a.url)));
        expect(new Set(all.map((x) => x.generatedAt)).size).toBe(1);
        expect((await o.overview(a.url)).generatedAt).toBe(all[0]!.generatedAt);
        expect((leader.seen.get('/health') ?? 0) - before).toBe(1);
      } finally {
        await o.close();
      }
    });

  it('remembers the id of a node that stops answering', async () => {
    const n = await startTestApp('lock-7', { health: () => raft('follower', 'lock-1') });
    const o = new SystemOverview({ service: 'lock', nodeId: 'lock-0', cacheMs: 0,
      urls: { lock: [n.url] } });
    try {
      const first = await o.overview(a.url);
      expect(first.services.lock.nodes.find((x) => x.url === n.url)?.node).toBe('lock-7');
      await n.server.close(1000);
      const later = await o.overview(a.url);
      expect(later.services.lock.nodes.find((x) => x.url === n.url))
        .toMatchObject({ node: 'lock-7', up: false });
    } finally {
      await Promise.all([stopTestApp(n), o.close()]);
    }
  });
});

describe('GET /v1/overview/cache/{key}', () => {
  let cache0: TestNode;
  let hanging: Fake;
  let a: TestNode;

  beforeAll(async () => {
    cache0 = await startTestApp('cache-0', { service: 'cache', routes: cacheRoutes,
      health: () => ({}) });
    hanging = await fake(() => false);
    a = await startTestApp('lock-0', { systemUrls: { cache: [cache0.url, hanging.url] } });
  });
  afterAll(async () => {
    await hanging.close();
    await Promise.all([cache0, a].map(stopTestApp));
  });

  it("shows each pod's line, the absent flag, and a pod that does not answer", async () => {
    const r = await fetch(`${a.url}/v1/overview/cache/${encodeURIComponent('gone')}`);
    expect(r.status).toBe(200);
    const body = await r.json() as { key: string; lines: unknown[] };
    expect(body.key).toBe('gone');
    expect(body.lines).toEqual([
      { url: cache0.url, node: 'cache-0', up: true, state: 'S', home: 'cache-0', absent: true },
      expect.objectContaining({ url: hanging.url, up: false, node: null }),
    ]);
  });

  it('a bad key is 400 naming the field', async () => {
    const r = await fetch(`${a.url}/v1/overview/cache/${encodeURIComponent('a\u0001b')}`);
    expect(r.status).toBe(400);
    expect((await r.json() as { error: { field: string } }).error.field).toBe('key');
  });

  it('past KEY_INSPECTIONS_MAX running inspections, 429 with Retry-After', async () => {
    const before = stateReads;
    const slow = Array.from({ length: KEY_INSPECTIONS_MAX }, (_, i) =>
      fetch(`${a.url}/v1/overview/cache/k${i}`));
    // Once each has had its answer from the live pod, all of them wait on the silent one
    // (for a second): one more is refused.
    await waitFor('every inspection to be running', () =>
      stateReads - before >= KEY_INSPECTIONS_MAX);
    const refused = await fetch(`${a.url}/v1/overview/cache/extra`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await refused.json() as { error: { limit: string } }).error.limit)
      .toBe('keyInspectionsMax');
    for (const r of await Promise.all(slow)) expect(r.status).toBe(200);
  });
});
