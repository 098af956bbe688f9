// The Helm chart, offline: `helm lint --strict` with the default, prod and bundled-monitoring
// values; `helm template` of each, every object validated against the Kubernetes schemas
// (kubernetes-models); what the pods get (checked with the node's own config parser); probes,
// PDBs, security settings, NetworkPolicy ports, RBAC that follows the enabled features; and
// values that the schema or the chart's checks must refuse.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IStatefulSet } from 'kubernetes-models/apps/v1';
import type { IContainer, IPodSpec, IService } from 'kubernetes-models/v1';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { describe, expect, it } from 'vitest';
import { loadNodeConfig } from '../../src/config.js';
import { DEFAULT_SHUTDOWN_DEADLINE_MS } from '../../src/observability/shutdown.js';
import { ROOT } from '../support/cluster.js';
import {
  CHART, NAMESPACE, all, find, helm, invalidObjects, render, renderRaw, valueArgs,
  type K8sObject,
} from './helm.js';

const SERVICES = ['lock', 'queue', 'cache'] as const;
const VALUE_SETS: ReadonlyArray<readonly [string, string[]]> = [
  ['default', []],
  ['prod', ['values-prod.yaml']],
  ['bundled monitoring', ['values-bundled-monitoring.yaml']],
];

const sts = (objs: readonly K8sObject[], name: string): IStatefulSet =>
  find(objs, 'StatefulSet', name) as unknown as IStatefulSet;
const podSpec = (s: IStatefulSet): IPodSpec => s.spec!.template.spec!;
const container = (s: IStatefulSet): IContainer => podSpec(s).containers[0]!;

/** Every pod spec the chart renders: StatefulSets, Deployments and the test Pod. */
function podSpecs(objs: readonly K8sObject[]): Array<[string, IPodSpec]> {
  return objs.flatMap((o): Array<[string, IPodSpec]> => {
    if (o.kind === 'Pod') return [[o.metadata.name, o['spec'] as IPodSpec]];
    if (o.kind !== 'StatefulSet' && o.kind !== 'Deployment') return [];
    const spec = o['spec'] as { template: { spec: IPodSpec } };
    return [[`${o.kind}/${o.metadata.name}`, spec.template.spec]];
  });
}

describe('helm lint --strict', () => {
  for (const [what, files] of VALUE_SETS) {
    it(`passes with the ${what} values`, () => {
      const r = helm(['lint', '--strict', CHART, ...valueArgs(files)]);
      expect(r.ok, r.stdout + r.stderr).toBe(true);
    });
  }
});

describe('helm template', () => {
  for (const [what, files] of VALUE_SETS) {
    it(`renders objects that validate against the Kubernetes schemas (${what} values)`,
      async () => {
        const objs = render(files);
        expect(objs.length).toBeGreaterThan(15);
        expect(await invalidObjects(objs)).toEqual([]);
        for (const svc of SERVICES) expect(sts(objs, svc).spec?.serviceName).toBe(`${svc}-headless`);
      });
  }

  it('finds a broken object: the validation is not a no-op', async () => {
    const objs = render();
    const broken = structuredClone(find(objs, 'StatefulSet', 'lock'));
    (broken['spec'] as { replicas: unknown }).replicas = 'three';
    expect(await invalidObjects([broken])).toHaveLength(1);
  });
});

