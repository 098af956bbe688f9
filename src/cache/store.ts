// The backing store behind the cache ("memory" in MESI terms). Only a key's home talks to
// it, and the home emits the writes of one key in version order; the store still refuses to
// go back in version (a delayed write-back must never overwrite a newer value, e.g. one
// written by a later incarnation of the home), so `write` is "store if newer".
//
// A deleted key is kept as a tombstone (value null, its version): versions of a key must keep
// increasing across a delete, and a delete must not be undone by an older write arriving late.
// Tombstones cost one small record per deleted key; that is the price of both rules.
//
// RedisStore keeps one hash per key (`v` = version, `d` = JSON text, absent for a tombstone)
// and updates it with a Lua script, so the comparison and the write are one atomic step.
// EmbeddedStore (no Redis configured) is in embedded-store.ts.
import { Redis } from 'ioredis';
import { Histogram, type Registry } from 'prom-client';
import { assert } from '../assert.js';
import { UnavailableError } from '../errors.js';
import { FSYNC_BUCKETS_SECONDS } from '../observability/metrics.js';
import type { CacheValue } from './coherence-messages.js';
import { splitValue } from './coherence-value.js';

export interface StoredValue {
  /** JSON text of the value; null for a tombstone. */
  readonly value: CacheValue;
  readonly version: number;
}

export interface BackingStore {
  /** The stored record, or null when the key was never written. */
  load(key: string): Promise<StoredValue | null>;
  /** Stores `value` at `version` unless the store already holds `version` or newer;
   * resolves true when it wrote. `value` null writes a tombstone (a delete). */
  write(key: string, value: CacheValue, version: number): Promise<boolean>;
  /** Removes every trace of the key, tombstone included (administrative; the coherence
   * protocol deletes with a tombstone write). */
  delete(key: string): Promise<void>;
  /** False while the store is known not to serve (its connection is down, or it failed for
   * good); the shell combines it with the outcome of recent calls. */
  healthy(): boolean;
  /** One cheap round trip; rejects when the store does not answer. */
  ping(): Promise<void>;
  /** True when every pod talks to the same store (Redis), so one pod's view of it holds for
   * every home; false for the embedded store, which each home keeps for itself. */
  readonly shared: boolean;
  close(): Promise<void>;
}

/** Prefix of every Redis key the cache writes, so it can share a Redis with other data. */
export const REDIS_KEY_PREFIX = 'dsync:cache:';
/** A Redis command that has not answered in this long fails (the shell retries it). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2000;
/** Pause between two start-up attempts to reach Redis. */
const REDIS_CONNECT_RETRY_MS = 500;

/** `url` without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)[^@/]*@/, '$1***@');
}

// KEYS[1] the record; ARGV[1] version, ARGV[2] '1' when a value follows, ARGV[3] the value.
const WRITE_IF_NEWER_LUA = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[1]) <= cur then return 0 end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
  redis.call('HDEL', KEYS[1], 'd')
end
return 1`;

type RedisWithScript = Redis & {
  dsyncWriteIfNewer(key: string, version: string, hasValue: string, value: string):
    Promise<number>;
};

export type StoreOp = 'load' | 'write' | 'delete' | 'ping';

/** Store latency by operation; one histogram per node registry. */
export function createStoreLatency(registry: Registry): Histogram<'store' | 'op'> {
  return new Histogram({
    name: 'dsync_cache_store_duration_seconds', help: 'Backing store call latency',
    labelNames: ['store', 'op'], buckets: FSYNC_BUCKETS_SECONDS, registers: [registry],
  });
}

/** Times a store call into `latency` (failures too: a slow failure is still slow). */
export async function timed<T>(latency: Histogram<'store' | 'op'>, store: string, op: StoreOp,
  fn: () => Promise<T>): Promise<T> {
  const end = latency.startTimer({ store, op });
  try {
    return await fn();
  } finally {
    end();
  }
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export class RedisStore implements BackingStore {
  readonly shared = true;
  private readonly redis: RedisWithScript;

  constructor(url: string, private readonly latency: Histogram<'store' | 'op'>,
    commandTimeoutMs = DEFAULT_REDIS_COMMAND_TIMEOUT_MS) {
    const redis = new Redis(url, {
      lazyConnect: true,
      commandTimeout: commandTimeoutMs,
      // Fail fast while Redis is down: the coherence shell retries with its own backoff, and
      // a command queued forever would hold a client request past its deadline.
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      retryStrategy: (times) => Math.min(50 * times, 1000),
    });
    redis.defineCommand('dsyncWriteIfNewer', { numberOfKeys: 1, lua: WRITE_IF_NEWER_LUA });
    this.redis = redis as RedisWithScript;
    // Connection errors are retried by ioredis and surface as failed commands; without a
    // listener they would be thrown as unhandled 'error' events.
    redis.on('error', () => undefined);
  }

  /**
   * Connects, waiting up to `waitMs` for Redis to answer a PING (in a deployment it may
   * start after the cache pods); `onRetry` hears of every failed attempt. Rejects with an
   * UnavailableError that says what to do when Redis never answered (the node refuses to
   * start then).
   */
  async connect(url: string, waitMs: number,
    onRetry: (attempt: number, err: Error) => void): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        if (this.redis.status === 'wait') await this.redis.connect();
        await this.redis.ping();
        return;
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        if (Date.now() + REDIS_CONNECT_RETRY_MS >= deadline) {
          this.redis.disconnect();
          throw new UnavailableError(`Redis at ${redactUrl(url)} did not answer within ` +
            `${waitMs} ms (${err.message}): start Redis or point --redis-url ` +
            '(DSYNC_REDIS_URL) at it; --redis-connect-wait-ms waits longer');
        }
        onRetry(attempt, err);
        await new Promise((r) => setTimeout(r, REDIS_CONNECT_RETRY_MS));
      }
    }
  }

  async load(key: string): Promise<StoredValue | null> {
    return timed(this.latency, 'redis', 'load', async () => {
      const [v, d] = await this.redis.hmget(REDIS_KEY_PREFIX + key, 'v', 'd');
      if (v === null || v === undefined) return null;
      const version = Number(v);
      if (!Number.isSafeInteger(version) || version < 0) {
        throw new UnavailableError(`the store holds a malformed version for ${key}`);
      }
      // A hit serves this text as is inside a JSON body: it must be JSON (another writer
      // of the hash could have put anything there).
      if (d !== null && d !== undefined && !isJsonText(splitValue(d).json)) {
        throw new UnavailableError(`the store holds a value for ${key} that is not JSON; ` +
          `delete ${REDIS_KEY_PREFIX}${key} in Redis`);
      }
      return { value: d ?? null, version };
    });
  }

  async write(key: string, value: CacheValue, version: number): Promise<boolean> {
    assert(Number.isSafeInteger(version) && version >= 0, 'store versions are integers >= 0');
    return timed(this.latency, 'redis', 'write', async () => {
      const wrote = await this.redis.dsyncWriteIfNewer(REDIS_KEY_PREFIX + key, String(version),
        value === null ? '0' : '1', value ?? '');
      return wrote === 1;
    });
  }

  async delete(key: string): Promise<void> {
    await timed(this.latency, 'redis', 'delete', async () => {
      await this.redis.del(REDIS_KEY_PREFIX + key);
    });
  }

  healthy(): boolean {
    return this.redis.status === 'ready';
  }

  async ping(): Promise<void> {
    await timed(this.latency, 'redis', 'ping', async () => { await this.redis.ping(); });
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
