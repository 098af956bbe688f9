// The leader's view of one follower's replication (etcd-io/raft's Progress): probe while the
// match point is unknown (one append in flight), replicate with a bounded pipeline of appends,
// or snapshot while an InstallSnapshot transfer runs.

import { assert } from '../assert.js';
import type { Snapshot } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded FIFO of the last indexes of appends in flight to one follower. */
export class Inflights {
  private readonly lastIndexes: number[] = [];

  constructor(readonly capacity: number) {
    assert(Number.isSafeInteger(capacity) && capacity > 0, 'inflight capacity is positive');
  }

  add(lastIndex: number): void {
    assert(!this.full(), 'inflight window overflow');
    const prev = this.lastIndexes[this.lastIndexes.length - 1];
    assert(prev === undefined || lastIndex > prev, 'inflight appends are increasing');
    this.lastIndexes.push(lastIndex);
  }

  /** Acknowledge every append whose last index is <= `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && (this.lastIndexes[n] ?? Infinity) <= index) n++;
    if (n > 0) this.lastIndexes.splice(0, n);
  }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }

  count(): number {
    return this.lastIndexes.length;
  }

  reset(): void {
    this.lastIndexes.length = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding; wait for its answer or a heartbeat answer. */
  probeSent = false;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** The leader's periodic heartbeat count when a heartbeat answer last resent lost appends
   * or snapshot chunks: once per heartbeat interval. */
  recoveredAtHeartbeat = -1;
  /** In snapshot state: the snapshot index being sent and the bytes acknowledged so far. */
  pendingSnapshot = 0;
  snapshotAckedBytes = 0;
  /** In snapshot state: the image being sent. The leader may compact (and replace its own
   * snapshot) while a transfer runs; the transfer goes on with the image it started, since
   * the offsets the follower acknowledges refer to it. Restarting with the newer image
   * instead meant that a follower whose transfer took longer than the gap between two
   * compactions never caught up. */
  snapshotImage: Snapshot | null = null;
  readonly inflight: Inflights;

  constructor(next: number, maxInflight: number) {
    assert(next >= 1, 'next index starts at 1');
    this.next = next;
    this.inflight = new Inflights(maxInflight);
  }

  becomeProbe(): void {
    // After a snapshot, resume right after it; otherwise after what we know matches.
    if (this.state === 'snapshot') {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.reset('probe');
    assert(this.next > this.match, 'next is past match');
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.reset('replicate');
  }

  becomeSnapshot(snapshot: Snapshot): void {
    const index = snapshot.meta.index;
    assert(index > this.match, 'a snapshot is needed only past match');
    this.reset('snapshot');
    this.pendingSnapshot = index;
    this.snapshotAckedBytes = 0;
    this.snapshotImage = snapshot;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotAckedBytes = 0;
    this.snapshotImage = null;
    this.inflight.reset();
  }

  /** An append was acknowledged up to `index`; returns whether match moved. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    assert(this.next > this.match, 'next stays past match');
    return updated;
  }

  /** Pipelining: assume the append to `last` will succeed. */
  optimisticUpdate(last: number): void {
    assert(last >= this.next - 1, 'optimistic update moves forward');
    this.next = last + 1;
  }

  /**
   * The follower rejected an append at `rejected`, hinting its log matches at most up to
   * `hint`. Returns false for stale rejections.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    assert(this.next > this.match, 'backtracking stays past match');
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe': return this.probeSent;
      case 'replicate': return this.inflight.full();
      case 'snapshot': return true;
    }
  }
}
