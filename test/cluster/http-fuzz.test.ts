// Property tests at the HTTP edge of real nodes (API.md: "A node never answers 500 to bad
// input"): whatever a client sends to any route — arbitrary JSON, fields of the right name
// with values of the wrong kind, arbitrary bytes under any content type, odd methods, odd
// path segments — the answer is below 500, every non-2xx carries the error envelope with a
// status that follows from its code, and no node logs an error.
//
// Seen before: `{"owner": "é…", "waitMs": 3.14159}` sent to a lock follower was a 500 (the
// forwarding deadline was computed from the unvalidated body), a cache value nested 5,000
// deep was a 500 (JSON.stringify overflowed the stack), and a request Node could not parse
// (`get /health`, `FOO /`) got a bare 400 without the envelope.
//
// The routes come from docs/openapi.yaml through test/support/routes.ts; a new service joins
// with one line in TARGETS. A failure prints fast-check's seed and the shrunk request.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceName } from '../../src/config.js';
import { HTTP_STATUS_BY_CODE } from '../../src/http/envelope.js';
import { Cluster } from '../support/cluster.js';
import { preferredLeaders, waitReady } from '../queue/queue-cluster.js';
import type { BodyField } from '../support/openapi.js';
import { rawRequest, type RawRequest, type RawResponse } from '../support/raw-http.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { routeGroupsOf, routesOf, type Route } from '../support/routes.js';

interface FuzzTarget {
  readonly service: ServiceName;
  /** Nodes: more than one, so that forwarding (lock) and remote homes (cache) are fuzzed. */
  readonly size: number;
  readonly redis?: boolean;
  /** Extra `dsync serve` flags. */
  readonly args?: readonly string[];
}

const TARGETS: readonly FuzzTarget[] = [
  { service: 'lock', size: 3 },
  { service: 'cache', size: 2, redis: true },
  { service: 'queue', size: 3, args: ['--partitions', '4'] },
];

/** Cases per route group and per property: seconds, not minutes, on two loaded cores. */
const RUNS_PER_GROUP = 300;
const RUNS_PER_PROPERTY = 200;
const START_TIMEOUT_MS = 45_000;
/** A blocking acquire may wait this long at most, so a contended fuzz lock costs little. */
const FUZZ_WAIT_MS_MAX = 200;

/** A queue cluster whose pods are ready and whose leader transfers after start are over. */
async function queueSettled(nodes: Cluster['nodes'], partitions: number): Promise<void> {
  await waitReady(nodes);
  await preferredLeaders(nodes, partitions);
}

// ---- generators ---------------------------------------------------------------------------

const OMIT = Symbol('omit');

/** Values that broke or could break validation: prototype keys, objects whose toString is not
 * a function, fractions where integers belong, multibyte text past a byte bound, surrogates. */
const TRICKY: readonly unknown[] = [
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'é'.repeat(65), 'é'.repeat(200),
  'x'.repeat(300), 'a\u0000b', '\ud800', 'exclusive', 'shared', 3.14159, -0, -1, 0, 1, 99,
  100, 1e21, 2 ** 53, 1e308, true, false, null, [], [[]], {}, { toString: [1] },
  { valueOf: 'x' }, JSON.parse('{"__proto__": {"owner": "x"}}'),
  { constructor: { prototype: 1 } },
];

const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...TRICKY) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.integer() },
);

/** Wrong values of the right kind, near what an integer field expects: fractions (a
 * fractional waitMs was a 500), the bounds ±1, beyond the safe integers, numeric strings. */
function numberish(f: BodyField): fc.Arbitrary<unknown> {
  const lo = f.minimum ?? 0;
  const hi = f.maximum ?? 1e6;
  return fc.oneof(
    fc.double({ min: lo - 10, max: Math.min(hi, 1e7) + 10, noNaN: true }),
    fc.constantFrom(lo - 1, lo, hi, hi + 1, 0.5, 3.14159, 2 ** 53, 1e21, -0, '100', null),
  );
}

/** Text around the byte bounds (multibyte characters count as more than one byte), with
 * control characters and lone surrogates. */
const stringish: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer({ min: 60, max: 140 }).map((n) => 'é'.repeat(n)),
  fc.integer({ min: 120, max: 260 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom('', ' ', 'a\u0000b', 'a\u007fb', '\ud800', '\u0085', 1, true, ['x']),
);

function fuzzValue(f: BodyField): fc.Arbitrary<unknown> {
  if (f.type === 'integer' || f.type === 'number') return fc.oneof(numberish(f), jsonish);
  if (f.type === 'string') return fc.oneof(stringish, jsonish);
  return jsonish;
}

/** A valid value per known field, so that one fuzzed field meets otherwise valid bodies and
 * the request gets past the first check. Fields without one are fuzzed or left out. */
const SANE: Readonly<Record<string, unknown>> = {
  owner: 'fuzz-owner', mode: 'shared', ttlMs: 60_000, waitMs: 0, requestId: 'fuzz-req',
  token: 1, value: { a: [1] },
  body: { a: [1] }, messages: [{ body: 1, key: 'k' }], key: 'fuzz-key', dedupId: 'fuzz-dedup',
  delayMs: 0, group: 'fuzz-group', max: 2, visibilityMs: 1000, receipts: ['1.1.abc'],
  maxDeliveries: 3, retentionMs: 60_000,
};

/** Long waits would only slow the run down; what matters is the kind of value. */
function bounded(key: string, v: unknown): unknown {
  if (key === 'waitMs' && typeof v === 'number' && Number.isSafeInteger(v)) {
    return v > FUZZ_WAIT_MS_MAX ? v % FUZZ_WAIT_MS_MAX : v;
  }
  return v;
}

/** JSON object text from entries: allows duplicate keys and own `__proto__` keys. */
function objectText(entries: ReadonlyArray<readonly [string, unknown]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(bounded(k, v))}`)
    .join(',')}}`;
}

