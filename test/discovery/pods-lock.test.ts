// Lock pods that find each other by DNS, end to end: real `dsync serve` processes, a real DNS
// server on loopback serving A and SRV records the way a headless Service does (one pod's
// records appear late), and the Kubernetes API features against a FAKE API server (the one
// part that cannot run here). In order, on one cluster:
//   - three pods with empty volumes bootstrap one cluster under generated node ids;
//   - the leader labels its pod dsync.io/role=leader;
//   - spec.replicas 3 → 4: the fourth pod joins as a learner and is promoted;
//   - a pod restarted with an empty volume joins under a new id, the old id is removed;
//   - spec.replicas 4 → 3: the fourth pod is removed from the configuration before it exits;
//   - SIGTERM of the leader: leadership moves before it exits (code 0), the label follows;
//   - its volume, started with another cluster id, is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEADER_LABEL } from '../../src/discovery/kubernetes.js';
import type { ClusterNode } from '../support/cluster.js';
import { post } from '../support/http.js';
import { waitFor } from '../support/wait.js';
import { FakeKubeApi } from './fake-kube-api.js';
import { clusterOf, NAMESPACE, PodCluster, podLeader } from './pod-cluster.js';

const START_MS = 90_000;
let kube: FakeKubeApi;
let pods: PodCluster;

beforeAll(async () => {
  kube = new FakeKubeApi(NAMESPACE, 'lock', 3);
  await kube.start();
  pods = await PodCluster.create({ service: 'lock', replicas: 3, kube });
});
afterAll(async () => {
  await pods?.stop();
  await kube?.stop();
});

const idOf = async (n: ClusterNode): Promise<string> =>
  (await n.waitHealthy(START_MS)).node;

/** The configuration once the leader reports exactly `voters` and no learner. */
async function waitVoters(voters: readonly string[], timeoutMs = START_MS): Promise<void> {
  const want = [...voters].sort();
  await waitFor(`voters ${want.join(', ')}`, async () => {
    const { node } = await podLeader(pods.running(), timeoutMs);
    const c = await clusterOf(node);
    return c !== null && c.learners.length === 0 &&
      JSON.stringify([...c.voters].sort()) === JSON.stringify(want);
  }, timeoutMs, 200);
}

async function acquireRelease(base: string, name: string): Promise<void> {
  const r = await post<{ token: number }>(base, `/v1/locks/${name}/acquire`,
    { owner: 'pods-test', ttlMs: 10_000 });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  const rel = await post(base, `/v1/locks/${name}/release`, { owner: 'pods-test',
    token: r.body.token });
  expect(rel.status, JSON.stringify(rel.body)).toBe(200);
}

const labelled = (): string[] => [...kube.pods].filter(([, p]) =>
  p.labels[LEADER_LABEL] === 'leader').map(([name]) => name);

