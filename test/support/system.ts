// A whole system of real processes on loopback, as `dsync dev` runs it: a lock cluster and a
// cache cluster with a real redis-server behind it, every node told the HTTP URLs of every
// other (DSYNC_SYSTEM_URLS), so that any node's cluster page shows all of them. For the
// browser tests and the screenshot script.
import { Cluster } from './cluster.js';
import { freePorts } from './ports.js';
import { startRedis, type RedisServer } from './redis-server.js';

export interface SystemOptions {
  readonly lockNodes?: number;
  readonly cacheNodes?: number;
  readonly startTimeoutMs?: number;
}

export interface RunningSystem {
  readonly lock: Cluster;
  readonly cache: Cluster;
  readonly redis: RedisServer;
  /** The DSYNC_SYSTEM_URLS every node got. */
  readonly systemUrls: string;
  stop(): Promise<void>;
}

/** HTTP ports are the even entries of a Cluster's `ports`. */
function urlsOf(ports: readonly number[]): string {
  return ports.filter((_, i) => i % 2 === 0).map((p) => `http://127.0.0.1:${p}`).join(',');
}

export async function startSystem(opts: SystemOptions = {}): Promise<RunningSystem> {
  const lockNodes = opts.lockNodes ?? 3;
  const cacheNodes = opts.cacheNodes ?? 3;
  const ports = await freePorts(2 * (lockNodes + cacheNodes));
  const lockPorts = ports.slice(0, 2 * lockNodes);
  const cachePorts = ports.slice(2 * lockNodes);
  const systemUrls = `lock=${urlsOf(lockPorts)};cache=${urlsOf(cachePorts)}`;
  const redis = await startRedis();
  const common = { startTimeoutMs: opts.startTimeoutMs ?? 45_000,
    extraArgs: ['--unsafe-no-fsync'] };
  const [lock, cache] = await Promise.allSettled([
    Cluster.start({ ...common, service: 'lock', size: lockNodes, ports: lockPorts,
      env: { DSYNC_SYSTEM_URLS: systemUrls } }),
    Cluster.start({ ...common, service: 'cache', size: cacheNodes, ports: cachePorts,
      env: { DSYNC_SYSTEM_URLS: systemUrls, DSYNC_REDIS_URL: redis.url } }),
  ]);
  if (lock.status === 'rejected' || cache.status === 'rejected') {
    // Cluster.start stops its own nodes when it fails; the other one is ours to stop.
    if (lock.status === 'fulfilled') await lock.value.stop();
    if (cache.status === 'fulfilled') await cache.value.stop();
    await redis.stop();
    throw lock.status === 'rejected' ? lock.reason : (cache as PromiseRejectedResult).reason;
  }
  return {
    lock: lock.value, cache: cache.value, redis, systemUrls,
    stop: async () => {
      await Promise.all([lock.value.stop(), cache.value.stop()]);
      await redis.stop();
    },
  };
}
