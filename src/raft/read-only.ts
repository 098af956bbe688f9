// The leader's ReadIndex queue (dissertation §6.4): each read records the commit index when it
// arrived and the heartbeat round that confirms leadership for it. A round is confirmed when a
// quorum of voters answered a heartbeat of that round or a later one; reads are released in
// arrival order.

import { assert } from '../assert.js';
import { hasQuorum } from './quorum.js';
import type { NodeId, ReadState } from './types.js';

interface PendingRead {
  readonly ctx: number;
  readonly index: number;
  readonly round: number;
}

export class ReadOnlyQueue {
  private readonly pending: PendingRead[] = [];
  /** Reads that arrived before the leader committed an entry of its term. */
  private readonly waitingForTermCommit: number[] = [];
  private readonly ackedRound = new Map<NodeId, number>();
  private round = 0;

  constructor(readonly maxPendingReads: number) {
    assert(maxPendingReads > 0, 'read queue bound is positive');
  }

  size(): number {
    return this.pending.length + this.waitingForTermCommit.length;
  }

  full(): boolean {
    return this.size() >= this.maxPendingReads;
  }

  /** Park a read until the leader has committed in its term. */
  wait(ctx: number): void {
    assert(!this.full(), 'read queue overflow');
    this.waitingForTermCommit.push(ctx);
  }

  /** Move parked reads into a new round at `index`; returns the round or 0 if none. */
  flushWaiting(index: number): number {
    if (this.waitingForTermCommit.length === 0) return 0;
    const round = ++this.round;
    for (const ctx of this.waitingForTermCommit) this.pending.push({ ctx, index, round });
    this.waitingForTermCommit.length = 0;
    return round;
  }

  /** Queue a read at `index` in a fresh round; returns the round to put on heartbeats. */
  add(ctx: number, index: number): number {
    assert(!this.full(), 'read queue overflow');
    const last = this.pending[this.pending.length - 1];
    assert(last === undefined || last.index <= index, 'read indexes are monotonic');
    const round = ++this.round;
    this.pending.push({ ctx, index, round });
    return round;
  }

  /** The newest round still awaiting confirmation (0 = none), for heartbeats. */
  latestRound(): number {
    return this.pending.length === 0 ? 0 : this.round;
  }

  /** Record a heartbeat answer and release the reads a quorum has now confirmed. */
  ack(from: NodeId, round: number, self: NodeId, voters: readonly NodeId[]): ReadState[] {
    if (round > (this.ackedRound.get(from) ?? 0)) this.ackedRound.set(from, round);
    const out: ReadState[] = [];
    while (this.pending.length > 0) {
      const head = this.pending[0];
      assert(head !== undefined, 'non-empty queue has a head');
      const ok = hasQuorum(voters,
        (v) => v === self || (this.ackedRound.get(v) ?? 0) >= head.round);
      if (!ok) break;
      out.push({ index: head.index, ctx: head.ctx });
      this.pending.shift();
    }
    return out;
  }

  /** Leadership lost: every read still queued is dropped. Returns their contexts. */
  drain(): number[] {
    const ctxs = [...this.waitingForTermCommit, ...this.pending.map((p) => p.ctx)];
    this.pending.length = 0;
    this.waitingForTermCommit.length = 0;
    this.ackedRound.clear();
    return ctxs;
  }
}