describe('lock pods discovered by headless-Service DNS (Kubernetes API: fake server)', () => {
  const ids: string[] = [];

  it('three pods with empty volumes bootstrap one cluster; one pod\'s records appear late',
    async () => {
      pods.publish(0);
      pods.publish(1);
      // lock-2's process runs, but its records are not published yet.
      for (const i of [0, 1, 2]) pods.pod(i).start();
      const early = await Promise.all([0, 1].map((i) => idOf(pods.pod(i))));
      await waitFor('lock-0 and lock-1 waiting for the third initial member', () =>
        [0, 1].every((i) => pods.logLines(i).some((l) =>
          l['msg'] === 'discovery: waiting before start-up')), START_MS);
      pods.publish(2);
      ids.push(...early, await idOf(pods.pod(2)));
      ids.forEach((id, i) => expect(id).toMatch(new RegExp(`^lock-${i}-[0-9a-f]{8}$`)));
      await waitVoters(ids);
      const { node } = await podLeader(pods.running());
      await acquireRelease(node.url, 'formed');
      // A follower forwards to the leader by its pod's DNS name.
      await acquireRelease(pods.running().find((n) => n !== node)!.url, 'forwarded');
      // Host names were resolved through the DNS server, not only the SRV records.
      expect(pods.dns.queries.some((q) => q.startsWith('lock-1.lock-headless.'))).toBe(true);
    });

  it('the leader labels its own pod dsync.io/role=leader', async () => {
    const { node } = await podLeader(pods.running());
    await waitFor('the leader label on the leader\'s pod', () =>
      JSON.stringify(labelled()) === JSON.stringify([node.id]), 20_000);
  });

  it('spec.replicas 3 → 4: the fourth pod joins as a learner and is promoted', async () => {
    kube.scale(4);
    ids.push(await idOf(pods.start(3)));
    expect(ids[3]).toMatch(/^lock-3-[0-9a-f]{8}$/);
    await waitVoters(ids);
    const learned = pods.running().flatMap((n, i) => pods.logLines(i).filter((l) =>
      l['msg'] === 'membership reconciler: changing the members').map((l) => [n.id, l]));
    expect(learned.map(([, l]) => (l as Record<string, unknown>)['change']))
      .toEqual(expect.arrayContaining(['addLearner']));
  });

  it('a pod back with an empty volume under an old name joins as a new member', async () => {
    const { node: leader } = await podLeader(pods.running());
    const i = [1, 2, 0].find((o) => pods.pod(o) !== leader)!;
    const old = ids[i]!;
    await pods.pod(i).crash();
    pods.wipe(i);
    pods.pod(i).start();
    const fresh = await idOf(pods.pod(i));
    expect(fresh).not.toBe(old);
    expect(fresh).toMatch(new RegExp(`^lock-${i}-[0-9a-f]{8}$`));
    ids[i] = fresh;
    await waitVoters(ids);
  });

  it('spec.replicas 4 → 3: the fourth pod leaves the configuration before it exits',
    async () => {
      kube.scale(3);
      const four = pods.pod(3);
      const exit = new Promise<number | null>((r) => four.proc!.once('exit', (c) => r(c)));
      await four.stop(30_000);
      expect(await exit).toBe(0);
      await waitVoters(ids.slice(0, 3));
      const left = pods.logLines(3).find((l) => l['msg'] ===
        'removed from the configuration before exiting');
      expect(left, 'lock-3 saw its removal before exiting').toBeDefined();
    });

  it('SIGTERM of the leader: leadership moves before it exits, with exit code 0', async () => {
    const { node: old, health } = await podLeader(pods.running());
    const i = [...pods.pods].find(([, n]) => n === old)![0];
    const exit = new Promise<number | null>((r) => old.proc!.once('exit', (c) => r(c)));
    await old.stop(30_000);
    expect(await exit).toBe(0);
    const lines = pods.logLines(i);
    const handover = lines.findIndex((l) => l['msg'] === 'transferring leadership before shutdown');
    expect(handover, 'the leader logged the handover').toBeGreaterThanOrEqual(0);
    const stepDown = lines.findIndex((l, k) => k > handover && l['msg'] === 'raft state change' &&
      l['role'] === 'follower');
    const done = lines.findIndex((l, k) => k > handover && l['msg'] === 'shutdown complete');
    expect(stepDown, 'stepped down before exiting').toBeGreaterThan(handover);
    expect(done).toBeGreaterThan(stepDown);
    const next = await podLeader(pods.running());
    expect(next.health.node).toBe(lines[handover]!['to']);
    expect(next.health.raft.term).toBe(health.raft.term + 1);
    await waitFor('the leader label moved to the new leader\'s pod', () =>
      JSON.stringify(labelled()) === JSON.stringify([next.node.id]), 20_000);
  });

  it('refuses to start on a volume of another cluster (exit code 2, says what to do)',
    async () => {
      const stopped = [...pods.pods].find(([, n]) => !n.running)![0];
      const r = await pods.serveUntilExit(stopped, ['--cluster-id', 'another']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/test/);
      expect(r.stderr).toMatch(/another/);
    });
});
