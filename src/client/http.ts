// The transport of the SDK: JSON over HTTP to any node of a service, spread over the given
// URLs, retrying 503s and network errors with jittered exponential backoff within a deadline.
import { randomUUID } from 'node:crypto';
import { DsyncApiError } from './errors.js';

export interface HttpOptions {
  /** Node URLs of one service, e.g. ["http://lock-0:8080", …]. */
  readonly urls: readonly string[];
  /** Give up retrying after this long (default 10 s). */
  readonly deadlineMs?: number;
  /** Per-attempt timeout added to any server-side wait (default 5 s). */
  readonly attemptTimeoutMs?: number;
}

export const DEFAULT_DEADLINE_MS = 10_000;
/** The header that carries the client's id (API.md: requestIds are scoped to it). */
export const CLIENT_ID_HEADER = 'x-dsync-client';
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 5_000;

export class HttpCaller {
  private next = Math.floor(Math.random() * 1_000_000);
  readonly clientId = randomUUID();

  constructor(private readonly o: HttpOptions) {
    if (o.urls.length === 0) throw new TypeError('DsyncClient needs at least one node URL');
    for (const u of o.urls) checkNodeUrl(u);
  }

  /** The node URLs, as given. */
  get urls(): readonly string[] {
    return this.o.urls;
  }

  /** One attempt at one node, no failover: for what only that node can answer (its own line
   * state, its stats, its health). */
  async callOn<T>(node: string, method: string, path: string, body?: unknown): Promise<T> {
    return this.once<T>(method, checkNodeUrl(node).replace(/\/$/, '') + path, body, {});
  }

  async call<T>(method: string, path: string, body?: unknown,
    opts: { waitMs?: number; signal?: AbortSignal; deadlineMs?: number } = {}): Promise<T> {
    const deadline = Date.now() + (opts.deadlineMs ?? this.o.deadlineMs ?? DEFAULT_DEADLINE_MS) +
      (opts.waitMs ?? 0);
    let attempt = 0;
    for (;;) {
      const url = this.o.urls[this.next++ % this.o.urls.length]!.replace(/\/$/, '');
      try {
        return await this.once<T>(method, url + path, body, opts);
      } catch (err) {
        if (!(err instanceof DsyncApiError) || !err.retryable || opts.signal?.aborted) throw err;
        const backoff = Math.min(1000, 25 * 2 ** attempt++) * (0.5 + Math.random());
        if (Date.now() + backoff > deadline) throw err;
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
  }

  private async once<T>(method: string, url: string, body: unknown,
    opts: { waitMs?: number; signal?: AbortSignal }): Promise<T> {
    const timeout = AbortSignal.timeout((opts.waitMs ?? 0) +
      (this.o.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS));
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(url, {
        method, signal,
        // The client id scopes requestIds to this client in the servers' de-duplication.
        headers: body === undefined ? { [CLIENT_ID_HEADER]: this.clientId }
          : { [CLIENT_ID_HEADER]: this.clientId, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw networkError(url, err, timeout.aborted);
    }
    const json = await jsonOf(res, url);
    if (res.ok) return json as T;
    const e = (json as { error?: { code?: string; message?: string } }).error ?? {};
    const { code, message, ...details } = e as Record<string, unknown>;
    throw new DsyncApiError(typeof code === 'string' ? code : 'UNKNOWN',
      typeof message === 'string' ? message : `HTTP ${res.status}`,
      res.status, details);
  }
}

/** A node URL must be http(s)://host[:port][/]; anything else is a mistake of the caller. */
export function checkNodeUrl(u: string): string {
  let parsed: URL | null = null;
  try { parsed = new URL(u); } catch { /* reported below */ }
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new TypeError(`DsyncClient: ${JSON.stringify(u)} is not a node URL; use ` +
      'http://host:port, e.g. http://127.0.0.1:8000');
  }
  return u;
}

/** What went wrong before an answer arrived, in words: fetch itself only says "fetch failed"
 * and keeps the reason (ECONNREFUSED, ENOTFOUND, …) in its cause. */
function networkError(url: string, err: unknown, timedOut: boolean): DsyncApiError {
  // Still NETWORK (retryable on another node): a paused or overloaded node looks like this.
  if (timedOut) return new DsyncApiError('NETWORK', `${url} did not answer in time`, 0);
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const why = typeof cause?.code === 'string' ? cause.code
    : typeof cause?.message === 'string' ? cause.message : (err as Error).message;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused: no node listens there',
    ENOTFOUND: 'host not found', EAI_AGAIN: 'host name lookup failed',
    ECONNRESET: 'the connection was reset', ETIMEDOUT: 'the connection timed out',
  };
  return new DsyncApiError('NETWORK', `cannot reach ${url}: ${words[why] ?? why}`, 0,
    { cause: why });
}

/** The body as JSON; a body that is not JSON means the URL is not a dsync node. */
async function jsonOf(res: Response, url: string): Promise<unknown> {
  const text = await res.text();
  if (text.length === 0) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new DsyncApiError('BAD_RESPONSE', `${url} answered HTTP ${res.status} with a body ` +
      'that is not JSON: is this URL a dsync node of the right service?', res.status);
  }
}

export function enc(name: string): string {
  return encodeURIComponent(name);
}
