// The number of pods a Raft service should have: spec.replicas of its StatefulSet, followed
// through the Kubernetes API (--reconcile-membership), or the configured --replicas. The
// reconciler reads it on every step and is told when it changes.
import type { Logger } from 'pino';
import type { KubernetesApi, ReplicasWatch } from './kubernetes.js';

export class WantedReplicas {
  private current: number;
  private watch: ReplicasWatch | null = null;
  private source: { api: KubernetesApi; namespace: string; statefulSet: string } | null = null;
  private readonly listeners: Array<(n: number) => void> = [];

  constructor(initial: number) {
    this.current = initial;
  }

  get(): number {
    return this.current;
  }

  onChange(listener: (n: number) => void): void {
    this.listeners.push(listener);
  }

  /** Follows spec.replicas of `statefulSet` from now on. */
  follow(api: KubernetesApi, namespace: string, statefulSet: string, logger: Logger): void {
    this.source = { api, namespace, statefulSet };
    this.watch = api.watchReplicas(namespace, statefulSet, (n) => this.set(n, logger), (err) => {
      logger.warn({ err, statefulSet }, 'watch of the StatefulSet ended; resuming (does the ' +
        'Role allow statefulsets get and watch?)');
    });
  }

  private set(n: number, logger: Logger): void {
    if (n === this.current) return;
    logger.info({ statefulSet: this.source?.statefulSet, from: this.current, to: n },
      'spec.replicas changed');
    this.current = n;
    for (const l of this.listeners) l(n);
  }

  /** Reads spec.replicas once more, up to `timeoutMs` (on SIGTERM: the watch may not have
   * seen the scale-down that deletes this pod yet); the last value when the API is slow. */
  async reread(timeoutMs: number, logger: Logger): Promise<number> {
    const src = this.source;
    if (src === null) return this.current;
    let timer: NodeJS.Timeout | undefined;
    try {
      const n = await Promise.race([src.api.replicas(src.namespace, src.statefulSet),
        new Promise<null>((r) => { timer = setTimeout(() => r(null), timeoutMs); })]);
      if (n !== null) this.set(n, logger);
    } catch (err) {
      logger.warn({ err }, 'could not read spec.replicas at shutdown; using the last value');
    } finally {
      clearTimeout(timer);
    }
    return this.current;
  }

  stop(): void {
    this.watch?.stop();
    this.watch = null;
  }
}
