// The leader's ReadIndex queue (dissertation §6.4) and its heartbeat rounds. Every heartbeat
// broadcast is a new round; followers echo the round, and a round is confirmed once a quorum
// of voters answered it or a later one. A read records the commit index when it arrived and
// the round that will confirm it: the next one broadcast after its arrival, never one sent
// before it. Reads are released in arrival order.
//
// Batching: while a round is in flight (broadcast, not yet confirmed, with reads waiting on
// it), new reads wait for the round after it, which goes out when that one is confirmed or
// with the next heartbeat tick, whichever comes first; so a read costs at most one round of
// heartbeats however many arrive, and a steady stream of reads sends one round per round
// trip. The shell measures a leader lease from the confirmed rounds (quorumRound()).

import { assert } from '../assert.js';
import { committedIndex, hasQuorum } from './quorum.js';
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
  /** The last round broadcast (0 = none yet in this leadership). */
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

  /** Move parked reads into the next round at `index`. */
  flushWaiting(index: number): void {
    const parked = this.waitingForTermCommit.splice(0);
    for (const ctx of parked) this.add(ctx, index);
  }

  /** Queue a read at `index`; it is confirmed by the next round broadcast. */
  add(ctx: number, index: number): void {
    assert(!this.full(), 'read queue overflow');
    const last = this.pending[this.pending.length - 1];
    assert(last === undefined || last.index <= index, 'read indexes are monotonic');
    this.pending.push({ ctx, index, round: this.round + 1 });
  }

  /** A new round for a heartbeat broadcast. */
  nextRound(): number {
    this.round++;
    return this.round;
  }

  /** True when reads wait for a round not broadcast yet and none is in flight: no read
   * waits on a round already broadcast (reads are in round order, so the head says). */
  wantsBroadcast(): boolean {
    const head = this.pending[0];
    return head !== undefined && head.round > this.round;
  }

  /** Record a heartbeat answer and release the reads a quorum has now confirmed. */
  ack(from: NodeId, round: number, self: NodeId, voters: readonly NodeId[]): ReadState[] {
    // A round we never sent (a peer of an older process of ours) confirms nothing.
    if (round > this.round) return [];
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

  /** The newest round a quorum of voters has answered (this node counting as having answered
   * every round), 0 when none. */
  quorumRound(self: NodeId, voters: readonly NodeId[]): number {
    return committedIndex(voters, (v) => (v === self ? this.round : this.ackedRound.get(v) ?? 0));
  }

  /** Leadership lost: every read still queued is dropped. Returns their contexts. The round
   * count goes on, so that answers to an earlier leadership's rounds can never confirm a
   * later one's. */
  drain(): number[] {
    const ctxs = [...this.waitingForTermCommit, ...this.pending.map((p) => p.ctx)];
    this.pending.length = 0;
    this.waitingForTermCommit.length = 0;
    this.ackedRound.clear();
    return ctxs;
  }
}
