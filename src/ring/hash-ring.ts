// Consistent hashing with virtual nodes. Every node owns `vnodesPerNode` points on a 64-bit
// ring (xxh64 of "node#i"); a key belongs to the first point at or after xxh64(key),
// wrapping around. Adding or removing a node moves only the keys of the points it gains or
// loses, which is what lets the cache rehome few keys and the queue move few partitions.

import { xxh64 } from '@node-rs/xxhash';
import { assert } from '../assert.js';
import { InvalidArgumentError } from '../errors.js';

export type RingNodeId = string;

/** Points per node. More points balance better and cost memory: 128 keeps every node's share
 * within about ±25 % of the mean for small clusters. */
export const DEFAULT_VNODES_PER_NODE = 128;
export const VNODES_PER_NODE_MAX = 4096;
/** Nodes on one ring; a cache or queue StatefulSet is far smaller. */
export const RING_NODES_MAX = 1024;

export interface HashRingOptions {
  /** Virtual nodes per node, 1..VNODES_PER_NODE_MAX, default DEFAULT_VNODES_PER_NODE. */
  readonly vnodesPerNode?: number;
}

interface Point {
  readonly hash: bigint;
  readonly node: RingNodeId;
}

export function parseHashRingOptions(opts: HashRingOptions): Required<HashRingOptions> {
  const vnodesPerNode = opts.vnodesPerNode ?? DEFAULT_VNODES_PER_NODE;
  if (!Number.isSafeInteger(vnodesPerNode) || vnodesPerNode < 1 ||
      vnodesPerNode > VNODES_PER_NODE_MAX) {
    throw new InvalidArgumentError('vnodesPerNode',
      `vnodesPerNode must be an integer in 1..${VNODES_PER_NODE_MAX}, got ${vnodesPerNode}`);
  }
  return { vnodesPerNode };
}

/** The 64-bit ring position of a key (exported so tests and tools can reason about it). */
export function ringHash(key: string): bigint {
  return xxh64(key);
}

export class HashRing {
  private readonly vnodesPerNode: number;
  private readonly members = new Set<RingNodeId>();
  /** Sorted by (hash, node): ties broken by node id so every instance agrees. */
  private points: Point[] = [];

  constructor(nodes: readonly RingNodeId[] = [], opts: HashRingOptions = {}) {
    this.vnodesPerNode = parseHashRingOptions(opts).vnodesPerNode;
    for (const node of nodes) this.addNode(node);
  }

  /** Adds a node; returns false when it was already a member. */
  addNode(node: RingNodeId): boolean {
    if (node.length === 0) throw new InvalidArgumentError('node', 'a ring node id is non-empty');
    if (this.members.has(node)) return false;
    if (this.members.size >= RING_NODES_MAX) {
      throw new InvalidArgumentError('node', `a ring holds at most ${RING_NODES_MAX} nodes`);
    }
    this.members.add(node);
    const added: Point[] = [];
    for (let i = 0; i < this.vnodesPerNode; i++) {
      added.push({ hash: ringHash(`${node}#${i}`), node });
    }
    this.points = this.points.concat(added).sort(comparePoints);
    assert(this.points.length === this.members.size * this.vnodesPerNode, 'ring point count');
    return true;
  }

  /** Removes a node; returns false when it was not a member. */
  removeNode(node: RingNodeId): boolean {
    if (!this.members.delete(node)) return false;
    this.points = this.points.filter((p) => p.node !== node);
    assert(this.points.length === this.members.size * this.vnodesPerNode, 'ring point count');
    return true;
  }

  hasNode(node: RingNodeId): boolean {
    return this.members.has(node);
  }

  /** Members in sorted order. */
  nodes(): RingNodeId[] {
    return [...this.members].sort();
  }

  get size(): number {
    return this.members.size;
  }

  /** The node that owns `key`, or null on an empty ring. */
  ownerOf(key: string): RingNodeId | null {
    if (this.points.length === 0) return null;
    const point = this.points[this.firstAtOrAfter(ringHash(key))];
    assert(point !== undefined, 'ring lookup in range');
    return point.node;
  }

  /** Up to `n` distinct nodes in ring order starting at the owner of `key` (the owner first):
   * the replica set of a queue partition. Fewer when the ring has fewer members. */
  successors(key: string, n: number): RingNodeId[] {
    assert(Number.isSafeInteger(n) && n >= 0, 'successors count is a non-negative integer');
    const want = Math.min(n, this.members.size);
    const out: RingNodeId[] = [];
    if (want === 0) return out;
    const start = this.firstAtOrAfter(ringHash(key));
    for (let i = 0; i < this.points.length && out.length < want; i++) {
      const point = this.points[(start + i) % this.points.length];
      assert(point !== undefined, 'ring walk in range');
      if (!out.includes(point.node)) out.push(point.node);
    }
    assert(out.length === want, 'a full walk of the ring meets every member');
    return out;
  }

  /** Index of the first point with hash >= h, wrapping to 0 past the end. */
  private firstAtOrAfter(h: bigint): number {
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const point = this.points[mid];
      assert(point !== undefined, 'binary search in range');
      if (point.hash < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.points.length ? 0 : lo;
  }
}

function comparePoints(a: Point, b: Point): number {
  if (a.hash !== b.hash) return a.hash < b.hash ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}
