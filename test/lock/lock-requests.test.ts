// The request path of the lock service against three real `dsync serve` processes (API.md,
// "requestId", and issue 7's items 1 and 4): a requestId is scoped to one client's one
// request, a retried blocking acquire waits again and is granted, and a flood of reads on the
// leader is answered 200 or 429 without taking the node down.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type ClusterNode } from '../support/cluster.js';
import { get, post, type JsonResponse } from '../support/http.js';
import { waitFor } from '../support/wait.js';

interface GrantBody { name: string; owner: string; token: number; expiresAt: number }
interface ViewBody { holders: Array<{ owner: string; token: number }>;
  waiters: Array<{ owner: string }> }
interface ErrorBody { error: { code: string; message: string; [k: string]: unknown } }

/** Commit deadline of the nodes: short, so that a read left dangling fails within the test. */
const REQUEST_TIMEOUT_MS = 2000;

let cluster: Cluster;
let leader: ClusterNode;

beforeAll(async () => {
  cluster = await Cluster.start({ service: 'lock', startTimeoutMs: 60_000,
    extraArgs: ['--request-timeout-ms', String(REQUEST_TIMEOUT_MS)] });
  leader = await cluster.leader();
});
afterAll(async () => { await cluster.stop(); });

const path = (name: string, op?: string): string =>
  `/v1/locks/${encodeURIComponent(name)}${op === undefined ? '' : `/${op}`}`;
const follower = (): ClusterNode => cluster.nodes.find((n) => n !== leader && n.running)!;

async function acquire(name: string, body: Record<string, unknown>, base = leader.url,
  headers: Record<string, string> = {}): Promise<JsonResponse<GrantBody & ErrorBody>> {
  const r = await fetch(base + path(name, 'acquire'), {
    method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(30_000),
    headers: { 'content-type': 'application/json', ...headers },
  });
  return { status: r.status, body: await r.json() as GrantBody & ErrorBody, headers: r.headers };
}
const release = (name: string, body: Record<string, unknown>, base = leader.url) =>
  post<{ released: boolean } & ErrorBody>(base, path(name, 'release'), body);
const view = (name: string) => get<ViewBody>(leader.url, path(name));

function expectGrant(r: JsonResponse<GrantBody & ErrorBody>, name: string, owner: string):
  GrantBody {
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body).toMatchObject({ name, owner });
  return r.body;
}

describe('requestId: scoped to one client\'s one request', () => {
  it('two owners that both send requestId "1" each get their own grant', async () => {
    const a = expectGrant(await acquire('rid/a', { owner: 'A', requestId: '1', ttlMs: 20_000 }),
      'rid/a', 'A');
    const b = expectGrant(await acquire('rid/b', { owner: 'B', requestId: '1', ttlMs: 20_000 }),
      'rid/b', 'B');
    expect(b.token).toBeGreaterThan(a.token);
    // And on one lock, the second owner is refused instead of handed the first one's grant.
    const c = await acquire('rid/a', { owner: 'C', requestId: '1' });
    expect(c.status, JSON.stringify(c.body)).toBe(409);
    expect(c.body.error.code).toBe('LOCK_TIMEOUT');
    expect((await view('rid/a')).body.holders.map((h) => h.owner)).toEqual(['A']);
  });

  it('owner A reusing the requestId of its L1 acquire for L2 gets L2', async () => {
    const l1 = expectGrant(await acquire('rid/L1', { owner: 'A', requestId: '7' }), 'rid/L1', 'A');
    const l2 = expectGrant(await acquire('rid/L2', { owner: 'A', requestId: '7' }), 'rid/L2', 'A');
    expect(l2.token).not.toBe(l1.token);
    expect((await view('rid/L2')).body.holders.map((h) => h.owner)).toEqual(['A']);
    // A true retry of the L1 request still answers L1's grant.
    expect((await acquire('rid/L1', { owner: 'A', requestId: '7' })).body.token).toBe(l1.token);
  });

  it('a retried blocking acquire (same requestId) waits again and is granted on release, ' +
    'not LOCK_TIMEOUT', async () => {
    const h = expectGrant(await acquire('rid/block', { owner: 'holder', ttlMs: 30_000 }),
      'rid/block', 'holder');
    const body = { owner: 'W', waitMs: 15_000, requestId: 'w-1' };
    // The first attempt waits, then its client gives up (an SDK attempt timeout, a proxy).
    const ac = new AbortController();
    const first = fetch(leader.url + path('rid/block', 'acquire'), { method: 'POST',
      signal: ac.signal, headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body) }).catch((err: unknown) => err);
    await waitFor('W waiting', async () =>
      (await view('rid/block')).body.waiters.some((w) => w.owner === 'W'));
    ac.abort();
    await first;
    await waitFor('the abandoned wait to leave the queue', async () =>
      (await view('rid/block')).body.waiters.length === 0);
    // The retry, with the same requestId, must queue again…
    const retry = acquire('rid/block', body);
    await waitFor('W waiting again', async () =>
      (await view('rid/block')).body.waiters.some((w) => w.owner === 'W'));
    // …and be granted when the holder releases.
    expect((await release('rid/block', { owner: 'holder', token: h.token })).status).toBe(200);
    const g = expectGrant(await retry, 'rid/block', 'W');
    expect(g.token).toBeGreaterThan(h.token);
  });

  it('the same request from two clients (x-dsync-client) through a follower is two requests',
    async () => {
      const f = follower();
      const body = { owner: 'shared-owner', requestId: '1', ttlMs: 20_000 };
      const x = expectGrant(await acquire('rid/clients', body, f.url,
        { 'x-dsync-client': 'client-x' }), 'rid/clients', 'shared-owner');
      expect((await release('rid/clients', { owner: 'shared-owner' }, f.url)).status).toBe(200);
      const y = expectGrant(await acquire('rid/clients', body, f.url,
        { 'x-dsync-client': 'client-y' }), 'rid/clients', 'shared-owner');
      // A fresh grant, not client x's remembered one (whose lock was released).
      expect(y.token).toBeGreaterThan(x.token);
      expect((await view('rid/clients')).body.holders.map((h) => h.token)).toEqual([y.token]);
    });
});

