// One lock's live state: its holders in grant order and its FIFO queue of waiters, shaped so
// that every operation a command needs costs O(1) however long the queue is (thousands of
// waiters on one lock are a normal load, and every replica, and every replay, pays for each
// command). Holders are an insertion-ordered Map (a new grant goes last and carries the
// newest token, so insertion order is grant order). Waiters are a doubly linked list indexed
// by owner: push at either end, remove anywhere, look up the neighbour ahead.
//
// The order of both is replicated state (the snapshot lists them in this order). The `seq`
// numbers are derived: they only compare positions within one queue, and are rebuilt on
// restore.
import { assert } from '../assert.js';
import type { LockMode } from './commands.js';
import type { Holder, Waiter } from './lock-table-snapshot.js';

interface QueueNode {
  readonly waiter: Waiter;
  /** Increases from the front of the queue to the back. */
  readonly seq: number;
  prev: QueueNode | null;
  next: QueueNode | null;
}

export class WaitQueue implements Iterable<Waiter> {
  private readonly byOwner = new Map<string, QueueNode>();
  private head: QueueNode | null = null;
  private tail: QueueNode | null = null;
  private frontSeq = 0;
  private backSeq = 0;

  get size(): number {
    return this.byOwner.size;
  }

  get(owner: string): Waiter | undefined {
    return this.byOwner.get(owner)?.waiter;
  }

  has(owner: string): boolean {
    return this.byOwner.has(owner);
  }

  first(): Waiter | undefined {
    return this.head?.waiter;
  }

  /** Whether `owner` waits here with nobody behind it. */
  isLast(owner: string): boolean {
    return this.tail !== null && this.tail.waiter.owner === owner;
  }

  /** The waiter just ahead of `owner` (who must be queued), or undefined at the front. */
  ahead(owner: string): Waiter | undefined {
    const n = this.byOwner.get(owner);
    assert(n !== undefined, () => `${owner} is queued`);
    return n.prev?.waiter;
  }

  /** Position key of a queued owner: smaller is nearer the front. */
  seqOf(owner: string): number {
    const n = this.byOwner.get(owner);
    assert(n !== undefined, () => `${owner} is queued`);
    return n.seq;
  }

  pushBack(w: Waiter): void {
    assert(!this.byOwner.has(w.owner), () => `${w.owner} is queued once`);
    const n: QueueNode = { waiter: w, seq: this.backSeq++, prev: this.tail, next: null };
    if (this.size === 0) this.frontSeq = n.seq - 1;
    if (this.tail === null) this.head = n;
    else this.tail.next = n;
    this.tail = n;
    this.byOwner.set(w.owner, n);
  }

  pushFront(w: Waiter): void {
    assert(!this.byOwner.has(w.owner), () => `${w.owner} is queued once`);
    const n: QueueNode = { waiter: w, seq: this.frontSeq--, prev: null, next: this.head };
    if (this.size === 0) this.backSeq = n.seq + 1;
    if (this.head === null) this.tail = n;
    else this.head.prev = n;
    this.head = n;
    this.byOwner.set(w.owner, n);
  }

  /** Removes `owner`'s place; returns its waiter, or undefined when it was not queued. */
  remove(owner: string): Waiter | undefined {
    const n = this.byOwner.get(owner);
    if (n === undefined) return undefined;
    this.byOwner.delete(owner);
    if (n.prev === null) this.head = n.next;
    else n.prev.next = n.next;
    if (n.next === null) this.tail = n.prev;
    else n.next.prev = n.prev;
    return n.waiter;
  }

  /** Checks the links, the index and the order of positions; throws AssertionError. O(n). */
  check(): void {
    let count = 0;
    let prev: QueueNode | null = null;
    for (let n = this.head; n !== null; n = n.next) {
      assert(n.prev === prev, 'queue links agree both ways');
      assert(prev === null || prev.seq < n.seq, 'queue positions increase to the back');
      assert(this.byOwner.get(n.waiter.owner) === n, `queue index finds ${n.waiter.owner}`);
      prev = n;
      count++;
    }
    assert(this.tail === prev, 'queue tail is the last node');
    assert(count === this.byOwner.size, 'queue index holds exactly the queued owners');
  }

  *[Symbol.iterator](): Iterator<Waiter> {
    for (let n = this.head; n !== null; n = n.next) yield n.waiter;
  }
}

/** A held or waited-on lock. Never empty while it is in the table. */
export class LockEntry {
  /** In grant order (tokens ascending). An owner appears at most once. */
  readonly holders = new Map<string, Holder>();
  /** FIFO; an upgrade (a shared holder wanting exclusive) sits at the front. */
  readonly waiters = new WaitQueue();

  static of(holders: Iterable<Holder>, waiters: Iterable<Waiter>): LockEntry {
    const e = new LockEntry();
    for (const h of holders) e.holders.set(h.owner, h);
    for (const w of waiters) e.waiters.pushBack(w);
    return e;
  }

  /** The mode all holders share (several shared, or one exclusive); null when unheld. */
  holderMode(): LockMode | null {
    const first = this.holders.values().next();
    return first.done === true ? null : first.value.mode;
  }

  isEmpty(): boolean {
    return this.holders.size === 0 && this.waiters.size === 0;
  }
}
