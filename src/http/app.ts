// The Koa app every service shares: request ids, per-request child loggers (made on first
// use), our own JSON body reader with a byte limit, the error envelope of API.md for every
// error, 404/405 as envelopes, metrics per route pattern, and /health, /ready and /metrics;
// all of it in one middleware before the router, with nothing per request that can be done
// once. A service adds its
// routes through `routes(router)`; handlers throw DsyncErrors and never build error bodies.
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import type { Context, Next } from 'koa';
import { Router } from '@koa/router';
import type { RouterContext } from '@koa/router';
import { assert } from '../assert.js';
import type { ServiceName, SystemUrls } from '../config.js';
import { DsyncError, UnavailableError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  asObjectBody, FORWARDED_BODY, parseJsonBytes, PayloadTooLargeError, readBodyBytes,
} from './body.js';
import { errorResponse } from './envelope.js';
import { SystemOverview } from './overview.js';
import { sharedPages } from './pages.js';
import { decodePathSegment } from './validate.js';

/** What every request carries in `ctx.state`. */
export interface AppState {
  /** The caller's `x-request-id` when sane, else a fresh UUID-shaped id; echoed in the
   * response. */
  reqId: string;
  /** Bound to {node, service, reqId}. */
  log: Logger;
  /** The raw request body (empty when none); forwarding passes it on byte for byte. */
  rawBody: Buffer;
  /** The parsed JSON body, not validated: read it through objectBody() and a schema only.
   * `undefined` when the request had none. */
  body: unknown;
}

export type AppContext = RouterContext<AppState>;
export type AppRouter = Router<AppState>;
export type AppKoa = Koa<AppState>;

export interface ReadyStatus {
  ok: boolean;
  reason?: string;
}

export interface CreateAppOptions {
  readonly service: ServiceName;
  readonly nodeId: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Largest request body in bytes (config bodyBytesMax). */
  readonly bodyBytesMax: number;
  /** Extra fields of GET /health; must answer from local state, never wait on a quorum. */
  health(): Record<string, unknown>;
  /** GET /ready: 200 when ok, else 503 UNAVAILABLE with the reason. */
  ready(): ReadyStatus;
  /** Adds the service's routes. */
  routes?(router: AppRouter): void;
  /** HTTP URLs of the nodes of every service, for GET /v1/overview and the cluster page
   * (see systemUrlsOf in config.ts). Default: this node alone. */
  readonly systemUrls?: SystemUrls;
}

export interface App {
  readonly app: AppKoa;
  readonly router: AppRouter;
  /** Gathers GET /v1/overview. */
  readonly overview: SystemOverview;
  /** Releases what the app holds beyond the server (connections to other nodes). */
  readonly close: () => Promise<void>;
}

export const REQUEST_ID_HEADER = 'x-request-id';
const REQUEST_ID_RE = /^[\x21-\x7e]{1,128}$/;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

export function createApp(opts: CreateAppOptions): App {
  assert(Number.isSafeInteger(opts.bodyBytesMax) && opts.bodyBytesMax > 0, 'bodyBytesMax > 0');
  const app: AppKoa = new Koa<AppState>();
  const router: AppRouter = new Router<AppState>();
  // One middleware before the router, so a request costs what a bare Koa route costs plus
  // what this one does (docs/benchmarks.md, "HTTP path").
  app.use(serveRequest(opts, router));
  addBuiltinRoutes(router, opts);
  sharedPages().register(router);
  const overview = new SystemOverview({ service: opts.service, nodeId: opts.nodeId,
    urls: opts.systemUrls ?? {}, registry: opts.metrics.registry });
  overview.register(router);
  opts.routes?.(router);
  app.use(router.routes());
  app.use(router.allowedMethods());
  // Errors that escape after the response started (a broken stream body) end up here, and so
  // do socket errors of a client that hung up (Koa watches the socket of every response).
  app.on('error', (err: unknown) => {
    if (isClientAbort(err)) {
      opts.logger.debug({ code: (err as { code?: unknown }).code }, 'client connection closed');
      return;
    }
    opts.logger.error({ err }, 'unhandled error in koa');
  });
  return { app, router, overview, close: () => overview.close() };
}

/** An AbortSignal that fires when the client closes the connection before the answer (a
 * blocking call then stops waiting for nobody), at once when it already has. */
export function clientAbortSignal(ctx: Context | AppContext): AbortSignal {
  const ac = new AbortController();
  const socket = ctx.req.socket as Context['req']['socket'] | null;
  if (socket === null || socket.destroyed) ac.abort();
  else ctx.res.once('close', () => { if (!ctx.res.writableFinished) ac.abort(); });
  return ac.signal;
}