interface Answers {
  readonly statuses: number[];
  /** The first 429, head and body, to check its shape. */
  refused: { head: string; body: string } | null;
}

/** Sends `count` pipelined GETs on one socket and reads every answer. */
function pipelinedGets(port: number, target: string, count: number): Promise<Answers> {
  return new Promise((resolve, reject) => {
    const out: Answers = { statuses: [], refused: null };
    let buf = Buffer.alloc(0);
    const sock = connect({ host: '127.0.0.1', port }, () => {
      sock.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(count));
    });
    sock.setTimeout(60_000, () => sock.destroy(new Error('socket idle for 60 s')));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.subarray(0, end).toString('latin1');
        const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) break;
        const status = Number(head.slice(9, 12));
        out.statuses.push(status);
        if (status === 429 && out.refused === null) {
          out.refused = { head, body: buf.subarray(end + 4, end + 4 + length).toString('utf8') };
        }
        buf = buf.subarray(end + 4 + length);
      }
      if (out.statuses.length === count) sock.end();
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(out));
  });
}

async function unhandledRejections(node: ClusterNode): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('dsync_unhandled_rejections_total'));
  return Number(line?.split(' ').pop() ?? NaN);
}

describe('reads under load', () => {
  it('6,000 pipelined GETs from 100 sockets are answered 200 or 429; the leader stays up',
    async () => {
      const sockets = 100;
      const perSocket = 60;
      const port = Number(new URL(leader.url).port);
      const all = await Promise.all(Array.from({ length: sockets },
        () => pipelinedGets(port, path('flood/a'), perSocket)));
      const statuses = all.flatMap((a) => a.statuses);
      expect(statuses).toHaveLength(sockets * perSocket);
      const counts = new Map<number, number>();
      for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
      expect([...counts.keys()].filter((s) => s !== 200 && s !== 429),
        JSON.stringify([...counts])).toEqual([]);
      // A refused read names its bound and says when to come back.
      const refused = all.find((a) => a.refused !== null)?.refused;
      if (refused) {
        expect(refused.head).toMatch(/\r\nretry-after: \d+/i);
        expect(JSON.parse(refused.body)).toMatchObject({ error: {
          code: 'RESOURCE_EXHAUSTED', limit: 'pendingReadsMax' } });
      }
      // Anything left dangling would fail within a request timeout: watch past it.
      const until = Date.now() + REQUEST_TIMEOUT_MS + 1500;
      while (Date.now() < until) {
        expect(leader.running).toBe(true);
        expect((await leader.health(2000))?.status).toBe('ok');
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(await unhandledRejections(leader)).toBe(0);
      expect((await view('flood/a')).status).toBe(200);
    });
});
