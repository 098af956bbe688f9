// The shared Koa shell against API.md "Common to every node": envelope, statuses, body limit,
// request ids, /health /ready /metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { z } from 'zod';
import { DsyncError, NotLeaderError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { objectBody } from '../../src/http/app.js';
import type { AppRouter } from '../../src/http/app.js';
import { BODY_DEPTH_MAX } from '../../src/http/body.js';
import { HTTP_STATUS_BY_CODE } from '../../src/http/envelope.js';
import { durationMs, ownerSchema, parseName, parseWith } from '../../src/http/validate.js';
import { startTestApp } from './helpers.js';
import type { TestNode } from './helpers.js';

const MIB = 1024 * 1024;

function routes(router: AppRouter): void {
  router.post('/v1/echo/:name', (ctx) => {
    ctx.body = { name: parseName(ctx.params.name, 'name'), body: objectBody(ctx) };
  });
  router.post('/v1/strict', (ctx) => {
    const schema = z.strictObject({ owner: ownerSchema, ttlMs: durationMs(100, 60_000) });
    ctx.body = parseWith(schema, ctx.state.body);
  });
  router.get('/v1/fail/:code', (ctx) => {
    const code = ctx.params.code as ErrorCode;
    if (code === 'NOT_LEADER') throw new NotLeaderError('lock-2');
    throw new DsyncError(code, `failing with ${code}`, { details: { extra: 1 } });
  });
  router.get('/v1/bug', () => {
    throw new TypeError('secret internals: cannot read x of undefined');
  });
  router.get('/v1/koa-throw', (ctx) => ctx.throw(400, 'bad thing'));
}

let node: TestNode;
beforeAll(async () => {
  node = await startTestApp('lock-0', { routes });
});
afterAll(async () => {
  await node.server.close(2000);
});

/** Error fields are read loosely: a missing one fails the expectation that reads it. */
interface JsonBody { [k: string]: unknown; error: Record<string, unknown> }

async function call(method: string, path: string, body?: string | Buffer | Readable,
  headers: Record<string, string> = {}) {
  const res = await request(`${node.url}${path}`, {
    method: method as 'GET', headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.body.text();
  const json = res.headers['content-type']?.toString().startsWith('application/json') === true
    ? JSON.parse(text) as JsonBody : null;
  return { status: res.statusCode, headers: res.headers, json, text };
}

describe('built-in routes', () => {
  it('GET /health answers status, service, node and the service fields', async () => {
    const r = await call('GET', '/health');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.json).toEqual({ status: 'ok', service: 'lock', node: 'lock-0',
      raft: { state: 'follower', term: 3 } });
  });

  it('GET /ready is 200 when ready and 503 UNAVAILABLE with reason and Retry-After when not',
    async () => {
      expect((await call('GET', '/ready')).json).toEqual({ ready: true });
      node.readyState = { ok: false, reason: 'no leader known' };
      try {
        const r = await call('GET', '/ready');
        expect(r.status).toBe(503);
        expect(r.headers['retry-after']).toBe('1');
        expect(r.json?.error.code).toBe('UNAVAILABLE');
        expect(r.json?.error.reason).toBe('no leader known');
        expect(r.json?.error.message).toContain('no leader known');
      } finally {
        node.readyState = { ok: true };
      }
    });

  it('GET /metrics is Prometheus text with the HTTP counter labelled by route pattern',
    async () => {
      await call('POST', '/v1/echo/some-lock', '{}');
      const r = await call('GET', '/metrics');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toContain('text/plain');
      expect(r.text).toMatch(/dsync_http_requests_total\{[^}]*route="\/v1\/echo\/:name"[^}]*\} \d/);
      expect(r.text).toContain('method="POST"');
      expect(r.text).toContain('node="lock-0"');
      expect(r.text).toContain('dsync_http_request_duration_seconds_bucket');
      expect(r.text).toContain('process_cpu_user_seconds_total');
      expect(r.text).not.toContain('some-lock');
    });

  it('every node registry carries the shared Raft series, usable by the services', async () => {
    node.metrics.raft.term.set({ group: '0' }, 7);
    node.metrics.raft.commitLatency.observe({ group: '0' }, 0.004);
    node.metrics.raft.proposals.inc({ group: '0', outcome: 'ok' });
    const text = await node.metrics.text();
    expect(text).toMatch(/dsync_raft_term\{group="0",node="lock-0",service="lock"\} 7/);
    expect(text).toContain('dsync_raft_commit_latency_seconds_bucket');
    expect(text).toMatch(/dsync_raft_proposals_total\{group="0",outcome="ok"[^}]*\} 1/);
    for (const name of ['dsync_raft_commit_index', 'dsync_raft_applied_index',
      'dsync_raft_leader_changes_total', 'dsync_wal_fsync_duration_seconds']) {
      expect(text).toContain(`# TYPE ${name}`);
    }
  });
});

