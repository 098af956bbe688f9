// The few Kubernetes API calls dsync makes, through @kubernetes/client-node, each one covered
// by the chart's Role (helm/dsync/templates/rbac.yaml) and nothing more:
//   statefulsets get, watch   read and follow spec.replicas of the node's own StatefulSet
//   pods get, patch           the lock leader labels its pod dsync.io/role=leader
// In a pod the ServiceAccount token is mounted only when one of those features is on.
import {
  AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions,
} from '@kubernetes/client-node';

/** The label the lock leader puts on its pod; the chart's lock-leader Service selects it. */
export const LEADER_LABEL = 'dsync.io/role';
export const LEADER_LABEL_VALUE = 'leader';
/** Pause before a watch that ended is started again, doubling up to the max. */
export const WATCH_RETRY_MS_MIN = 500;
export const WATCH_RETRY_MS_MAX = 30_000;

export interface KubernetesApiOptions {
  /** API server URL; absent: the in-cluster config (service account token and CA). */
  readonly server?: string;
  readonly token?: string;
  /** Accept any server certificate; client-node also needs it for a plain-HTTP server (the
   * fake API server of the tests). */
  readonly skipTlsVerify?: boolean;
}

export interface ReplicasWatch {
  stop(): void;
}

export class KubernetesApi {
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly watcher: Watch;

  constructor(opts: KubernetesApiOptions = {}) {
    const kc = new KubeConfig();
    if (opts.server === undefined) {
      kc.loadFromCluster();
    } else {
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: opts.server, skipTLSVerify: opts.skipTlsVerify ?? false }],
        users: [{ name: 'u', ...(opts.token === undefined ? {} : { token: opts.token }) }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
    }
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.watcher = new Watch(kc);
  }

  /** spec.replicas of a StatefulSet (verb: get). */
  async replicas(namespace: string, name: string): Promise<number> {
    const sts = await this.apps.readNamespacedStatefulSet({ name, namespace });
    return sts.spec?.replicas ?? 1;
  }

  /** Calls `onReplicas` with spec.replicas now and on every change (verb: watch, on this one
   * StatefulSet by field selector); a watch that ends is started again with backoff. */
  watchReplicas(namespace: string, name: string, onReplicas: (replicas: number) => void,
    onError: (err: unknown) => void): ReplicasWatch {
    let stopped = false;
    let current: AbortController | null = null;
    let retryMs = WATCH_RETRY_MS_MIN;
    let timer: NodeJS.Timeout | null = null;
    let last: number | null = null;
    const again = (err: unknown): void => {
      current = null;
      if (stopped) return;
      if (err !== null && err !== undefined) onError(err);
      timer = setTimeout(start, retryMs);
      retryMs = Math.min(2 * retryMs, WATCH_RETRY_MS_MAX);
    };
    const start = (): void => {
      timer = null;
      this.watcher.watch(`/apis/apps/v1/namespaces/${namespace}/statefulsets`,
        { fieldSelector: `metadata.name=${name}` },
        (phase, obj: { spec?: { replicas?: number } }) => {
          retryMs = WATCH_RETRY_MS_MIN;
          if (phase === 'DELETED') return;
          const r = obj.spec?.replicas ?? 1;
          if (r !== last) onReplicas(r);
          last = r;
        }, again).then((c) => {
        current = c;
        if (stopped) c.abort();
      }, again);
    };
    start();
    return {
      stop: () => {
        stopped = true;
        if (timer !== null) clearTimeout(timer);
        current?.abort();
      },
    };
  }

  /** Sets or clears the leader label of a pod (verb: patch, a JSON merge patch). */
  async setLeaderLabel(namespace: string, pod: string, leader: boolean): Promise<void> {
    await this.core.patchNamespacedPod({ name: pod, namespace,
      body: { metadata: { labels: { [LEADER_LABEL]: leader ? LEADER_LABEL_VALUE : null } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  /** Whether a pod carries the leader label now (verb: get). */
  async hasLeaderLabel(namespace: string, pod: string): Promise<boolean> {
    const p = await this.core.readNamespacedPod({ name: pod, namespace });
    return p.metadata?.labels?.[LEADER_LABEL] === LEADER_LABEL_VALUE;
  }
}
