// HTTP routes of the lock service (API.md, "Locks"). Followers forward to the leader.
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import type { AppRouter } from '../http/app.js';
import { clientAbortSignal, objectBody } from '../http/app.js';
import type { LeaderOnly } from '../http/forward.js';
import {
  clientIdOf, durationMs, nameSchema, ownerSchema, parseName, parseWith, textSchema,
} from '../http/validate.js';
import { ANONYMOUS_CLIENT_ID } from '../runtime/dedup.js';
import {
  LOCK_REQUEST_ID_BYTES_MAX, LOCK_TTL_MS_MAX, LOCK_TTL_MS_MIN, LOCK_WAIT_MS_MAX,
} from './commands.js';
import type { LockService } from './lock-service.js';

/** Most locks one `GET /v1/locks` returns. */
export const LIST_LOCKS_MAX = 10_000;
/** Default lease of an acquire without ttlMs (API.md). */
export const DEFAULT_TTL_MS = 30_000;

const acquireSchema = z.object({
  owner: ownerSchema,
  mode: z.enum(['exclusive', 'shared']).default('exclusive'),
  ttlMs: durationMs(LOCK_TTL_MS_MIN, LOCK_TTL_MS_MAX).default(DEFAULT_TTL_MS),
  waitMs: durationMs(0, LOCK_WAIT_MS_MAX).default(0),
  requestId: textSchema(LOCK_REQUEST_ID_BYTES_MAX).optional(),
});
const releaseSchema = z.object({
  owner: ownerSchema,
  token: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
});
const renewSchema = z.object({
  owner: ownerSchema,
  ttlMs: durationMs(LOCK_TTL_MS_MIN, LOCK_TTL_MS_MAX).optional(),
});

export interface LockRouteDeps {
  readonly service: LockService;
  /** Runs `local` when this node leads, else forwards the request to the leader. */
  readonly leaderOnly: LeaderOnly;
}

export function registerLockRoutes(router: AppRouter, d: LockRouteDeps): void {
  router.post('/v1/locks/:name/acquire', (ctx) => {
    const name = parseName(ctx.params.name, 'name');
    const b = parseWith(acquireSchema, objectBody(ctx));
    const clientId = clientIdOf(ctx) ?? ANONYMOUS_CLIENT_ID;
    // The signal is made only if the acquire has to wait: an AbortController per request is
    // a measurable share of a lock cycle.
    return d.leaderOnly(ctx, () => d.service.acquire({
      name, owner: b.owner, mode: b.mode, ttlMs: b.ttlMs, waitMs: b.waitMs,
      ...(b.requestId === undefined ? {} : { requestId: b.requestId }),
    }, clientId, () => clientAbortSignal(ctx)), { waitMs: b.waitMs });
  });
  router.post('/v1/locks/:name/release', (ctx) => {
    const name = parseName(ctx.params.name, 'name');
    const b = parseWith(releaseSchema, objectBody(ctx));
    return d.leaderOnly(ctx, async () => {
      await d.service.release(name, b.owner, b.token);
      return { released: true };
    });
  });
  router.post('/v1/locks/:name/renew', (ctx) => {
    const name = parseName(ctx.params.name, 'name');
    const b = parseWith(renewSchema, objectBody(ctx));
    return d.leaderOnly(ctx, async () => ({
      expiresAt: await d.service.renew(name, b.owner, b.ttlMs) }));
  });
  router.get('/v1/locks/:name', (ctx) => {
    const name = parseName(ctx.params.name, 'name');
    return d.leaderOnly(ctx, () => d.service.get(name));
  });
  router.get('/v1/locks', (ctx) => {
    const prefix = ctx.query.prefix ?? '';
    if (typeof prefix !== 'string') {
      throw new InvalidArgumentError('prefix', 'prefix must be given at most once');
    }
    if (prefix !== '') parseWith(nameSchema, prefix, 'prefix');
    return d.leaderOnly(ctx, async () => ({ locks: await d.service.list(prefix, LIST_LOCKS_MAX) }));
  });
}
