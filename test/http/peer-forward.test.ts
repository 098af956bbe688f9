// Forwarding over the peer transport between real apps on real transports (ARCHITECTURE.md,
// "Forwarding"): what travels, that the serving node runs its own middleware and handlers,
// that a forwarded request is never forwarded again, deadlines, a client that goes away,
// a peer that is down, and the bounds on requests in flight on both sides.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { DsyncError } from '../../src/errors.js';
import type { AppRouter } from '../../src/http/app.js';
import { objectBody } from '../../src/http/app.js';
import { FORWARDED_HEADER } from '../../src/http/forward.js';
import { PeerForwarder } from '../../src/http/peer-forward.js';
import { PeerRequests } from '../../src/transport/peer-requests.js';
import type { PeerRequestsOptions } from '../../src/transport/peer-requests.js';
import type { PeerTransport } from '../../src/transport/peer-transport.js';
import { freePorts } from '../support/ports.js';
import { TransportFactory, waitUntil } from '../transport/helpers.js';
import { startTestApp } from './helpers.js';
import type { TestNode } from './helpers.js';

/** Who each node believes leads; a test points them at each other to fake a split view. */
const leaderOf: Record<string, string> = { a: 'b', b: 'b', c: 'b' };
/** Requests of /v1/hang that ended because the caller went away, per serving node. */
const hangsCancelled: Record<string, number> = {};
/** Requests of /v1/hang being served, per node. */
const hanging: Record<string, number> = {};
const TIMEOUT_MS = 5_000;

function routesFor(id: string, fwd: () => PeerForwarder, timeoutMs: () => number) {
  return (router: AppRouter): void => {
    router.all('/v1/things/:name', async (ctx) => {
      const leader = leaderOf[id] ?? id;
      if (leader !== id) {
        await fwd().forwardTo(ctx, leader, timeoutMs());
        return;
      }
      if (ctx.params.name === 'conflict') {
        throw new DsyncError('NOT_HELD', 'not held', { details: { reason: 'expired' } });
      }
      ctx.body = { servedBy: id, method: ctx.method, name: ctx.params.name, query: ctx.query,
        body: ctx.method === 'GET' ? null : objectBody(ctx), reqId: ctx.state.reqId,
        client: ctx.get('x-dsync-client'), forwarded: ctx.get(FORWARDED_HEADER),
        by: ctx.get('x-dsync-forwarded-by') };
    });
    router.get('/v1/hang', async (ctx) => {
      if ((leaderOf[id] ?? id) !== id) {
        await fwd().forwardTo(ctx, leaderOf[id] ?? id, timeoutMs());
        return;
      }
      hanging[id] = (hanging[id] ?? 0) + 1;
      // Answers only when the caller gives up (or after a safety bound), never on its own.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 10_000);
        ctx.req.socket.once('close', () => {
          hangsCancelled[id] = (hangsCancelled[id] ?? 0) + 1;
          clearTimeout(t);
          resolve();
        });
      });
      hanging[id] = (hanging[id] ?? 1) - 1;
      ctx.body = { late: true };
    });
    router.get('/v1/big', (ctx) => {
      if ((leaderOf[id] ?? id) !== id) return fwd().forwardTo(ctx, leaderOf[id] ?? id, 2000);
      ctx.body = { blob: 'x'.repeat(4096) };
      return undefined;
    });
  };
}

interface Node {
  readonly app: TestNode;
  readonly transport: PeerTransport;
  readonly forwarder: PeerForwarder;
  readonly requests: PeerRequests;
  timeoutMs: number;
}

const transports = new TransportFactory();
const nodes: Record<string, Node> = {};

async function startNode(id: string, t: PeerTransport, o: Partial<PeerRequestsOptions> = {}):
  Promise<Node> {
  const requests = new PeerRequests(t, { nodeId: id, ...o });
  const forwarder = new PeerForwarder({ nodeId: id, requests });
  const holder: { node?: Node } = {};
  const app = await startTestApp(id, { bodyBytesMax: 2048,
    routes: routesFor(id, () => forwarder, () => holder.node?.timeoutMs ?? TIMEOUT_MS) });
  forwarder.serveWith(app.app.callback());
  const node: Node = { app, transport: t, forwarder, requests, timeoutMs: TIMEOUT_MS };
  holder.node = node;
  return node;
}

beforeAll(async () => {
  const b = await transports.start('b');
  // d is a peer of a that never comes up (a port nothing listens on).
  const [deadPort] = await freePorts(1);
  const a = await transports.start('a', { peers: new Map([['b', b.t.address()],
    ['d', { host: '127.0.0.1', port: deadPort ?? 1 }]]) });
  const c = await transports.start('c', { peers: new Map([['b', b.t.address()]]) });
  b.t.setPeers(new Map([['a', a.t.address()], ['c', c.t.address()]]));
  nodes.b = await startNode('b', b.t, { servedInFlightPerPeerMax: 4, responseBytesMax: 2048 });
  nodes.a = await startNode('a', a.t);
  nodes.c = await startNode('c', c.t, { requestsInFlightPerPeerMax: 1 });
  await waitUntil('links up', () => a.t.isConnected('b', 'bulk') &&
    b.t.isConnected('a', 'bulk') && c.t.isConnected('b', 'bulk') && b.t.isConnected('c', 'bulk'));
});

afterAll(async () => {
  for (const n of Object.values(nodes)) n.requests.close();
  await Promise.all(Object.values(nodes).map((n) => n.app.server.close(2000)));
  await transports.closeAll();
});