function fieldBody(fields: readonly BodyField[]): fc.Arbitrary<string> {
  const names = fields.map((f) => f.name);
  const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', ...names),
    fc.string({ maxLength: 10 }));
  // Mostly one or two fuzzed fields among valid ones, so that each check is reached.
  const perField = fields.map((f) => fc.oneof(
    { weight: 4, arbitrary: fc.constant<unknown>(SANE[f.name] ?? OMIT) },
    { weight: 1, arbitrary: fuzzValue(f) },
    { weight: 1, arbitrary: fc.constant<unknown>(OMIT) },
  ));
  return fc.tuple(fc.tuple(...perField), fc.array(fc.tuple(key, jsonish), { maxLength: 2 }))
    .map(([values, extra]) => objectText([
      ...names.map((n, i) => [n, values[i]] as const).filter(([, v]) => v !== OMIT),
      ...extra,
    ]));
}

/** Nesting far past any sane depth, in a field that takes any JSON and in one that does not. */
const deepBody = fc.tuple(fc.integer({ min: 60, max: 6000 }), fc.constantFrom('value', 'owner'))
  .map(([depth, field]) => `{"${field}":${'['.repeat(depth)}${']'.repeat(depth)}}`);

function jsonBody(fields: readonly BodyField[]): fc.Arbitrary<string | null> {
  return fc.oneof(
    { weight: 5, arbitrary: fieldBody(fields) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
    { weight: 1, arbitrary: deepBody },
    { weight: 1, arbitrary: fc.constant(null) },
  );
}

/** encodeURIComponent, except that a lone surrogate (which it refuses) goes out as the bytes
 * a sloppy client would send: invalid UTF-8. */
function encodeSegment(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...s].map((c) => {
      try { return encodeURIComponent(c); } catch { return '%ED%A0%80'; }
    }).join('');
  }
}

const segment: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('fuzz', 'a', 'é', 'a b', 'x'.repeat(257))
    .map(encodeSegment) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map(encodeSegment) },
  { weight: 1, arbitrary: fc.constantFrom('%zz', '%e2%82', '%00', '%2e%2e', '..', '.', '',
    '%2F', '%25', ';', '%C0%AF', '%ED%A0%80', '%F4%90%80%80') },
);

function pathOf(route: Route): fc.Arbitrary<string> {
  return fc.tuple(...route.params.map(() => segment)).map((values) => {
    let i = 0;
    return route.path.replace(/\{[^}]+\}/g, () => values[i++] ?? '');
  });
}

/** Routes with more body fields are picked more often: they have more to get wrong. */
function weighted(routes: readonly Route[]): fc.Arbitrary<Route> {
  return fc.oneof(...routes.map((r) => ({ weight: 1 + r.bodyFields.length,
    arbitrary: fc.constant(r) })));
}

const headers: fc.Arbitrary<Array<readonly [string, string]>> = fc.tuple(
  fc.constantFrom(null, 'application/json', 'application/json; charset=latin1', 'text/plain',
    'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', ''),
  fc.constantFrom(null, 'fuzz-req', 'x'.repeat(200), '\u00e9t\u00e9'),
  fc.constantFrom(null, 'fuzz-client', 'x'.repeat(300), '\u00e4\u00f6'),
).map(([ct, reqId, client]) => [
  ...(ct === null ? [] : [['Content-Type', ct] as const]),
  ...(reqId === null ? [] : [['X-Request-Id', reqId] as const]),
  ...(client === null ? [] : [['X-Dsync-Client', client] as const]),
]);

const ODD_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND',
  'TRACE', 'FOO', 'get'] as const;

const pathTwist = fc.constantFrom('', '/', '/extra', '//', '?prefix=a&prefix=b', '?prefix=%zz',
  '?prefix=%E2%82', '?a[b]=1&__proto__=x', '/%2e%2e/%2e%2e/health');

// ---- checking an answer -------------------------------------------------------------------

function describeExchange(req: RawRequest, res: RawResponse): string {
  const body = res.body.toString('utf8').slice(0, 300);
  const sent = req.body === undefined ? ''
    : ` ${Buffer.from(req.body).toString('utf8').slice(0, 200)}`;
  return `${req.method} ${req.target}${sent} → ${res.status} ${body}`;
}

