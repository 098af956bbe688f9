// Locks in the SDK: acquire returns a Lease that renews itself in the background (lease.ts);
// withLock runs a callback under one; the plain calls (renew, release, get, list) are there
// for tools that manage grants by hand.
import { randomUUID } from 'node:crypto';
import { LockTimeoutError } from './errors.js';
import { enc, type CallOptions, type HttpCaller } from './http.js';
import { Lease, type Grant, type LeaseCalls, type LockMode } from './lease.js';
import { Membership } from './membership.js';

export type { Grant, LockMode } from './lease.js';

/** Default lease of an acquire (API.md). */
export const DEFAULT_LOCK_TTL_MS = 30_000;
/** The longest waitMs one acquire may ask for (the server's bound). */
export const LOCK_WAIT_MS_MAX = 3_600_000;

export interface AcquireOptions extends CallOptions {
  /** Who holds it: 1–128 bytes. Default: the client's owner (DsyncClientOptions.owner). */
  readonly owner?: string;
  readonly mode?: LockMode;
  /** Lease, ms (default DEFAULT_LOCK_TTL_MS; 100..86400000). */
  readonly ttlMs?: number;
  /** Wait up to this long for the lock, ms (default 0: fail at once with LockTimeoutError;
   * at most LOCK_WAIT_MS_MAX). The call's timeout is added to it. */
  readonly waitMs?: number;
  /** Makes retries of this acquire safe; default: a new one per call, reused by its retries. */
  readonly requestId?: string;
  /** Keep the lease alive in the background (default true). False: a one-shot grant whose
   * lease simply runs out (the CLI's `lock acquire`). */
  readonly renew?: boolean;
}

export interface LockView {
  readonly name: string;
  readonly mode: LockMode | null;
  readonly holders: Array<{ owner: string; mode: LockMode; token: number; expiresAt: number }>;
  readonly waiters: Array<{ owner: string; mode: LockMode }>;
}

/** What the client gives the lock module: its transport, default owner and lease registry. */
export interface LockContext {
  readonly http: HttpCaller;
  readonly owner: string;
  /** Registers a lease for DsyncClient.close(); returns the function that unregisters it. */
  track(lease: { release(): Promise<void> }): () => void;
}

export class Locks implements LeaseCalls {
  /** The lock service's Raft membership (`dsync member …`). */
  readonly members: Membership;

  constructor(private readonly ctx: LockContext) {
    this.members = new Membership(ctx.http);
  }

  /**
   * Acquires the lock and returns its Lease, renewed in the background until released (or
   * lost: `lease.on('lost', …)`, `lease.signal`). Retries are safe: one requestId per call,
   * reused by its retries, and acquire is idempotent for the same owner. A grant that came
   * after a long wait is confirmed by one renewal before it is returned, since the client
   * cannot know when the server started its lease.
   */
  async acquire(name: string, o: AcquireOptions = {}): Promise<Lease> {
    const ttlMs = o.ttlMs ?? DEFAULT_LOCK_TTL_MS;
    const sentAt = performance.now();
    const grant = await this.grant(name, { ...o, ttlMs });
    let untrack = (): void => undefined;
    const lease = new Lease(this, grant, ttlMs, sentAt, { renew: o.renew ?? true },
      () => untrack());
    untrack = this.ctx.track(lease);
    if (performance.now() - sentAt > ttlMs / 3) {
      try {
        await lease.renew(o.signal ? { signal: o.signal } : {});
      } catch (err) {
        await lease.release().catch(() => undefined);
        throw err;
      }
    }
    lease.start();
    return lease;
  }

  /** The acquire call alone: a Grant, no Lease, no keep-alive. */
  grant(name: string, o: AcquireOptions = {}): Promise<Grant> {
    const body = {
      owner: o.owner ?? this.ctx.owner, mode: o.mode ?? 'exclusive',
      ttlMs: o.ttlMs ?? DEFAULT_LOCK_TTL_MS, waitMs: o.waitMs ?? 0,
      requestId: o.requestId ?? randomUUID(),
    };
    return this.ctx.http.call<Grant>({ method: 'POST', path: `/v1/locks/${enc(name)}/acquire`,
      body, idempotent: true, waitMs: body.waitMs }, o);
  }

  /** Released only the grant with `token` when given (fenced, and then safe to retry). */
  release(name: string, owner: string, token?: number, o: CallOptions = {}):
    Promise<{ released: boolean }> {
    return this.ctx.http.call({ method: 'POST', path: `/v1/locks/${enc(name)}/release`,
      body: token === undefined ? { owner } : { owner, token }, idempotent: token !== undefined },
    o);
  }

  /** Extends the lease by `ttlMs` (default: the grant's own); renewing twice is harmless. */
  renew(name: string, owner: string, ttlMs?: number, o: CallOptions = {}):
    Promise<{ expiresAt: number }> {
    return this.ctx.http.call({ method: 'POST', path: `/v1/locks/${enc(name)}/renew`,
      body: ttlMs === undefined ? { owner } : { owner, ttlMs }, idempotent: true }, o);
  }

  get(name: string, o: CallOptions = {}): Promise<LockView> {
    return this.ctx.http.call({ method: 'GET', path: `/v1/locks/${enc(name)}` }, o);
  }

  list(prefix = '', o: CallOptions = {}): Promise<{ locks: LockView[] }> {
    return this.ctx.http.call({ method: 'GET', path: `/v1/locks?prefix=${enc(prefix)}` }, o);
  }

  /**
   * Runs `fn` while holding the lock (a Lease, renewed in the background) and releases it in
   * finally. `signal` aborts when the lease is lost, so the callback can stop touching the
   * guarded resource; the fencing token is the one to hand to that resource.
   */
  async withLock<T>(name: string, o: AcquireOptions,
    fn: (token: number, signal: AbortSignal, lease: Lease) => Promise<T>): Promise<T> {
    const lease = await this.acquire(name, { ...o, renew: true });
    try {
      return await fn(lease.token, lease.signal, lease);
    } finally {
      await lease.release().catch(() => undefined);
    }
  }

  /** Blocks until granted or `signal` aborts, in waits of at most waitChunkMs each; calls
   * `onWait` before each (the CLI prints progress there). */
  async acquireBlocking(name: string, o: AcquireOptions & { waitChunkMs?: number;
    onWait?: (waitedMs: number) => void }): Promise<Lease> {
    // Each wait is its own request: a requestId of the caller's would answer them all alike.
    const { requestId: _ignored, onWait, waitChunkMs, ...rest } = o;
    const started = performance.now();
    for (;;) {
      onWait?.(performance.now() - started);
      try {
        return await this.acquire(name, { ...rest, waitMs: waitChunkMs ?? LOCK_WAIT_MS_MAX });
      } catch (err) {
        if (!(err instanceof LockTimeoutError)) throw err;
      }
    }
  }
}
