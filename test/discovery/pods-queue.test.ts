// Queue pods that find each other by headless-Service DNS (a real DNS server on loopback),
// end to end: three pods with empty volumes form one cluster under generated node ids, every
// partition gets a leader, GET /v1/cluster lists the pods; then SIGTERM of the pod that leads
// the most partitions: it hands every partition it leads over before it exits with code 0
// (an exit code 0 means every shutdown step finished within its bound), and no message whose
// publish was acknowledged is lost. Then the stopped pod comes back from its volume, and
// spec.replicas 3 → 4 (a FAKE Kubernetes API server) moves the partitions onto four pods.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterNode } from '../support/cluster.js';
import { get } from '../support/http.js';
import { waitFor } from '../support/wait.js';
import { planPlacement } from '../../src/ring/placement.js';
import { leaders, partitionsOf, QueueApi, waitReady } from '../queue/queue-cluster.js';
import { FakeKubeApi } from './fake-kube-api.js';
import { NAMESPACE, PodCluster } from './pod-cluster.js';

const PARTITIONS = 4;
const START_MS = 90_000;
const TOPICS = ['orders', 'mail', 'audit', 'jobs', 'billing', 'search'];
const PER_TOPIC = 20;
let pods: PodCluster;
let kube: FakeKubeApi;

beforeAll(async () => {
  kube = new FakeKubeApi(NAMESPACE, 'queue', 3);
  await kube.start();
  pods = await PodCluster.create({ service: 'queue', replicas: 3, kube,
    extraArgs: ['--partitions', String(PARTITIONS)] });
});
afterAll(async () => {
  await pods?.stop();
  await kube?.stop();
});

/** Pods keyed by the node id they report (ids are generated at first boot). */
async function byNodeId(): Promise<Map<string, ClusterNode>> {
  const out = new Map<string, ClusterNode>();
  for (const n of pods.running()) out.set((await n.waitHealthy(START_MS)).node, n);
  return out;
}

/** leaders() of queue-cluster.ts compares node ids with ClusterNode ids: give it pods whose
 * ids are the generated ones. */
function asNodes(ids: ReadonlyMap<string, ClusterNode>): ClusterNode[] {
  return [...ids].map(([id, n]) =>
    Object.defineProperty(Object.create(n) as ClusterNode, 'id', { value: id }));
}

describe('queue pods discovered by headless-Service DNS', () => {
  let ids: Map<string, ClusterNode>;

  it('three pods with empty volumes form one cluster; GET /v1/cluster lists them', async () => {
    for (const i of [0, 1, 2]) pods.start(i);
    ids = await byNodeId();
    expect([...ids.keys()].sort()).toEqual([
      expect.stringMatching(/^queue-0-[0-9a-f]{8}$/), expect.stringMatching(/^queue-1-/),
      expect.stringMatching(/^queue-2-/)]);
    await waitReady(pods.running(), START_MS);
    await leaders(asNodes(ids), PARTITIONS, START_MS);
    const c = await get<{ leader: null; members: Array<{ id: string; url: string | null }> }>(
      pods.pod(0).url, '/v1/cluster');
    expect(c.status).toBe(200);
    expect(c.body.members.map((m) => m.id).sort()).toEqual([...ids.keys()].sort());
    expect(c.body.members.every((m) => m.url?.includes('.queue-headless.') === true)).toBe(true);
  });

  it('SIGTERM of a pod leading partitions: every leadership moves before it exits (code 0), ' +
    'no acknowledged message is lost', async () => {
    const api = new QueueApi(pods.pod(0).url);
    const published = new Set<string>();
    for (const t of TOPICS) {
      for (let k = 0; k < PER_TOPIC; k += 10) {
        const batch = Array.from({ length: 10 }, (_, j) => ({ body: { t, n: k + j } }));
        for (const id of await api.publish(t, ...batch)) published.add(id);
      }
    }
    const led = await leaders(asNodes(ids), PARTITIONS, START_MS);
    const count = new Map<string, number>();
    for (const id of led.values()) count.set(id, (count.get(id) ?? 0) + 1);
    const [victimId] = [...count].sort((a, b) => b[1] - a[1])[0]!;
    const victim = ids.get(victimId)!;
    const ordinal = [...pods.pods].find(([, n]) => n === victim)![0];
    const ledByVictim = [...led].filter(([, id]) => id === victimId).map(([p]) => p);
    expect(ledByVictim.length).toBeGreaterThan(0);

    const exit = new Promise<number | null>((r) => victim.proc!.once('exit', (c) => r(c)));
    await victim.stop(30_000);
    expect(await exit).toBe(0);

    const lines = pods.logLines(ordinal);
    const done = lines.findIndex((l) => l['msg'] === 'shutdown complete');
    for (const p of ledByVictim) {
      const handover = lines.findIndex((l) => l['msg'] === 'transferring leadership before ' +
        'shutdown' && l['group'] === p);
      const stepDown = lines.findIndex((l, k) => k > handover && l['group'] === p &&
        l['msg'] === 'raft state change' && l['role'] === 'follower');
      expect(handover, `partition ${p}: handover logged`).toBeGreaterThanOrEqual(0);
      expect(stepDown, `partition ${p}: stepped down`).toBeGreaterThan(handover);
      expect(done, `partition ${p}: before exiting`).toBeGreaterThan(stepDown);
    }

    const rest = new Map([...ids].filter(([id]) => id !== victimId));
    await leaders(asNodes(rest), PARTITIONS, START_MS);
    const survivor = new QueueApi([...rest.values()][0]!.url);
    const received = new Set<string>();
    await waitFor('every acknowledged message received from the remaining pods', async () => {
      for (const t of TOPICS) {
        const r = await survivor.receiveRaw(t, { max: 100, visibilityMs: 60_000 });
        if (r.status !== 200) continue;
        for (const m of r.body.messages) received.add(m.id);
      }
      return [...published].every((id) => received.has(id));
    }, START_MS, 200);
    expect(received.size).toBe(published.size);
  });

  it('the stopped pod restarts from its volume under its id; spec.replicas 3 → 4: the ' +
    'partitions follow the placement over four pods', async () => {
    const stopped = [...pods.pods].find(([, n]) => !n.running)!;
    const before = [...ids].find(([, n]) => n === stopped[1])![0];
    stopped[1].start();
    expect((await stopped[1].waitHealthy(START_MS)).node).toBe(before);
    kube.scale(4);
    const fourth = pods.start(3);
    const id3 = (await fourth.waitHealthy(START_MS)).node;
    expect(id3).toMatch(/^queue-3-[0-9a-f]{8}$/);
    ids.set(id3, fourth);
    const sets = planPlacement([...ids.keys()].sort(), PARTITIONS, 3).sets;
    await waitFor('every partition\'s voters are its replica set over four pods', async () => {
      const rows = (await Promise.all(pods.running().map((n) => partitionsOf(n))))
        .flatMap((r) => r ?? []);
      return sets.every((set, p) => rows.some((r) => r.partition === p &&
        r.state === 'leader' && r.learners.length === 0 &&
        JSON.stringify([...r.voters].sort()) === JSON.stringify([...set].sort())));
    }, START_MS, 250);
    const c = await get<{ members: Array<{ id: string }> }>(fourth.url, '/v1/cluster');
    expect(c.body.members.map((m) => m.id).sort()).toEqual([...ids.keys()].sort());
  });
});
