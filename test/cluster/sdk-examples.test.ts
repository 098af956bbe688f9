// The runnable examples of docs/sdk.md (examples/*.ts), each run as its own process with tsx
// against a real lock cluster, a real queue cluster and a real cache cluster with Redis
// behind, given one mixed DSYNC_ENDPOINTS list (the SDK sorts it by service). Each must exit
// 0 and print what its comments promise, so the guide cannot drift from the code.
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, ROOT } from '../support/cluster.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

let locks: Cluster;
let cache: Cluster;
let queue: Cluster;
let redis: RedisServer;
let endpoints: string;

beforeAll(async () => {
  redis = await startRedis();
  [locks, queue, cache] = await Promise.all([
    Cluster.start({ service: 'lock', startTimeoutMs: 60_000 }),
    Cluster.start({ service: 'queue', startTimeoutMs: 60_000 }),
    Cluster.start({ service: 'cache', size: 2, startTimeoutMs: 60_000,
      env: { DSYNC_REDIS_URL: redis.url } }),
  ]);
  await locks.leader(30_000);
  // One node of each service: the SDK learns the other lock nodes from /v1/cluster.
  endpoints = [locks.nodes[0]!.url, queue.nodes[0]!.url, ...cache.nodes.map((n) => n.url)]
    .join(',');
});
afterAll(async () => {
  await Promise.all([locks?.stop(), queue?.stop(), cache?.stop()]);
  await redis?.stop();
});

const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

function runExample(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSX, join(ROOT, 'examples', file)], {
      cwd: ROOT, timeout: 60_000, env: { ...process.env, DSYNC_ENDPOINTS: endpoints },
    }, (err, stdout, stderr) => resolve({
      code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }));
  });
}

/** What each example must print (one pattern per line it promises). */
const EXPECTED: Readonly<Record<string, readonly RegExp[]>> = {
  'locks.ts': [/holding examples\/report with fencing token \d+/,
    /the other owner got LOCK_TIMEOUT/, /withLock ran under token \d+/],
  'election.ts': [/node-a leads, term \d+/, /node-b leads, term \d+ > \d+: true/,
    /observed leaders: .*node-a → node-b/],
  'cache.ts': [/read \{ name: 'Ada', visits: 0 \} version \d+/, /session expires at \d{4}-/,
    /getMany found examples\/user:1, examples\/session:42/],
  'queue.ts': [/published 3 messages/, /received order 1 delivery 1/, /acked 1/,
    /consumed orders 2 - acked 1 nacked 2/, /dead letters 1/, /redriven 1/,
    /after redrive: order 3/],
  'errors.ts': [/NOT_HELD 409 not_holder/, /INVALID_ARGUMENT field ttlMs/,
    /ABORTED: changed my mind/, /DEADLINE_EXCEEDED after NETWORK/, /still held: held/],
};

describe('examples/*.ts run against real clusters', { timeout: 120_000 }, () => {
  it('covers every example file', () => {
    expect(readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.ts')).sort())
      .toEqual(Object.keys(EXPECTED).sort());
  });

  for (const [file, patterns] of Object.entries(EXPECTED)) {
    it(`examples/${file} exits 0 and prints what it promises`, async () => {
      const r = await runExample(file);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      for (const p of patterns) expect(r.stdout).toMatch(p);
    });
  }
});
