// The k6 scripts of benchmarks/k6 and the chart's `helm test` script, run for real against
// clusters of `dsync serve` processes on loopback: a lock cluster, a queue cluster, and a
// cache cluster with a real redis-server behind it. The k6 scripts go through our runner (no
// k6 binary here) in smoke mode: a few VUs, a bounded number of iterations, every non-timing
// threshold enforced and any uncaught error fatal, so that a broken script fails CI. Run
// `npm run build` first.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SMOKE, runK6Script } from '../../benchmarks/k6-runner/runner.js';
import { startQueueCluster } from '../queue/queue-cluster.js';
import { Cluster, ROOT } from '../support/cluster.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

/** Node start-up on a loaded two-core machine can take many seconds. */
const START_TIMEOUT_MS = 45_000;
const K6 = join(ROOT, 'benchmarks', 'k6');

const urls = (c: Cluster): string => c.nodes.map((n) => n.url).join(',');

describe('k6 scripts and the helm test script against real clusters', () => {
  let redis: RedisServer;
  let locks: Cluster;
  let cache: Cluster;
  let queue: Cluster;

  beforeAll(async () => {
    redis = await startRedis();
    [locks, cache, queue] = await Promise.all([
      Cluster.start({ service: 'lock', startTimeoutMs: START_TIMEOUT_MS,
        extraArgs: ['--log-level', 'warn'] }),
      Cluster.start({ service: 'cache', env: { DSYNC_REDIS_URL: redis.url },
        startTimeoutMs: START_TIMEOUT_MS, extraArgs: ['--log-level', 'warn'] }),
      startQueueCluster({ partitions: 4, extraArgs: ['--log-level', 'warn'] }),
    ]);
    await locks.leader(START_TIMEOUT_MS);
  }, 3 * START_TIMEOUT_MS);

  afterAll(async () => {
    await locks?.stop();
    await cache?.stop();
    await queue?.stop();
    await redis?.stop();
  });

  it('benchmarks/k6/locks.js passes its thresholds', async () => {
    const r = await runK6Script(join(K6, 'locks.js'), { smoke: DEFAULT_SMOKE,
      env: { DSYNC_LOCK_URLS: urls(locks) } });
    process.stdout.write(r.summary);
    expect(r.ok, r.summary).toBe(true);
    expect(r.iterations['uncontended']).toBeGreaterThan(0);
    expect(r.iterations['contended']).toBeGreaterThan(0);
    expect(r.thresholds.map((t) => t.key)).toContain('lock_grants');
  });

  it('benchmarks/k6/cache.js passes its thresholds', async () => {
    // A small hot set, so that a smoke run's few reads still hit the pods' own lines.
    const r = await runK6Script(join(K6, 'cache.js'), { smoke: DEFAULT_SMOKE,
      env: { DSYNC_CACHE_URLS: urls(cache), HOT_KEYS: '5', KEYS: '50' } });
    process.stdout.write(r.summary);
    expect(r.ok, r.summary).toBe(true);
    expect(r.iterations['mixed']).toBeGreaterThan(0);
    expect(r.iterations['hot']).toBeGreaterThan(0);
  });

  it('benchmarks/k6/queue.js passes its thresholds', async () => {
    // One topic: a smoke run's few VUs would otherwise produce to topics nobody consumes
    // (the topic follows the VU number, and producers and consumers are different VUs).
    const r = await runK6Script(join(K6, 'queue.js'), { smoke: DEFAULT_SMOKE,
      env: { DSYNC_QUEUE_URLS: urls(queue), TOPICS: '1' } });
    process.stdout.write(r.summary);
    expect(r.ok, r.summary).toBe(true);
  });

  it('the chart\'s helm test script passes against the three services', async () => {
    const targets = { lock: locks.nodes[1]!.url, queue: queue.nodes[0]!.url,
      cache: cache.nodes[2]!.url };
    const { stdout } = await promisify(execFile)(process.execPath,
      [join(ROOT, 'helm', 'dsync', 'files', 'smoke-test.mjs')],
      { env: { ...process.env, DSYNC_TEST_TARGETS: JSON.stringify(targets) }, timeout: 90_000 });
    expect(stdout).toContain('ok   lock: lock token');
    expect(stdout).toContain('ok   cache: key written');
    expect(stdout).toMatch(/ok {3}queue: /);
    expect(stdout).toContain('all services answered');
  });
});
