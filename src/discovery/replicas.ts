// The number of pods a Raft service should have: spec.replicas of its StatefulSet, followed
// through the Kubernetes API (--reconcile-membership), or the configured --replicas. The
// reconciler reads it on every step and is told when it changes.
import type { Logger } from 'pino';
import type { KubernetesApi, ReplicasWatch } from './kubernetes.js';

export class WantedReplicas {
  private current: number;
  private watch: ReplicasWatch | null = null;
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
    this.watch = api.watchReplicas(namespace, statefulSet, (n) => {
      if (n === this.current) return;
      logger.info({ statefulSet, from: this.current, to: n }, 'spec.replicas changed');
      this.current = n;
      for (const l of this.listeners) l(n);
    }, (err) => {
      logger.warn({ err, statefulSet }, 'watch of the StatefulSet ended; resuming (does the ' +
        'Role allow statefulsets get and watch?)');
    });
  }

  stop(): void {
    this.watch?.stop();
    this.watch = null;
  }
}
