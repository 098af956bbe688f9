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

export class Cache {
  constructor(private readonly http: HttpCaller) {}

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
