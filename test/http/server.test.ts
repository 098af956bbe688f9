// Graceful close of the HTTP server: stop accepting, let an in-flight request finish, cut one
// that outlives the deadline. Keep-alive settings are checked on the live server.
import { describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import type { AppRouter } from '../../src/http/app.js';
import {
  DEFAULT_ACCEPT_BACKLOG_MAX, DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
} from '../../src/http/server.js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { parseResponse } from '../support/raw-http.js';
import { startTestApp } from './helpers.js';

/** A route that answers when the test releases it. */
function gatedRoutes(gate: { open: Promise<void>; entered: () => void }) {
  return (router: AppRouter): void => {
    router.get('/v1/slow', async (ctx) => {
      gate.entered();
      await gate.open;
      ctx.body = { done: true };
    });
  };
}

function makeGate() {
  let release: () => void = () => undefined;
  let entered: () => void = () => undefined;
  const open = new Promise<void>((r) => { release = r; });
  const inside = new Promise<void>((r) => { entered = r; });
  return { gate: { open, entered }, release, inside };
}

describe('startServer / close', () => {
  it('uses the tuned keep-alive and header timeouts', async () => {
    const node = await startTestApp('srv-0');
    try {
      expect(node.server.server.keepAliveTimeout).toBe(DEFAULT_KEEP_ALIVE_TIMEOUT_MS);
      expect(node.server.server.headersTimeout).toBe(DEFAULT_HEADERS_TIMEOUT_MS);
      expect(node.server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await node.server.close(1000);
    }
  });

  it('listens with a backlog of DEFAULT_ACCEPT_BACKLOG_MAX, not Node\'s 511', async () => {
    const node = await startTestApp('srv-backlog');
    try {
      // For a listening socket, ss shows the accept queue's bound as Send-Q; the kernel caps
      // it at net.core.somaxconn.
      const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
      const out = execFileSync('ss', ['-ltnH', `sport = :${node.server.port}`], { encoding: 'utf8' });
      const sendQ = Number(out.trim().split(/\s+/)[2]);
      expect(sendQ).toBe(Math.min(DEFAULT_ACCEPT_BACKLOG_MAX, somaxconn));
    } finally {
      await node.server.close(1000);
    }
  });

  it('finishes an in-flight request, then refuses new connections', async () => {
    const { gate, release, inside } = makeGate();
    const node = await startTestApp('srv-1', { routes: gatedRoutes(gate) });
    const agent = new Agent();
    try {
      const inflight = request(`${node.url}/v1/slow`, { dispatcher: agent });
      await inside;
      const closing = node.server.close(10_000);
      expect(node.server.server.listening).toBe(false);
      release();
      const res = await inflight;
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toEqual({ done: true });
      await closing;
      await expect(request(`${node.url}/health`, { dispatcher: new Agent() }))
        .rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      release();
      await agent.close();
    }
  });

  it('cuts a request that outlives the close deadline', async () => {
    const { gate, release, inside } = makeGate();
    const node = await startTestApp('srv-2', { routes: gatedRoutes(gate) });
    const agent = new Agent();
    try {
      const inflight = request(`${node.url}/v1/slow`, { dispatcher: agent });
      inflight.catch(() => undefined);
      await inside;
      await node.server.close(100);
      await expect(inflight).rejects.toMatchObject({ code: 'UND_ERR_SOCKET' });
    } finally {
      release();
      await agent.close();
    }
  });
});

describe('requests Node cannot parse', () => {
  it.each([
    ['an unknown method', 'FOO /health HTTP/1.1'],
    ['a lower-case method', 'get /health HTTP/1.1'],
    ['not HTTP at all', '\u0001\u0002 garbage'],
  ])('%s gets 400 INVALID_ARGUMENT in the error envelope, not a bare 400', async (_what, line) => {
    const node = await startTestApp('srv-parse');
    try {
      const res = await rawExchange(node.server.port, `${line}\r\nHost: x\r\n\r\n`);
      const parsed = parseResponse(res);
      if (parsed === null) throw new Error(`no complete answer: ${res.toString('latin1')}`);
      const { status, headers, body } = parsed;
      expect(status).toBe(400);
      expect(headers['content-type']).toMatch(/^application\/json/);
      const e = (JSON.parse(body.toString()) as { error: Record<string, unknown> }).error;
      expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'request' });
      expect(String(e.message)).toMatch(/could not read the request/);
      // The node goes on serving.
      expect((await request(`${node.url}/health`)).statusCode).toBe(200);
    } finally {
      await node.server.close(1000);
    }
  });
});

/** Writes raw bytes, returns everything the server sends until it closes. */
function rawExchange(port: number, text: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: '127.0.0.1', port }, () => s.write(text, 'latin1'));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('close', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}
