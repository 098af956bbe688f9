// Placement of topics on partitions and of partitions on pods (src/ring/placement.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashRing } from '../../src/ring/hash-ring.js';
import {
  partitionOf, placePartitions, placementKeyOf, planPlacement, replicasOf,
} from '../../src/ring/placement.js';

const podNames = (n: number, prefix = 'queue'): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function leaderLoads(sets: readonly string[][], pods: readonly string[]): number[] {
  return pods.map((p) => sets.filter((s) => s[0] === p).length);
}

/** Replicas that changed pod between two placements: pods gained, summed over partitions. */
function movedReplicas(a: readonly string[][], b: readonly string[][]): number {
  return a.reduce((n, set, p) => n + (b[p] ?? []).filter((x) => !set.includes(x)).length, 0);
}

const podSet = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
  { minLength: 3, maxLength: 9 });

describe('partitionOf', () => {
  it('is stable, in range, and puts a topic and its DLQs on one partition', () => {
    expect(partitionOf('orders', 16)).toBe(partitionOf('orders', 16));
    expect(partitionOf('orders.dlq', 16)).toBe(partitionOf('orders', 16));
    expect(partitionOf('orders.dlq.dlq', 16)).toBe(partitionOf('orders', 16));
    expect(placementKeyOf('.dlq')).toBe('.dlq');
    expect(placementKeyOf('a.dlq.dlq')).toBe('a');
    // Golden values: placement must never change across versions (it decides where data is).
    expect([partitionOf('orders', 16), partitionOf('emails', 16), partitionOf('a', 64)])
      .toEqual([5, 12, 27]);
    fc.assert(fc.property(fc.string({ minLength: 1 }), fc.integer({ min: 1, max: 4096 }),
      (t, p) => {
        const x = partitionOf(t, p);
        return Number.isInteger(x) && x >= 0 && x < p;
      }));
    expect(() => partitionOf('t', 0)).toThrow(/partitions/);
  });

  it('spreads topics evenly over partitions', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16_000; i++) {
      const p = partitionOf(`topic-${i}`, 16);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    for (const c of counts) {
      expect(c).toBeGreaterThan(800);
      expect(c).toBeLessThan(1200);
    }
  });
});

describe('replica sets', () => {
  it('5 pods, 16 partitions, R = 3: 3 distinct pods each, preferred leaders within one', () => {
    const pods = podNames(5);
    const sets = placePartitions(pods, 16, 3);
    for (const s of sets) {
      expect(s).toHaveLength(3);
      expect(new Set(s).size).toBe(3);
    }
    const loads = leaderLoads(sets, pods);
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    // Plain hashing (the ring's first successor leads) is far from that here: the sets are
    // the ring's, only the leaders moved.
    const ring = new HashRing(pods);
    const ringSets = sets.map((_, p) => ring.successors(`partition-${p}`, 3));
    const ringLoads = leaderLoads(ringSets, pods);
    expect(Math.max(...ringLoads) - Math.min(...ringLoads)).toBeGreaterThan(1);
    sets.forEach((s, p) => expect([...s].sort()).toEqual([...(ringSets[p] ?? [])].sort()));
    expect(replicasOf(7, pods, 3, 16)).toEqual(sets[7]);
    // Deterministic, whatever the order the pods are listed in.
    expect(placePartitions([...pods].reverse(), 16, 3)).toEqual(sets);
  });

  it('repairs a set when the ring alone cannot balance leaders (a pod in 1 of 16 sets)', () => {
    const pods = ['a', 'aa', 'a-', 'u02l3-1', 'c414--5-', 'ypln'];
    const ring = new HashRing(pods);
    const ringSets = Array.from({ length: 16 }, (_, p) => ring.successors(`partition-${p}`, 3));
    expect(ringSets.filter((s) => s.includes('c414--5-'))).toHaveLength(1);
    const { sets, repairs } = planPlacement(pods, 16, 3);
    expect(repairs).toBe(1);
    const loads = leaderLoads(sets, pods);
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    expect(movedReplicas(ringSets, sets)).toBe(repairs);
  });

  it('balances preferred leaders within one for any pod names (N = 3..9, P = 16, 64)', () => {
    fc.assert(fc.property(podSet, fc.constantFrom(16, 64), (pods, partitions) => {
      const sets = placePartitions(pods, partitions, 3);
      for (const s of sets) expect(new Set(s).size).toBe(3);
      const loads = leaderLoads(sets, pods);
      expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    }), { numRuns: 60 });
  });

  it('a pod joining or leaving changes each set by at most one pod (itself in or out)', () => {
    let repaired = 0;
    fc.assert(fc.property(podSet, fc.constantFrom(16, 64), (pods, partitions) => {
      const [gone, ...rest] = pods;
      if (gone === undefined) return;
      const a = planPlacement(rest, partitions, 3);
      const b = planPlacement(pods, partitions, 3);
      const before = a.sets;
      const after = b.sets;
      // A repair (a replica placed off the ring to balance leaders) moves one more each.
      if (a.repairs + b.repairs > 0) {
        repaired++;
        const hosting = after.filter((s) => s.includes(gone)).length;
        expect(movedReplicas(before, after)).toBeLessThanOrEqual(hosting + a.repairs +
          b.repairs);
        return;
      }
      after.forEach((set, p) => {
        const old = before[p] ?? [];
        const added = set.filter((x) => !old.includes(x));
        expect(added.length).toBeLessThanOrEqual(1);
        if (added.length === 1) expect(added[0]).toBe(gone);
      });
    }), { numRuns: 60 });
    expect(repaired).toBeLessThan(30);
  });

  it('moves about R·P/N replicas when a pod joins (mean over many clusters)', () => {
    for (const [n, partitions] of [[5, 16], [5, 64], [8, 64]] as const) {
      let moved = 0;
      const trials = 40;
      for (let t = 0; t < trials; t++) {
        const pods = podNames(n + 1, `c${t}-pod`);
        moved += movedReplicas(placePartitions(pods.slice(0, n), partitions, 3),
          placePartitions(pods, partitions, 3));
      }
      const expected = (3 * partitions) / (n + 1);
      expect(moved / trials).toBeGreaterThan(expected * 0.75);
      expect(moved / trials).toBeLessThan(expected * 1.25);
    }
  });

  it('with fewer pods than R each set holds every pod; validates its inputs', () => {
    expect(placePartitions(['a', 'b'], 4, 3).every((s) => s.length === 2)).toBe(true);
    expect(placePartitions([], 4, 3)).toEqual([[], [], [], []]);
    expect(() => placePartitions(['a', 'a'], 4, 3)).toThrow(/distinct/);
    expect(() => replicasOf(16, podNames(3), 3, 16)).toThrow(/partition/);
  });
});
