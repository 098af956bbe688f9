// The cache's consistency promise (API.md: "linearizable per key") checked from outside:
// concurrent clients on a few keys through every pod, each operation recorded on one
// monotonic clock, the history checked with the Wing–Gong checker. Faults are kill -9.
//
// What kill -9 may lose is part of the contract, and the workload respects it: under
// write-back a dirty (M) line lives only in its pod until written back, so a pod that is
// killed here only serves reads (it holds clean S/E copies as a sharer, and it is the home
// of some of the keys, whose directory it loses). Writes whose outcome the client did not
// learn (errors, timeouts, the pod died) are "pending": they may have taken effect or not.
// Write-through promises more: every acknowledged PUT is in Redis, so killing every pod
// loses nothing. Run `npm run build` first: the nodes run dist/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type ClusterNode } from '../support/cluster.js';
import { call, get } from '../support/http.js';
import { HistoryRecorder } from '../support/history.js';
import {
  checkLinearizable, describeReport, type RegisterOp,
} from '../support/linearizability.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

/** Node start-up on a loaded two-core machine can take many seconds. */
const START_TIMEOUT_MS = 45_000;
/** A client gives up on one request after this long (the node's own deadline is 5 s). */
const OP_TIMEOUT_MS = 8000;
/** Start-up, a restart with its grace period and the workload, on a slow machine. */
const TEST_TIMEOUT_MS = 240_000;

const path = (key: string): string => `/v1/cache/${encodeURIComponent(key)}`;

/** Keys whose home is `home`, found by asking any node (homes are a pure function). */
async function keysHomedAt(node: ClusterNode, home: string, count: number, prefix: string):
  Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; out.length < count && i < 1000; i++) {
    const r = await get<{ home: string }>(node.url, `${path(`${prefix}${i}`)}/state`);
    if (r.body.home === home) out.push(`${prefix}${i}`);
  }
  expect(out).toHaveLength(count);
  return out;
}

interface Recorder {
  readonly history: HistoryRecorder<RegisterOp>;
  counts: { ok: number; failed: number };
}

/** One operation against one node, recorded: failed writes as pending, failed reads dropped. */
async function recordOp(rec: Recorder, node: ClusterNode, op: 'read' | 'write', key: string,
  value: string, label: string): Promise<void> {
  const h = rec.history;
  const callAt = h.now();
  let status = 0;
  let body: { value?: unknown } = {};
  try {
    const r = op === 'read' ? await call<{ value?: unknown }>(node.url, 'GET', path(key),
      undefined, OP_TIMEOUT_MS)
      : await call<{ value?: unknown }>(node.url, 'PUT', path(key), { value }, OP_TIMEOUT_MS);
    status = r.status;
    body = r.body;
  } catch { /* network error or timeout: the outcome is unknown */ }
  const retAt = h.now();
  const done = status === 200 || (op === 'read' && status === 404);
  if (done) rec.counts.ok++;
  else rec.counts.failed++;
  if (op === 'write') {
    h.record({ op, key, value, call: callAt, ret: done ? retAt : null, label });
  } else if (done) {
    const v = status === 404 ? null : body.value;
    expect(v === null || typeof v === 'string', `read of ${key} returned ${String(v)}`).toBe(true);
    h.record({ op, key, value: v as string | null, call: callAt, ret: retAt, label });
  }
}

/** Every key must be linearizable. A key the search gave up on fails too: these histories
 * are short, so a give-up means the check did not happen (the message names the keys). */
function expectLinearizable(history: readonly RegisterOp[]): void {
  const res = checkLinearizable(history);
  if (res.ok !== true) throw new Error(describeReport(res));
}

/** A client that loops until `stop()`: reads, or reads and writes, random keys via `node`. */
async function client(rec: Recorder, node: () => ClusterNode, keys: readonly string[],
  writes: boolean, name: string, running: () => boolean): Promise<void> {
  let n = 0;
  let seed = [...name].reduce((a, c) => a * 31 + c.charCodeAt(0), 7) >>> 0;
  const rand = (m: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 8) % m;
  };
  while (running()) {
    const key = keys[rand(keys.length)]!;
    const write = writes && rand(10) < 4;
    const target = node();
    if (!target.running) {
      await new Promise((r) => setTimeout(r, 50)); // the pod is down: wait for its restart
      continue;
    }
    await recordOp(rec, target, write ? 'write' : 'read', key, `${name}-${n++}`,
      `${name}@${target.id}`);
  }
}