/** Status below 500; every non-2xx answer (HEAD aside: no body) is the API.md envelope. */
function checkAnswer(req: RawRequest, res: RawResponse): void {
  const where = describeExchange(req, res);
  if (res.status >= 500) throw new Error(`a 5xx answer: ${where}`);
  if (res.status < 300 || req.method === 'HEAD') return;
  if (!/^application\/json/.test(res.headers['content-type'] ?? '')) {
    throw new Error(`an error without a JSON body: ${where}`);
  }
  const e = (JSON.parse(res.body.toString('utf8')) as { error?: Record<string, unknown> }).error;
  const code = e?.code;
  if (typeof code !== 'string' || !(code in HTTP_STATUS_BY_CODE)) {
    throw new Error(`not the error envelope: ${where}`);
  }
  if (HTTP_STATUS_BY_CODE[code as keyof typeof HTTP_STATUS_BY_CODE] !== res.status) {
    throw new Error(`status does not follow from code ${code}: ${where}`);
  }
  if (typeof e?.message !== 'string' || e.message.length === 0) {
    throw new Error(`an error without a message: ${where}`);
  }
}

/** Log lines at error level or worse, e.g. "internal error" or "unhandled error in koa". */
function errorLines(logFile: string): string[] {
  return readFileSync(logFile, 'utf8').split('\n')
    .filter((l) => /"level":(50|60)/.test(l)).map((l) => l.slice(0, 500));
}

// ---- the properties, per service -----------------------------------------------------------

for (const target of TARGETS) {
  describe(`HTTP fuzz: every route of a ${target.service} node`, { timeout: 180_000 }, () => {
    let redis: RedisServer | null = null;
    let cluster: Cluster;

    beforeAll(async () => {
      redis = target.redis === true ? await startRedis() : null;
      cluster = await Cluster.start({
        service: target.service, size: target.size, startTimeoutMs: START_TIMEOUT_MS,
        extraArgs: ['--unsafe-no-fsync', ...(target.args ?? [])],
        env: redis === null ? {} : { DSYNC_REDIS_URL: redis.url },
      });
      if (target.service === 'lock') await cluster.leader(20_000);
      if (target.service === 'queue') await queueSettled(cluster.nodes, 4);
    });
    afterAll(async () => {
      await cluster?.stop();
      await redis?.stop();
    });

    /** Sends `req` to node `i`. A 503 can be the cluster's own passing state (an election on
     * a loaded machine): it gets one retry once a leader is known, and then counts. */
    async function send(i: number, req: RawRequest): Promise<void> {
      const port = cluster.nodes[i % cluster.nodes.length]!.spec.httpPort;
      let res = await rawRequest(port, req);
      if (res.status === 503) {
        if (target.service === 'lock') await cluster.leader(20_000);
        if (target.service === 'queue') await queueSettled(cluster.nodes, 4);
        res = await rawRequest(port, req);
      }
      checkAnswer(req, res);
    }

    const node = fc.nat({ max: target.size - 1 });

    for (const [group, routes] of routeGroupsOf(target.service)) {
      it(`${group} routes: arbitrary JSON, fields of the wrong kind, deep nesting`, async () => {
        const request = weighted(routes).chain((r) => fc.record({
          method: fc.constant(r.method), target: pathOf(r), body: jsonBody(r.bodyFields),
          headers,
        }));
        await fc.assert(fc.asyncProperty(node, request, async (i, q) => {
          await send(i, { method: q.method, target: q.target, headers: q.headers,
            ...(q.body === null ? {} : { body: Buffer.from(q.body, 'utf8') }) });
        }), { numRuns: RUNS_PER_GROUP });
      });
    }

    it('arbitrary bytes under any content type, with and without chunking', async () => {
      const request = fc.constantFrom(...routesOf(target.service)).chain((r) => fc.record({
        method: fc.constant(r.method), target: pathOf(r), headers,
        body: fc.uint8Array({ maxLength: 300 }), chunked: fc.boolean(),
      }));
      await fc.assert(fc.asyncProperty(node, request, async (i, q) => {
        await send(i, q);
      }), { numRuns: RUNS_PER_PROPERTY });
    });

    it('odd methods, odd path segments and query strings', async () => {
      const request = fc.constantFrom(...routesOf(target.service)).chain((r) => fc.record({
        method: fc.constantFrom(...ODD_METHODS), path: pathOf(r), twist: pathTwist,
        body: jsonBody(r.bodyFields),
      }));
      await fc.assert(fc.asyncProperty(node, request, async (i, q) => {
        await send(i, { method: q.method, target: q.path + q.twist,
          ...(q.body === null ? {} : { body: Buffer.from(q.body, 'utf8') }) });
      }), { numRuns: RUNS_PER_PROPERTY });
    });

    it('left every node up, with no error logged', async () => {
      for (const n of cluster.nodes) {
        expect(await n.health(5000), `${n.id} /health`).not.toBeNull();
        expect(errorLines(n.logFile), `${n.id} logged errors`).toEqual([]);
      }
    });
  });
}
