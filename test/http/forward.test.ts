// Forwarding between two real nodes (API.md: any node accepts any request and forwards it),
// the no-double-forward rule, and a dead or silent peer turning into a retryable 503.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { request } from 'undici';
import { NotLeaderError } from '../../src/errors.js';
import type { AppRouter } from '../../src/http/app.js';
import { objectBody } from '../../src/http/app.js';
import { FORWARDED_HEADER, Forwarder } from '../../src/http/forward.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { startTestApp } from './helpers.js';
import type { TestNode } from './helpers.js';

/** Who each node believes leads; a test points them at each other to fake a split view. */
const leaderOf: Record<string, string> = {};
const urls: Record<string, string> = {};
const forwarders: Forwarder[] = [];
const metrics = createMetrics('fwd-a', 'lock');

function routesFor(nodeId: string, forwarder: Forwarder) {
  return (router: AppRouter): void => {
    router.all('/v1/things/:name', async (ctx) => {
      const leader = leaderOf[nodeId] ?? nodeId;
      if (leader !== nodeId) {
        const url = urls[leader];
        if (url === undefined) throw new NotLeaderError(null);
        await forwarder.forward(ctx, url);
        return;
      }
      if (ctx.params.name === 'conflict') {
        ctx.status = 409;
        ctx.body = { error: { code: 'NOT_HELD', message: 'not held', reason: 'expired' } };
        return;
      }
      const state = ctx.state;
      ctx.body = {
        servedBy: nodeId, method: ctx.method, name: ctx.params.name, query: ctx.query,
        body: ctx.method === 'GET' ? null : objectBody(ctx), reqId: state.reqId,
        forwarded: ctx.get(FORWARDED_HEADER), by: ctx.get('x-dsync-forwarded-by'),
      };
    });
    router.get('/v1/hang', async (ctx) => {
      // Answers only when the caller gives up (or after a safety bound), never on its own.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 10_000);
        ctx.req.socket.once('close', () => { clearTimeout(t); resolve(); });
      });
      ctx.body = { late: true };
    });
  };
}

let a: TestNode;
let b: TestNode;
let deadPort: number;
let dead: Server;

beforeAll(async () => {
  const fa = new Forwarder({ nodeId: 'node-a', timeoutMs: 2000, metrics: metrics.http });
  const fb = new Forwarder({ nodeId: 'node-b', timeoutMs: 2000 });
  forwarders.push(fa, fb);
  a = await startTestApp('node-a', { routes: routesFor('node-a', fa) });
  b = await startTestApp('node-b', { routes: routesFor('node-b', fb) });
  urls['node-a'] = a.url;
  urls['node-b'] = b.url;
  // A port that was bound and released: nothing listens there.
  dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  deadPort = (dead.address() as { port: number }).port;
  await new Promise<void>((r) => dead.close(() => r()));
  urls['node-dead'] = `http://127.0.0.1:${deadPort}`;
});

afterAll(async () => {
  await Promise.all(forwarders.map((f) => f.close()));
  await Promise.all([a.server.close(2000), b.server.close(2000)]);
});

async function call(url: string, method: string, path: string, body?: string,
  headers: Record<string, string> = {}) {
  const res = await request(`${url}${path}`, {
    method: method as 'GET', headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.statusCode, headers: res.headers,
    json: await res.body.json() as Record<string, unknown> & { error: Record<string, unknown> } };
}

describe('forwarding', () => {
  it('relays method, encoded path, query, body and request id to the leader and back',
    async () => {
      leaderOf['node-a'] = 'node-b';
      leaderOf['node-b'] = 'node-b';
      const name = 'ä/b 100%';
      const r = await call(a.url, 'POST', `/v1/things/${encodeURIComponent(name)}?x=1&y=%C3%A4`,
        JSON.stringify({ owner: 'o1', n: [1, 2] }), { 'x-request-id': 'fwd-1' });
      expect(r.status).toBe(200);
      expect(r.headers['x-request-id']).toBe('fwd-1');
      expect(r.json).toEqual({ servedBy: 'node-b', method: 'POST', name, query: { x: '1', y: 'ä' },
        body: { owner: 'o1', n: [1, 2] }, reqId: 'fwd-1', forwarded: '1', by: 'node-a' });
      const g = await call(a.url, 'GET', '/v1/things/k');
      expect(g.json.servedBy).toBe('node-b');
      expect(g.json.body).toBeNull();
    });

  it('passes the leader\'s error envelope and status through unchanged', async () => {
    leaderOf['node-a'] = 'node-b';
    leaderOf['node-b'] = 'node-b';
    const r = await call(a.url, 'POST', '/v1/things/conflict', '{}');
    expect(r.status).toBe(409);
    expect(r.json.error).toEqual({ code: 'NOT_HELD', message: 'not held', reason: 'expired' });
    const text = await metrics.text();
    expect(text).toMatch(/dsync_http_forwarded_total\{outcome="ok"[^}]*\} [1-9]/);
  });

  it('never forwards twice: a split view of the leader ends in 503 UNAVAILABLE', async () => {
    leaderOf['node-a'] = 'node-b';
    leaderOf['node-b'] = 'node-a';
    const r = await call(a.url, 'POST', '/v1/things/x', '{}', { 'x-request-id': 'loop-1' });
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.json.error.code).toBe('UNAVAILABLE');
    expect(r.json.error.forwardedBy).toBe('node-a');
    expect(r.json.error.node).toBe('node-b');
    // b logged the refusal under the caller's request id.
    expect(b.lines.some((l) => l.reqId === 'loop-1' && l.level === 40)).toBe(true);
  });

  it('a dead peer is 503 UNAVAILABLE with a message that says what to do', async () => {
    leaderOf['node-a'] = 'node-dead';
    const r = await call(a.url, 'POST', '/v1/things/x', '{}');
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.json.error.code).toBe('UNAVAILABLE');
    expect(String(r.json.error.message)).toContain('retry');
    expect(r.json.error.peer).toBe(`http://127.0.0.1:${deadPort}`);
    expect((await call(a.url, 'GET', '/health')).status).toBe(200);
  });

  it('a peer that does not answer within the deadline is 503 TIMEOUT', async () => {
    const f = new Forwarder({ nodeId: 'node-t', timeoutMs: 300 });
    forwarders.push(f);
    await expect(f.request(b.url, { method: 'GET', path: '/v1/hang', reqId: 'slow-1' }))
      .rejects.toMatchObject({ code: 'TIMEOUT', retryable: true });
    // The same pool still serves the next request.
    const ok = await f.request(b.url,
      { method: 'GET', path: '/health', reqId: 'slow-2', timeoutMs: 10_000 });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body.toString('utf8'))).toMatchObject({ node: 'node-b' });
  });

  it('a closed forwarder refuses new requests with UNAVAILABLE', async () => {
    const f = new Forwarder({ nodeId: 'node-c', timeoutMs: 1000 });
    await f.close();
    await expect(f.request(b.url, { method: 'GET', path: '/health', reqId: 'c-1' }))
      .rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
