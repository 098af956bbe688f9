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
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 5_000;

export class HttpCaller {
  private next = Math.floor(Math.random() * 1_000_000);
  readonly clientId = randomUUID();

  constructor(private readonly o: HttpOptions) {
    if (o.urls.length === 0) throw new TypeError('DsyncClient needs at least one node URL');
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
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw new DsyncApiError('NETWORK', `cannot reach ${url}: ${(err as Error).message}`, 0);
    }
    const text = await res.text();
    const json = text.length > 0 ? JSON.parse(text) as unknown : {};
    if (res.ok) return json as T;
    const e = (json as { error?: { code?: string; message?: string } }).error ?? {};
    const { code, message, ...details } = e as Record<string, unknown>;
    throw new DsyncApiError(typeof code === 'string' ? code : 'UNKNOWN',
      typeof message === 'string' ? message : `HTTP ${res.status}`,
      res.status, details);
  }
}

export function enc(name: string): string {
  return encodeURIComponent(name);
}
