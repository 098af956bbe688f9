// What is due (a lease expiry or a wait deadline) by a given time, without scanning every
// lock on every command. One entry per key; the lock table keys one per holder and one per
// waiter, so a change to one of them costs O(log n) however long its lock's queue is.
// A binary min-heap with lazy deletion: a heap entry is live only while it matches the
// key's current deadline, and the heap is rebuilt when stale entries outnumber live ones,
// so its size stays within 2 × keys + HEAP_SLACK_ENTRIES.
//
// This index is derived state: it is never part of a snapshot, and callers must not let its
// internal order leak into results (takeDue returns names sorted).
import { assert } from '../assert.js';
import { MinHeap } from '../min-heap.js';

interface HeapEntry {
  readonly atMs: number;
  readonly name: string;
}

/** Stale entries tolerated beyond 2 × live before the heap is rebuilt. */
const HEAP_SLACK_ENTRIES = 64;

function less(a: HeapEntry, b: HeapEntry): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.name < b.name);
}

export class DeadlineIndex {
  private readonly current = new Map<string, number>();
  private heap = new MinHeap<HeapEntry>(less);

  get size(): number {
    return this.current.size;
  }

  get(name: string): number | undefined {
    return this.current.get(name);
  }

  /** Sets (or with null clears) the earliest deadline of `name`. */
  set(name: string, atMs: number | null): void {
    if (atMs === null) {
      this.current.delete(name);
      return;
    }
    assert(Number.isSafeInteger(atMs), `deadline of ${name} must be a safe integer: ${atMs}`);
    if (this.current.get(name) === atMs) return;
    this.current.set(name, atMs);
    this.heap.push({ atMs, name });
    if (this.heap.size > 2 * this.current.size + HEAP_SLACK_ENTRIES) this.rebuild();
  }

  /** The earliest live deadline, or null when nothing is pending. */
  earliest(): number | null {
    this.dropStaleTop();
    return this.heap.peek()?.atMs ?? null;
  }

  /** Names whose deadline is <= nowMs, sorted by name; their entries are cleared (the caller
   * processes each lock and sets its new deadline). */
  takeDue(nowMs: number): string[] {
    const due: string[] = [];
    for (;;) {
      this.dropStaleTop();
      const top = this.heap.peek();
      if (top === undefined || top.atMs > nowMs) break;
      this.heap.pop();
      this.current.delete(top.name);
      due.push(top.name);
    }
    return due.sort();
  }

  private dropStaleTop(): void {
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined || this.current.get(top.name) === top.atMs) return;
      this.heap.pop();
    }
  }

  private rebuild(): void {
    this.heap = new MinHeap<HeapEntry>(less);
    for (const [name, atMs] of this.current) this.heap.push({ atMs, name });
  }
}