describe('cache linearizability', () => {
  let redis: RedisServer;

  beforeAll(async () => { redis = await startRedis(); });
  afterAll(async () => { await redis?.stop(); });

  it('write-back: concurrent clients through every pod, kill -9 of a sharer that is also ' +
    'the home of half the keys', async () => {
    const cluster = await Cluster.start({ service: 'cache', startTimeoutMs: START_TIMEOUT_MS,
      env: { DSYNC_REDIS_URL: redis.url } });
    try {
      const [victim, w1, w2] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
      const keys = [...await keysHomedAt(w1, victim.id, 2, 'lin-'),
        ...await keysHomedAt(w1, w1.id, 1, 'lin-'), ...await keysHomedAt(w1, w2.id, 1, 'lin-')];
      const rec: Recorder = { history: new HistoryRecorder(), counts: { ok: 0, failed: 0 } };
      let running = true;
      const clients = [
        client(rec, () => victim, keys, false, 'r0', () => running),
        client(rec, () => victim, keys, false, 'r1', () => running),
        client(rec, () => w1, keys, true, 'a0', () => running),
        client(rec, () => w1, keys, true, 'a1', () => running),
        client(rec, () => w2, keys, true, 'b0', () => running),
        client(rec, () => w2, keys, true, 'b1', () => running),
      ];
      try {
        await waitFor('some operations before the fault', () => rec.counts.ok >= 150, 30_000);
        await victim.crash();
        // Keys homed at the dead pod, and keys it held in E (the home cannot tell E from a
        // silently written M, so it waits for the owner's data), stall until it is back: wait
        // until the clients have felt the outage, then restart it.
        const failedAtCrash = rec.counts.failed;
        await waitFor('clients to see the outage', () => rec.counts.failed > failedAtCrash,
          30_000);
        victim.start();
        await victim.waitHealthy(START_TIMEOUT_MS);
        // The restarted home refuses grants until its earlier life's copies ran out; wait
        // until it serves again, then let the workload run on.
        const okAtRestart = rec.counts.ok;
        await waitFor('operations through the restarted pod', async () =>
          (await get(victim.url, path(keys[0]!))).status !== 503 && rec.counts.ok >=
            okAtRestart + 150, 45_000);
      } finally {
        running = false;
        await Promise.all(clients);
      }
      // Final reads through every pod close the history.
      for (const n of cluster.nodes) for (const k of keys) await recordOp(rec, n, 'read', k, '', 'final');
      expect(rec.counts.ok).toBeGreaterThan(300);
      expectLinearizable(rec.history.records);
    } finally {
      await cluster.stop();
    }
  }, TEST_TIMEOUT_MS);

  it('write-through: kill -9 of every pod loses no acknowledged write', async () => {
    const cluster = await Cluster.start({ service: 'cache', startTimeoutMs: START_TIMEOUT_MS,
      env: { DSYNC_REDIS_URL: redis.url, DSYNC_WRITE_POLICY: 'write-through' } });
    try {
      const keys = ['wt-0', 'wt-1', 'wt-2', 'wt-3'];
      const rec: Recorder = { history: new HistoryRecorder(), counts: { ok: 0, failed: 0 } };
      let running = true;
      const clients = cluster.nodes.flatMap((n, i) => [0, 1].map((j) =>
        client(rec, () => n, keys, true, `c${i}${j}`, () => running)));
      try {
        await waitFor('write-through operations', () => rec.counts.ok >= 200, 30_000);
        // Every pod dies while writes are in flight; nothing is flushed on the way out.
        await Promise.all(cluster.nodes.map((n) => n.crash()));
      } finally {
        running = false;
        await Promise.all(clients);
      }
      const h = await get<{ writePolicy: string }>(cluster.nodes[0]!.url, '/health')
        .catch(() => null);
      expect(h).toBeNull(); // really down
      for (const n of cluster.nodes) n.start();
      await Promise.all(cluster.nodes.map((n) => n.waitHealthy(START_TIMEOUT_MS)));
      for (const n of cluster.nodes) {
        for (const k of keys) {
          await waitFor(`${k} readable through ${n.id}`, async () => {
            const before = rec.counts.ok;
            await recordOp(rec, n, 'read', k, '', `after-restart@${n.id}`);
            return rec.counts.ok > before;
          }, 30_000);
        }
      }
      expectLinearizable(rec.history.records);
      expect(rec.history.records.filter((r) => r.op === 'write' && r.ret !== null).length)
        .toBeGreaterThan(50);
    } finally {
      await cluster.stop();
    }
  }, TEST_TIMEOUT_MS);
});
