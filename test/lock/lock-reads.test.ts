// Reads in read mode `lease` on real processes (docs/runtime.md, "Lease reads"): a healthy
// leader answers GETs from its lease without a quorum round, and a leader cut off by the
// fault proxies stops doing so once its lease lapses, before the others can elect a leader
// and change the lock: it answers 503 (its ReadIndex fallback finds no quorum) and never the
// state the new leader has replaced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type ClusterNode } from '../support/cluster.js';
import { call, post } from '../support/http.js';
import { waitFor } from '../support/wait.js';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start({ service: 'lock', proxies: true, startTimeoutMs: 60_000,
    // Election timeouts of 3-6 s: the old leader steps down (CheckQuorum) well after its lease
    // lapses, so reads reach it in between even on a busy machine.
    extraArgs: ['--read-mode', 'lease', '--request-timeout-ms', '1000',
      '--election-ticks', '30'] });
});
afterAll(async () => { await cluster.stop(); });

/** The value of a counter series of /metrics whose labels include `labels`, 0 when none. */
async function counter(node: ClusterNode, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const READS = 'dsync_raft_reads_total';

interface Observed {
  readonly sentAt: number;
  readonly status: number;
  readonly owners: string[];
}

describe('lease reads', () => {
  it('a healthy leader answers reads from its lease', async () => {
    const leader = await cluster.leader(15_000);
    const r = await post(leader.url, '/v1/locks/lr/acquire', { owner: 'o1', ttlMs: 60_000 });
    expect(r.status).toBe(200);
    // A leader just elected holds no lease until a heartbeat round has been answered (its
    // first reads fall back to ReadIndex); afterwards every read is a lease read.
    await waitFor('the first lease read', async () => {
      await call(leader.url, 'GET', '/v1/locks/lr');
      return await counter(leader, READS, 'kind="lease"') > 0;
    });
    const before = await counter(leader, READS, 'kind="lease"');
    for (let i = 0; i < 5; i++) {
      const v = await call<{ holders: { owner: string }[] }>(leader.url, 'GET', '/v1/locks/lr');
      expect(v.status).toBe(200);
      expect(v.body.holders.map((h) => h.owner)).toEqual(['o1']);
    }
    expect(await counter(leader, READS, 'kind="lease"')).toBeGreaterThanOrEqual(before + 5);
  });

  it('a partitioned leader refuses reads once its lease lapses, never serving a stale lock',
    async () => {
      const old = await cluster.leader(15_000);
      const fallbacksBefore = await counter(old, READS, 'kind="lease_fallback"');
      // Sockets stay open and bytes vanish: the leader learns nothing, as behind a dead switch.
      cluster.isolate(old.id, 'blackhole');
      const seen: Observed[] = [];
      let stop = false;
      const poll = (async () => {
        while (!stop) {
          const sentAt = Date.now();
          const v = await call<{ holders?: { owner: string }[] }>(old.url, 'GET',
            '/v1/locks/lr', undefined, 5_000).catch(() => null);
          if (v !== null) {
            const owners = (v.body.holders ?? []).map((h) => h.owner);
            seen.push({ sentAt, status: v.status, owners });
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const rest = cluster.nodes.filter((n) => n !== old);
      const next = await cluster.leader(20_000, rest);
      // The new leader changes the lock: whoever reads it afterwards must see o2.
      const changed = await waitFor('the release and o2\'s grant through the new leader',
        async () => {
          const rel = await post(next.url, '/v1/locks/lr/release', { owner: 'o1' });
          if (rel.status !== 200 && rel.status !== 409) return null;
          const acq = await post(next.url, '/v1/locks/lr/acquire', { owner: 'o2', ttlMs: 60_000 });
          return acq.status === 200 ? Date.now() : null;
        }, 20_000, 100);
      // Reads of the old leader sent after the change must not answer the old state.
      await waitFor('a read of the old leader sent after the change', () =>
        seen.some((o) => o.sentAt > changed), 20_000);
      stop = true;
      await poll;
      const stale = seen.filter((o) => o.sentAt > changed && o.status === 200);
      expect(stale).toEqual([]);
      expect(seen.filter((o) => o.sentAt > changed).every((o) => o.status === 503)).toBe(true);
      // While it still believed it led, the old leader fell back to ReadIndex at least once.
      expect(await counter(old, READS, 'kind="lease_fallback"')).toBeGreaterThan(fallbacksBefore);
      cluster.healAll();
      await cluster.leader(20_000);
      const after = await waitFor('the healed old leader to serve o2', async () => {
        const v = await call<{ holders?: { owner: string }[] }>(old.url, 'GET', '/v1/locks/lr');
        return v.status === 200 ? v : null;
      }, 20_000);
      expect((after.body.holders ?? []).map((h) => h.owner)).toEqual(['o2']);
    });
});
