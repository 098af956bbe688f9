// docs/openapi.yaml against the code: the error envelope on every error response, statuses that
// agree with src/http/envelope.ts, Retry-After on 503/429, and every route the lock node
// registers documented with the same method. Queue and cache routes are checked by scanning
// their route files once they exist; until then their operations must say they are planned.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/http/app.js';
import type { AppRouter } from '../../src/http/app.js';
import { BODY_DEPTH_MAX } from '../../src/http/body.js';
import { HTTP_STATUS_BY_CODE } from '../../src/http/envelope.js';
import { NAME_BYTES_MAX, OWNER_BYTES_MAX } from '../../src/http/validate.js';
import { LOCK_TTL_MS_MIN } from '../../src/lock/commands.js';
import { registerLockRoutes } from '../../src/lock/lock-routes.js';
import type { LockService } from '../../src/lock/lock-service.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { registerClusterRoutes } from '../../src/runtime/cluster-routes.js';
import type { RaftGroup } from '../../src/runtime/raft-group.js';
import type { ServiceName } from '../../src/config.js';
import { routesOf } from '../support/routes.js';
import { deref, isPlanned, obj, operations, SPEC, type Json } from '../support/openapi.js';

const ROOT = new URL('../../', import.meta.url);
const ENVELOPE_REF = '#/components/schemas/ErrorEnvelope';
const OPS = operations();
const key = (method: string, path: string): string => `${method.toUpperCase()} ${path}`;
/** Koa-router's `:name` to OpenAPI's `{name}`. */
const toOpenApiPath = (p: string): string => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** Every `$ref` string anywhere under `v`. */
function refsIn(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) {
    for (const x of v) refsIn(x, out);
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string') out.push(x);
      else refsIn(x, out);
    }
  }
  return out;
}

describe('docs/openapi.yaml: shape', () => {
  it('is OpenAPI 3.1 with unique operation ids and resolvable local refs', () => {
    expect(String(SPEC.openapi)).toMatch(/^3\.1\./);
    expect(OPS.length).toBeGreaterThan(20);
    const ids = OPS.map((o) => o.op.operationId);
    for (const id of ids) expect(typeof id).toBe('string');
    expect(new Set(ids).size).toBe(ids.length);
    for (const ref of refsIn(SPEC)) expect(() => deref({ $ref: ref }, ref)).not.toThrow();
  });

  it('declares every path parameter of every operation', () => {
    for (const { path, method, op } of OPS) {
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const params = ((op.parameters ?? []) as unknown[])
        .map((p, i) => deref(p, `${method} ${path} parameter ${i}`))
        .filter((p) => p.in === 'path');
      for (const p of params) expect(p.required, `${method} ${path} ${String(p.name)}`).toBe(true);
      expect(params.map((p) => p.name).sort(), `${method} ${path}`).toEqual(inPath);
    }
  });

  it('lists exactly the error codes of envelope.ts', () => {
    const codes = deref(obj(obj(SPEC.components, 'components').schemas, 'schemas').ErrorCode,
      'ErrorCode').enum as string[];
    expect([...codes].sort()).toEqual(Object.keys(HTTP_STATUS_BY_CODE).sort());
    const envelope = deref({ $ref: ENVELOPE_REF }, 'ErrorEnvelope');
    const error = obj(obj(envelope.properties, 'envelope').error, 'envelope.error');
    expect(error.required).toEqual(['code', 'message']);
    for (const detail of ['field', 'cycle', 'reason', 'leader', 'depthMax']) {
      expect(obj(error.properties, 'error.properties')[detail], detail).toBeDefined();
    }
    const depthMax = obj(obj(error.properties, 'error.properties').depthMax, 'depthMax');
    expect(depthMax.const).toBe(BODY_DEPTH_MAX);
  });

  it('gives every error response the envelope, codes of its status, Retry-After on 503/429',
    () => {
      for (const { path, method, op } of OPS) {
        const responses = obj(op.responses, `${method} ${path} responses`);
        expect(Object.keys(responses).some((s) => s.startsWith('2')), `${method} ${path}`)
          .toBe(true);
        for (const [status, raw] of Object.entries(responses)) {
          const where = `${method} ${path} ${status}`;
          if (!/^[45]/.test(status)) continue;
          const res = deref(raw, where);
          const json = obj(obj(res.content, where)['application/json'], `${where} json`);
          expect(obj(json.schema, where).$ref, where).toBe(ENVELOPE_REF);
          const codes = res['x-dsync-codes'] as string[];
          expect(codes.length, where).toBeGreaterThan(0);
          for (const code of codes) {
            expect(HTTP_STATUS_BY_CODE[code as keyof typeof HTTP_STATUS_BY_CODE], `${where} ${code}`)
              .toBe(Number(status));
          }
          if (status === '503' || status === '429') {
            expect(obj(res.headers, where)['Retry-After'], where).toBeDefined();
          }
        }
      }
    });

  it('states the bounds of API.md', () => {
    const schemas = obj(obj(SPEC.components, 'components').schemas, 'schemas');
    const s = (n: string): Json => deref(schemas[n], n);
    expect(s('Name')['x-dsync-max-bytes']).toBe(NAME_BYTES_MAX);
    expect(s('Name').minLength).toBe(1);
    expect(s('Owner')['x-dsync-max-bytes']).toBe(OWNER_BYTES_MAX);
    expect(s('Group')['x-dsync-max-bytes']).toBe(OWNER_BYTES_MAX);
    expect(s('TtlMs').minimum).toBe(LOCK_TTL_MS_MIN);
    expect(s('VisibilityMs').minimum).toBe(100);
    expect(s('QueueWaitMs').maximum).toBe(20_000);
    expect(s('Receipts').maxItems).toBe(1000);
    const publish = OPS.find((o) => o.op.operationId === 'publishMessages');
    const content = obj(obj(publish?.op.requestBody, 'publish body').content, 'content');
    const body = obj(content['application/json'], 'json');
    const batch = (obj(body.schema, 'schema').oneOf as Json[])
      .map((x) => deref(x, 'oneOf')).find((x) => x.required !== undefined &&
        (x.required as string[]).includes('messages'));
    expect(obj(obj(batch?.properties, 'batch').messages, 'messages').maxItems).toBe(1000);
  });
});

