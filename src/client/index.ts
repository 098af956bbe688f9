// The dsync SDK: `new DsyncClient({ locks: [urls], cache: [urls] })`.
import { Cache } from './cache.js';
import { HttpCaller, type HttpOptions } from './http.js';
import { Locks } from './locks.js';

export { DsyncApiError } from './errors.js';
export type { AcquireOptions, Grant, LockMode, LockView } from './locks.js';
export type { CacheLineState, CacheStats, CacheValue } from './cache.js';
export { nodeHealth, type NodeHealth } from './health.js';

export interface DsyncClientOptions {
  /** URLs of lock-service nodes. */
  readonly locks?: readonly string[];
  /** URLs of cache-service nodes. */
  readonly cache?: readonly string[];
  readonly deadlineMs?: number;
  readonly attemptTimeoutMs?: number;
}

export class DsyncClient {
  private readonly lockCaller: HttpCaller | null;
  private readonly cacheCaller: HttpCaller | null;

  constructor(o: DsyncClientOptions) {
    const common: Omit<HttpOptions, 'urls'> = {
      ...(o.deadlineMs === undefined ? {} : { deadlineMs: o.deadlineMs }),
      ...(o.attemptTimeoutMs === undefined ? {} : { attemptTimeoutMs: o.attemptTimeoutMs }),
    };
    this.lockCaller = o.locks?.length ? new HttpCaller({ urls: o.locks, ...common }) : null;
    this.cacheCaller = o.cache?.length ? new HttpCaller({ urls: o.cache, ...common }) : null;
  }

  get locks(): Locks {
    if (!this.lockCaller) throw new TypeError('DsyncClient: pass `locks: [urls]` to use locks');
    return new Locks(this.lockCaller);
  }

  get cache(): Cache {
    if (!this.cacheCaller) throw new TypeError('DsyncClient: pass `cache: [urls]` to use the cache');
    return new Cache(this.cacheCaller);
  }
}