async function call(node: string, method: string, path: string, body?: string,
  headers: Record<string, string> = {}, signal?: AbortSignal) {
  const res = await request(`${nodes[node]?.app.url}${path}`, {
    method: method as 'GET', headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body }), ...(signal === undefined ? {} : { signal }),
  });
  return { status: res.statusCode, headers: res.headers,
    json: await res.body.json() as Record<string, unknown> & { error: Record<string, unknown> } };
}

describe('forwarding over the peer transport', () => {
  it('relays method, encoded path, query, body, request id and client id, and the answer',
    async () => {
      const name = 'ä/b 100%';
      const r = await call('a', 'POST', `/v1/things/${encodeURIComponent(name)}?x=1&y=%C3%A4`,
        JSON.stringify({ owner: 'o1', n: [1, 2] }),
        { 'x-request-id': 'pf-1', 'x-dsync-client': 'client-7' });
      expect(r.status).toBe(200);
      expect(r.headers['x-request-id']).toBe('pf-1');
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.json).toEqual({ servedBy: 'b', method: 'POST', name, query: { x: '1', y: 'ä' },
        body: { owner: 'o1', n: [1, 2] }, reqId: 'pf-1', client: 'client-7', forwarded: '1',
        by: 'a' });
      const g = await call('a', 'GET', '/v1/things/k');
      expect(g.json).toMatchObject({ servedBy: 'b', body: null, client: '' });
    });

  it('passes the serving node\'s error envelope, status and Retry-After through', async () => {
    const r = await call('a', 'POST', '/v1/things/conflict', '{}');
    expect(r.status).toBe(409);
    expect(r.json.error).toEqual({ code: 'NOT_HELD', message: 'not held', reason: 'expired' });
    const missing = await call('a', 'POST', '/v1/nothing', '{}');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('NOT_FOUND');
  });

  it('the serving node applies its own body limit', async () => {
    const r = await call('a', 'POST', '/v1/things/x', JSON.stringify({ v: 'y'.repeat(3000) }));
    expect(r.status).toBe(413);
    expect(r.json.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('an answer larger than responseBytesMax is a 500 that says what to do', async () => {
    const r = await call('a', 'GET', '/v1/big');
    expect(r.status).toBe(500);
    expect(r.json.error.code).toBe('INTERNAL');
  });

  it('never forwards twice: a split view of the leader ends in 503 UNAVAILABLE', async () => {
    leaderOf.b = 'a';
    try {
      const r = await call('a', 'POST', '/v1/things/x', '{}', { 'x-request-id': 'loop-1' });
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('1');
      expect(r.json.error).toMatchObject({ code: 'UNAVAILABLE', forwardedBy: 'a', node: 'b' });
    } finally {
      leaderOf.b = 'b';
    }
  });

  it('a deadline that passes is a retryable 503, and the serving node stops waiting', async () => {
    const a = nodes.a;
    if (a === undefined) throw new Error('no node a');
    a.timeoutMs = 300;
    const before = hangsCancelled.b ?? 0;
    try {
      const r = await call('a', 'GET', '/v1/hang');
      expect(r.status).toBe(503);
      expect(r.json.error).toMatchObject({ code: 'UNAVAILABLE', reason: 'timeout' });
    } finally {
      a.timeoutMs = TIMEOUT_MS;
    }
    await waitUntil('b stops serving the hung request', () => (hangsCancelled.b ?? 0) > before);
  });

  it('a client that goes away cancels the request on the serving node', async () => {
    const before = hangsCancelled.b ?? 0;
    const ac = new AbortController();
    const pending = call('a', 'GET', '/v1/hang', undefined, {}, ac.signal).catch(() => null);
    await waitUntil('b serves it', () => (hanging.b ?? 0) > 0);
    ac.abort();
    await pending;
    await waitUntil('b cancels it', () => (hangsCancelled.b ?? 0) > before);
    expect(nodes.a?.requests.stats().sent).toBe(0);
  });

  it('past requestsInFlightPerPeerMax the sender refuses with 429 naming the limit',
    async () => {
      const ac = new AbortController();
      const first = call('c', 'GET', '/v1/hang', undefined, {}, ac.signal).catch(() => null);
      await waitUntil('b serves c\'s first', () => nodes.c?.requests.stats().sent === 1);
      const r = await call('c', 'POST', '/v1/things/x', '{}');
      expect(r.status).toBe(429);
      expect(r.json.error).toMatchObject({ code: 'RESOURCE_EXHAUSTED',
        limit: 'requestsInFlightPerPeerMax' });
      ac.abort();
      await first;
    });

  it('past servedInFlightPerPeerMax the serving node refuses with 429', async () => {
    const ac = new AbortController();
    const held = Array.from({ length: 4 }, () =>
      call('a', 'GET', '/v1/hang', undefined, {}, ac.signal).catch(() => null));
    await waitUntil('b serves four of a\'s', () => nodes.b?.requests.stats().served === 4);
    const r = await call('a', 'POST', '/v1/things/x', '{}');
    expect(r.status).toBe(429);
    expect(r.json.error.code).toBe('RESOURCE_EXHAUSTED');
    ac.abort();
    await Promise.all(held);
    await waitUntil('b serves none', () => nodes.b?.requests.stats().served === 0);
  });

  it('a peer that is down is a 503 at once, not after the deadline', async () => {
    const a = nodes.a;
    if (a === undefined) throw new Error('no node a');
    leaderOf.a = 'd';
    // Longer than the test may take: only an answer that does not wait for it passes.
    a.timeoutMs = 600_000;
    try {
      const r = await call('a', 'POST', '/v1/things/x', '{}');
      expect(r.status).toBe(503);
      expect(r.json.error).toMatchObject({ code: 'UNAVAILABLE', peer: 'd' });
      expect(String(r.json.error.message)).toContain('retry');
    } finally {
      leaderOf.a = 'b';
      a.timeoutMs = TIMEOUT_MS;
    }
  });
});
