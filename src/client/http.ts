// The transport of the SDK: JSON over HTTP to the nodes of one service (endpoints.ts picks
// which), with typed errors (errors.ts), and retries that follow the server (retry.ts) within
// one deadline per call. Every call takes an AbortSignal and a timeout; the client's own
// signal (closed) ends every call at once.
import {
  AbortError, BadResponseError, ClientClosedError, DeadlineExceededError, DsyncError,
  NetworkError, UnavailableError, errorFromAnswer,
} from './errors.js';
import type { Endpoints, Membership } from './endpoints.js';
import { mayRetry, parseRetryAfter, retryDelayMs, type RetryPolicy } from './retry.js';

/** The header that carries the client's id (API.md: requestIds are scoped to it). */
export const CLIENT_ID_HEADER = 'x-dsync-client';

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 5_000;
/** Most bytes of an answer the SDK reads; a longer one is not dsync's. */
export const RESPONSE_BYTES_MAX = 64 * 1024 * 1024;

export interface CallOptions {
  /** Ends the call with an AbortError (its `cause` is the signal's reason). */
  readonly signal?: AbortSignal;
  /** Total time for the call, retries included, ms; any server-side wait (waitMs) is added.
   * Default: the client's timeoutMs. */
  readonly timeoutMs?: number;
}

export interface Request {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path and query, e.g. `/v1/locks/a%2Fb/acquire`. */
  readonly path: string;
  readonly body?: unknown;
  /** Sending it twice has the effect of sending it once: reads, writes that carry a
   * requestId, fenced releases, unconditional puts. Default: true for GET only. */
  readonly idempotent?: boolean;
  /** How long the server may hold the request (a blocking acquire, a long poll), ms. */
  readonly waitMs?: number;
}

export interface TransportOptions {
  /** Which service the nodes serve, for messages ("lock", "cache", …). */
  readonly service: string;
  /** Null for a transport that only calls named nodes (callOn). */
  readonly endpoints: Endpoints | null;
  readonly clientId: string;
  readonly timeoutMs: number;
  readonly attemptTimeoutMs: number;
  readonly retry: RetryPolicy;
  /** Aborted by DsyncClient.close(). */
  readonly closed: AbortSignal;
}

export class HttpCaller {
  constructor(readonly o: TransportOptions) {}

  get service(): string { return this.o.service; }
  get clientId(): string { return this.o.clientId; }
  /** Every node URL known now (given and discovered). */
  get urls(): readonly string[] { return this.o.endpoints?.urls ?? []; }

  /** Every node URL, after the seeds are known and one membership lookup has run. */
  async discoverNodes(): Promise<readonly string[]> {
    await this.nodes.ready();
    await this.nodes.refresh();
    return this.urls;
  }

  private get nodes(): Endpoints {
    if (this.o.endpoints === null) throw new TypeError('DsyncClient: this transport has no nodes');
    return this.o.endpoints;
  }

  /** The call, on whichever node can answer, retried within its deadline. */
  async call<T>(req: Request, opts: CallOptions = {}): Promise<T> {
    const started = performance.now();
    const deadline = started + (opts.timeoutMs ?? this.o.timeoutMs) + (req.waitMs ?? 0);
    const idempotent = req.idempotent ?? req.method === 'GET';
    const tried = new Set<string>();
    let last: DsyncError | null = null;
    await this.nodes.ready();
    for (let attempt = 0; ; attempt++) {
      this.throwIfStopped(opts.signal, last);
      const url = this.nodes.pick(tried, performance.now());
      tried.add(url);
      try {
        const out = await this.attempt<T>(url, req, opts.signal, deadline);
        this.nodes.succeeded(url);
        return out;
      } catch (err) {
        if (!(err instanceof DsyncError) || err.code === 'ABORTED' || err.code === 'CLOSED') {
          throw err;
        }
        if (err.code === 'DEADLINE_EXCEEDED') throw this.deadlineError(started, attempt, last, err);
        last = err;
        this.noteFailure(url, err);
        if (!mayRetry(err, idempotent)) throw err;
        // A node that refused the connection: the next one at once, once per node.
        const failover = err instanceof NetworkError && !err.sent && tried.size < this.urls.length;
        const pauseMs = failover ? 0 : retryDelayMs(attempt, err, this.o.retry);
        if (performance.now() + pauseMs >= deadline) {
          throw this.deadlineError(started, attempt + 1, last, null);
        }
        if (!failover) tried.clear();
        await this.pause(pauseMs, opts.signal);
      }
    }
  }