describe('the StatefulSets', () => {
  const objs = render();

  it('start pods in parallel, roll one at a time and keep their volumes', () => {
    for (const svc of SERVICES) {
      const s = sts(objs, svc).spec!;
      expect(s.podManagementPolicy).toBe('Parallel');
      expect(s.updateStrategy?.type).toBe('RollingUpdate');
      expect(s.replicas).toBe(3);
      expect(s.volumeClaimTemplates?.[0]?.metadata?.name).toBe('data');
      expect(s.persistentVolumeClaimRetentionPolicy).toBeDefined();
      expect(s.template.metadata?.annotations?.['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
      expect(podSpec(sts(objs, svc)).enableServiceLinks).toBe(false);
    }
    expect(sts(objs, 'lock').spec!.persistentVolumeClaimRetentionPolicy)
      .toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
  });

  it('probe /health for start-up and liveness and /ready for readiness, on the http port', () => {
    for (const svc of SERVICES) {
      const c = container(sts(objs, svc));
      expect(c.startupProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 'http' });
      expect(c.ports?.map((p) => [p.name, p.containerPort])).toEqual([['http', 8080],
        ['peer', 7000]]);
    }
  });

  it('have headless Services published before ready, and client Services, with named ports',
    () => {
      for (const svc of SERVICES) {
        const headless = find(objs, 'Service', `${svc}-headless`) as unknown as IService;
        expect(headless.spec?.clusterIP).toBe('None');
        expect(headless.spec?.publishNotReadyAddresses).toBe(true);
        expect(headless.spec?.ports?.map((p) => p.name)).toEqual(['http', 'peer', 'metrics']);
        const client = find(objs, 'Service', svc) as unknown as IService;
        expect(client.spec?.ports?.map((p) => p.name)).toEqual(['http', 'metrics']);
        expect(client.spec?.selector).toEqual(sts(objs, svc).spec!.selector.matchLabels);
      }
    });

  it('give each node settings that the node itself accepts: pod name, discovery by the ' +
    'headless Service\'s DNS, token, heap, system URLs', () => {
    for (const svc of SERVICES) {
      const s = sts(objs, svc);
      const c = container(s);
      const cm = find(objs, 'ConfigMap', `${svc}-config`)['data'] as Record<string, string>;
      expect(c.envFrom?.[0]?.configMapRef?.name).toBe(`${svc}-config`);
      for (const name of ['DSYNC_NODE_ID', 'DSYNC_POD_NAME']) {
        expect(c.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath)
          .toBe('metadata.name');
      }
      expect(c.env?.find((e) => e.name === 'DSYNC_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath)
        .toBe('metadata.namespace');
      expect(c.env?.find((e) => e.name === 'DSYNC_CLUSTER_TOKEN')?.valueFrom?.secretKeyRef)
        .toEqual({ name: 'dsync-auth', key: 'cluster-token' });
      // What a pod named <svc>-1 would see, through the node's own parser.
      const env = { ...cm, DSYNC_NODE_ID: `${svc}-1`, DSYNC_POD_NAME: `${svc}-1`,
        DSYNC_NAMESPACE: NAMESPACE, DSYNC_CLUSTER_TOKEN: 'a-token-from-secret',
        DSYNC_REDIS_URL: svc === 'cache' ? 'redis://:pw@dsync-redis:6379/0' : undefined };
      const cfg = loadNodeConfig({}, env);
      expect(cfg.service).toBe(svc);
      expect(cfg.dataDir).toBe('/data');
      expect(cfg).toMatchObject({ discovery: 'dns', replicas: 3, clusterId: svc,
        podName: `${svc}-1`, namespace: NAMESPACE, peers: [],
        dnsName: `${svc}-headless.${NAMESPACE}.svc.cluster.local` });
      for (const other of SERVICES) {
        expect(cfg.systemUrls[other]).toEqual([0, 1, 2].map((i) =>
          `http://${other}-${i}.${other}-headless.${NAMESPACE}.svc.cluster.local:8080`));
      }
      expect(cm['NODE_OPTIONS']).toMatch(/^--max-old-space-size=\d+$/);
    }
    // 70% of the 512Mi limit.
    expect(find(objs, 'ConfigMap', 'lock-config')['data']).toMatchObject(
      { NODE_OPTIONS: '--max-old-space-size=358' });
    const queue = loadNodeConfig({}, { ...find(objs, 'ConfigMap', 'queue-config')['data'] as
      Record<string, string>, DSYNC_NODE_ID: 'queue-0', DSYNC_CLUSTER_TOKEN: 'from-the-secret' });
    expect([queue.partitions, queue.replicationFactor]).toEqual([16, 3]);
    const cacheEnv = container(sts(objs, 'cache')).env ?? [];
    expect(cacheEnv.find((e) => e.name === 'DSYNC_REDIS_URL')?.value)
      .toBe(`redis://:$(REDIS_PASSWORD)@dsync-redis.${NAMESPACE}.svc.cluster.local:6379/0`);
    expect(cacheEnv.findIndex((e) => e.name === 'REDIS_PASSWORD'))
      .toBeLessThan(cacheEnv.findIndex((e) => e.name === 'DSYNC_REDIS_URL'));
  });

  it('allow SIGKILL only after the node shutdown bound', () => {
    for (const svc of SERVICES) {
      expect(podSpec(sts(objs, svc)).terminationGracePeriodSeconds)
        .toBeGreaterThan(DEFAULT_SHUTDOWN_DEADLINE_MS / 1000);
    }
    // The chart's bound (templates/validate.yaml, values.schema.json) is the node's.
    const boundS = DEFAULT_SHUTDOWN_DEADLINE_MS / 1000;
    const validate = readFileSync(join(CHART, 'templates', 'validate.yaml'), 'utf8');
    expect(validate).toContain(`define "dsync.shutdownBoundSeconds" -}}${boundS}{{- end`);
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as
      { properties: { pods: { properties: Record<string, { minimum: number }> } } };
    expect(schema.properties.pods.properties['terminationGracePeriodSeconds']?.minimum)
      .toBe(boundS + 1);
    expect(renderRaw([], [`pods.terminationGracePeriodSeconds=${boundS + 1}`]).ok).toBe(true);
    const atBound = renderRaw([], [`pods.terminationGracePeriodSeconds=${boundS}`]);
    expect(atBound.ok).toBe(false);
    // Past the schema (--skip-schema-validation), the template's own check still refuses.
    const past = helm(['template', 'dsync', CHART, '--skip-schema-validation',
      '--set', `pods.terminationGracePeriodSeconds=${boundS}`]);
    expect(past.ok).toBe(false);
    expect(past.stderr).toContain(`must exceed ${boundS} s`);
  });
});

describe('disruption and security', () => {
  const objs = render([], []);

  it('a PodDisruptionBudget of maxUnavailable 1 covers each service', () => {
    for (const svc of SERVICES) {
      const pdb = find(objs, 'PodDisruptionBudget', svc) as unknown as IPodDisruptionBudget;
      expect(pdb.spec?.maxUnavailable).toBe(1);
      expect(pdb.spec?.selector?.matchLabels).toEqual(sts(objs, svc).spec!.selector.matchLabels);
    }
  });

  for (const [what, files] of VALUE_SETS) {
    it(`every pod runs non-root, read-only, without capabilities, seccomp on (${what})`, () => {
      const specs = podSpecs(render(files));
      expect(specs.length).toBeGreaterThanOrEqual(4);
      for (const [name, spec] of specs) {
        expect(spec.securityContext?.runAsNonRoot, name).toBe(true);
        expect(spec.securityContext?.seccompProfile?.type, name).toBe('RuntimeDefault');
        for (const c of spec.containers) {
          expect(c.securityContext, `${name}/${c.name}`).toMatchObject({
            runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
          });
          expect(c.resources?.limits?.['memory'], `${name}/${c.name}`).toBeDefined();
        }
      }
    });
  }

  it('the dsync pods write only to /data and an emptyDir /tmp', () => {
    for (const svc of SERVICES) {
      const s = sts(objs, svc);
      expect(container(s).volumeMounts?.map((m) => m.mountPath).sort()).toEqual(['/data', '/tmp']);
      expect(podSpec(s).volumes?.find((v) => v.name === 'tmp')?.emptyDir).toBeDefined();
    }
  });

  it('spreads softly by default and hard in the prod example', () => {
    const soft = podSpec(sts(objs, 'lock'));
    expect(soft.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution)
      .toHaveLength(1);
    expect(soft.topologySpreadConstraints?.[0]?.whenUnsatisfiable).toBe('ScheduleAnyway');
    const hard = podSpec(sts(render(['values-prod.yaml']), 'lock'));
    expect(hard.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0]
      ?.topologyKey).toBe('kubernetes.io/hostname');
    expect(hard.topologySpreadConstraints?.[0]).toMatchObject(
      { topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' });
  });

  it('NetworkPolicy: peer port from the same service only; HTTP from it, clients, scrapers',
    () => {
      for (const svc of SERVICES) {
        const np = find(objs, 'NetworkPolicy', svc) as unknown as INetworkPolicy;
        const own = sts(objs, svc).spec!.selector.matchLabels;
        expect(np.spec?.podSelector?.matchLabels).toEqual(own);
        const [peer, http] = np.spec?.ingress ?? [];
        expect(peer?.ports).toEqual([{ port: 'peer', protocol: 'TCP' }]);
        expect(peer?.from).toEqual([{ podSelector: { matchLabels: own } }]);
        expect(http?.ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
        expect(http?.from).toEqual([
          { podSelector: { matchLabels: own } },
          { podSelector: { matchLabels: { 'dsync.io/client': 'true' } } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
        ]);
      }
      const redis = find(objs, 'NetworkPolicy', 'dsync-redis') as unknown as INetworkPolicy;
      expect(redis.spec?.ingress?.[0]?.from)
        .toEqual([{ podSelector: { matchLabels: sts(objs, 'cache').spec!.selector.matchLabels } }]);
      // The helm test pod is a labelled client.
      expect(find(objs, 'Pod', 'dsync-test').metadata.labels?.['dsync.io/client']).toBe('true');
    });
});

describe('Kubernetes API access follows the enabled features', () => {
  const tokenMounted = (objs: readonly K8sObject[]): Record<string, boolean | undefined> =>
    Object.fromEntries(SERVICES.map((s) =>
      [s, podSpec(sts(objs, s)).automountServiceAccountToken]));
  const rules = (objs: readonly K8sObject[]): IRole['rules'] =>
    (find(objs, 'Role', 'dsync') as unknown as IRole).rules;

  it('with no feature on there is no Role and no token in any pod', () => {
    const objs = render();
    expect(all(objs, 'Role')).toEqual([]);
    expect(all(objs, 'RoleBinding')).toEqual([]);
    expect(tokenMounted(objs)).toEqual({ lock: false, queue: false, cache: false });
    expect(find(objs, 'ServiceAccount', 'dsync')['automountServiceAccountToken']).toBe(false);
  });

  it('the leader label needs pods get/patch on the lock pods only', () => {
    const objs = render([], ['lock.kubernetesApi.labelLeader=true', 'lock.leaderService=true']);
    expect(rules(objs)).toEqual([{ apiGroups: [''], resources: ['pods'],
      resourceNames: ['lock-0', 'lock-1', 'lock-2'], verbs: ['get', 'patch'] }]);
    expect(tokenMounted(objs)).toEqual({ lock: true, queue: false, cache: false });
    const leader = find(objs, 'Service', 'lock-leader') as unknown as IService;
    expect(leader.spec?.selector?.['dsync.io/role']).toBe('leader');
    expect(find(objs, 'RoleBinding', 'dsync')['subjects'])
      .toEqual([{ kind: 'ServiceAccount', name: 'dsync', namespace: NAMESPACE }]);
    expect(podConfig(objs, 'lock')).toMatchObject({ labelLeader: true,
      reconcileMembership: false, namespace: NAMESPACE });
  });

  it('membership reconciliation needs statefulsets get/watch on its own StatefulSets', () => {
    const objs = render([], ['queue.kubernetesApi.reconcileMembership=true']);
    expect(rules(objs)).toEqual([{ apiGroups: ['apps'], resources: ['statefulsets'],
      resourceNames: ['queue'], verbs: ['get', 'watch'] }]);
    expect(tokenMounted(objs)).toEqual({ lock: false, queue: true, cache: false });
    expect(podConfig(objs, 'queue')).toMatchObject({ reconcileMembership: true,
      statefulSet: null, podName: 'queue-1' });
    expect(podConfig(objs, 'lock')).toMatchObject({ reconcileMembership: false });
    const both = render([], ['lock.kubernetesApi.reconcileMembership=true',
      'queue.kubernetesApi.reconcileMembership=true', 'lock.kubernetesApi.labelLeader=true',
      'lock.replicas=5']);
    expect(rules(both)).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'patch'],
        resourceNames: ['lock-0', 'lock-1', 'lock-2', 'lock-3', 'lock-4'] },
      { apiGroups: ['apps'], resources: ['statefulsets'], resourceNames: ['lock', 'queue'],
        verbs: ['get', 'watch'] },
    ]);
  });
});

/** The configuration a pod <svc>-1 of a rendering starts with, through the node's parser. */
function podConfig(objs: ReturnType<typeof render>, svc: string): Record<string, unknown> {
  const cm = find(objs, 'ConfigMap', `${svc}-config`)['data'] as Record<string, string>;
  return { ...loadNodeConfig({}, { ...cm, DSYNC_NODE_ID: `${svc}-1`, DSYNC_POD_NAME: `${svc}-1`,
    DSYNC_NAMESPACE: NAMESPACE, DSYNC_CLUSTER_TOKEN: 'a-token-from-secret' }) };
}

describe('values the chart refuses, with a message that says what to change', () => {
  const refused: ReadonlyArray<readonly [string, string[], RegExp]> = [
    ['an even lock replica count', ['lock.replicas=4'], /lock\/replicas.*one of 1, 3, 5, 7/],
    ['an even queue replica count', ['queue.replicas=2'], /queue\/replicas/],
    ['8 lock replicas', ['lock.replicas=9'], /lock\/replicas/],
    ['a fractional timeout', ['lock.requestTimeoutMs=1500.5'], /requestTimeoutMs.*integer/],
    ['a timeout as text', ['cache.flushIntervalMs=soon'], /flushIntervalMs/],
    ['a grace period under the shutdown bound', ['pods.terminationGracePeriodSeconds=20'],
      /terminationGracePeriodSeconds/],
    ['an even replication factor', ['queue.replicationFactor=2'], /replicationFactor/],
    ['an unknown key', ['lock.replica=3'], /replica/],
    ['a replication factor above the pod count', ['queue.replicas=3', 'queue.replicationFactor=5'],
      /replicationFactor \(5\) cannot exceed queue.replicas \(3\)/],
    ['heartbeat not below the election timeout', ['lock.raft.heartbeatTicks=10'],
      /heartbeatTicks \(10\) must be less than/],
    ['a leader Service without the leader label', ['lock.leaderService=true'],
      /turn on lock.kubernetesApi.labelLeader/],
    ['a cache larger than its heap', ['cache.capacity=1GiB'], /cache.capacity \(1GiB\) must be below/],
    ['external Redis without a URL', ['redis.mode=external'], /needs redis.external.url/],
    ['credentials in the Redis URL', ['redis.mode=external',
      'redis.external.url=redis://u:p@r:6379'], /must not carry credentials/],
    ['Sentinel, which this release cannot use', ['redis.mode=external',
      'redis.external.url=redis://r:6379', 'redis.external.sentinel.enabled=true'], /Sentinel/],
    ['a memory limit the heap cannot be sized from', ['lock.resources.limits.memory=1.5Gi'],
      /memory/],
    ['a short cluster token', ['auth.clusterToken=short'], /clusterToken/],
    ['every service disabled', ['lock.enabled=false', 'queue.enabled=false',
      'cache.enabled=false'], /enable at least one/],
  ];
  for (const [what, sets, message] of refused) {
    it(`refuses ${what}`, () => {
      const r = renderRaw([], sets);
      expect(r.ok).toBe(false);
      expect(r.stderr).toMatch(message);
    });
  }
});

describe('secrets', () => {
  it('generates a cluster token and Redis password, or uses the existing Secret', () => {
    const made = find(render(), 'Secret', 'dsync-auth')['data'] as Record<string, string>;
    expect(Buffer.from(made['cluster-token']!, 'base64').toString()).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(Buffer.from(made['redis-password']!, 'base64').toString()).toHaveLength(32);
    const given = render([], ['auth.existingSecret=mine']);
    expect(all(given, 'Secret')).toEqual([]);
    expect(container(sts(given, 'lock')).env?.find((e) => e.name === 'DSYNC_CLUSTER_TOKEN')
      ?.valueFrom?.secretKeyRef?.name).toBe('mine');
  });
});

describe('monitoring', () => {
  it('annotations mode marks the pods for scraping', () => {
    const a = sts(render(), 'lock').spec!.template.metadata?.annotations;
    expect(a).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080' });
  });

  it('operator mode: a ServiceMonitor on the metrics port of the client Services, and alerts',
    () => {
      const objs = render(['values-prod.yaml']);
      const sm = find(objs, 'ServiceMonitor', 'dsync');
      expect(sm.metadata.labels?.['release']).toBe('kube-prometheus-stack');
      const spec = sm['spec'] as { selector: { matchLabels: Record<string, string> };
        endpoints: Array<{ port: string }> };
      expect(spec.endpoints[0]?.port).toBe('metrics');
      const selected = all(objs, 'Service').filter((s) => Object.entries(spec.selector.matchLabels)
        .every(([k, v]) => s.metadata.labels?.[k] === v)).map((s) => s.metadata.name);
      expect(selected.sort()).toEqual(['cache', 'lock', 'queue']);
      const rule = find(objs, 'PrometheusRule', 'dsync')['spec'] as
        { groups: Array<{ rules: Array<{ alert: string }> }> };
      const alerts = rule.groups.flatMap((g) => g.rules.map((r) => r.alert));
      expect(alerts).toEqual(expect.arrayContaining(['DsyncNoLeader', 'DsyncFrequentLeaderChanges',
        'DsyncApplyLag', 'DsyncQueueMessagesAging', 'DsyncDeadLettersGrowing',
        'DsyncCacheDirtyBytesHigh']));
      const pm = render(['values-prod.yaml'], ['monitoring.operator.kind=PodMonitor']);
      expect(all(pm, 'ServiceMonitor')).toEqual([]);
      expect(find(pm, 'PodMonitor', 'dsync')['spec']).toMatchObject(
        { podMetricsEndpoints: [{ port: 'http', path: '/metrics' }] });
    });

  it('bundled mode: Prometheus finds the pods by headless DNS, Grafana gets it and the dashboards',
    () => {
      const objs = render(['values-bundled-monitoring.yaml']);
      const prom = (find(objs, 'ConfigMap', 'dsync-prometheus')['data'] as Record<string, string>);
      for (const svc of SERVICES) {
        expect(prom['prometheus.yml']).toContain(
          `${svc}-headless.${NAMESPACE}.svc.cluster.local`);
      }
      expect(prom['alerts.yml']).toContain('DsyncNoLeader');
      const graf = find(objs, 'ConfigMap', 'dsync-grafana')['data'] as Record<string, string>;
      expect(graf['datasources.yaml']).toContain('url: http://dsync-prometheus:9090');
      const dashboards = all(objs, 'ConfigMap').filter((c) => c.metadata.name
        .startsWith('dsync-dashboard-'));
      expect(dashboards.map((d) => d.metadata.name).sort()).toEqual(['dsync-dashboard-cache',
        'dsync-dashboard-locks', 'dsync-dashboard-overview', 'dsync-dashboard-queue']);
      for (const d of dashboards) expect(d.metadata.labels?.['grafana_dashboard']).toBe('1');
      const grafana = find(objs, 'Deployment', 'dsync-grafana')['spec'] as
        { template: { spec: IPodSpec } };
      const projected = grafana.template.spec.volumes?.find((v) => v.name === 'dashboards');
      expect(projected?.projected?.sources?.map((s) => s.configMap?.name).sort())
        .toEqual(dashboards.map((d) => d.metadata.name).sort());
      const np = find(objs, 'NetworkPolicy', 'lock') as unknown as INetworkPolicy;
      expect(np.spec?.ingress?.[1]?.from?.at(-1)?.podSelector?.matchLabels?.[
        'app.kubernetes.io/component']).toBe('prometheus');
    });

  it('none: no dashboards, annotations or monitors', () => {
    const objs = render([], ['monitoring.mode=none']);
    expect(all(objs, 'ConfigMap').filter((c) => c.metadata.name.includes('dashboard'))).toEqual([]);
    expect(sts(objs, 'lock').spec!.template.metadata?.annotations?.['prometheus.io/scrape'])
      .toBeUndefined();
  });
});

describe('the helm test pod', () => {
  it('runs files/smoke-test.mjs in the dsync image against every enabled service', () => {
    const objs = render([], ['queue.enabled=false']);
    const pod = find(objs, 'Pod', 'dsync-test');
    expect(pod.metadata.annotations?.['helm.sh/hook']).toBe('test');
    const c = (pod['spec'] as IPodSpec).containers[0]!;
    expect(c.image).toBe('dsync:0.1.0');
    expect(c.command).toEqual(['node', '/scripts/smoke-test.mjs']);
    expect(JSON.parse(c.env?.find((e) => e.name === 'DSYNC_TEST_TARGETS')?.value ?? '{}')).toEqual({
      lock: `http://lock.${NAMESPACE}.svc.cluster.local:8080`,
      cache: `http://cache.${NAMESPACE}.svc.cluster.local:8080`,
    });
    const cm = find(objs, 'ConfigMap', 'dsync-test');
    expect((cm['data'] as Record<string, string>)['smoke-test.mjs'])
      .toBe(readFileSync(join(CHART, 'files', 'smoke-test.mjs'), 'utf8'));
    // A ConfigMap hook "succeeds" once created: deleting it then would starve the pod.
    expect(cm.metadata.annotations?.['helm.sh/hook-delete-policy']).toBe('before-hook-creation');
  });
});

describe('k8s/ raw manifests', () => {
  it('match what scripts/render-k8s.sh renders from the chart', () => {
    execFileSync('bash', [join(ROOT, 'scripts', 'render-k8s.sh'), '--check'],
      { stdio: 'pipe', timeout: 120_000 });
  });
});
