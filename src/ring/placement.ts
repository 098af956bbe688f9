// Placement of queue topics on partitions and of partitions on pods.
//
// - A topic lives on partition `xxh64(base) mod P`, where base is the topic's name with every
//   trailing `.dlq` stripped: `orders`, `orders.dlq` and `orders.dlq.dlq` share a partition,
//   so dead-lettering and redrive stay inside one Raft group.
// - Partition p's replica set is the R distinct pods that follow the point `partition-p` on the
//   consistent-hash ring of pods (HashRing, virtual nodes). A pod joining or leaving changes
//   each partition's set by at most one member (the pod itself goes in or out, and the R-th
//   successor with it), so about R·P/N replicas move.
// - The preferred leader of a partition is the first pod of its replica set, and the set's
//   order is chosen so that preferred leaders are balanced: with L = P/N, every pod prefers
//   floor(L) or ceil(L) partitions. Plain hashing cannot promise that (with 16 partitions on
//   5 pods a pod first on the ring for 6 partitions is common), so the leaders start as the
//   ring's first successors and are then moved along augmenting paths (a leadership moves to
//   another member of the same replica set) until no path lowers the imbalance; such an
//   assignment is optimal for the given sets (Harvey et al., "Semi-matchings for bipartite
//   graphs", 2003). Those moves change only the order inside sets, so they move no data.
// - When even the optimal order leaves a pod leading two fewer than another (its ring share
//   is too small: with 128 virtual nodes a pod can sit in only 1 of 16 replica sets), one
//   replica is replaced: a partition led by a most-loaded pod gets a least-loaded pod as its
//   leader in place of its last ring successor. Such repairs are rare, each moves one replica,
//   and `planPlacement` reports how many were made.
// Everything is deterministic: sorted inputs, ties broken by pod id, no Map iteration order.
import { assert } from '../assert.js';
import { InvalidArgumentError } from '../errors.js';
import { HashRing, ringHash, type RingNodeId } from './hash-ring.js';

/** The suffix of a topic's dead-letter topic. */
export const DLQ_SUFFIX = '.dlq';
/** Partitions of a queue cluster (fixed when it is created). */
export const DEFAULT_PARTITIONS = 16;
export const PARTITIONS_MAX = 4096;
/** Replicas per partition. */
export const DEFAULT_REPLICAS = 3;
export const REPLICAS_MAX = 7;

/** The topic name placement hashes: every trailing `.dlq` stripped (never down to nothing). */
export function placementKeyOf(topic: string): string {
  let base = topic;
  while (base.length > DLQ_SUFFIX.length && base.endsWith(DLQ_SUFFIX)) {
    base = base.slice(0, -DLQ_SUFFIX.length);
  }
  return base;
}

function checkCount(v: number, field: string, max: number): void {
  if (!Number.isSafeInteger(v) || v < 1 || v > max) {
    throw new InvalidArgumentError(field, `${field} must be an integer from 1 to ${max}`);
  }
}

/** The partition of a topic, 0..P-1. Stable across processes and versions (xxh64). */
export function partitionOf(topic: string, partitions: number): number {
  checkCount(partitions, 'partitions', PARTITIONS_MAX);
  return Number(ringHash(placementKeyOf(topic)) % BigInt(partitions));
}

export interface Placement {
  /** `sets[p]`: R distinct pods (fewer when there are fewer pods), preferred leader first. */
  readonly sets: RingNodeId[][];
  /** Replicas placed off the ring's successors to balance leaders (usually 0). */
  readonly repairs: number;
}

/** The placement of all partitions on `pods`. */
export function planPlacement(pods: readonly RingNodeId[], partitions: number,
  replicas: number): Placement {
  checkCount(partitions, 'partitions', PARTITIONS_MAX);
  checkCount(replicas, 'replicas', REPLICAS_MAX);
  if (new Set(pods).size !== pods.length) {
    throw new InvalidArgumentError('pods', 'pod ids must be distinct');
  }
  const ring = new HashRing([...pods].sort());
  const sets: RingNodeId[][] = [];
  for (let p = 0; p < partitions; p++) sets.push(ring.successors(`partition-${p}`, replicas));
  if (pods.length === 0) return { sets, repairs: 0 };
  const { leaders, repairs } = balanceLeaders(sets, [...pods].sort());
  return { repairs, sets: sets.map((set, p) => {
    const leader = leaders[p];
    assert(leader !== undefined && set.includes(leader), 'a leader is a member of its set');
    return [leader, ...set.filter((x) => x !== leader)];
  }) };
}

/** The replica sets of all partitions, preferred leader first (see planPlacement). */
export function placePartitions(pods: readonly RingNodeId[], partitions: number,
  replicas: number): RingNodeId[][] {
  return planPlacement(pods, partitions, replicas).sets;
}

/** The replica set of one partition (preferred leader first); computes the whole placement,
 * because leader balance is a property of all partitions together. */
