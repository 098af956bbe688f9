// When to renew the lease of a cache line: a schedule of (key, line, due time) in buckets of
// RENEWAL_BUCKET_MS, so that adding and taking what is due cost O(1) however many lines a pod
// holds. Pure; the node (coherence.ts) adds an entry for every grant it receives and, on each
// tick, renews the lines that are still the same grant and still in use.

import { assert } from '../assert.js';

/** Width of one bucket: renewals run up to this much after their due time. */
export const RENEWAL_BUCKET_MS = 50;

export interface RenewalEntry<T> {
  readonly key: string;
  /** The line as granted: a later grant replaces it, and then this entry is stale. */
  readonly line: T;
}

export class RenewalSchedule<T> {
  private readonly buckets = new Map<number, RenewalEntry<T>[]>();
  /** The first bucket not taken yet. */
  private next: number;
  private count = 0;

  constructor(nowMs: number, private readonly entriesMax: number) {
    assert(Number.isSafeInteger(entriesMax) && entriesMax > 0, 'entriesMax > 0');
    this.next = Math.floor(nowMs / RENEWAL_BUCKET_MS);
  }

  get size(): number {
    return this.count;
  }

  /** Schedules `line` of `key` at `dueMs`; false (not scheduled) when the schedule is full. */
  add(key: string, line: T, dueMs: number): boolean {
    if (this.count >= this.entriesMax) return false;
    const b = Math.max(this.next, Math.floor(dueMs / RENEWAL_BUCKET_MS));
    const list = this.buckets.get(b);
    if (list === undefined) this.buckets.set(b, [{ key, line }]);
    else list.push({ key, line });
    this.count++;
    return true;
  }

  /** Takes every entry due by `nowMs`, earliest bucket first. */
  takeDue(nowMs: number): RenewalEntry<T>[] {
    const last = Math.floor(nowMs / RENEWAL_BUCKET_MS);
    const out: RenewalEntry<T>[] = [];
    for (; this.next <= last; this.next++) {
      const list = this.buckets.get(this.next);
      if (list === undefined) continue;
      this.buckets.delete(this.next);
      for (const e of list) out.push(e);
    }
    this.count -= out.length;
    assert(this.count >= 0, 'renewal entries are counted');
    return out;
  }
}
