// The coherent cache in the SDK.
import { InvalidArgumentError, NotFoundError } from './errors.js';
import { enc, type CallOptions, type HttpCaller } from './http.js';

export interface CacheValue<T = unknown> {
  readonly key: string;
  readonly value: T;
  readonly state: 'M' | 'E' | 'S';
  readonly hit: boolean;
  readonly version: number;
  /** When the value expires (epoch ms), for a value written with ttlMs. */
  readonly expiresAt?: number;
}

export interface PutResult {
  readonly key: string;
  readonly state: 'M';
  readonly version: number;
  readonly expiresAt?: number;
}

export interface PutOptions extends CallOptions {
  /** The value expires this long after the write, ms (100..2^31-1); it then reads as absent.
   * Default: never. */
  readonly ttlMs?: number;
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
  /** Lines written on this node and not yet in the backing store, and their bytes: what a
   * kill -9 of it would lose in write-back mode. */
  readonly dirtyLines: number;
  readonly dirtyBytes: number;
}

/** Most keys one getMany reads. */
export const GET_MANY_KEYS_MAX = 10_000;
/** Reads getMany keeps in flight by default (1..256). */
export const DEFAULT_GET_MANY_CONCURRENCY = 16;

export class Cache {
  constructor(private readonly http: HttpCaller) {}

  /** The node URLs this client knows; the per-node calls below take one of them. */
  get nodes(): readonly string[] {
    return this.http.urls;
  }

  /** Every node of the cache, after the client has looked its membership up. */
  discoverNodes(): Promise<readonly string[]> {
    return this.http.discoverNodes();
  }

  /** `node`'s own line for `key`, with no side effects (nothing is loaded or invalidated). */
  state(key: string, node: string, o: CallOptions = {}): Promise<CacheLineState> {
    return this.http.callOn(node, { method: 'GET', path: `/v1/cache/${enc(key)}/state` }, o);
  }

  /** Entries, bytes, hits and misses of `node`. */
  stats(node: string, o: CallOptions = {}): Promise<CacheStats> {
    return this.http.callOn(node, { method: 'GET', path: '/v1/cache' }, o);
  }

  /** Writes every dirty line of `node` back to the backing store. */
  flush(node: string, o: CallOptions = {}): Promise<{ flushed: number }> {
    return this.http.callOn(node, { method: 'POST', path: '/v1/cache/flush', idempotent: true },
      o);
  }

  /** The value, or undefined when the key does not exist (or expired). */
  async get<T = unknown>(key: string, o: CallOptions = {}): Promise<CacheValue<T> | undefined> {
    try {
      return await this.http.call<CacheValue<T>>({ method: 'GET',
        path: `/v1/cache/${enc(key)}` }, o);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** Many keys at once, `concurrency` reads in flight; keys that do not exist are absent
   * from the map. Fails as a whole on the first error other than a missing key. */
  async getMany<T = unknown>(keys: readonly string[],
    o: CallOptions & { concurrency?: number } = {}): Promise<Map<string, CacheValue<T>>> {
    const unique = [...new Set(keys)];
    if (unique.length > GET_MANY_KEYS_MAX) {
      throw new InvalidArgumentError(`getMany reads at most ${GET_MANY_KEYS_MAX} keys, got ` +
        `${unique.length}: split the list`, { status: 0, details: { field: 'keys' } });
    }
    const width = o.concurrency ?? DEFAULT_GET_MANY_CONCURRENCY;
    if (!Number.isSafeInteger(width) || width < 1 || width > 256) {
      throw new InvalidArgumentError('concurrency must be an integer in 1..256',
        { status: 0, details: { field: 'concurrency' } });
    }
    const out = new Map<string, CacheValue<T>>();
    const failed = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, failed.signal]) : failed.signal;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < unique.length && !signal.aborted) {
        const key = unique[next++]!;
        const v = await this.get<T>(key, { ...o, signal });
        if (v !== undefined) out.set(key, v);
      }
    };
    const workers = Array.from({ length: Math.min(width, unique.length) }, () =>
      worker().catch((err: unknown) => { failed.abort(); throw err; }));
    const settled = await Promise.allSettled(workers);
    const first = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // The first real failure, not the aborts it caused in the other workers.
    if (first) throw firstCause(settled, first);
    return out;
  }

  /** Writes the value; retries are safe (a second write of the same value only bumps the
   * version). */
  put(key: string, value: unknown, o: PutOptions = {}): Promise<PutResult> {
    return this.http.call({ method: 'PUT', path: `/v1/cache/${enc(key)}`,
      body: o.ttlMs === undefined ? { value } : { value, ttlMs: o.ttlMs }, idempotent: true }, o);
  }

  /**
   * Compare-and-set: writes only when the key is at `version` (0: only when it does not
   * exist). Otherwise VersionMismatchError, whose `currentVersion` is the one there (null
   * when the key does not exist). Not retried after an ambiguous failure: a first attempt
   * that did apply would make the retry fail.
   */
  putIfVersion(key: string, value: unknown, version: number, o: PutOptions = {}):
    Promise<PutResult> {
    const body: Record<string, unknown> = { value, ifVersion: version };
    if (o.ttlMs !== undefined) body.ttlMs = o.ttlMs;
    return this.http.call({ method: 'PUT', path: `/v1/cache/${enc(key)}`, body }, o);
  }

  delete(key: string, o: CallOptions = {}): Promise<{ deleted: boolean }> {
    return this.http.call({ method: 'DELETE', path: `/v1/cache/${enc(key)}`, idempotent: true },
      o);
  }
}

function firstCause(settled: PromiseSettledResult<void>[], first: PromiseRejectedResult):
  unknown {
  const real = settled.find((r) => r.status === 'rejected' &&
    (r.reason as { code?: unknown }).code !== 'ABORTED');
  return real?.status === 'rejected' ? real.reason : first.reason;
}
