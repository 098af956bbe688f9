// Reference for "Cache": Redis alone through ioredis, 90% GET / 10% SET over 10,000 keys
// with 100-byte values, 50 requests in flight. This is the memory behind dsync's cache, so
// it bounds what a coherent cache in front of it can add. Run: npx tsx benchmarks/redis-cache.ts
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { assert } from '../src/assert.js';
import { seededRand } from '../src/raft/rand.js';
import { startRedis } from './lib/redis-server.js';
import type { RedisServer } from './lib/redis-server.js';
import { runLoad } from './lib/load.js';
import { makeRow, parseBenchArgs, printRows } from './lib/stats.js';
import type { Row } from './lib/stats.js';

export const DEFAULT_CACHE_DURATION_MS = 10_000;
export const DEFAULT_CACHE_CONCURRENCY = 50;
export const DEFAULT_CACHE_KEYS = 10_000;
export const DEFAULT_CACHE_VALUE_BYTES = 100;
/** Fraction of operations that are reads. */
export const DEFAULT_CACHE_READ_FRACTION = 0.9;
/** Keys written per pipeline while preloading. */
const PRELOAD_BATCH_KEYS = 1000;
const KEYS_MAX = 10_000_000;

export interface RedisCacheOptions {
  /** A running Redis to use (left running); by default one is started and stopped. */
  redis?: Pick<RedisServer, 'url' | 'port'> & { version?: string };
  durationMs?: number;
  concurrency?: number;
  keys?: number;
  valueBytes?: number;
  readFraction?: number;
  /** Seed of the key and operation choice, so runs compare (default 1). */
  seed?: number;
}

/** The workload's setting string, shared with the dsync side of the benchmark. */
export function cacheSetting(concurrency: number, readFraction: number): string {
  const readPct = Math.round(readFraction * 100);
  return `${readPct}% GET / ${100 - readPct}% SET, ${concurrency} in flight`;
}

/** The key of index i (`bench:cache:<i>`), shared with the dsync side. */
export function cacheKey(i: number): string {
  return `bench:cache:${i}`;
}

/** One row: Redis through one ioredis connection (it pipelines what is in flight). */
export async function benchRedisCache(opts: RedisCacheOptions = {}): Promise<Row[]> {
  const keys = opts.keys ?? DEFAULT_CACHE_KEYS;
  const readFraction = opts.readFraction ?? DEFAULT_CACHE_READ_FRACTION;
  const concurrency = opts.concurrency ?? DEFAULT_CACHE_CONCURRENCY;
  assert(Number.isSafeInteger(keys) && keys >= 1 && keys <= KEYS_MAX, `keys in [1, ${KEYS_MAX}]`);
  assert(readFraction >= 0 && readFraction <= 1, 'readFraction in [0, 1]');
  const owned = opts.redis === undefined ? await startRedis() : undefined;
  const server = opts.redis ?? owned;
  assert(server !== undefined, 'a redis to run against');
  const redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const version = opts.redis?.version ?? await redisVersion(redis);
    const value = Buffer.alloc(opts.valueBytes ?? DEFAULT_CACHE_VALUE_BYTES, 'v');
    await preload(redis, keys, value);
    // One generator per worker: the workload is the same whatever the interleaving.
    const rands = Array.from({ length: concurrency },
      (_, w) => seededRand((opts.seed ?? 1) * 1_000_003 + w));
    let hits = 0;
    let gets = 0;
    const result = await runLoad({
      label: 'redis cache',
      concurrency,
      durationMs: opts.durationMs ?? DEFAULT_CACHE_DURATION_MS,
      op: async (worker) => {
        const rand = rands[worker];
        assert(rand !== undefined, 'one generator per worker');
        const key = cacheKey(rand.int(0, keys));
        if (rand.next() < readFraction) {
          gets++;
          if ((await redis.getBuffer(key)) !== null) hits++;
        } else {
          await redis.set(key, value);
        }
      },
    });
    return [makeRow(`redis ${version}`, cacheSetting(concurrency, readFraction), result,
      { keys, hitRate: gets === 0 ? 0 : Number((hits / gets).toFixed(3)) })];
  } finally {
    redis.disconnect();
    await owned?.stop();
  }
}

async function preload(redis: Redis, keys: number, value: Buffer): Promise<void> {
  for (let base = 0; base < keys; base += PRELOAD_BATCH_KEYS) {
    const pipeline = redis.pipeline();
    for (let i = base; i < Math.min(keys, base + PRELOAD_BATCH_KEYS); i++) {
      pipeline.set(cacheKey(i), value);
    }
    await pipeline.exec();
  }
}

async function redisVersion(redis: Redis): Promise<string> {
  const info = await redis.info('server');
  return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const rows = await benchRedisCache(
    args.durationMs === undefined ? {} : { durationMs: args.durationMs });
  printRows('Cache: 90% GET / 10% SET, 10,000 keys, 100-byte values', rows,
    rows[0]?.system ?? '', args);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
