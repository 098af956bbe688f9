// Cache: dsync's coherent cache (3 pods, Redis behind) against Redis alone and the bare Koa
// HTTP ceiling, in one run on one machine. 90% GET / 10% PUT over 10,000 keys of 100-byte
// values, 50 requests in flight spread over the pods, 10 s measured after a warm-up (10 s on
// the 10,000 keys: every pod has then touched most keys; the hit ratio counts the measured
// phase only). The keys are preloaded straight into Redis in the cache's own record format,
// so the first touch of a key is a miss that the key's home loads from Redis; afterwards
// reads hit a pod's own line until a write elsewhere invalidates it. Reports ops/s, p50/p99,
// the hit ratio and invalidations per write.
// Run: npm run build && npx tsx benchmarks/cache.ts [--duration-ms N] [--json]
import { existsSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { assert } from '../src/assert.js';
import { REDIS_KEY_PREFIX } from '../src/cache/store.js';
import { seededRand } from '../src/raft/rand.js';
import { BIN, Cluster, ROOT, type ClusterNode } from '../test/support/cluster.js';
import { benchKoaCeiling } from './koa-ceiling.js';
import { withCpu } from './lib/dsync-proc-cpu.js';
import { runLoad } from './lib/load.js';
import { onCleanup } from './lib/proc.js';
import { startRedis } from './lib/redis-server.js';
import { cpuProfileEnv, signalCpuProfiles } from './lib/dsync-lock-cluster.js';
import { makeRow, parseBenchArgs, printRows, selected, type Row } from './lib/stats.js';
import {
  benchRedisCache, cacheKey, cacheSetting, DEFAULT_CACHE_CONCURRENCY, DEFAULT_CACHE_DURATION_MS,
  DEFAULT_CACHE_KEYS, DEFAULT_CACHE_READ_FRACTION, DEFAULT_CACHE_VALUE_BYTES,
} from './redis-cache.js';

/** Pods of the cache cluster. */
export const DSYNC_CACHE_NODES = 3;
/** How long every node gets to answer /health (a busy machine is slow). */
const START_TIMEOUT_MS = 60_000;
/** One request's deadline. */
const REQUEST_TIMEOUT_MS = 15_000;
/** The hot-set row: few enough keys that every pod keeps touching each within its lease. */
export const HOT_SET_KEYS = 100;
/** Keys written to Redis per pipeline while preloading. */
const PRELOAD_BATCH_KEYS = 1000;
/** Unmeasured load before the 10,000-key row: long enough for every pod to touch most keys
 * (each pod sees a given key every few seconds), so first-touch misses do not dominate. */
export const SPREAD_WARMUP_MS = 10_000;
/** Unmeasured load before a hot-set row. */
export const HOT_SET_WARMUP_MS = 2000;

export interface DsyncCacheOptions {
  durationMs?: number;
  concurrency?: number;
  keys?: number;
  seed?: number;
  /** Share of GETs (default 0.9); 1 measures the hit path once every pod holds every key. */
  readFraction?: number;
  /** Unmeasured load first, ms (default SPREAD_WARMUP_MS for 10,000 keys, else
   * HOT_SET_WARMUP_MS); hits are counted in the measured phase only. */
  warmupMs?: number;
  /** Writes a CPU profile of every pod over the measured phase into this directory. */
  cpuProfDir?: string;
}

/** A JSON string whose JSON text is exactly `bytes` long (the value the cache stores). */
function jsonValue(bytes: number): string {
  assert(bytes >= 2, 'a JSON string takes at least its two quotes');
  return 'v'.repeat(bytes - 2);
}

async function startCacheCluster(redisUrl: string, cpuProfDir?: string): Promise<{
  cluster: Cluster; stop: () => Promise<void> }> {
  if (!existsSync(`${ROOT}/dist/src/cli/main.js`)) {
    throw new Error(`dsync is not built: run \`npm run build\` in ${ROOT} first (${BIN})`);
  }
  const env = { DSYNC_REDIS_URL: redisUrl,
    ...(cpuProfDir === undefined ? {} : cpuProfileEnv(cpuProfDir)) };
  const cluster = await Cluster.start({ service: 'cache', size: DSYNC_CACHE_NODES,
    env, extraArgs: ['--log-level', 'warn'], startNodes: 0 });
  const drop = onCleanup(() => {
    for (const n of cluster.nodes) if (n.running && n.pid !== undefined) process.kill(n.pid, 'SIGKILL');
    rmSync(cluster.dir, { recursive: true, force: true });
  });
  const stop = async (): Promise<void> => {
    await cluster.stop();
    drop();
  };
  try {
    for (const n of cluster.nodes) n.start();
    await Promise.all(cluster.nodes.map((n) => n.waitHealthy(START_TIMEOUT_MS)));
  } catch (err) {
    await stop();
    throw err;
  }
  return { cluster, stop };
}

/** The sum over every pod of one counter of /metrics. */
async function counterSum(nodes: readonly ClusterNode[], name: string): Promise<number> {
  let sum = 0;
  for (const n of nodes) {
    const text = await (await fetch(`${n.url}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return sum;
}

async function preload(redisUrl: string, keys: number, value: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    for (let base = 0; base < keys; base += PRELOAD_BATCH_KEYS) {
      const p = redis.pipeline();
      for (let i = base; i < Math.min(keys, base + PRELOAD_BATCH_KEYS); i++) {
        p.hset(REDIS_KEY_PREFIX + cacheKey(i), 'v', '1', 'd', JSON.stringify(value));
      }
      await p.exec();
    }
  } finally {
    redis.disconnect();
  }
}

/** One row: dsync's cache, clients spread evenly over the pods. */
export async function benchDsyncCache(redisUrl: string, opts: DsyncCacheOptions = {}):
  Promise<Row[]> {
  const keys = opts.keys ?? DEFAULT_CACHE_KEYS;
  const concurrency = opts.concurrency ?? DEFAULT_CACHE_CONCURRENCY;
  const readFraction = opts.readFraction ?? DEFAULT_CACHE_READ_FRACTION;
  const value = jsonValue(DEFAULT_CACHE_VALUE_BYTES);
  const warmupMs = opts.warmupMs ??
    (keys >= DEFAULT_CACHE_KEYS ? SPREAD_WARMUP_MS : HOT_SET_WARMUP_MS);
  await preload(redisUrl, keys, value);
  const { cluster, stop } = await startCacheCluster(redisUrl, opts.cpuProfDir);
  const pools = cluster.nodes.map((n) => new Pool(n.url,
    { connections: Math.ceil(concurrency / DSYNC_CACHE_NODES), pipelining: 1 }));
  const body = JSON.stringify({ value });
  try {
    const rands = Array.from({ length: concurrency },
      (_, w) => seededRand((opts.seed ?? 1) * 1_000_003 + w));
    const counts = { gets: 0, hits: 0, puts: 0 };
    let measured = false;
    const op = async (worker: number): Promise<void> => {
      const rand = rands[worker];
      const pool = pools[worker % pools.length];
      assert(rand !== undefined && pool !== undefined, 'one generator and pool per worker');
      const path = `/v1/cache/${encodeURIComponent(cacheKey(rand.int(0, keys)))}`;
      const read = rand.next() < readFraction;
      const res = await pool.request({ path, method: read ? 'GET' : 'PUT',
        headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS,
        ...(read ? {} : { headers: { 'content-type': 'application/json' }, body }) });
      const answer = await res.body.json() as { hit?: unknown };
      if (res.statusCode !== 200) {
        throw new Error(`${read ? 'GET' : 'PUT'} answered ${res.statusCode} ` +
          JSON.stringify(answer));
      }
      if (!measured) return;
      if (read) {
        counts.gets++;
        if (answer.hit === true) counts.hits++;
      } else {
        counts.puts++;
      }
    };
    // The warm-up is a run of its own, so that hits and invalidations count the measured
    // phase only.
    if (warmupMs > 0) {
      await runLoad({ label: 'dsync cache warm-up', concurrency, durationMs: warmupMs,
        warmupMs: 0, op });
    }
    measured = true;
    const invBefore = await counterSum(cluster.nodes, 'dsync_cache_invalidations_sent_total');
    if (opts.cpuProfDir !== undefined) signalCpuProfiles(cluster.nodes);
    const pids = cluster.nodes.map((n) => n.pid).filter((pid) => pid !== undefined);
    const { value: result, cpuMsPerOp } = await withCpu(pids, () => runLoad({
      label: 'dsync cache', concurrency, warmupMs: 0, op,
      durationMs: opts.durationMs ?? DEFAULT_CACHE_DURATION_MS }));
    if (opts.cpuProfDir !== undefined) {
      signalCpuProfiles(cluster.nodes);
      process.stderr.write(`cache: CPU profiles in ${opts.cpuProfDir} (pids ` +
        `${cluster.nodes.map((n) => `${n.id} ${n.pid}`).join(', ')}), ${result.ops} requests\n`);
    }
    const inv = await counterSum(cluster.nodes, 'dsync_cache_invalidations_sent_total') -
      invBefore;
    // The standard key count compares with the Redis row; another one is its own setting.
    const setting = cacheSetting(concurrency, readFraction) +
      (keys === DEFAULT_CACHE_KEYS ? '' : `, ${keys} keys`);
    return [makeRow(`dsync (${DSYNC_CACHE_NODES} pods, Redis behind)`, setting, result, {
        keys, warmupMs, serverCpuUsPerRequest: Math.round(cpuMsPerOp * 1000),
        hitRate: counts.gets === 0 ? 0 : Number((counts.hits / counts.gets).toFixed(3)),
        invalidationsPerWrite: counts.puts === 0 ? 0 : Number((inv / counts.puts).toFixed(3)),
      })];
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await stop();
  }
}

/** The dsync rows: 10,000 keys, the hot set, and the hit path (only GETs on the hot set, so
 * after the warm-up every pod holds every key in S and answers from its own line, the work
 * the Koa ceiling measures). */
const DSYNC_ROWS: readonly (readonly [string, DsyncCacheOptions])[] = [
  [cacheSetting(DEFAULT_CACHE_CONCURRENCY, DEFAULT_CACHE_READ_FRACTION), {}],
  [`${cacheSetting(DEFAULT_CACHE_CONCURRENCY, DEFAULT_CACHE_READ_FRACTION)}, ${HOT_SET_KEYS} keys`,
    { keys: HOT_SET_KEYS }],
  [`${cacheSetting(DEFAULT_CACHE_CONCURRENCY, 1)}, ${HOT_SET_KEYS} keys`,
    { keys: HOT_SET_KEYS, readFraction: 1 }],
];

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const durationMs = args.durationMs;
  const common: DsyncCacheOptions = { ...(durationMs === undefined ? {} : { durationMs }),
    ...(process.env.DSYNC_BENCH_CPU_PROF_DIR === undefined ? {}
      : { cpuProfDir: process.env.DSYNC_BENCH_CPU_PROF_DIR }) };
  const redis = await startRedis();
  const rows: Row[] = [];
  try {
    if (!args.noReference) {
      rows.push(...await benchRedisCache(
        { redis, ...(durationMs === undefined ? {} : { durationMs }) }));
    }
    for (const [setting, o] of DSYNC_ROWS) {
      if (!selected(args, setting)) continue;
      rows.push(...await benchDsyncCache(redis.url, { ...common, ...o }));
    }
  } finally {
    await redis.stop();
  }
  if (!args.noReference) {
    rows.push(...await benchKoaCeiling(durationMs === undefined ? {} : { durationMs }));
  }
  const hitPath = rows.find((r) => r.setting === DSYNC_ROWS[2]?.[0]);
  const koa = rows.find((r) => r.system.startsWith('koa'));
  if (hitPath !== undefined && koa !== undefined && koa.opsPerSec > 0) {
    process.stdout.write(`hit path: ${(hitPath.opsPerSec / koa.opsPerSec * 100).toFixed(0)}% ` +
      'of the bare Koa ceiling (target: at least 80%)\n');
  }
  printRows('Cache: 90% GET / 10% PUT, 10,000 keys, 100-byte values', rows,
    args.noReference ? '' : rows[0]?.system ?? '', args);
  for (const r of rows) {
    if (r.extra !== undefined) process.stdout.write(`${r.system}: ${JSON.stringify(r.extra)}\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
