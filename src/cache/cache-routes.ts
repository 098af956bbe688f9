// HTTP routes of the cache service (API.md, "Cache"). No forwarding: every node serves every
// key itself through the coherence protocol, from its own line when it has a valid one
// (`hit`) and otherwise by asking the key's home over the peer transport.
import { z } from 'zod';
import { DsyncError } from '../errors.js';
import type { AppContext, AppRouter } from '../http/app.js';
import { objectBody } from '../http/app.js';
import { durationMs, intInRange, parseName, parseWith } from '../http/validate.js';
import type { CacheShell } from './cache-shell.js';
import type { OpResult } from './coherence-messages.js';
import { splitValue } from './coherence-value.js';

export interface CacheRouteDeps {
  readonly shell: CacheShell;
  /** POST /v1/cache/flush waits this long for the homes to confirm the write-backs. */
  readonly flushTimeoutMs: number;
}

/** Shortest and longest ttlMs of a PUT (API.md: durations of at least 100 ms). */
export const CACHE_TTL_MS_MIN = 100;
export const CACHE_TTL_MS_MAX = 2 ** 31 - 1;

// `value` may be any JSON, null included, but must be there: z.unknown() accepts a missing
// key, so presence is checked by hand. `ifVersion` 0 means "only if the key has no value".
const putSchema = z.object({
  value: z.unknown(),
  ttlMs: durationMs(CACHE_TTL_MS_MIN, CACHE_TTL_MS_MAX).optional(),
  ifVersion: intInRange(0, Number.MAX_SAFE_INTEGER).optional(),
}).check((ctx) => {
  if (!Object.hasOwn(ctx.value, 'value')) {
    ctx.issues.push({ code: 'custom', message: 'value is required (any JSON)', path: ['value'],
      input: ctx.value });
  }
});

type Success<T extends OpResult['type']> = Extract<OpResult, { type: T }>;

/** The result of the kind asked for, or the operation's error thrown as is. */
function expect<T extends OpResult['type']>(r: OpResult, type: T): Success<T> {
  if (r.type === 'error') throw r.error;
  if (r.type !== type) {
    throw new DsyncError('INTERNAL', `the cache answered ${r.type} to a ${type}`);
  }
  return r as Success<T>;
}

const keyOf = (ctx: AppContext): string => parseName(ctx.params.key, 'key');

/** What Koa sets for an object body; a pre-built JSON text must say it itself. */
const JSON_TYPE = 'application/json; charset=utf-8';

export function registerCacheRoutes(router: AppRouter, d: CacheRouteDeps): void {
  router.get('/v1/cache', (ctx) => {
    const s = d.shell.stats();
    ctx.body = { entries: s.entries, bytes: s.bytes, capacityBytes: s.capacityBytes,
      hits: s.hits, misses: s.misses, evictions: s.evictions, states: s.states,
      dirtyLines: s.dirtyLines, dirtyBytes: s.dirtyBytes };
  });
  router.post('/v1/cache/flush', async (ctx) => {
    ctx.body = { flushed: await d.shell.flush(d.flushTimeoutMs) };
  });
  router.get('/v1/cache/:key/state', (ctx) => {
    const key = keyOf(ctx);
    const { state, absent } = d.shell.lineStatus(key);
    // A line that holds no value says so: S without it would read as a copy of a value.
    ctx.body = { key, state, home: d.shell.homeOf(key), ...(absent ? { absent: true } : {}) };
  });
  router.get('/v1/cache/:key', async (ctx) => {
    const key = keyOf(ctx);
    const r = expect(await d.shell.read(key), 'read');
    if (r.value === null) {
      throw new DsyncError('NOT_FOUND', `no value for key ${JSON.stringify(key)}; PUT one first`);
    }
    // The line holds the value's JSON text (checked when it entered: a PUT's body, or a
    // store load), so the body is built around it instead of parsing and re-serialising it.
    const { json, expiresAt } = splitValue(r.value);
    // The header itself: Koa's `ctx.type` looks the type up in its MIME table every time.
    ctx.set('Content-Type', JSON_TYPE);
    ctx.body = `{"key":${JSON.stringify(key)},"value":${json},"state":"${r.state}",` +
      `"hit":${r.hit},"version":${r.version}` +
      `${expiresAt === null ? '' : `,"expiresAt":${expiresAt}`}}`;
  });
  router.put('/v1/cache/:key', async (ctx) => {
    const key = keyOf(ctx);
    const body = parseWith(putSchema, objectBody(ctx));
    const expiresAt = body.ttlMs === undefined ? undefined : Date.now() + body.ttlMs;
    const r = expect(await d.shell.write(key, JSON.stringify(body.value), {
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(body.ifVersion === undefined ? {} : { ifVersion: body.ifVersion }) }), 'write');
    ctx.body = { key, state: r.state, version: r.version,
      ...(expiresAt === undefined ? {} : { expiresAt }) };
  });
  router.delete('/v1/cache/:key', async (ctx) => {
    const key = keyOf(ctx);
    const r = expect(await d.shell.delete(key), 'delete');
    ctx.body = { deleted: r.deleted };
  });
}