/** The request body as a JSON object (no body = `{}`), else 400 INVALID_ARGUMENT. */
export function objectBody(ctx: Context | AppContext): Record<string, unknown> {
  return asObjectBody((ctx.state as AppState).body);
}

const EMPTY_BODY = Buffer.alloc(0);

/** Request ids are UUID-shaped: a random prefix drawn once per process and a counter, unique
 * without a call into the CSPRNG per request (they identify, they do not authenticate). */
const REQUEST_ID_PREFIX = randomUUID().slice(0, 24);
const REQUEST_ID_SEQ_MAX = 2 ** 48;
let requestIdSeq = 0;

function newRequestId(): string {
  requestIdSeq = (requestIdSeq + 1) % REQUEST_ID_SEQ_MAX;
  return REQUEST_ID_PREFIX + requestIdSeq.toString(16).padStart(12, '0');
}

/** `ctx.state` of every request. The child logger is made on first use: most requests never
 * log, and a pino child per request is a measurable share of a cache hit's CPU. */
class RequestState implements AppState {
  rawBody: Buffer = EMPTY_BODY;
  body: unknown = undefined;
  private child: Logger | null = null;

  constructor(readonly reqId: string, private readonly logger: Logger) {}

  get log(): Logger {
    this.child ??= this.logger.child({ reqId: this.reqId });
    return this.child;
  }

  set log(l: Logger) {
    this.child = l;
  }
}

/**
 * Everything a request needs around its route, in one middleware: the request id, the body
 * (bounded), the error envelope for whatever the route throws (and for 404/405), metrics by
 * route pattern and the debug line.
 */
function serveRequest(opts: CreateAppOptions, router: AppRouter) {
  const metrics = new RouteMetrics(opts.metrics.http);
  const { logger, bodyBytesMax } = opts;
  return async function serve(ctx: Context, next: Next): Promise<void> {
    const startMs = performance.now();
    const incoming = ctx.req.headers[REQUEST_ID_HEADER];
    const reqId = typeof incoming === 'string' && REQUEST_ID_RE.test(incoming) ? incoming
      : newRequestId();
    const state = new RequestState(reqId, logger);
    ctx.state = state;
    ctx.set(REQUEST_ID_HEADER, reqId);
    try {
      checkPathEncoding(ctx.path);
      await readBody(ctx, state, bodyBytesMax);
      await next();
      answerUnrouted(ctx);
    } catch (thrown) {
      writeError(ctx, normalizeError(thrown));
    } finally {
      const route = routeLabel(ctx, router);
      const method = KNOWN_METHODS.has(ctx.method) ? ctx.method : 'OTHER';
      // Nobody is left to read the answer: not a 5xx, whatever the handler ended with.
      const gone = clientGone(ctx);
      const status = gone ? CLIENT_CLOSED_STATUS : ctx.status;
      const seconds = (performance.now() - startMs) / 1000;
      metrics.record(route, method, status, seconds, gone);
      if (logger.isLevelEnabled('debug')) {
        state.log.debug({ method: ctx.method, url: ctx.url, status,
          durationMs: Math.round(seconds * 1e4) / 10 }, gone ? 'client went away' : 'request');
      }
    }
  };
}

/** The series of one route pattern and method, bound once (prom-client hashes the labels of
 * every unbound call). Patterns, methods and statuses are few, so this stays small. */
class RouteMetrics {
  private readonly bound = new Map<string, { duration: { observe(v: number): void };
    statuses: Map<number, { inc(): void }> }>();

  constructor(private readonly http: Metrics['http']) {}

  record(route: string, method: string, status: number, seconds: number, gone: boolean): void {
    const key = `${method} ${route}`;
    let b = this.bound.get(key);
    if (b === undefined) {
      b = { duration: this.http.duration.labels(route, method), statuses: new Map() };
      this.bound.set(key, b);
    }
    b.duration.observe(seconds);
    let counter = b.statuses.get(status);
    if (counter === undefined) {
      counter = this.http.requests.labels(route, method, String(status));
      b.statuses.set(status, counter);
    }
    counter.inc();
    if (gone) this.http.clientAborts.inc({ route, method });
  }
}

/** Nothing answered: the router's allowedMethods leaves 405 (known path, wrong method) or
 * 501 (a method it does not know at all) with no body; Koa leaves 404. */
