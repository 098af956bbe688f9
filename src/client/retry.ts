// When the SDK tries a call again, and how long it waits first. The rules follow the server:
// a 503 or 429 says how long to wait in Retry-After; anything else waits an exponentially
// growing, jittered pause. A write is sent again only when that cannot apply it twice.
import { DsyncError, NetworkError } from './errors.js';

export interface RetryOptions {
  /** First backoff pause, ms (default DEFAULT_BACKOFF_MS_MIN). 1..60000. */
  readonly backoffMsMin?: number;
  /** Longest backoff pause, ms (default DEFAULT_BACKOFF_MS_MAX). backoffMsMin..60000. */
  readonly backoffMsMax?: number;
  /** Longest Retry-After the SDK honours, ms; a longer one is cut to this (default
   * DEFAULT_RETRY_AFTER_MS_MAX). 0..600000. */
  readonly retryAfterMsMax?: number;
}

export const DEFAULT_BACKOFF_MS_MIN = 50;
export const DEFAULT_BACKOFF_MS_MAX = 2_000;
export const DEFAULT_RETRY_AFTER_MS_MAX = 30_000;

export type RetryPolicy = Required<RetryOptions>;

export function parseRetryOptions(o: RetryOptions = {}): RetryPolicy {
  const p: RetryPolicy = {
    backoffMsMin: o.backoffMsMin ?? DEFAULT_BACKOFF_MS_MIN,
    backoffMsMax: o.backoffMsMax ?? DEFAULT_BACKOFF_MS_MAX,
    retryAfterMsMax: o.retryAfterMsMax ?? DEFAULT_RETRY_AFTER_MS_MAX,
  };
  intIn(p.backoffMsMin, 'retry.backoffMsMin', 1, 60_000);
  intIn(p.backoffMsMax, 'retry.backoffMsMax', p.backoffMsMin, 60_000);
  intIn(p.retryAfterMsMax, 'retry.retryAfterMsMax', 0, 600_000);
  return p;
}

/** An option out of bounds is the caller's mistake: a TypeError naming the option. */
export function intIn(v: number, name: string, min: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new TypeError(`DsyncClient: ${name} must be an integer in ${min}..${max}, got ${v}`);
  }
  return v;
}

/** The pause before attempt `attempt + 1` (attempt counts from 0): "equal jitter" — half the
 * exponential step fixed, half random, so that clients that failed together spread out —
 * and never shorter than the server's Retry-After. */
export function retryDelayMs(attempt: number, err: DsyncError | null, p: RetryPolicy,
  random: () => number = Math.random): number {
  const step = Math.min(p.backoffMsMax, p.backoffMsMin * 2 ** Math.min(attempt, 30));
  const backoff = step / 2 + random() * (step / 2);
  const after = Math.min(err?.retryAfterMs ?? 0, p.retryAfterMsMax);
  return Math.max(backoff, after);
}

/** Whether a failed attempt may be sent again. `idempotent`: sending the request twice has
 * the effect of sending it once (a read, a write with a requestId, a fenced release, …).
 * A request that never left (connection refused, unknown host) is always safe to resend;
 * an answer of 503 or 429 is retried only for idempotent requests, since a write may have
 * been applied before the node gave up (reason `indeterminate`, `timeout`). */
export function mayRetry(err: unknown, idempotent: boolean): boolean {
  if (err instanceof NetworkError) return !err.sent || idempotent;
  if (!(err instanceof DsyncError)) return false;
  return idempotent && (err.status === 503 || err.status === 429);
}

/** Retry-After in ms: delta-seconds or an HTTP date (RFC 9110 10.2.3); null when absent or
 * unreadable. */
export function parseRetryAfter(v: string | null, nowMs: number = Date.now()): number | null {
  if (v === null || v.trim() === '') return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}