  /** One attempt at one node, no failover: for what only that node can answer (its own line
   * state, its stats, its health). */
  async callOn<T>(node: string, req: Request, opts: CallOptions = {}): Promise<T> {
    const deadline = performance.now() + (opts.timeoutMs ?? this.o.attemptTimeoutMs) +
      (req.waitMs ?? 0);
    this.throwIfStopped(opts.signal, null);
    try {
      return await this.attempt<T>(node.replace(/\/+$/, ''), req, opts.signal, deadline);
    } catch (err) {
      if (err instanceof DeadlineExceededError) {
        throw new NetworkError(`${node} did not answer in time`, true, { node, cause: err });
      }
      throw err;
    }
  }

  private async attempt<T>(url: string, req: Request, signal: AbortSignal | undefined,
    deadline: number): Promise<T> {
    const left = deadline - performance.now();
    const attemptMs = Math.min(left, this.o.attemptTimeoutMs + (req.waitMs ?? 0));
    const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(attemptMs)));
    const signals = [timeout, this.o.closed, ...(signal ? [signal] : [])];
    const headers: Record<string, string> = { [CLIENT_ID_HEADER]: this.o.clientId,
      accept: 'application/json' };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url + req.path, {
        method: req.method, signal: AbortSignal.any(signals), headers,
        ...(req.body === undefined ? {} : { body: JSON.stringify(req.body) }),
      });
    } catch (err) {
      this.throwIfStopped(signal, null);
      if (timeout.aborted) {
        // Our attempt timeout, or the call's deadline: the latter ends the call.
        if (attemptMs >= left) throw new DeadlineExceededError('deadline', { node: url });
        throw new NetworkError(`${url} did not answer within ${Math.round(attemptMs)} ms`,
          true, { node: url, cause: err });
      }
      throw networkError(url, err);
    }
    const body = await readJson(res, url, signal, this.o.closed);
    if (res.ok) return body as T;
    throw errorFromAnswer(res.status, body, url, parseRetryAfter(res.headers.get('retry-after')));
  }

  /** A node that could not serve (no answer, 5xx, 429) is left for the next one; an answer
   * about the request itself (NOT_HELD, …) says nothing about the node. */
  private noteFailure(url: string, err: DsyncError): void {
    if (!(err instanceof NetworkError) && err.status < 500 && err.status !== 429) return;
    const down = err instanceof NetworkError && !err.sent;
    this.nodes.failed(url, down, performance.now());
    if (err instanceof UnavailableError && typeof err.details.leader === 'string') {
      this.nodes.leaderHint(err.details.leader);
    }
  }

  private deadlineError(startedAt: number, attempts: number, last: DsyncError | null,
    cut: DsyncError | null): DeadlineExceededError {
    const ms = Math.round(performance.now() - startedAt);
    const why = last === null ? 'no node answered in time'
      : `last failure: ${last.code}: ${last.message}`;
    return new DeadlineExceededError(`the ${this.o.service} call gave up after ${ms} ms and ` +
      `${Math.max(1, attempts)} attempt(s); ${why}`, { cause: last ?? cut, node: last?.node ?? null,
      details: last === null ? {} : { lastCode: last.code } });
  }

  private throwIfStopped(signal: AbortSignal | undefined, last: DsyncError | null): void {
    if (this.o.closed.aborted) throw new ClientClosedError(undefined, { cause: last });
    if (signal?.aborted) {
      throw new AbortError(`the ${this.o.service} call was aborted`, { cause: signal.reason });
    }
  }

  private pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const all = [this.o.closed, ...(signal ? [signal] : [])];
      const done = (): void => {
        clearTimeout(t);
        for (const s of all) s.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      for (const s of all) s.addEventListener('abort', done, { once: true });
    });
  }
}

