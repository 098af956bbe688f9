// The SDK's transport against scripted HTTP servers on loopback (a real socket and a real
// fetch; the server side is a script, since a dsync node cannot be made to answer 503 with
// Retry-After, 429, HTML or an unknown code on demand). What it checks: typed errors for every
// answer (never a SyntaxError), retries only where they are safe (a write without a requestId
// is not resent after an answer; an acquire keeps its requestId across retries), Retry-After
// honoured, the call's timeout and AbortSignal, failover to the next node and membership
// learned from GET /v1/cluster, and a mixed endpoint list sorted by service.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortError, BadResponseError, DeadlineExceededError, DsyncClient, DsyncError,
  InternalError, NetworkError, ResourceExhaustedError, UnavailableError,
} from '../../src/client/index.js';
import { freePort } from '../support/ports.js';

interface Seen { method: string; path: string; body: unknown; at: number; client: string }
type Answer = { status: number; body?: unknown; raw?: string; headers?: Record<string, string> };

/** A server that answers with `script` (called per request with the requests so far). */
async function scripted(script: (req: Seen, seen: Seen[]) => Answer | Promise<Answer>):
  Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (b: Buffer) => { text += b.toString(); });
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', path: req.url ?? '', at: performance.now(),
        body: text === '' ? undefined : JSON.parse(text) as unknown,
        client: String(req.headers['x-dsync-client']) };
      seen.push(s);
      void Promise.resolve(script(s, seen)).then((a) => {
        res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers ?? {}) });
        res.end(a.raw ?? (a.body === undefined ? '' : JSON.stringify(a.body)));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const servers: Server[] = [];
const clients: DsyncClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => {
    s.closeAllConnections();
    s.close(r);
  })));
});

function clientOf(o: ConstructorParameters<typeof DsyncClient>[0]): DsyncClient {
  const c = new DsyncClient({ discover: false, retry: { backoffMsMin: 5, backoffMsMax: 20 },
    ...o });
  clients.push(c);
  return c;
}

const unavailable = (retryAfter?: string): Answer => ({ status: 503,
  body: { error: { code: 'UNAVAILABLE', message: 'no leader', reason: 'not_leader' } },
  headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter } });
const GRANT = { name: 'n', owner: 'o', mode: 'exclusive', token: 7, expiresAt: 0 };

async function rejected(p: Promise<unknown>): Promise<DsyncError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(DsyncError);
  return err as DsyncError;
}

