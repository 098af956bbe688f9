// The retry queues and the dedup window's FIFO: an array queue. It holds hints that the
// partition validates against its state (lazy deletion), so it is never part of a snapshot.

/** FIFO over an array with a moving head; compacts once the dead prefix dominates. */
export class ArrayQueue<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(x: T): void {
    this.items.push(x);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    const x = this.items[this.head];
    if (x === undefined) return undefined;
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }

  /** The live items in order. */
  toArray(): T[] {
    return this.items.slice(this.head);
  }

  /** Keeps only the items `keep` accepts, in order. */
  filter(keep: (x: T) => boolean): void {
    this.items = this.items.slice(this.head).filter(keep);
    this.head = 0;
  }
}