/** Route registration only reads its deps when a request arrives, so stubs that throw suffice:
 * a test that ends up calling one fails loudly. */
function unreachable(): never {
  throw new Error('route handlers are not run by this test');
}

function lockNodeRoutes(): Set<string> {
  const sink = new Writable({ write(_c, _e, cb) { cb(); } });
  const logger = createLogger({ level: 'error', node: 'lock-0', service: 'lock', destination: sink });
  const leaderOnly = async (): Promise<void> => { unreachable(); };
  const { router } = createApp({
    service: 'lock', nodeId: 'lock-0', logger, metrics: createMetrics('lock-0', 'lock'),
    bodyBytesMax: 1024, health: () => ({}), ready: () => ({ ok: true }),
    routes: (r: AppRouter) => {
      registerLockRoutes(r, { service: {} as LockService, leaderOnly });
      registerClusterRoutes(r, { group: {} as RaftGroup, knownPeers: unreachable, leaderOnly,
        requestTimeoutMs: 1000 });
    },
  });
  const out = new Set<string>();
  for (const layer of router.stack) {
    if (typeof layer.path !== 'string') continue;
    // Koa-router adds HEAD to every GET by itself; the contract documents the GET.
    for (const m of layer.methods) if (m !== 'HEAD') out.add(key(m, toOpenApiPath(layer.path)));
  }
  return out;
}

/** `router.<method>('<path>'` calls in a service's route files, for services whose node is not
 * cheap to build here. Empty when the service has no route file yet. */
function scannedRoutes(dir: string): Set<string> {
  const out = new Set<string>();
  // A service not started yet has no folder in a fresh clone (git keeps no empty folders).
  if (!existsSync(new URL(dir, ROOT))) return out;
  const files = readdirSync(new URL(dir, ROOT)).filter((f) => /routes.*\.ts$/.test(f));
  for (const f of files) {
    const src = readFileSync(new URL(`${dir}/${f}`, ROOT), 'utf8');
    for (const m of src.matchAll(/\.(get|post|put|delete|patch)\(\s*['`]([^'`]+)['`]/g)) {
      out.add(key(m[1] ?? '', toOpenApiPath(m[2] ?? '')));
    }
  }
  return out;
}

describe('docs/openapi.yaml: routes of the code', () => {
  it('documents every route of a lock node, and documents no lock route that is missing', () => {
    const registered = lockNodeRoutes();
    expect(registered.has('POST /v1/locks/{name}/acquire')).toBe(true);
    expect(registered.has('DELETE /v1/cluster/members/{id}')).toBe(true);
    const documented = new Set(OPS.map((o) => key(o.method, o.path)));
    for (const r of registered) expect(documented, r).toContain(r);
    const lockScope = /^\/(health|ready|metrics)$|^\/v1\/(locks|cluster)(\/|$)/;
    const inScope = OPS.filter((o) => lockScope.test(o.path));
    for (const o of inScope) {
      expect(registered, key(o.method, o.path)).toContain(key(o.method, o.path));
      expect(isPlanned(o), key(o.method, o.path)).toBe(false);
    }
  });

  for (const [service, dir, prefix] of [
    ['queue', 'src/queue', '/v1/queues'], ['cache', 'src/cache', '/v1/cache'],
  ] as const) {
    it(`marks ${service} operations planned exactly when their route is not in ${dir}`, () => {
      const scanned = scannedRoutes(dir);
      const ops = OPS.filter((o) => o.path === prefix || o.path.startsWith(`${prefix}/`));
      expect(ops.length).toBeGreaterThan(0);
      for (const o of ops) {
        const k = key(o.method, o.path);
        expect(isPlanned(o), `${k}: x-dsync-status planned iff not served`)
          .toBe(!scanned.has(k));
      }
      const documented = new Set(ops.map((o) => key(o.method, o.path)));
      for (const r of scanned) expect(documented, r).toContain(r);
    });
  }

  // The property tests at the HTTP edge walk routesOf(service): it must miss nothing.
  it('routesOf(service) lists exactly what a node of each service serves', () => {
    const listed = (s: ServiceName): Set<string> =>
      new Set(routesOf(s).map((r) => key(r.method, r.path)));
    expect(listed('lock')).toEqual(lockNodeRoutes());
    // Every node's own routes: all but the lock service's.
    const builtin = [...lockNodeRoutes()].filter((r) => !/ \/v1\/(locks|cluster)(\/|$)/.test(r));
    expect(listed('cache')).toEqual(new Set([...builtin, ...scannedRoutes('src/cache')]));
    expect(listed('queue')).toEqual(new Set([...builtin, ...scannedRoutes('src/queue')]));
    const acquire = routesOf('lock').find((r) => r.path === '/v1/locks/{name}/acquire');
    expect(acquire?.bodyFields).toContainEqual(
      { name: 'waitMs', type: 'integer', minimum: 0, maximum: 3_600_000 });
  });
});
