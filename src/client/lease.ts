// A held lock as an object, like the etcd3 client's Lease: its fencing token, a keep-alive in
// the background, a 'lost' event, release(), and `await using` (Symbol.asyncDispose).
//
// The client keeps its own, conservative view of the lease on a monotonic clock: it ends
// ttlMs after the last successful renewal (or the acquire) was SENT, since the server started
// that lease later. Renewals go out every ttl/3 counted from those send times, so slow answers
// do not push them back. When the bound passes without a successful renewal, or a renewal is
// answered NOT_HELD, the lease is lost: `signal` aborts and 'lost' fires at once, even while a
// renewal is still retrying, so the holder can stop touching the guarded resource.
import { EventEmitter } from 'node:events';
import { LeaseLostError, NotHeldError, type DsyncError } from './errors.js';
import type { CallOptions } from './http.js';

export type LockMode = 'exclusive' | 'shared';

/** What the server answers to an acquire. */
export interface Grant {
  readonly name: string;
  readonly owner: string;
  readonly mode: LockMode;
  /** Fencing token: strictly increasing across every grant of every lock of the cluster. */
  readonly token: number;
  /** When the server's lease ends, epoch ms on the leader's clock. */
  readonly expiresAt: number;
}

/** The calls a Lease makes (Locks implements them). */
export interface LeaseCalls {
  renew(name: string, owner: string, ttlMs: number, o: CallOptions): Promise<{ expiresAt: number }>;
  release(name: string, owner: string, token: number, o: CallOptions): Promise<unknown>;
}

export interface LeaseEvents {
  /** The lease ended without a release: its bound passed, or the server said NOT_HELD. */
  lost: [err: LeaseLostError];
  /** A renewal succeeded; the server's new expiresAt. */
  renewed: [expiresAt: number];
}

export type LeaseState = 'held' | 'lost' | 'released';

/** Renewals never go out more often than this, whatever the ttl. */
export const RENEW_INTERVAL_MS_MIN = 50;
/** Pause after a failed renewal before the next try (each renewal retries inside as well). */
export const RENEW_RETRY_PAUSE_MS = 25;

export class Lease extends EventEmitter<LeaseEvents> implements AsyncDisposable {
  readonly name: string;
  readonly owner: string;
  readonly mode: LockMode;
  readonly token: number;
  private expiresAtMs: number;
  private ttl: number;
  private lastSentAt: number;
  private current: LeaseState = 'held';
  private keepAlive: boolean;
  private boundTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly ended = new AbortController();
  /** Ends the keep-alive (release, loss, close). */
  private readonly stopped = new AbortController();
  private loop: Promise<void> | null = null;

  /** `sentAt`: performance.now() when the acquire was sent. `untrack`: tells the client the
   * lease needs no release on close() any more. */
  constructor(private readonly calls: LeaseCalls, grant: Grant, ttlMs: number, sentAt: number,
    o: { renew: boolean }, private readonly untrack: () => void) {
    super();
    this.name = grant.name;
    this.owner = grant.owner;
    this.mode = grant.mode;
    this.token = grant.token;
    this.expiresAtMs = grant.expiresAt;
    this.ttl = ttlMs;
    this.lastSentAt = sentAt;
    this.keepAlive = o.renew;
  }

  /** The server's end of the lease as last heard (epoch ms, leader's clock). */
  get expiresAt(): number { return this.expiresAtMs; }
  get ttlMs(): number { return this.ttl; }
  get state(): LeaseState { return this.current; }
  /** True while the keep-alive runs (held, and not created with `renew: false`). */
  get renewing(): boolean { return this.current === 'held' && this.keepAlive; }
  /** Aborts when the lease ends: lost (reason: the LeaseLostError) or released. */
  get signal(): AbortSignal { return this.ended.signal; }

  /** How long the lease surely lasts, by the client's conservative clock (≤ 0: over). */
  remainingMs(): number {
    return this.current === 'held' ? this.lastSentAt + this.ttl - performance.now() : 0;
  }

  /** Starts the bound timer and the keep-alive; Locks calls it once the lease is confirmed. */
  start(): void {
    this.arm();
    if (this.keepAlive) this.loop = this.renewLoop();
  }

