// Raft with real processes (the lock service as the replicated state machine): kill -9,
// SIGSTOP/SIGCONT, restarts and link cuts through fault proxies.
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster } from '../support/cluster.js';
import { call, post } from '../support/http.js';
import { waitFor } from '../support/wait.js';

let cluster: Cluster | null = null;
afterEach(async () => { await cluster?.stop(); cluster = null; });

const acquire = (url: string, name: string, owner: string, timeoutMs = 10_000) =>
  post(url, `/v1/locks/${name}/acquire`, { owner, ttlMs: 60_000 }, timeoutMs);

describe('Raft over real processes', () => {
  it('elects exactly one leader, and after kill -9 of the leader elects another (§5.2)',
    async () => {
      cluster = await Cluster.start({ service: 'lock' });
      const l1 = await cluster.leader();
      expect((await acquire(l1.url, 'a', 'x')).status).toBe(200);
      const t0 = Date.now();
      await l1.crash();
      const rest = cluster.nodes.filter((n) => n !== l1);
      const l2 = await cluster.leader(10_000, rest);
      const failoverMs = Date.now() - t0;
      console.log(`failover after kill -9 took ${failoverMs} ms`);
      expect(l2.id).not.toBe(l1.id);
      // The committed grant survived the failover; a new one commits too.
      const again = await acquire(l2.url, 'a', 'y');
      expect(again.status).toBe(409);
      expect((await acquire(l2.url, 'b', 'y')).status).toBe(200);
    });

  it('a partitioned old leader cannot commit; the majority goes on (§5.4, §6.4)', async () => {
    cluster = await Cluster.start({ service: 'lock', proxies: true });
    const old = await cluster.leader();
    cluster.isolate(old.id);
    // The isolated leader accepts the request but can never commit it.
    const stale = acquire(old.url, 'p', 'stale-client', 4000).catch((e: Error) => e);
    const rest = cluster.nodes.filter((n) => n !== old);
    const l2 = await cluster.leader(15_000, rest);
    expect((await acquire(l2.url, 'p', 'fresh-client')).status).toBe(200);
    const r = await stale;
    expect(r instanceof Error || r.status !== 200).toBe(true);
    cluster.healAll();
    // After healing, the old leader follows and its uncommitted entry is gone.
    await waitFor('old leader follows', async () =>
      (await old.health())?.raft?.leader === l2.id || (await old.health())?.raft?.state === 'leader');
    const view = await waitFor('old node serves the committed state', async () => {
      const v = await fetch(`${old.url}/v1/locks/p`).then((x) => x.json()) as
        { holders: Array<{ owner: string }> };
      return v.holders.length === 1 ? v : null;
    });
    expect(view.holders[0]!.owner).toBe('fresh-client');
  });

  it('a paused leader (SIGSTOP) is replaced and steps down when resumed (CheckQuorum)',
    async () => {
      cluster = await Cluster.start({ service: 'lock' });
      const l1 = await cluster.leader();
      l1.pause();
      const rest = cluster.nodes.filter((n) => n !== l1);
      const l2 = await cluster.leader(15_000, rest);
      expect((await acquire(l2.url, 'q', 'z')).status).toBe(200);
      l1.resume();
      await waitFor('resumed node follows the new leader', async () =>
        (await l1.health())?.raft?.state === 'follower');
      await cluster.leader();
    });

  it('a restarted follower catches up by log and, after compaction, by snapshot', async () => {
    cluster = await Cluster.start({ service: 'lock', extraArgs: ['--snapshot-entries', '100'] });
    const l = await cluster.leader();
    const f = cluster.nodes.find((n) => n !== l)!;
    await f.crash();
    for (let i = 0; i < 250; i++) expect((await acquire(l.url, `k${i}`, 'o')).status).toBe(200);
    f.start();
    const lh = await l.health();
    await waitFor('restarted follower applied everything', async () =>
      ((await f.health())?.raft?.appliedIndex ?? 0) >= (lh?.raft?.commitIndex ?? 1), 20_000);
    // It serves the same state (forwarding to the leader keeps reads linearizable).
    const v = await fetch(`${f.url}/v1/locks/k249`).then((x) => x.json()) as
      { holders: unknown[] };
    expect(v.holders).toHaveLength(1);
  });
});

describe('membership over real processes (§4.2.1 learners, §4.1 single-server changes)', () => {
  it('adds a learner that catches up, is promoted to voter, and can then be removed',
    async () => {
      cluster = await Cluster.start({
        service: 'lock', size: 4, startNodes: 3,
        nodeArgs: (i) => (i === 3 ? ['--join'] : ['--voters', 'lock-0,lock-1,lock-2']),
      });
      const l = await cluster.leader(10_000, cluster.nodes.slice(0, 3));
      for (let i = 0; i < 20; i++) expect((await acquire(l.url, `m${i}`, 'o')).status).toBe(200);
      const newcomer = cluster.nodes[3]!;
      newcomer.start();
      await newcomer.waitHealthy();
      // Not a member yet: not ready.
      expect((await fetch(`${newcomer.url}/ready`)).status).toBe(503);
      const added = await post(l.url, '/v1/cluster/learners/lock-3');
      expect(added.status).toBe(200);
      type View = { voters: string[]; learners: string[] };
      const promoted = await waitFor('learner promoted to voter', async () => {
        const v = (await fetch(`${l.url}/v1/cluster`).then((x) => x.json())) as View;
        return v.voters.includes('lock-3') && !v.learners.includes('lock-3') ? v : null;
      }, 20_000);
      expect(promoted.voters).toHaveLength(4);
      await waitFor('newcomer ready', async () => (await fetch(`${newcomer.url}/ready`)).ok);
      const v = await fetch(`${newcomer.url}/v1/locks/m19`).then((x) => x.json()) as
        { holders: unknown[] };
      expect(v.holders).toHaveLength(1);
      // Unknown ids are refused with a 400 that says what to do.
      const bad = await post(l.url, '/v1/cluster/learners/lock-9');
      expect(bad.status).toBe(400);
      const removed = await call(l.url, 'DELETE', '/v1/cluster/members/lock-3');
      expect(removed.status).toBe(200);
      expect((removed.body as unknown as View).voters).not.toContain('lock-3');
    });
});
