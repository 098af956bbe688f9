// Issue 7.6 and 7.11 against three real nodes: a crowd of blocking acquires on one held lock
// is answered as the contract says (granted in FIFO order as the lock is passed on, or
// LOCK_TIMEOUT, or 429 past the waitersPerLock bound, never 503), without an election; and
// acquires that a bound refuses never reach the Raft log, so a client hammering a bound does
// not grow everyone's log. Behaviour only: the times are printed, not asserted (the
// lock-waiters benchmark measures them).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LOCK_LIMITS } from '../../src/lock/lock-table-limits.js';
import { Cluster, type ClusterNode } from '../support/cluster.js';
import { post } from '../support/http.js';
import {
  checkCrowd, countCodes, distinctErrors, electionsDuring, runCrowd,
} from '../support/lock-crowd.js';

let cluster: Cluster;
let leader: ClusterNode;

beforeAll(async () => {
  cluster = await Cluster.start({ service: 'lock', startTimeoutMs: 60_000,
    extraArgs: ['--log-level', 'warn'] });
  leader = await cluster.leader(30_000);
});
afterAll(async () => { await cluster.stop(); });

/** Commands this leader has put into the log (several may share one entry): the sum of
 * the dsync_raft_entry_commands histogram. */
async function commandsLogged(node: ClusterNode): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  // No line until the first entry of the term was proposed.
  const m = /^dsync_raft_entry_commands_sum\{[^}]*\} (\d+)/m.exec(text);
  return m?.[1] === undefined ? 0 : Number(m[1]);
}

describe('a crowd of waiters on one lock (issue 7.6)', () => {
  it('2,000 blocking acquires through one node: FIFO grants, 429 past the bound, no 503',
    { timeout: 240_000 }, async () => {
      const count = 2_000;
      const bound = DEFAULT_LOCK_LIMITS.waitersPerLockMax;
      const before = await commandsLogged(leader);
      const r = await runCrowd({ url: leader.url, nodeUrls: cluster.nodes.map((n) => n.url),
        name: 'crowd', count, waitMs: 120_000, ttlMs: 30_000 });
      const codes = countCodes(r);
      console.log(`crowd of ${count}: ${JSON.stringify(codes)}; queued ${r.queue.length} in ` +
        `${r.enqueueMs.toFixed(0)} ms, passed down the queue in ${r.drainMs.toFixed(0)} ms; ` +
        `slowest /health ${r.healthMaxMs.toFixed(0)} ms; terms ${r.termsBefore} → ${r.termsAfter}`);
      expect(checkCrowd(r, count, bound), distinctErrors(r).join('\n')).toEqual([]);
      expect(r.queue.length).toBe(bound);
      expect(codes).toEqual({ GRANTED: bound, RESOURCE_EXHAUSTED: count - bound });
      expect(electionsDuring(r), 'elections during the crowd').toBe(0);
      expect(r.healthFailures).toBe(0);
      // The refused thousand never reached the log: one command per queued acquire and one
      // per release (plus the holder's two and a few leader duties).
      const grown = await commandsLogged(leader) - before;
      expect(grown).toBeGreaterThanOrEqual(2 * bound + 2);
      expect(grown).toBeLessThan(2 * bound + 100);
    });
});

describe('refused work stays out of the log (issue 7.11)', () => {
  it('10,000 acquires by one owner, 9,000 refused by locksPerOwner: ~1,000 commands logged',
    { timeout: 240_000 }, async () => {
      const total = 10_000;
      const bound = DEFAULT_LOCK_LIMITS.locksPerOwnerMax;
      const before = await commandsLogged(leader);
      const codes: Record<string, number> = {};
      let next = 0;
      // 64 at a time, in flight together: the leader must count the ones not yet applied.
      await Promise.all(Array.from({ length: 64 }, async () => {
        while (next < total) {
          const i = next++;
          const r = await post<{ error?: { code?: string; limit?: string } }>(leader.url,
            `/v1/locks/hog-${i}/acquire`, { owner: 'hog', ttlMs: 60_000 }, 30_000);
          const key = r.status === 200 ? 'GRANTED' : `${r.status} ${r.body.error?.code} ` +
            `${r.body.error?.limit ?? ''}`;
          codes[key] = (codes[key] ?? 0) + 1;
        }
      }));
      const grown = await commandsLogged(leader) - before;
      console.log(`${total} acquires by one owner: ${JSON.stringify(codes)}; ` +
        `${grown} commands logged`);
      expect(codes).toEqual({ GRANTED: bound,
        '429 RESOURCE_EXHAUSTED locksPerOwner': total - bound });
      expect(grown).toBeGreaterThanOrEqual(bound);
      expect(grown).toBeLessThan(bound + 100);
    });
});
