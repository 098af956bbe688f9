// The Kubernetes API calls of src/discovery/kubernetes.ts (@kubernetes/client-node) against a
// FAKE API server (test/discovery/fake-kube-api.ts: no cluster can run here): reading and
// watching spec.replicas, a watch that ends and is resumed, the leader label set and cleared;
// and every call is one the chart's Role allows when those features are on, nothing else.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { KubernetesApi, LEADER_LABEL } from '../../src/discovery/kubernetes.js';
import { LeaderLabeler } from '../../src/discovery/leader-label.js';
import { WantedReplicas } from '../../src/discovery/replicas.js';
import { find, render } from '../k8s/helm.js';
import { waitFor } from '../support/wait.js';
import { FakeKubeApi } from './fake-kube-api.js';

const NS = 'dsync-test';
let fake: FakeKubeApi;
let api: KubernetesApi;

beforeEach(async () => {
  fake = new FakeKubeApi(NS, 'lock', 3);
  await fake.start();
  // client-node speaks plain HTTP (the fake server) only with TLS verification off.
  api = new KubernetesApi({ server: fake.url, token: 'sa-token', skipTlsVerify: true });
});
afterEach(async () => {
  await fake.stop();
});

describe('Kubernetes API calls (against a fake API server)', () => {
  it('reads spec.replicas of the StatefulSet with the ServiceAccount token', async () => {
    expect(await api.replicas(NS, 'lock')).toBe(3);
    expect(fake.calls).toMatchObject([{ verb: 'get', resource: 'statefulsets', name: 'lock',
      authorization: 'Bearer sa-token' }]);
  });

  it('watches spec.replicas: now, on every change, and again after the watch ends', async () => {
    const seen: number[] = [];
    const errors: unknown[] = [];
    const w = api.watchReplicas(NS, 'lock', (r) => seen.push(r), (e) => errors.push(e));
    try {
      await waitFor('the first replica count', () => seen.length === 1);
      fake.scale(5);
      await waitFor('the scale-up', () => seen.at(-1) === 5);
      fake.endWatches(); // the API server closes watches after its timeout
      await waitFor('a resumed watch', () => fake.calls.filter((c) => c.verb === 'watch').length
        >= 2, 15_000);
      fake.scale(3);
      await waitFor('the scale-down', () => seen.at(-1) === 3);
    } finally {
      w.stop();
    }
    expect(seen).toEqual([3, 5, 3]);
    expect(fake.calls.filter((c) => c.verb === 'watch').every((c) => c.name === 'lock'))
      .toBe(true);
  });

  it('sets and clears the leader label with a merge patch', async () => {
    await api.setLeaderLabel(NS, 'lock-1', true);
    expect(fake.pods.get('lock-1')?.labels).toEqual({ [LEADER_LABEL]: 'leader' });
    expect(await api.hasLeaderLabel(NS, 'lock-1')).toBe(true);
    await api.setLeaderLabel(NS, 'lock-1', false);
    expect(fake.pods.get('lock-1')?.labels).toEqual({});
    expect(fake.calls.filter((c) => c.verb === 'patch').map((c) => c.contentType))
      .toEqual(['application/merge-patch+json', 'application/merge-patch+json']);
  });

  it('makes only calls the chart\'s Role allows when the features are on', async () => {
    await api.replicas(NS, 'lock');
    const w = api.watchReplicas(NS, 'lock', () => undefined, () => undefined);
    await waitFor('a watch', () => fake.calls.some((c) => c.verb === 'watch'));
    w.stop();
    await api.setLeaderLabel(NS, 'lock-2', true);
    await api.hasLeaderLabel(NS, 'lock-2');
    const role = find(render([], ['lock.kubernetesApi.labelLeader=true',
      'lock.kubernetesApi.reconcileMembership=true']), 'Role', 'dsync')['rules'] as Array<{
      apiGroups: string[]; resources: string[]; resourceNames: string[]; verbs: string[] }>;
    const denied = fake.calls.filter((c) => !role.some((r) => r.apiGroups.includes(c.group) &&
      r.resources.includes(c.resource) && r.resourceNames.includes(c.name) &&
      r.verbs.includes(c.verb)));
    expect(denied).toEqual([]);
    expect(new Set(fake.calls.map((c) => `${c.resource}:${c.verb}`))).toEqual(new Set([
      'statefulsets:get', 'statefulsets:watch', 'pods:patch', 'pods:get']));
  });

  it('the leader label follows the role: set on election, cleared on step-down and on stop; ' +
    'a label left by a crashed leader is cleared at start', async () => {
    fake.pods.get('lock-1')!.labels[LEADER_LABEL] = 'leader'; // a crashed leader's label
    let leader = false;
    const labeler = new LeaderLabeler(api, NS, 'lock-1', () => leader, pino({ level: 'silent' }));
    const label = (): string | undefined => fake.pods.get('lock-1')?.labels[LEADER_LABEL];
    labeler.start();
    try {
      await waitFor('the stale label cleared', () => label() === undefined);
      leader = true;
      await waitFor('the label set on election', () => label() === 'leader');
      leader = false; // stepped down (another node won an election)
      await waitFor('the label cleared on step-down', () => label() === undefined);
      leader = true;
      await waitFor('the label set again', () => label() === 'leader');
    } finally {
      await labeler.stop();
    }
    expect(label(), 'stop() clears the label before the handover').toBeUndefined();
    expect(fake.calls.every((c) => c.verb === 'patch' && c.name === 'lock-1')).toBe(true);
  });

  it('on SIGTERM spec.replicas is read once more: the watch may lag a scale-down', async () => {
    const wanted = new WantedReplicas(3);
    const log = pino({ level: 'silent' });
    wanted.follow(api, NS, 'lock', log);
    try {
      fake.replicas = 2; // changed without a watch event (the watch lags)
      expect(wanted.get()).toBe(3);
      expect(await wanted.reread(2000, log)).toBe(2);
      expect(fake.calls.some((c) => c.verb === 'get' && c.resource === 'statefulsets'))
        .toBe(true);
    } finally {
      wanted.stop();
    }
  });
});
