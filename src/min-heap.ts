// A binary min-heap. Its order must be total (ties broken by every field) wherever the pop
// order decides anything, so that it never depends on the heap's internal layout.
import { assert } from './assert.js';

export class MinHeap<T> {
  private items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Every entry, in no particular order (for invariant checks and rebuilds). */
  entries(): readonly T[] {
    return this.items;
  }

  /** Keeps only the entries `keep` accepts. */
  filter(keep: (x: T) => boolean): void {
    const kept = this.items.filter(keep);
    this.items = [];
    for (const x of kept) this.push(x);
  }

  push(x: T): void {
    const h = this.items;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent];
      assert(p !== undefined, 'heap parent exists');
      if (!this.less(x, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = x;
  }

  pop(): T | undefined {
    const h = this.items;
    const top = h[0];
    const last = h.pop();
    if (last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let best = last;
      const lv = h[l];
      const rv = h[r];
      if (lv !== undefined && this.less(lv, best)) { m = l; best = lv; }
      if (rv !== undefined && this.less(rv, best)) { m = r; best = rv; }
      if (m === i) break;
      h[i] = best;
      i = m;
    }
    h[i] = last;
    return top;
  }
}