function answerUnrouted(ctx: Context): void {
  if (ctx.body !== undefined && ctx.body !== null) return;
  if (ctx.status === 405 || ctx.status === 501) {
    throw new DsyncError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}` +
      `; allowed: ${ctx.response.get('Allow') || 'none'}`);
  }
  if (ctx.status === 404) {
    throw new DsyncError('NOT_FOUND', `no route ${ctx.method} ${ctx.path}; see API.md`);
  }
}

/** The status label of a request whose client closed the connection first (nginx's 499). */
export const CLIENT_CLOSED_STATUS = 499;

/** Socket errors that only mean the peer went away. */
const CLIENT_ABORT_CODES = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE',
  'ERR_STREAM_PREMATURE_CLOSE', 'HPE_INVALID_EOF_STATE']);

function isClientAbort(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CLIENT_ABORT_CODES.has(code);
}

/** True once the client's connection is closed (or closed for writing): no answer can reach
 * it any more. A live keep-alive connection stays writable between requests. */
function clientGone(ctx: Context): boolean {
  const socket = ctx.req.socket as Context['req']['socket'] | null;
  return socket === null || socket.destroyed || !socket.writable;
}

/** Label by route pattern: raw paths would make one series per lock name. A request that
 * failed before routing (a body that was too large, or cut off) still gets its pattern. */
function routeLabel(ctx: Context, router: AppRouter): string {
  const matched = (ctx as { _matchedRoute?: string | RegExp })._matchedRoute;
  if (typeof matched === 'string') return matched;
  if (ctx.status !== 404 && ctx.status !== 405) {
    const layers = router.match(ctx.path, ctx.method).pathAndMethod;
    const path = layers[layers.length - 1]?.path;
    if (typeof path === 'string') return path;
  }
  return 'unmatched';
}

function writeError(ctx: Context, err: unknown): void {
  const res = errorResponse(err);
  const log = (ctx.state as AppState).log;
  // A client that hung up (mid-body, or while a blocking call waited) is not a fault of ours;
  // a bug is still a bug when nobody waits for the answer, so non-DsyncErrors stay loud.
  if (clientGone(ctx) && (err instanceof DsyncError || isClientAbort(err))) {
    log.debug({ code: res.body.error.code, reason: res.body.error.message, url: ctx.url },
      'client closed the connection before the answer');
  } else if (res.internal) {
    log.error({ err, method: ctx.method, url: ctx.url }, 'internal error');
  } else if (res.status >= 500) {
    log.warn({ code: res.body.error.code, reason: res.body.error.message, url: ctx.url },
      'request failed (retryable)');
  }
  ctx.status = res.status;
  ctx.body = res.body;
  if (res.retryAfterSeconds !== null) ctx.set('Retry-After', String(res.retryAfterSeconds));
}

const CODE_BY_HTTP_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'INVALID_ARGUMENT', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE', 429: 'RESOURCE_EXHAUSTED', 503: 'UNAVAILABLE',
};

/** Errors Koa or a middleware raised with http-errors (`ctx.throw(400)`) keep their status when
 * it is a client error we have a code for; everything else that is not a DsyncError is a
 * fault of ours. */
function normalizeError(err: unknown): unknown {
  if (err instanceof DsyncError) return err;
  const e = err as { status?: unknown; expose?: unknown; message?: unknown };
  if (typeof e === 'object' && e !== null && typeof e.status === 'number' && e.expose === true) {
    const code = CODE_BY_HTTP_STATUS[e.status];
    if (code !== undefined) return new DsyncError(code, String(e.message));
  }
  return err;
}

/** The router would leave a malformed segment raw; a name must never be taken literally from
 * a URL that the client mis-encoded. */
function checkPathEncoding(path: string): void {
  if (path.includes('%')) decodePathSegment(path, 'path');
}

/** Reads the body when there is one; a forwarded request brings it whole. */
async function readBody(ctx: Context, state: RequestState, bytesMax: number): Promise<void> {
  const req = ctx.req as Context['req'] & { [FORWARDED_BODY]?: Buffer | null };
  const forwarded = req[FORWARDED_BODY];
  if (forwarded !== undefined) {
    if (forwarded === null) return;
    if (forwarded.length > bytesMax) throw new PayloadTooLargeError(bytesMax);
    state.rawBody = forwarded;
  } else {
    const h = req.headers;
    if (h['content-length'] === undefined && h['transfer-encoding'] === undefined) return;
    state.rawBody = await readBodyBytes(req, bytesMax);
  }
  state.body = parseJsonBytes(state.rawBody);
}

function addBuiltinRoutes(router: AppRouter, opts: CreateAppOptions): void {
  router.get('/health', (ctx) => {
    const fixed = { status: 'ok', service: opts.service, node: opts.nodeId };
    // The fixed fields come first in the JSON and cannot be overridden by the service's own.
    ctx.body = { ...fixed, ...opts.health(), ...fixed };
  });
  router.get('/ready', (ctx) => {
    const r = opts.ready();
    if (!r.ok) {
      const reason = r.reason ?? 'not ready';
      throw new UnavailableError(`node ${opts.nodeId} is not ready: ${reason}`, { reason });
    }
    ctx.body = { ready: true };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = opts.metrics.contentType;
    ctx.body = await opts.metrics.text();
  });
}
