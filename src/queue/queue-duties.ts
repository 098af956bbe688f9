// What the leader of each partition does on its own, checked every few milliseconds:
//
// - Time: propose `expire` once the partition's next deadline (a lease, a delayed message, a
//   retention trim) is due by the leader's clock, so time moves on when nothing else is
//   proposed. One at a time per partition.
// - Spread leadership: the first pod of a partition's replica set (placement) is its
//   preferred leader. While that pod is a voter that has caught up with the commit index and
//   is being replicated to, the leader hands leadership over to it. At most one attempt per
//   `transferIntervalMs` per partition, and only after the leader has held office for
//   `settleMs`, so leadership cannot flap between two pods.
// - Follow the placement (when `reconcile` is on): a pod of the replica set that is not a
//   member is added as a learner (the runtime promotes it once it has caught up), and once
//   every pod of the set votes, a member outside it is removed; a leader outside it first
//   hands leadership to one inside. One change at a time, at most one per
//   `changeIntervalMs`. Before the first learner joins, the log is compacted into a
//   snapshot, so the learner starts from one (queue-layout.ts says why).
import type { Logger } from 'pino';
import { DsyncError } from '../errors.js';
import type { NodeId } from '../raft/types.js';
import type { RaftGroup } from '../runtime/raft-group.js';
import { QueuePartitionMachine } from './partition-state-machine.js';
import type { HostedPartition } from './queue-service.js';

export interface DutyOptions {
  readonly self: NodeId;
  /** The replica set of a partition by the placement, preferred leader first. */
  readonly desired: (partition: number) => readonly NodeId[];
  readonly logger: Logger;
  readonly requestTimeoutMs: number;
  /** Least time between two leadership transfers of one partition, ms. */
  readonly transferIntervalMs: number;
  /** Least time between two membership changes of one partition, ms. */
  readonly changeIntervalMs: number;
  /** How long a new leader holds office before it hands it over, ms. */
  readonly settleMs: number;
  /** Whether leaders change membership to follow the placement. */
  readonly reconcile: boolean;
}

interface DutyState {
  expiring: boolean;
  leaderSince: number | null;
  lastTransferMs: number;
  lastChangeMs: number;
}

export class PartitionDuties {
  private readonly state = new Map<number, DutyState>();

  constructor(private readonly o: DutyOptions) {}

  /** One round over every hosted partition. */
  run(hosted: Iterable<HostedPartition>, nowMs = Date.now()): void {
    for (const h of hosted) {
      let st = this.state.get(h.partition);
      if (st === undefined) {
        st = { expiring: false, leaderSince: null, lastTransferMs: 0, lastChangeMs: 0 };
        this.state.set(h.partition, st);
      }
      if (!h.group.isLeader()) {
        st.leaderSince = null;
        continue;
      }
      st.leaderSince ??= nowMs;
      this.expire(h, st);
      if (nowMs - st.leaderSince < this.o.settleMs) continue;
      if (this.o.reconcile && this.reconcile(h, st, nowMs)) continue;
      this.spreadLeadership(h, st, nowMs);
    }
  }

  private expire(h: HostedPartition, st: DutyState): void {
    if (st.expiring) return;
    const due = h.sm.partition.nextDeadline();
    if (due === null || due > h.group.now()) return;
    st.expiring = true;
    h.group.propose(QueuePartitionMachine.encode({ type: 'expire' }),
      { timeoutMs: this.o.requestTimeoutMs })
      .catch((err: unknown) => {
        this.o.logger.debug({ err, partition: h.partition }, 'expire did not commit; will retry');
      })
      .finally(() => { st.expiring = false; });
  }

  /** Hands leadership to the preferred pod when it can take it. */
  private spreadLeadership(h: HostedPartition, st: DutyState, nowMs: number): void {
    const desired = this.o.desired(h.partition);
    const preferred = desired[0];
    if (preferred === undefined || preferred === this.o.self) return;
    if (nowMs - st.lastTransferMs < this.o.transferIntervalMs) return;
    if (!caughtUp(h.group, preferred)) return;
    st.lastTransferMs = nowMs;
    this.o.logger.info({ partition: h.partition, to: preferred },
      'handing leadership to the preferred leader of the partition');
    h.group.transferLeadership(preferred);
  }

  /** One membership step towards the placement; true when one was taken (or is waited for). */
  private reconcile(h: HostedPartition, st: DutyState, nowMs: number): boolean {
    const desired = this.o.desired(h.partition);
    const s = h.group.status();
    const { voters, learners } = s.config;
    const members = new Set([...voters, ...learners]);
    const missing = desired.filter((id) => !members.has(id));
    const stray = learners.find((id) => !desired.includes(id));
    const extra = voters.filter((id) => !desired.includes(id));
    if (missing.length === 0 && extra.length === 0 && stray === undefined) return false;
    if (nowMs - st.lastChangeMs < this.o.changeIntervalMs) return true;
    if (stray !== undefined) return this.change(h, st, nowMs, 'remove', stray);
    // A newcomer must start from a snapshot: also when this leader took over from the one
    // that added it, before it had received anything.
    if ((learners.length > 0 || missing.length > 0) && s.firstIndex <= 1) {
      st.lastChangeMs = nowMs;
      h.group.requestSnapshot();
      return true;
    }
    // A learner is being caught up: the runtime promotes it, then the next step follows.
    if (learners.length > 0) return true;
    const next = missing[0];
    if (next !== undefined) return this.change(h, st, nowMs, 'addLearner', next);
    const victim = extra.find((id) => id !== this.o.self);
    if (victim !== undefined) return this.change(h, st, nowMs, 'remove', victim);
    // Only this leader is left to go: hand leadership to a pod of the set first.
    const heir = desired.find((id) => caughtUp(h.group, id));
    if (heir !== undefined && nowMs - st.lastTransferMs >= this.o.transferIntervalMs) {
      st.lastTransferMs = nowMs;
      this.o.logger.info({ partition: h.partition, to: heir },
        'leaving the replica set of the partition: handing leadership over first');
      h.group.transferLeadership(heir);
    }
    return true;
  }

  private change(h: HostedPartition, st: DutyState, nowMs: number,
    type: 'addLearner' | 'remove', node: NodeId): boolean {
    st.lastChangeMs = nowMs;
    try {
      h.group.proposeConfChange({ type, node });
      this.o.logger.info({ partition: h.partition, change: type, node },
        'changing the members of the partition to follow the placement');
    } catch (err) {
      if (!(err instanceof DsyncError)) throw err;
      this.o.logger.debug({ err, partition: h.partition, change: type, node },
        'membership change refused for now; will retry');
    }
    return true;
  }
}

/** Whether `id` is a voter that the leader replicates to and that has everything committed. */
function caughtUp(group: RaftGroup, id: NodeId): boolean {
  const s = group.status();
  const pr = s.progress?.[id];
  return s.config.voters.includes(id) && pr !== undefined && pr.state === 'replicate' &&
    pr.match >= s.commit;
}