  /** One renewal now (the keep-alive does them by itself). `ttlMs` changes the lease's ttl
   * from now on. A NOT_HELD answer makes the lease lost and is thrown. */
  async renew(o: CallOptions & { ttlMs?: number } = {}): Promise<number> {
    if (o.ttlMs !== undefined) this.ttl = o.ttlMs;
    return this.renewOnce(o);
  }

  /** Ends the keep-alive and releases the grant, fenced by its token (so it can never free a
   * newer grant: sent even after a loss, it frees the lock early when the lease only ran out
   * on the client's clock). NOT_HELD is not an error here: the lock is not held either way. */
  async release(o: CallOptions = {}): Promise<void> {
    if (this.current === 'released') return;
    this.finish('released', null);
    try {
      await this.calls.release(this.name, this.owner, this.token, o);
    } catch (err) {
      if (!(err instanceof NotHeldError)) throw err;
    } finally {
      await this.loop;
    }
  }

  /** `await using lease = await locks.acquire(…)`: released at the end of the block. It never
   * throws: a release that cannot be delivered leaves a lease that runs out within its ttl,
   * since nothing renews it any more. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release().catch(() => undefined);
  }

  toJSON(): Grant & { ttlMs: number; state: LeaseState } {
    return { name: this.name, owner: this.owner, mode: this.mode, token: this.token,
      expiresAt: this.expiresAtMs, ttlMs: this.ttl, state: this.current };
  }

  /** Marks the lease lost (once): the signal aborts and 'lost' fires. */
  lose(why: string, cause?: DsyncError): void {
    if (this.current !== 'held') return;
    const err = new LeaseLostError(`lock ${this.name} (token ${this.token}) lost: ${why}`,
      cause === undefined ? {} : { cause });
    this.finish('lost', err);
    this.emit('lost', err);
  }

  private finish(state: LeaseState, reason: LeaseLostError | null): void {
    const wasHeld = this.current === 'held';
    this.current = state;
    clearTimeout(this.boundTimer);
    this.stopped.abort();
    if (!this.ended.signal.aborted) {
      this.ended.abort(reason ?? new Error(`lock ${this.name} released`));
    }
    if (state === 'released' || !wasHeld) this.untrack();
  }

  private async renewOnce(o: CallOptions = {}): Promise<number> {
    const sentAt = performance.now();
    const signal = o.signal ? AbortSignal.any([o.signal, this.stopped.signal])
      : this.stopped.signal;
    let r: { expiresAt: number };
    try {
      r = await this.calls.renew(this.name, this.owner, this.ttl, {
        signal, timeoutMs: o.timeoutMs ?? Math.max(1, Math.ceil(this.remainingMs())) });
    } catch (err) {
      if (err instanceof NotHeldError) this.lose(`renewal refused: ${err.message}`, err);
      throw err;
    }
    if (this.current === 'held' && sentAt > this.lastSentAt) {
      this.lastSentAt = sentAt;
      this.expiresAtMs = r.expiresAt;
      this.arm();
      this.emit('renewed', r.expiresAt);
    }
    return r.expiresAt;
  }

  private async renewLoop(): Promise<void> {
    const signal = this.stopped.signal;
    while (!signal.aborted) {
      const dueAt = this.lastSentAt + Math.max(RENEW_INTERVAL_MS_MIN, this.ttl / 3);
      await pause(dueAt - performance.now(), signal);
      if (signal.aborted) return;
      try {
        await this.renewOnce();
      } catch {
        // NOT_HELD ended the lease; anything else: again after a short pause, and the bound
        // timer ends the lease if no renewal succeeds in time.
        await pause(RENEW_RETRY_PAUSE_MS, signal);
      }
    }
  }

  private arm(): void {
    clearTimeout(this.boundTimer);
    this.boundTimer = setTimeout(() => this.lose('the lease ran out before a renewal succeeded'),
      Math.max(0, this.remainingMs()));
    // A lease without keep-alive does not keep the process alive just to say it ran out.
    if (!this.keepAlive) this.boundTimer.unref();
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
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
