// The membership reconciler of one Raft group (the lock service's), the shell around
// decideMembership (membership.ts): on the leader, every second and whenever the wanted
// replica count changes, it reads the group's configuration and progress and what the pods
// answer, takes the one step decided, and counts it. Steps use the group's own calls: add a
// learner (after a compaction, so that the newcomer starts from a snapshot, which carries the
// configuration), promote a caught-up learner (the core also does this on its own), remove a
// member, or hand leadership to a voter that stays.
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { DsyncError } from '../errors.js';
import type { NodeId } from '../raft/types.js';
import type { RaftGroup } from '../runtime/raft-group.js';
import {
  decideMembership, ordinalOf, podOfNodeId, type MemberView, type PodView, type ReconcileAction,
  type ReconcileDecision,
} from './membership.js';
import type { PodDirectory } from './pod-directory.js';

/** How often the leader looks, besides every change of the wanted replica count. */
export const RECONCILE_INTERVAL_MS = 1000;
/** A learner within this many entries of the commit index has caught up. */
export const CATCH_UP_ENTRIES = 64;

export interface ReconcilerOptions {
  readonly group: RaftGroup;
  readonly self: NodeId;
  /** This pod's name and StatefulSet. */
  readonly pod: string;
  readonly statefulSet: string;
  readonly directory: PodDirectory;
  /** The wanted number of pods now (spec.replicas, or --replicas). */
  readonly desired: () => number;
  readonly logger: Logger;
  readonly registry?: Registry;
  readonly intervalMs?: number;
}

export interface ReconcilerMetrics {
  readonly steps: Counter<'action'>;
  readonly warnings: Counter;
}

export function createReconcilerMetrics(registry: Registry): ReconcilerMetrics {
  return {
    steps: new Counter({ name: 'dsync_membership_steps_total', registers: [registry],
      help: 'Membership changes the reconciler made, by action', labelNames: ['action'] }),
    warnings: new Counter({ name: 'dsync_membership_warnings_total', registers: [registry],
      help: 'Unsafe changes of spec.replicas the reconciler saw (e.g. more than one voter ' +
        'removed at once)' }),
  };
}

export class MembershipReconciler {
  private timer: NodeJS.Timeout | null = null;
  /** Index of the last configuration change this node proposed. */
  private pendingIndex = 0;
  private lastWarning: string | null = null;
  private lastWait: string | null = null;
  private readonly metrics: ReconcilerMetrics | null;

  constructor(private readonly o: ReconcilerOptions) {
    this.metrics = o.registry === undefined ? null : createReconcilerMetrics(o.registry);
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.kick(), this.o.intervalMs ?? RECONCILE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One step now (on the leader only); errors are logged, never thrown. */
  kick(): void {
    try {
      this.step();
    } catch (err) {
      this.o.logger.warn({ err }, 'membership reconciler: step failed; will retry');
    }
  }

  /** What the leader sees now, as decideMembership takes it. */
  input(): Parameters<typeof decideMembership>[0] {
    const { group, self, statefulSet } = this.o;
    const s = group.status();
    const member = (id: NodeId, role: MemberView['role']): MemberView => {
      const pr = s.progress?.[id];
      const caughtUp = id === self || (pr !== undefined && pr.state === 'replicate' &&
        pr.match + CATCH_UP_ENTRIES >= s.commit);
      return { nodeId: id, role, pod: podOfNodeId(id, statefulSet), caughtUp };
    };
    const pods: PodView[] = this.o.directory.pods().map((r) => ({ name: r.pod,
      ordinal: r.ordinal, nodeId: r.answer?.nodeId ?? null }));
    pods.push({ name: this.o.pod, ordinal: ordinalOf(this.o.pod) ?? 0, nodeId: self });
    return { desiredReplicas: this.o.desired(), leaderId: self,
      members: [...s.config.voters.map((id) => member(id, 'voter')),
        ...s.config.learners.map((id) => member(id, 'learner'))],
      pods, configChangePending: group.appliedIndex() < this.pendingIndex };
  }

  /** Decides and takes one step; null when this node does not lead. */
  step(): ReconcileDecision | null {
    if (!this.o.group.isLeader()) return null;
    const d = decideMembership(this.input());
    if (d.warning !== this.lastWarning && d.warning !== null) {
      this.o.logger.warn({ warning: d.warning }, 'membership reconciler: unsafe change');
      this.metrics?.warnings.inc();
    }
    this.lastWarning = d.warning;
    this.act(d.action);
    return d;
  }

  private act(a: ReconcileAction): void {
    const { group, logger } = this.o;
    if (a.kind === 'none' || a.kind === 'wait') {
      const why = a.kind === 'wait' ? a.reason : null;
      if (why !== this.lastWait && why !== null) {
        logger.info({ reason: why }, 'membership reconciler: waiting');
      }
      this.lastWait = why;
      return;
    }
    this.lastWait = null;
    if (a.kind === 'transfer-leadership') {
      const to = this.heir();
      if (to === null) return;
      logger.info({ to, reason: a.reason }, 'membership reconciler: handing leadership over');
      this.metrics?.steps.inc({ action: a.kind });
      group.transferLeadership(to);
      return;
    }
    if (a.kind === 'add-learner' && group.status().firstIndex <= 1) {
      // The newcomer must start from a snapshot (config-record.ts says why).
      group.requestSnapshot();
      return;
    }
    const type = a.kind === 'add-learner' ? 'addLearner' : a.kind;
    try {
      this.pendingIndex = group.proposeConfChange({ type, node: a.nodeId }).index;
    } catch (err) {
      if (!(err instanceof DsyncError)) throw err;
      logger.debug({ err, change: type, node: a.nodeId }, 'membership change refused for now');
      return;
    }
    this.metrics?.steps.inc({ action: a.kind });
    logger.info({ change: type, node: a.nodeId, ...('reason' in a ? { reason: a.reason } : {}),
      ...('pod' in a ? { pod: a.pod } : {}) }, 'membership reconciler: changing the members');
  }

  /** The most caught-up voter whose pod stays, for a leader whose own pod goes. */
  private heir(): NodeId | null {
    const s = this.o.group.status();
    const desired = this.o.desired();
    const staying = (id: NodeId): boolean => {
      const pod = podOfNodeId(id, this.o.statefulSet);
      return pod !== null && (ordinalOf(pod) ?? Infinity) < desired;
    };
    const best = Object.entries(s.progress ?? {})
      .filter(([id, pr]) => id !== this.o.self && s.config.voters.includes(id) && staying(id) &&
        pr.match >= s.commit)
      .sort((a, b) => b[1].match - a[1].match)[0];
    return best?.[0] ?? null;
  }
}
