// The coherent cache in the SDK.
import { DsyncApiError } from './errors.js';
import { enc, type HttpCaller } from './http.js';

export interface CacheValue<T = unknown> {
  readonly key: string;
  readonly value: T;
  readonly state: 'M' | 'E' | 'S';
  readonly hit: boolean;
  readonly version: number;
}

/** One node's line for a key (GET /v1/cache/{key}/state). */
export interface CacheLineState {
  readonly key: string;
  readonly state: 'M' | 'E' | 'S' | 'I';
  /** The node id of the key's home. */
  readonly home: string;
  /** The line only records that the key does not exist. */
  readonly absent?: true;
}

/** One node's cache (GET /v1/cache). */
export interface CacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly capacityBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly states: { readonly M: number; readonly E: number; readonly S: number };
}

export class Cache {
  constructor(private readonly http: HttpCaller) {}

  /** The node URLs this client was given; the per-node calls below take one of them. */
  get nodes(): readonly string[] {
    return this.http.urls;
  }

  /** `node`'s own line for `key`, with no side effects (nothing is loaded or invalidated). */
  state(key: string, node: string): Promise<CacheLineState> {
    return this.http.callOn(node, 'GET', `/v1/cache/${enc(key)}/state`);
  }

  /** Entries, bytes, hits and misses of `node`. */
  stats(node: string): Promise<CacheStats> {
    return this.http.callOn(node, 'GET', '/v1/cache');
  }

  /** Writes every dirty line of `node` back to the backing store. */
  flush(node: string): Promise<{ flushed: number }> {
    return this.http.callOn(node, 'POST', '/v1/cache/flush');
  }

  /** The value, or undefined when the key does not exist. */
  async get<T = unknown>(key: string): Promise<CacheValue<T> | undefined> {
    try {
      return await this.http.call<CacheValue<T>>('GET', `/v1/cache/${enc(key)}`);
    } catch (err) {
      if (err instanceof DsyncApiError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  put(key: string, value: unknown): Promise<{ key: string; state: 'M'; version: number }> {
    return this.http.call('PUT', `/v1/cache/${enc(key)}`, { value });
  }

  delete(key: string): Promise<{ deleted: boolean }> {
    return this.http.call('DELETE', `/v1/cache/${enc(key)}`);
  }
}
