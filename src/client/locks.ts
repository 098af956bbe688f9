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
   * Run `fn` while holding the lock. The lease is renewed every ttl/3; if a renewal finds the
   * lock lost (NOT_HELD) or cannot succeed before the lease runs out, `signal` is aborted so the
   * callback can stop touching the guarded resource. The lock is released in finally, fenced
   * by its token.
   */
  async withLock<T>(name: string, o: AcquireOptions,
    fn: (token: number, signal: AbortSignal) => Promise<T>): Promise<T> {
    const ttlMs = o.ttlMs ?? 30_000;
    const grant = await this.acquire(name, { ...o, ttlMs });
    const lost = new AbortController();
    let expiresAt = grant.expiresAt;
    let stopped = false;
    const renewLoop = async (): Promise<void> => {
      while (!stopped) {
        await new Promise((r) => setTimeout(r, Math.max(50, ttlMs / 3)));
        if (stopped) return;
        try {
          expiresAt = (await this.renew(name, o.owner, ttlMs)).expiresAt;
        } catch (err) {
          const fatal = err instanceof DsyncApiError && err.code === 'NOT_HELD';
          if (fatal || Date.now() >= expiresAt) {
            lost.abort(new Error(`lock ${name} lost: ${(err as Error).message}`));
            return;
          }
        }
      }
    };
    const loop = renewLoop();
    try {
      return await fn(grant.token, lost.signal);
    } finally {
      stopped = true;
      await loop.catch(() => undefined);
      if (!lost.signal.aborted) {
        await this.release(name, o.owner, grant.token).catch(() => undefined);
      }
    }
  }
}
