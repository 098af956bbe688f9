// Locks in the SDK: acquire/release/renew, and withLock that renews in the background,
// aborts the callback's signal when the lease is lost, and releases in finally.
import { randomUUID } from 'node:crypto';
import { DsyncApiError } from './errors.js';
import { enc, type HttpCaller } from './http.js';

export type LockMode = 'exclusive' | 'shared';

export interface Grant {
  readonly name: string;
  readonly owner: string;
  readonly mode: LockMode;
  readonly token: number;
  readonly expiresAt: number;
}

export interface AcquireOptions {
  readonly owner: string;
  readonly mode?: LockMode;
  readonly ttlMs?: number;
  readonly waitMs?: number;
  readonly requestId?: string;
  readonly signal?: AbortSignal;
}

export interface LockView {
  readonly name: string;
  readonly mode: LockMode | null;
  readonly holders: Array<{ owner: string; mode: LockMode; token: number; expiresAt: number }>;
  readonly waiters: Array<{ owner: string; mode: LockMode }>;
}

export class Locks {
  constructor(private readonly http: HttpCaller) {}

  /** Acquire; retries are safe: the same requestId is reused, and acquire is idempotent. */
  acquire(name: string, o: AcquireOptions): Promise<Grant> {
    const body = {
      owner: o.owner, mode: o.mode ?? 'exclusive', ttlMs: o.ttlMs ?? 30_000, waitMs: o.waitMs ?? 0,
      requestId: o.requestId ?? randomUUID(),
    };
    return this.http.call<Grant>('POST', `/v1/locks/${enc(name)}/acquire`, body,
      { waitMs: body.waitMs, ...(o.signal ? { signal: o.signal } : {}) });
  }

  release(name: string, owner: string, token?: number): Promise<{ released: boolean }> {
    return this.http.call('POST', `/v1/locks/${enc(name)}/release`,
      token === undefined ? { owner } : { owner, token });
  }

  renew(name: string, owner: string, ttlMs?: number): Promise<{ expiresAt: number }> {
    return this.http.call('POST', `/v1/locks/${enc(name)}/renew`,
      ttlMs === undefined ? { owner } : { owner, ttlMs });
  }

  get(name: string): Promise<LockView> {
    return this.http.call('GET', `/v1/locks/${enc(name)}`);
  }

  list(prefix = ''): Promise<{ locks: LockView[] }> {
    return this.http.call('GET', `/v1/locks?prefix=${enc(prefix)}`);
  }

  /**
   * Run `fn` while holding the lock. The lease is renewed every ttl/3, counted from when each
   * renewal was SENT, so slow answers do not push renewals back. The client keeps its own,
   * conservative view of the lease on a monotonic clock: it ends `ttlMs` after the last
   * successful renewal (or the acquire) was sent, since the server started that lease later.
   * When that moment passes without a successful renewal, or a renewal finds the lock lost
   * (NOT_HELD), `signal` is aborted at once so the callback can stop touching the guarded
   * resource, even while a renewal is still retrying. The lock is released in finally, fenced
   * by its token (a fenced release can never free a newer grant, so it is sent even after a
   * loss, to free the lock early when the lease merely ran out on the client's clock).
   */
  async withLock<T>(name: string, o: AcquireOptions,
    fn: (token: number, signal: AbortSignal) => Promise<T>): Promise<T> {
    const ttlMs = o.ttlMs ?? 30_000;
    const acquireSentAt = performance.now();
    const grant = await this.acquire(name, { ...o, ttlMs });
    const lease = new LeaseWatch(name, ttlMs, acquireSentAt);
    const renewOnce = async (signal: AbortSignal): Promise<void> => {
      const sentAt = performance.now();
      await this.http.call('POST', `/v1/locks/${enc(name)}/renew`, { owner: o.owner, ttlMs },
        { signal, deadlineMs: Math.max(1, lease.remainingMs()) });
      lease.renewed(sentAt);
    };
    try {
      // A blocking acquire may have been granted long after it was sent: the lease start is
      // unknown, so confirm the lease with one renewal before the callback relies on it.
      if (performance.now() - acquireSentAt > ttlMs / 3) await renewOnce(lease.stopSignal);
    } catch (err) {
      lease.stop();
      await this.release(name, o.owner, grant.token).catch(() => undefined);
      throw err;
    }
    const loop = this.renewLoop(lease, renewOnce);
    try {
      return await fn(grant.token, lease.lostSignal);
    } finally {
      lease.stop();
      await loop;
      await this.release(name, o.owner, grant.token).catch(() => undefined);
    }
  }

  private async renewLoop(lease: LeaseWatch, renewOnce: (s: AbortSignal) => Promise<void>):
    Promise<void> {
    const signal = AbortSignal.any([lease.stopSignal, lease.lostSignal]);
    while (!signal.aborted) {
      await lease.untilNextRenewal(signal);
      if (signal.aborted) return;
      try {
        await renewOnce(signal);
      } catch (err) {
        if (err instanceof DsyncApiError && err.code === 'NOT_HELD') {
          lease.lose(`renewal refused: ${err.message}`);
          return;
        }
        // Anything else: try again after a short pause; the lease timer aborts the callback
        // if no renewal succeeds in time.
        await lease.pause(RENEW_RETRY_PAUSE_MS, signal);
      }
    }
  }
}

/** Pause between failed renewals of withLock (each renewal retries internally as well). */
const RENEW_RETRY_PAUSE_MS = 25;

/** withLock's view of one lease on the client's monotonic clock. */
class LeaseWatch {
  private readonly lost = new AbortController();
  private readonly stopped = new AbortController();
  private lastSentAt: number;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly name: string, private readonly ttlMs: number, sentAt: number) {
    this.lastSentAt = sentAt;
    this.arm();
  }

  get lostSignal(): AbortSignal { return this.lost.signal; }
  get stopSignal(): AbortSignal { return this.stopped.signal; }

  remainingMs(): number {
    return this.lastSentAt + this.ttlMs - performance.now();
  }

  renewed(sentAt: number): void {
    if (this.lost.signal.aborted || sentAt <= this.lastSentAt) return;
    this.lastSentAt = sentAt;
    this.arm();
  }

  lose(why: string): void {
    clearTimeout(this.timer);
    if (!this.lost.signal.aborted) this.lost.abort(new Error(`lock ${this.name} lost: ${why}`));
  }

  stop(): void {
    clearTimeout(this.timer);
    this.stopped.abort();
  }

  untilNextRenewal(signal: AbortSignal): Promise<void> {
    const dueAt = this.lastSentAt + Math.max(RENEW_INTERVAL_MS_MIN, this.ttlMs / 3);
    return this.pause(dueAt - performance.now(), signal);
  }

  pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || ms <= 0) { resolve(); return; }
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.lose('the lease ran out before a renewal succeeded'),
      Math.max(0, this.remainingMs()));
  }
}

/** withLock never renews more often than this, whatever the ttl. */
const RENEW_INTERVAL_MS_MIN = 50;