describe('typed errors for every answer', () => {
  it('a body that is not JSON is a BadResponseError keeping the status, never a SyntaxError',
    async () => {
      for (const status of [200, 502]) {
        const s = await scripted(() => ({ status, raw: '<html>proxy</html>' }));
        const e = await rejected(clientOf({ locks: [s.url] }).locks.get('n'));
        expect(e).toBeInstanceOf(BadResponseError);
        expect([e.code, e.status, e.retryable]).toEqual(['BAD_RESPONSE', status, false]);
        expect(e.message).toMatch(/not JSON/);
        expect(e.cause).toBeInstanceOf(SyntaxError);
      }
    });

  it('an error without the envelope, or with an unknown code, is a BadResponseError',
    async () => {
      const s = await scripted((r) => (r.path.includes('plain')
        ? { status: 404, body: { oops: true } }
        : { status: 409, body: { error: { code: 'FROM_THE_FUTURE', message: 'x' } } }));
      const c = clientOf({ locks: [s.url] });
      expect((await rejected(c.locks.get('plain'))).message).toMatch(/without dsync's error/);
      expect((await rejected(c.locks.get('future'))).message).toMatch(/FROM_THE_FUTURE.*upgrade/);
    });

  it('a 500 is an InternalError and is not retried', async () => {
    const s = await scripted(() => ({ status: 500,
      body: { error: { code: 'INTERNAL', message: 'internal error; it was logged' } } }));
    const e = await rejected(clientOf({ locks: [s.url] }).locks.get('n'));
    expect(e).toBeInstanceOf(InternalError);
    expect(s.seen).toHaveLength(1);
  });
});

describe('retries that follow the server', () => {
  it('retries a 503 after its Retry-After, and a read succeeds on the next attempt', async () => {
    const s = await scripted((_r, seen) => (seen.length === 1 ? unavailable('1')
      : { status: 200, body: { name: 'n', mode: null, holders: [], waiters: [] } }));
    const v = await clientOf({ locks: [s.url] }).locks.get('n');
    expect(v.holders).toEqual([]);
    expect(s.seen).toHaveLength(2);
    // Never sooner than the server asked.
    expect(s.seen[1]!.at - s.seen[0]!.at).toBeGreaterThanOrEqual(1000 - 5);
  });

  it('retries a 429 with its Retry-After; the error keeps `limit`', async () => {
    const s = await scripted(() => ({ status: 429, headers: { 'retry-after': '0' },
      body: { error: { code: 'RESOURCE_EXHAUSTED', message: 'full', limit: 'waitersPerLock' } } }));
    const e = await rejected(clientOf({ locks: [s.url], timeoutMs: 300 }).locks.get('n'));
    expect(e).toBeInstanceOf(DeadlineExceededError);
    const last = e.cause as ResourceExhaustedError;
    expect(last).toBeInstanceOf(ResourceExhaustedError);
    expect(last.limit).toBe('waitersPerLock');
    expect(s.seen.length).toBeGreaterThan(1);
  });

  it('an acquire is retried with the same requestId; the client id rides along', async () => {
    const s = await scripted((_r, seen) => (seen.length < 3 ? unavailable('0')
      : { status: 200, body: GRANT }));
    const c = clientOf({ locks: [s.url] });
    const lease = await c.locks.acquire('n', { owner: 'o', renew: false });
    expect(lease.token).toBe(7);
    const acquires = s.seen.filter((r) => r.path.endsWith('/acquire'));
    expect(acquires).toHaveLength(3);
    const ids = acquires.map((r) => (r.body as { requestId: string }).requestId);
    expect(new Set(ids).size).toBe(1);
    expect(new Set(acquires.map((r) => r.client))).toEqual(new Set([c.clientId]));
    // The next logical acquire gets a new requestId.
    await c.locks.acquire('n', { owner: 'o', renew: false });
    const last = s.seen.at(-1)!.body as { requestId: string };
    expect(last.requestId).not.toBe(ids[0]);
  });

  it('a write without a requestId is not sent again after an answer of 503', async () => {
    const s = await scripted(() => unavailable('0'));
    const c = clientOf({ locks: [s.url] });
    // An unfenced release: retrying it could free a later grant of the same owner.
    const e = await rejected(c.locks.release('n', 'o'));
    expect(e).toBeInstanceOf(UnavailableError);
    expect((e as UnavailableError).reason).toBe('not_leader');
    expect(s.seen).toHaveLength(1);
    // The fenced release is safe to send again.
    await rejected(clientOf({ locks: [s.url], timeoutMs: 200 }).locks.release('n', 'o', 3));
    expect(s.seen.length).toBeGreaterThan(2);
  });

  it('a write is sent to the next node when the first refuses the connection', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const s = await scripted(() => ({ status: 200, body: { released: true } }));
    const c = clientOf({ locks: [dead, s.url] });
    for (let i = 0; i < 3; i++) expect(await c.locks.release('n', 'o')).toEqual({ released: true });
    expect(s.seen).toHaveLength(3);
  });

  it('gives up at the call\'s timeout with the last failure as cause', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const e = await rejected(clientOf({ locks: [dead] }).locks.get('n', { timeoutMs: 200 }));
    expect(e).toBeInstanceOf(DeadlineExceededError);
    expect(e.message).toMatch(/gave up after \d+ ms and \d+ attempt\(s\); last failure: NETWORK/);
    expect(e.cause).toBeInstanceOf(NetworkError);
    expect((e.cause as NetworkError).sent).toBe(false);
  });

  it('a node that does not answer in time is left for the next one', async () => {
    const hang = await scripted(() => new Promise<Answer>(() => undefined));
    const ok = await scripted(() => ({ status: 200, body: { name: 'n', mode: null,
      holders: [], waiters: [] } }));
    const c = clientOf({ locks: [hang.url, ok.url], attemptTimeoutMs: 100, timeoutMs: 5000 });
    for (let i = 0; i < 3; i++) await c.locks.get('n');
    expect(ok.seen.length).toBe(3);
    expect(hang.seen.length).toBeLessThanOrEqual(1);
  });

  it('an AbortSignal ends the call at once, also during a backoff pause', async () => {
    const s = await scripted(() => unavailable('30'));
    const ac = new AbortController();
    const p = clientOf({ locks: [s.url], timeoutMs: 60_000 }).locks.get('n',
      { signal: ac.signal });
    await expect.poll(() => s.seen.length).toBe(1);
    ac.abort(new Error('user gave up'));
    const e = await rejected(p);
    expect(e).toBeInstanceOf(AbortError);
    expect((e.cause as Error).message).toBe('user gave up');
  });
});

describe('endpoints', () => {
  it('learns the members from GET /v1/cluster and fails over to them', async () => {
    const member = await scripted((r) => (r.path === '/v1/cluster' ? { status: 503,
      body: { error: { code: 'UNAVAILABLE', message: 'x' } } }
      : { status: 200, body: { released: true } }));
    const seed = await scripted((r) => (r.path === '/v1/cluster'
      ? { status: 200, body: { leader: 'm1', members: [{ id: 'm0', url: 'http://seed.invalid' },
        { id: 'm1', url: member.url }] } }
      : { status: 200, body: { released: true } }));
    const c = clientOf({ locks: [seed.url], discover: true });
    await c.locks.release('n', 'o', 1);
    await expect.poll(() => c.service('lock').urls.length).toBe(3);
    // The leader's node is asked first: no forwarding hop.
    await c.locks.release('n', 'o', 1);
    expect(member.seen.filter((r) => r.path.includes('/release'))).toHaveLength(1);
  });

  it('sorts a mixed endpoint list by the service each node reports in /health', async () => {
    const health = (service: string) => (r: Seen): Answer => (r.path === '/health'
      ? { status: 200, body: { status: 'ok', service, node: `${service}-0` } }
      : { status: 200, body: service === 'lock' ? { name: 'n', mode: null, holders: [],
        waiters: [] } : { key: 'k', value: 1, state: 'E', hit: false, version: 1 } });
    const lock = await scripted(health('lock'));
    const cache = await scripted(health('cache'));
    const c = clientOf({ endpoints: [cache.url, lock.url] });
    await c.locks.get('n');
    expect((await c.cache.get('k'))?.value).toBe(1);
    expect(lock.seen.map((r) => r.path)).toEqual(['/health', '/v1/locks/n']);
    expect(cache.seen.map((r) => r.path)).toEqual(['/health', '/v1/cache/k']);
    const only = clientOf({ endpoints: [cache.url] });
    const e = await rejected(only.locks.get('n'));
    expect(e.message).toMatch(/none of the endpoints is a lock node \(.* is a cache node\)/);
  });
});