describe('error envelope (API.md status table)', () => {
  const codes = (Object.keys(HTTP_STATUS_BY_CODE) as ErrorCode[]).filter((c) => c !== 'INTERNAL');
  it.each(codes)('%s maps to its status, with Retry-After exactly on 503 and 429', async (code) => {
    const r = await call('GET', `/v1/fail/${code}`);
    const expected = { INVALID_ARGUMENT: 400, NOT_FOUND: 404, METHOD_NOT_ALLOWED: 405,
      LOCK_TIMEOUT: 409, DEADLOCK: 409, NOT_HELD: 409, VERSION_MISMATCH: 409,
      PAYLOAD_TOO_LARGE: 413,
      RESOURCE_EXHAUSTED: 429, UNAVAILABLE: 503, NOT_LEADER: 503, INDETERMINATE: 503,
      TIMEOUT: 503 }[code as string];
    expect(r.status).toBe(expected);
    // Every 503 says UNAVAILABLE (API.md); the finer cause is `reason`.
    expect(r.json?.error.code).toBe(r.status === 503 ? 'UNAVAILABLE' : code);
    if (r.status === 503 && code !== 'UNAVAILABLE') {
      expect(r.json?.error.reason).toBe(code.toLowerCase());
    }
    expect(typeof r.json?.error.message).toBe('string');
    const retry = r.status === 503 || r.status === 429;
    expect(r.headers['retry-after']).toBe(retry ? '1' : undefined);
  });

  it('details sit beside code and message (NOT_LEADER carries the leader)', async () => {
    const r = await call('GET', '/v1/fail/NOT_LEADER');
    expect(r.json?.error.leader).toBe('lock-2');
    const d = await call('GET', '/v1/fail/DEADLOCK');
    expect(d.json?.error.extra).toBe(1);
  });

  it('an unexpected error is 500 INTERNAL without internals, logged at error with stack',
    async () => {
      const r = await call('GET', '/v1/bug', undefined, { 'x-request-id': 'bug-req-1' });
      expect(r.status).toBe(500);
      expect(r.json?.error.code).toBe('INTERNAL');
      expect(r.text).not.toContain('secret internals');
      const line = node.lines.find((l) => l.reqId === 'bug-req-1' && l.level === 50);
      expect(line).toBeDefined();
      expect(String((line?.err as { stack?: string }).stack)).toContain('secret internals');
      expect(line?.node).toBe('lock-0');
      expect(line?.service).toBe('lock');
    });

  it('an http-errors 400 thrown through ctx.throw keeps its status as INVALID_ARGUMENT',
    async () => {
      const r = await call('GET', '/v1/koa-throw');
      expect(r.status).toBe(400);
      expect(r.json?.error).toEqual({ code: 'INVALID_ARGUMENT', message: 'bad thing' });
    });

  it('unknown route is 404 NOT_FOUND, wrong method on a known route 405 with Allow', async () => {
    const nf = await call('GET', '/v1/nothing-here');
    expect(nf.status).toBe(404);
    expect(nf.json?.error.code).toBe('NOT_FOUND');
    const na = await call('DELETE', '/v1/echo/x');
    expect(na.status).toBe(405);
    expect(na.json?.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(na.headers.allow).toBe('POST');
    const health = await call('POST', '/health', '{}');
    expect(health.status).toBe(405);
    expect(health.json?.error.code).toBe('METHOD_NOT_ALLOWED');
  });
});

describe('request ids', () => {
  it('echoes a sane incoming x-request-id and generates one otherwise', async () => {
    const a = await call('GET', '/health', undefined, { 'x-request-id': 'abc-123' });
    expect(a.headers['x-request-id']).toBe('abc-123');
    const b = await call('GET', '/health');
    expect(String(b.headers['x-request-id'])).toMatch(/^[0-9a-f-]{36}$/);
    const c = await call('GET', '/health', undefined, { 'x-request-id': 'x'.repeat(129) });
    expect(String(c.headers['x-request-id'])).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('binds the request id into the per-request log lines', async () => {
    await call('GET', '/v1/nothing', undefined, { 'x-request-id': 'trace-me-7' });
    const line = node.lines.find((l) => l.reqId === 'trace-me-7');
    expect(line?.msg).toBe('request');
    expect(line?.status).toBe(404);
  });
});

describe('bodies', () => {
  it('parses a JSON object body and treats no body as {}', async () => {
    const r = await call('POST', '/v1/echo/a', JSON.stringify({ owner: 'o', n: 1 }));
    expect(r.json).toEqual({ name: 'a', body: { owner: 'o', n: 1 } });
    const empty = await call('POST', '/v1/echo/a');
    expect(empty.json).toEqual({ name: 'a', body: {} });
  });

  it('malformed JSON is 400 INVALID_ARGUMENT with field body', async () => {
    const r = await call('POST', '/v1/echo/a', '{"owner": ');
    expect(r.status).toBe(400);
    expect(r.json?.error.code).toBe('INVALID_ARGUMENT');
    expect(r.json?.error.field).toBe('body');
  });

  it.each(['[1,2]', '"str"', '42', 'null'])('non-object body %s is 400', async (body) => {
    const r = await call('POST', '/v1/echo/a', body);
    expect(r.status).toBe(400);
    expect(r.json?.error.field).toBe('body');
  });

  it('schema failures name the field; unknown fields are named too', async () => {
    const bad = await call('POST', '/v1/strict', JSON.stringify({ owner: 'o', ttlMs: 99 }));
    expect(bad.status).toBe(400);
    expect(bad.json?.error.field).toBe('ttlMs');
    const frac = await call('POST', '/v1/strict', JSON.stringify({ owner: 'o', ttlMs: 100.5 }));
    expect(frac.json?.error.field).toBe('ttlMs');
    const missing = await call('POST', '/v1/strict', JSON.stringify({ ttlMs: 100 }));
    expect(missing.json?.error.field).toBe('owner');
    const extra = await call('POST', '/v1/strict',
      JSON.stringify({ owner: 'o', ttlMs: 100, tllMs: 5 }));
    expect(extra.json?.error.field).toBe('tllMs');
    const ok = await call('POST', '/v1/strict', JSON.stringify({ owner: 'o', ttlMs: 100 }));
    expect(ok.json).toEqual({ owner: 'o', ttlMs: 100 });
  });

  it('a 2 MiB body over the default 1 MiB limit is 413 and the server stays healthy',
    async () => {
      const big = Buffer.alloc(2 * MIB, 0x20);
      const r = await call('POST', '/v1/echo/a', big);
      expect(r.status).toBe(413);
      expect(r.json?.error.code).toBe('PAYLOAD_TOO_LARGE');
      // Chunked: no Content-Length, so the limit trips while streaming.
      const chunked = await call('POST', '/v1/echo/a', Readable.from([big.subarray(0, MIB),
        big.subarray(MIB)]));
      expect(chunked.status).toBe(413);
      expect((await call('GET', '/health')).status).toBe(200);
      const atLimit = Buffer.from(`{"pad":"${'p'.repeat(MIB - 10)}"}`);
      expect(atLimit.length).toBe(MIB);
      expect((await call('POST', '/v1/echo/a', atLimit)).status).toBe(200);
    });
});

describe('nesting depth (BODY_DEPTH_MAX)', () => {
  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('a value nested 5,000 deep is 400 INVALID_ARGUMENT naming body and the limit', async () => {
    const r = await call('POST', '/v1/echo/a', `{"value":${nested(5000)}}`);
    expect(r.status).toBe(400);
    expect(r.json?.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'body',
      depthMax: BODY_DEPTH_MAX });
    expect(String(r.json?.error.message)).toMatch(/deeper than 64 levels/);
  });

  it('the body itself counts as level 1: 64 levels pass, 65 do not', async () => {
    const ok = await call('POST', '/v1/echo/a', `{"v":${nested(BODY_DEPTH_MAX - 1)}}`);
    expect(ok.status).toBe(200);
    const deep = await call('POST', '/v1/echo/a', `{"v":${nested(BODY_DEPTH_MAX)}}`);
    expect(deep.status).toBe(400);
    expect(deep.json?.error.field).toBe('body');
  });

  it('brackets inside strings do not count, escaped quotes do not end a string', async () => {
    const text = `{"v":"${'['.repeat(500)}\\"${'{'.repeat(500)}"}`;
    const r = await call('POST', '/v1/echo/a', text);
    expect(r.status).toBe(200);
  });
});

describe('names in paths', () => {
  it('decodes percent-encoded names exactly once', async () => {
    const name = 'orders/€ 100%';
    const r = await call('POST', `/v1/echo/${encodeURIComponent(name)}`, '{}');
    expect(r.json?.name).toBe(name);
  });

  it.each(['%zz', '%e2%82', 'abc%', '%c3%28'])('bad percent-encoding %s is 400', async (seg) => {
    const r = await call('POST', `/v1/echo/${seg}`, '{}');
    expect(r.status).toBe(400);
    expect(r.json?.error.code).toBe('INVALID_ARGUMENT');
    expect(r.json?.error.field).toBe('path');
  });

  it('256 bytes pass, 257 bytes fail; multibyte characters count as bytes', async () => {
    const ok = await call('POST', `/v1/echo/${'a'.repeat(256)}`, '{}');
    expect(ok.status).toBe(200);
    const long = await call('POST', `/v1/echo/${'a'.repeat(257)}`, '{}');
    expect(long.status).toBe(400);
    expect(long.json?.error.field).toBe('name');
    // 86 × '€' = 258 bytes although only 86 characters.
    const euros = await call('POST', `/v1/echo/${encodeURIComponent('€'.repeat(86))}`, '{}');
    expect(euros.status).toBe(400);
    const ctrl = await call('POST', `/v1/echo/${encodeURIComponent('a\u0007b')}`, '{}');
    expect(ctrl.status).toBe(400);
    expect(ctrl.json?.error.field).toBe('name');
  });
});
