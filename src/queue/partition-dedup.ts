// The dedupId window of a partition: (topic, dedupId) → the first publish's message id, for
// DEDUP_WINDOW_MS of the leader's clock. Entries expire in the order they were made (the
// clock is monotonic), so a FIFO beside the map evicts in O(1) per entry; the FIFO's order is
// replicated (snapshots list it) and the map is derived from it.
import { assert } from '../assert.js';
import { ArrayQueue } from './partition-queue.js';
import { DEDUP_WINDOW_MS } from './partition-limits.js';

export interface DedupEntry {
  readonly topic: string;
  readonly dedupId: string;
  /** The message id's number. */
  readonly seq: number;
  readonly atMs: number;
}

function keyOf(topic: string, dedupId: string): string {
  // Names and dedupIds never contain control characters, so NUL cannot be ambiguous.
  return `${topic}\u0000${dedupId}`;
}

export class DedupWindow {
  private readonly byKey = new Map<string, DedupEntry>();
  private readonly fifo = new ArrayQueue<DedupEntry>();
  private newest: DedupEntry | undefined;

  get size(): number {
    return this.byKey.size;
  }

  /** The first publish's seq while the window lasts. */
  lookup(topic: string, dedupId: string, nowMs: number): number | undefined {
    const e = this.byKey.get(keyOf(topic, dedupId));
    return e !== undefined && nowMs < e.atMs + DEDUP_WINDOW_MS ? e.seq : undefined;
  }

  remember(e: DedupEntry): void {
    const key = keyOf(e.topic, e.dedupId);
    assert(!this.byKey.has(key), `dedupId ${e.dedupId} of ${e.topic} remembered twice`);
    const last = this.fifo.length === 0 ? undefined : this.newest;
    assert(last === undefined || last.atMs <= e.atMs, 'dedup window is in time order');
    this.byKey.set(key, e);
    this.fifo.push(e);
    this.newest = e;
  }

  /** Forgets the entries whose window ended by `nowMs`; returns how many. */
  evict(nowMs: number): number {
    let n = 0;
    for (let e = this.fifo.peek(); e !== undefined && nowMs >= e.atMs + DEDUP_WINDOW_MS;
      e = this.fifo.peek()) {
      this.fifo.shift();
      this.byKey.delete(keyOf(e.topic, e.dedupId));
      n++;
    }
    return n;
  }

  /** Oldest first. */
  rows(): DedupEntry[] {
    return this.fifo.toArray();
  }

  /** For invariant checks: the map and the FIFO agree. */
  check(entriesMax: number): void {
    const rows = this.rows();
    assert(rows.length === this.byKey.size, 'dedup map and FIFO have the same entries');
    assert(rows.length <= entriesMax, 'dedup window over dedupEntriesMax');
    let at = -Infinity;
    for (const e of rows) {
      assert(e.atMs >= at, 'dedup FIFO is in time order');
      assert(this.byKey.get(keyOf(e.topic, e.dedupId)) === e, 'dedup map matches the FIFO');
      at = e.atMs;
    }
  }
}