export function replicasOf(partition: number, pods: readonly RingNodeId[], replicas: number,
  partitions: number = DEFAULT_PARTITIONS): RingNodeId[] {
  if (!Number.isSafeInteger(partition) || partition < 0 || partition >= partitions) {
    throw new InvalidArgumentError('partition', `partition must be an integer from 0 to ` +
      `${partitions - 1}`);
  }
  const set = placePartitions(pods, partitions, replicas)[partition];
  assert(set !== undefined, 'every partition is placed');
  return set;
}

/** The preferred leader of each partition: ring-first, then rebalanced along augmenting
 * paths, with a repair of `sets` where no path is left and pods still differ by two or more.
 * `pods` sorted. */
function balanceLeaders(sets: RingNodeId[][], pods: readonly RingNodeId[]):
  { leaders: RingNodeId[]; repairs: number } {
  const leaders = sets.map((s) => {
    const first = s[0];
    assert(first !== undefined, 'a non-empty ring gives every partition a replica');
    return first;
  });
  let repairs = 0;
  // Each step lowers the sum of squared loads, so this terminates; the bound is a guard
  // against a bug, far above what P partitions can need.
  for (let round = 0; round <= sets.length * pods.length; round++) {
    const path = findAugmentingPath(sets, leaders, pods);
    if (path !== null) {
      for (const [partition, to] of path) leaders[partition] = to;
      continue;
    }
    if (!repair(sets, leaders, pods)) return { leaders, repairs };
    repairs++;
  }
  assert(false, 'leader balancing terminates');
}

/** With no augmenting path left: if a most-loaded pod leads two more than a least-loaded
 * one, hand the least-loaded one a partition of the most-loaded in place of that partition's
 * last member. Such a partition exists: had every partition the source leads contained the
 * target, there would be a path of length one. */
function repair(sets: RingNodeId[][], leaders: RingNodeId[], pods: readonly RingNodeId[]):
  boolean {
  const load = loadsOf(leaders, pods);
  const loadOf = (p: RingNodeId): number => load.get(p) ?? 0;
  const byLoad = [...pods].sort((a, b) => loadOf(b) - loadOf(a) || (a < b ? -1 : 1));
  const source = byLoad[0];
  const target = byLoad[byLoad.length - 1];
  assert(source !== undefined && target !== undefined, 'pods to balance');
  if (loadOf(source) - loadOf(target) <= 1) return false;
  const p = leaders.findIndex((l, i) => l === source && !(sets[i] ?? []).includes(target));
  const set = sets[p];
  assert(set !== undefined, 'a partition of the most-loaded pod lacks the least-loaded one');
  const rest = set.filter((x) => x !== source);
  sets[p] = [source, ...rest].slice(0, set.length - 1);
  sets[p].unshift(target);
  leaders[p] = target;
  return true;
}

function loadsOf(leaders: readonly RingNodeId[], pods: readonly RingNodeId[]):
  Map<RingNodeId, number> {
  const load = new Map<RingNodeId, number>(pods.map((p) => [p, 0]));
  for (const l of leaders) load.set(l, (load.get(l) ?? 0) + 1);
  return load;
}

/** A shortest chain of leadership moves (partition, new leader) from a most-loaded pod to a
 * pod that leads at least two fewer, or null when leaders are as balanced as the sets allow
 * (every pod within one of the others, or no such chain exists). Breadth-first from the
 * sources in sorted order, neighbours in partition order: deterministic. */
function findAugmentingPath(sets: readonly (readonly RingNodeId[])[],
  leaders: readonly RingNodeId[], pods: readonly RingNodeId[]):
  Array<[number, RingNodeId]> | null {
  const load = loadsOf(leaders, pods);
  const loadOf = (p: RingNodeId): number => load.get(p) ?? 0;
  const byLoad = [...pods].sort((a, b) => loadOf(b) - loadOf(a) || (a < b ? -1 : 1));
  for (const source of byLoad) {
    const target = loadOf(source) - 2;
    if (target < 0) return null;
    // via.get(pod) = [partition moved onto pod, pod it came from]
    const via = new Map<RingNodeId, [number, RingNodeId]>();
    const queue: RingNodeId[] = [source];
    const seen = new Set<RingNodeId>([source]);
    for (let head = 0; head < queue.length; head++) {
      const from = queue[head];
      assert(from !== undefined, 'queue in range');
      for (let p = 0; p < sets.length; p++) {
        if (leaders[p] !== from) continue;
        for (const to of sets[p] ?? []) {
          if (seen.has(to)) continue;
          seen.add(to);
          via.set(to, [p, from]);
          if (loadOf(to) <= target) return unwind(via, source, to);
          queue.push(to);
        }
      }
    }
  }
  return null;
}

function unwind(via: ReadonlyMap<RingNodeId, [number, RingNodeId]>, source: RingNodeId,
  end: RingNodeId): Array<[number, RingNodeId]> {
  const path: Array<[number, RingNodeId]> = [];
  for (let at = end; at !== source;) {
    const step = via.get(at);
    assert(step !== undefined, 'augmenting path is connected');
    path.push([step[0], at]);
    at = step[1];
  }
  return path;
}
