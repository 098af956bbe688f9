// What a lock node does about its membership while it runs, and when it stops:
//   - with discovery dns, the reconciler (reconciler.ts) on the leader keeps the voters at the
//     pods 0..wanted-1, wanted being spec.replicas (followed through the Kubernetes API with
//     --reconcile-membership) or --replicas;
//   - with --label-leader, the leader's pod carries dsync.io/role=leader;
//   - on SIGTERM of a pod that the StatefulSet scales away, the pod stays until the leader has
//     removed it from the configuration (bounded), so that one voter at a time leaves while
//     the others still run: the quorum never depends on pods that are already gone.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { request } from 'undici';
import type { NodeConfig } from '../config.js';
import { statefulSetOf } from '../config.js';
import type { RaftGroup } from '../runtime/raft-group.js';
import { KubernetesApi } from './kubernetes.js';
import { LeaderLabeler } from './leader-label.js';
import { ordinalOf, podOfNodeId } from './membership.js';
import type { DnsDiscovery } from './node-discovery.js';
import { MembershipReconciler } from './reconciler.js';
import { WantedReplicas } from './replicas.js';

/** Pause between two looks at whether a departing pod has been removed. */
const LEAVE_POLL_MS = 100;
/** How long SIGTERM waits to read spec.replicas once more (is this pod scaled away?). */
export const REREAD_REPLICAS_MS = 800;

/** The Kubernetes API client of a node: the configured server, else the in-cluster one. */
export function kubernetesApiOf(cfg: NodeConfig): KubernetesApi {
  const url = cfg.kubernetesApiUrl;
  return url === null ? new KubernetesApi()
    : new KubernetesApi({ server: url, skipTlsVerify: url.startsWith('http://') });
}

export class GroupMembership {
  readonly wanted: WantedReplicas;
  private readonly reconciler: MembershipReconciler | null;
  private readonly labeler: LeaderLabeler | null;

  constructor(private readonly cfg: NodeConfig, private readonly group: RaftGroup,
    private readonly dns: DnsDiscovery | null, private readonly logger: Logger,
    registry: Registry) {
    this.wanted = new WantedReplicas(cfg.replicas ?? 1);
    const api = cfg.reconcileMembership || cfg.labelLeader ? kubernetesApiOf(cfg) : null;
    const sts = statefulSetOf(cfg);
    if (api !== null && cfg.reconcileMembership && sts !== null && cfg.namespace !== null) {
      this.wanted.follow(api, cfg.namespace, sts, logger);
    }
    this.reconciler = dns === null ? null : new MembershipReconciler({ group, self: cfg.nodeId,
      pod: cfg.podName, statefulSet: dns.statefulSet, directory: dns.directory,
      desired: () => this.wanted.get(), logger: logger.child({ component: 'membership' }),
      registry });
    this.wanted.onChange(() => this.reconciler?.kick());
    this.labeler = api !== null && cfg.labelLeader && cfg.namespace !== null
      ? new LeaderLabeler(api, cfg.namespace, cfg.podName, () => group.isLeader(), logger)
      : null;
  }

  start(): void {
    this.reconciler?.start();
    this.labeler?.start();
  }

  /** This pod's ordinal is beyond the wanted replicas: the StatefulSet is removing it. */
  scaledAway(): boolean {
    const o = ordinalOf(this.cfg.podName);
    return this.dns !== null && o !== null && o >= this.wanted.get();
  }

  /** A voter whose pod stays (the heir of a leadership handed over on a scale-down). */
  staying(id: string): boolean {
    const pod = this.dns === null ? null : podOfNodeId(id, this.dns.statefulSet);
    return pod === null || (ordinalOf(pod) ?? Infinity) < this.wanted.get();
  }

  /** Stops reconciling, reads spec.replicas once more (the watch may not have seen the
   * scale-down that deletes this pod yet), and clears the leader label (bounded). */
  async stopFollowing(): Promise<void> {
    this.reconciler?.stop();
    await this.wanted.reread(REREAD_REPLICAS_MS, this.logger);
    this.wanted.stop();
    await this.labeler?.stop();
  }

  /** Waits until the leader's configuration no longer lists this node, up to `timeoutMs`;
   * true once removed. */
  async waitRemoved(urlOf: (id: string) => string | undefined, timeoutMs: number):
    Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.removed(urlOf)) return true;
      await new Promise((r) => setTimeout(r, LEAVE_POLL_MS));
    }
    return false;
  }

  private async removed(urlOf: (id: string) => string | undefined): Promise<boolean> {
    const self = this.cfg.nodeId;
    const mine = this.group.status().config;
    if (!mine.voters.includes(self) && !mine.learners.includes(self)) return true;
    // A removed member need not hear of its removal: ask the leader.
    const leader = this.group.leaderId();
    const url = leader === null || leader === self ? undefined : urlOf(leader);
    if (url === undefined) return false;
    try {
      const res = await request(`${url}/v1/cluster`, { signal: AbortSignal.timeout(1000) });
      const body = await res.body.json() as { voters?: unknown; learners?: unknown };
      const listed = (x: unknown): boolean => Array.isArray(x) && x.includes(self);
      return res.statusCode === 200 && !listed(body.voters) && !listed(body.learners);
    } catch {
      return false;
    }
  }
}
