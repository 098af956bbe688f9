// What a partition must do at a given time, in one heap: lease deadlines, delayed nacks
// becoming ready, delayed messages entering their topic, retention of a topic's oldest entry.
// A timer is a hint: the partition checks it against its state when it pops (lazy deletion),
// so a lease that was acked, extended or trimmed leaves a stale timer behind, never a wrong
// transition. The heap is derived state (rebuilt on restore), and its order is total, so the
// order in which due work is done never depends on the heap's internal layout.
import { assert } from '../assert.js';
import { MinHeap } from '../min-heap.js';

export const TIMER_LEASE = 0;
export const TIMER_DELAYED = 1;
export const TIMER_SCHEDULED = 2;
export const TIMER_RETENTION = 3;
export type TimerKind = typeof TIMER_LEASE | typeof TIMER_DELAYED | typeof TIMER_SCHEDULED |
  typeof TIMER_RETENTION;

export interface Timer {
  readonly atMs: number;
  readonly kind: TimerKind;
  readonly topic: string;
  /** '' for topic-wide timers (scheduled, retention). */
  readonly group: string;
  /** The entry's position; 0 for topic-wide timers. */
  readonly pos: number;
}

/** Total order: time, then kind, topic, group, position. */
export function timerLess(a: Timer, b: Timer): boolean {
  if (a.atMs !== b.atMs) return a.atMs < b.atMs;
  if (a.kind !== b.kind) return a.kind < b.kind;
  if (a.topic !== b.topic) return a.topic < b.topic;
  if (a.group !== b.group) return a.group < b.group;
  return a.pos < b.pos;
}

/** Stale timers tolerated beyond the heap's size at the last clean-up. */
const STALE_SLACK = 1024;

export class TimerIndex {
  private readonly heap = new MinHeap<Timer>(timerLess);
  private sizeAfterCleanup = 0;

  constructor(private readonly isLive: (t: Timer) => boolean) {}

  get size(): number {
    return this.heap.size;
  }

  push(t: Timer): void {
    assert(Number.isSafeInteger(t.atMs), `timer time must be a safe integer: ${t.atMs}`);
    this.heap.push(t);
    // Bounded by twice the live timers plus slack: a clean-up costs O(size) once per about
    // `size` pushes.
    if (this.heap.size > 2 * this.sizeAfterCleanup + STALE_SLACK) {
      this.heap.filter(this.isLive);
      this.sizeAfterCleanup = this.heap.size;
    }
  }

  /** The earliest live timer, stale ones above it dropped; undefined when none. */
  peekLive(): Timer | undefined {
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined || this.isLive(top)) return top;
      this.heap.pop();
    }
  }

  /** Pops the earliest live timer if it is due at `nowMs`. */
  popDue(nowMs: number): Timer | undefined {
    const top = this.peekLive();
    if (top === undefined || top.atMs > nowMs) return undefined;
    this.heap.pop();
    return top;
  }

  entries(): readonly Timer[] {
    return this.heap.entries();
  }
}