/** Errors that prove the request never reached a node, so that resending cannot apply it
 * twice. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'ENETUNREACH', 'EADDRNOTAVAIL', 'bad port']);

const WORDS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused: no node listens there',
  ENOTFOUND: 'host not found', EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'the connection was reset', ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'host unreachable', ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'the connection closed before the answer',
  'bad port': 'fetch refuses to connect to this port (a "bad port" of the Fetch standard); ' +
    'use another',
};

/** What went wrong before an answer arrived, in words: fetch itself only says "fetch failed"
 * and keeps the reason (ECONNREFUSED, ENOTFOUND, …) in its cause. */
function networkError(url: string, err: unknown): NetworkError {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const why = typeof cause?.code === 'string' ? cause.code
    : typeof cause?.message === 'string' ? cause.message : String((err as Error).message);
  return new NetworkError(`cannot reach ${url}: ${WORDS[why] ?? why}`, !NOT_SENT.has(why),
    { node: url, cause: err, details: { cause: why } });
}

/** The body as JSON; a body that is not JSON (or is too long) means the URL is not a dsync
 * node. An empty body is an empty object. */
async function readJson(res: Response, url: string, signal: AbortSignal | undefined,
  closed: AbortSignal): Promise<unknown> {
  const length = Number(res.headers.get('content-length') ?? '0');
  if (length > RESPONSE_BYTES_MAX) {
    await res.body?.cancel();
    throw new BadResponseError(`${url} answered ${length} bytes, more than the SDK reads ` +
      `(${RESPONSE_BYTES_MAX}): is this URL a dsync node?`, { status: res.status, node: url });
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    if (closed.aborted) throw new ClientClosedError(undefined, { cause: err });
    if (signal?.aborted) throw new AbortError('the call was aborted', { cause: signal.reason });
    throw new NetworkError(`${url} closed the connection in the middle of its answer`, true,
      { node: url, cause: err });
  }
  if (text.length === 0) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new BadResponseError(`${url} answered HTTP ${res.status} with a body that is not ` +
      'JSON: is this URL a dsync node of the right service?',
    { status: res.status, node: url, cause: err });
  }
}

/** A node URL must be http(s)://host[:port][/path]; anything else is a mistake of the
 * caller. */
export function checkNodeUrl(u: string): string {
  let parsed: URL | null = null;
  try { parsed = new URL(u); } catch { /* reported below */ }
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new TypeError(`DsyncClient: ${JSON.stringify(u)} is not a node URL; use ` +
      'http://host:port, e.g. http://127.0.0.1:8000');
  }
  return u;
}

export function enc(name: string): string {
  return encodeURIComponent(name);
}

/** `GET /v1/cluster` of one node as Endpoints wants it; null when the node does not say
 * (a service without the route, no leader to forward to, an old node without `members`). */
export function clusterDiscovery(caller: () => HttpCaller, timeoutMs: number):
  (url: string) => Promise<Membership | null | 'unsupported'> {
  return async (url) => {
    let v: { members?: unknown; leader?: unknown };
    try {
      v = await caller().callOn(url, { method: 'GET', path: '/v1/cluster' }, { timeoutMs });
    } catch (err) {
      // An unknown route answers NOT_FOUND: this service has no membership to learn.
      if (err instanceof DsyncError && err.code === 'NOT_FOUND') return 'unsupported';
      return null;
    }
    if (!Array.isArray(v.members)) return null;
    const members = v.members.filter((m): m is { id: string; url: string } =>
      typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'string' &&
      typeof (m as { url?: unknown }).url === 'string');
    return { members, leader: typeof v.leader === 'string' ? v.leader : null };
  };
}
