// A least-recently-used map bounded in bytes. Each entry costs its value's size plus a fixed
// overhead for the key and bookkeeping. The LRU never evicts on its own: `evictUntil` hands
// the victims back so the caller can write dirty ones back first. Entries pinned by an
// in-flight coherence transition are skipped. Every operation is O(1) except evictUntil,
// which is O(victims + pinned entries passed over).

import { assert } from '../assert.js';
import { InvalidArgumentError } from '../errors.js';

/** Bytes charged per entry on top of its value (key, links, line metadata). */
export const DEFAULT_ENTRY_OVERHEAD_BYTES = 64;
export const DEFAULT_LRU_CAPACITY_BYTES = 64 * 1024 * 1024;

export interface LruOptions {
  /** Capacity in bytes (> 0), default DEFAULT_LRU_CAPACITY_BYTES (64 MiB). */
  readonly capacityBytes?: number;
  /** Fixed cost per entry in bytes (>= 0), default DEFAULT_ENTRY_OVERHEAD_BYTES. */
  readonly entryOverheadBytes?: number;
}

export interface LruVictim<K, V> {
  readonly key: K;
  readonly value: V;
  readonly bytes: number;
}

interface Node<K, V> {
  key: K;
  value: V;
  bytes: number;
  pins: number;
  prev: Node<K, V> | null;
  next: Node<K, V> | null;
}

export function parseLruOptions(opts: LruOptions): Required<LruOptions> {
  const capacityBytes = opts.capacityBytes ?? DEFAULT_LRU_CAPACITY_BYTES;
  const entryOverheadBytes = opts.entryOverheadBytes ?? DEFAULT_ENTRY_OVERHEAD_BYTES;
  if (!Number.isSafeInteger(capacityBytes) || capacityBytes <= 0) {
    throw new InvalidArgumentError('capacityBytes', 'capacityBytes must be a positive integer');
  }
  if (!Number.isSafeInteger(entryOverheadBytes) || entryOverheadBytes < 0) {
    throw new InvalidArgumentError('entryOverheadBytes',
      'entryOverheadBytes must be a non-negative integer');
  }
  return { capacityBytes, entryOverheadBytes };
}

export class Lru<K, V> {
  readonly capacityBytes: number;
  readonly entryOverheadBytes: number;
  private readonly map = new Map<K, Node<K, V>>();
  /** Most recently used end. */
  private head: Node<K, V> | null = null;
  /** Least recently used end: eviction starts here. */
  private tail: Node<K, V> | null = null;
  private totalBytes = 0;

  constructor(opts: LruOptions = {}) {
    const parsed = parseLruOptions(opts);
    this.capacityBytes = parsed.capacityBytes;
    this.entryOverheadBytes = parsed.entryOverheadBytes;
  }

  get size(): number {
    return this.map.size;
  }

  /** Bytes charged for all entries, pinned ones included. */
  get bytes(): number {
    return this.totalBytes;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** The value, marking it most recently used. */
  get(key: K): V | undefined {
    const node = this.map.get(key);
    if (node === undefined) return undefined;
    this.moveToHead(node);
    return node.value;
  }

  /** The value without changing recency. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  /** Marks an entry most recently used; false when absent. */
  touch(key: K): boolean {
    const node = this.map.get(key);
    if (node === undefined) return false;
    this.moveToHead(node);
    return true;
  }

  /** Inserts or replaces; the entry becomes most recently used and keeps its pins. The caller
   * calls evictUntil(capacityBytes) afterwards and handles the victims. */
  set(key: K, value: V, valueBytes: number): void {
    assert(Number.isSafeInteger(valueBytes) && valueBytes >= 0, 'valueBytes is a size');
    const bytes = valueBytes + this.entryOverheadBytes;
    const node = this.map.get(key);
    if (node !== undefined) {
      this.totalBytes += bytes - node.bytes;
      node.value = value;
      node.bytes = bytes;
      this.moveToHead(node);
      return;
    }
    const fresh: Node<K, V> = { key, value, bytes, pins: 0, prev: null, next: null };
    this.map.set(key, fresh);
    this.linkAtHead(fresh);
    this.totalBytes += bytes;
  }

  /** Removes an entry whatever its pins; returns it, or undefined when absent. */
  delete(key: K): V | undefined {
    const node = this.map.get(key);
    if (node === undefined) return undefined;
    this.unlink(node);
    this.map.delete(key);
    this.totalBytes -= node.bytes;
    assert(this.totalBytes >= 0, 'byte count never negative');
    return node.value;
  }

  /** Protects an entry from eviction (counted: pin twice, unpin twice). */
  pin(key: K): void {
    const node = this.map.get(key);
    assert(node !== undefined, 'pin of a present entry');
    node.pins++;
  }

  unpin(key: K): void {
    const node = this.map.get(key);
    assert(node !== undefined && node.pins > 0, 'unpin of a pinned entry');
    node.pins--;
  }

  isPinned(key: K): boolean {
    return (this.map.get(key)?.pins ?? 0) > 0;
  }

  /** Evicts least recently used entries until bytes <= targetBytes, skipping pinned entries
   * and those `canEvict` refuses. Returns the victims, oldest first; may stop above the
   * target when everything left is protected. */
  evictUntil(targetBytes: number, canEvict?: (key: K, value: V) => boolean): LruVictim<K, V>[] {
    assert(targetBytes >= 0, 'eviction target is a size');
    const victims: LruVictim<K, V>[] = [];
    let node = this.tail;
    while (node !== null && this.totalBytes > targetBytes) {
      const prev: Node<K, V> | null = node.prev;
      if (node.pins === 0 && (canEvict === undefined || canEvict(node.key, node.value))) {
        this.delete(node.key);
        victims.push({ key: node.key, value: node.value, bytes: node.bytes });
      }
      node = prev;
    }
    return victims;
  }

  /** Keys from most to least recently used (tests, debugging). */
  keys(): K[] {
    const out: K[] = [];
    for (let n = this.head; n !== null; n = n.next) out.push(n.key);
    return out;
  }

  /** Entries from most to least recently used, without touching them. */
  *entries(): IterableIterator<[K, V]> {
    for (let n = this.head; n !== null; n = n.next) yield [n.key, n.value];
  }

  private moveToHead(node: Node<K, V>): void {
    if (this.head === node) return;
    this.unlink(node);
    this.linkAtHead(node);
  }

  private linkAtHead(node: Node<K, V>): void {
    node.prev = null;
    node.next = this.head;
    if (this.head !== null) this.head.prev = node;
    this.head = node;
    if (this.tail === null) this.tail = node;
  }

  private unlink(node: Node<K, V>): void {
    if (node.prev !== null) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next !== null) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = null;
    node.next = null;
  }
}
