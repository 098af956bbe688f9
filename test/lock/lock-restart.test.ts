// Issue 7.7, "a restarted node is back in seconds": a lock node answers /health from the
// moment it listens, also while it reads a long log back and replays it (saying
// `recovering: true`), /ready says 503 until it has caught up, and the lock routes answer
// 503 meanwhile instead of hanging. The log is written straight into the node's data dir
// (the real RaftStorage and the real command encoding): 200,000 entries, among them a crowd
// of 1,500 waiters on one lock, which is what made a restart take tens of seconds.
// A second test kills a follower of a three-node cluster after real traffic and a crowd,
// and checks it comes back and catches up. Times are printed, not asserted.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, type ClusterNode, type HealthBody } from '../support/cluster.js';
import { get, post } from '../support/http.js';
import { runCrowd } from '../support/lock-crowd.js';
import { LOG_CROWD, writeLockLog } from '../support/lock-log.js';
import { waitFor } from '../support/wait.js';

const LOG_ENTRIES = 200_000;

let cluster: Cluster | null = null;
afterEach(async () => { await cluster?.stop(); cluster = null; });

async function health(node: ClusterNode): Promise<HealthBody | null> {
  return node.health(2000);
}

describe('restart with a long log (issue 7.7)', () => {
  it('/health answers while the log is read back and replayed; /ready and the API say 503',
    { timeout: 180_000 }, async () => {
      cluster = await Cluster.start({ service: 'lock', size: 1, startNodes: 0,
        extraArgs: ['--log-level', 'warn', '--snapshot-entries', '10000000'] });
      const node = cluster.nodes[0]!;
      await writeLockLog(join(node.spec.dataDir, 'raft'), node.id, LOG_ENTRIES);
      const t0 = performance.now();
      node.start();
      const seen = { recovering: 0, readyRefused: 0, apiRefused: 0 };
      let firstHealthMs = -1;
      const done = await waitFor('the node caught up and ready', async () => {
        const h = await health(node);
        if (h === null) return null;
        if (firstHealthMs < 0) firstHealthMs = performance.now() - t0;
        if (h.recovering === true) {
          seen.recovering++;
          const api = await get(node.url, '/v1/locks/crowded');
          if (api.status === 503) seen.apiRefused++;
          else expect(api.status, JSON.stringify(api.body)).toBe(200);
        }
        const ready = await get(node.url, '/ready');
        if (ready.status === 503) seen.readyRefused++;
        return ready.status === 200 && h.recovering === false ? h : null;
      }, 150_000, 20);
      const readyMs = performance.now() - t0;
      console.log(`${LOG_ENTRIES} entries: first /health after ${firstHealthMs.toFixed(0)} ms, ` +
        `ready after ${readyMs.toFixed(0)} ms; ${JSON.stringify(seen)}`);
      expect(seen.recovering, 'answered /health with recovering: true').toBeGreaterThan(0);
      expect(seen.readyRefused).toBeGreaterThan(0);
      expect(done.raft?.appliedIndex).toBeGreaterThanOrEqual(LOG_ENTRIES);
      // The replayed table is the one the log describes.
      const view = await get<{ holders: Array<{ owner: string }>; waiters: unknown[] }>(
        node.url, '/v1/locks/crowded');
      expect(view.body.holders.map((h) => h.owner)).toEqual(['holder']);
      expect(view.body.waiters.length).toBe(1_000);
    });

  it('a follower killed -9 after traffic and a crowd comes back and catches up',
    { timeout: 180_000 }, async () => {
      cluster = await Cluster.start({ service: 'lock', startTimeoutMs: 60_000,
        extraArgs: ['--log-level', 'warn'] });
      const leader = await cluster.leader(30_000);
      let next = 0;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (next < 2_000) {
          const i = next++;
          const name = `t${i % 50}`;
          const owner = `c${i}`;
          const g = await post<{ token: number }>(leader.url, `/v1/locks/${name}/acquire`,
            { owner, waitMs: 5_000 }, 30_000);
          if (g.status === 200) {
            await post(leader.url, `/v1/locks/${name}/release`, { owner, token: g.body.token });
          }
        }
      }));
      const crowd = await runCrowd({ url: leader.url, nodeUrls: cluster.nodes.map((n) => n.url),
        name: 'crowded', count: LOG_CROWD, waitMs: 60_000, ttlMs: 30_000 });
      expect(crowd.answers.length).toBe(LOG_CROWD);
      const follower = cluster.nodes.find((n) => n !== leader)!;
      await follower.crash();
      const t0 = performance.now();
      follower.start();
      const back = await follower.waitHealthy(60_000);
      const healthMs = performance.now() - t0;
      const target = (await health(leader))?.raft?.commitIndex ?? Infinity;
      await waitFor(`${follower.id} applied ${target}`, async () =>
        ((await health(follower))?.raft?.appliedIndex ?? 0) >= target, 60_000);
      await waitFor(`${follower.id} ready`, async () =>
        (await get(follower.url, '/ready')).status === 200, 60_000);
      console.log(`follower restart after ${target} entries: /health after ` +
        `${healthMs.toFixed(0)} ms (recovering: ${String(back.recovering)}), caught up and ` +
        `ready after ${(performance.now() - t0).toFixed(0)} ms`);
    });
});
