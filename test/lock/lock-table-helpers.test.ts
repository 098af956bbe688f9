// The table's pure helpers against naive versions: the deadline heap with lazy deletion
// against a plain map, and the iterative cycle search against a recursive one.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeadlineIndex } from '../../src/lock/lock-table-deadlines.js';
import { findCycleThrough, hasAnyCycle } from '../../src/lock/lock-table-graph.js';
import { naiveHasCycle } from './model-check.js';

type Op = { kind: 'set'; name: string; atMs: number | null } | { kind: 'take'; nowMs: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const),
    name: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
    atMs: fc.option(fc.integer({ min: 0, max: 50 }), { nil: null }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('take' as const),
    nowMs: fc.integer({ min: 0, max: 50 }) }) },
);

describe('DeadlineIndex', () => {
  it('agrees with a plain map on earliest() and takeDue()', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
      const index = new DeadlineIndex();
      const model = new Map<string, number>();
      for (const o of ops) {
        if (o.kind === 'set') {
          index.set(o.name, o.atMs);
          if (o.atMs === null) model.delete(o.name);
          else model.set(o.name, o.atMs);
        } else {
          const due = [...model].filter(([, at]) => at <= o.nowMs).map(([n]) => n).sort();
          for (const n of due) model.delete(n);
          expect(index.takeDue(o.nowMs)).toEqual(due);
        }
        const earliest = model.size === 0 ? null : Math.min(...model.values());
        expect(index.earliest()).toBe(earliest);
        expect(index.size).toBe(model.size);
      }
    }), { numRuns: 200 });
  });

  it('keeps its heap bounded under endless rescheduling', () => {
    const index = new DeadlineIndex();
    for (let i = 0; i < 10_000; i++) index.set(`k${i % 3}`, i);
    expect(index.size).toBe(3);
    expect(index.earliest()).toBe(9_997);
    expect((index as unknown as { heap: { size: number } }).heap.size)
      .toBeLessThanOrEqual(2 * 3 + 64);
  });
});

const graph = fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 })),
  { maxLength: 14 }).map((edges) => {
  const g = new Map<string, Set<string>>();
  for (const [a, b] of edges) {
    const set = g.get(`n${a}`) ?? new Set<string>();
    set.add(`n${b}`);
    g.set(`n${a}`, set);
  }
  return g;
});

describe('wait-for graph search', () => {
  const succ = (g: Map<string, Set<string>>) => (n: string): string[] =>
    [...(g.get(n) ?? [])].sort();

  it('findCycleThrough finds a real cycle through start iff one exists', () => {
    fc.assert(fc.property(graph, fc.integer({ min: 0, max: 6 }), (g, s) => {
      const start = `n${s}`;
      // Naive: start is on a cycle iff some successor reaches start.
      const reaches = (from: string, seen: Set<string>): boolean => {
        if (from === start) return true;
        if (seen.has(from)) return false;
        seen.add(from);
        return [...(g.get(from) ?? [])].some((n) => reaches(n, seen));
      };
      const expected = [...(g.get(start) ?? [])].some((n) => reaches(n, new Set()));
      const cycle = findCycleThrough(start, succ(g));
      expect(cycle !== null).toBe(expected);
      if (cycle === null) return;
      expect(cycle[0]).toBe(start);
      expect(new Set(cycle).size).toBe(cycle.length);
      cycle.forEach((n, i) => {
        expect(g.get(n)?.has(cycle[(i + 1) % cycle.length] ?? '')).toBe(true);
      });
    }), { numRuns: 300 });
  });

  it('hasAnyCycle agrees with a naive recursive search', () => {
    fc.assert(fc.property(graph, (g) => {
      const nodes = [...new Set([...g.keys(), ...[...g.values()].flatMap((s) => [...s])])];
      expect(hasAnyCycle(nodes.sort(), succ(g))).toBe(naiveHasCycle(g));
    }), { numRuns: 300 });
  });

  it('handles a chain far longer than the call stack would allow recursively', () => {
    const n = 50_000;
    const next = (o: string): string[] => {
      const i = Number(o);
      return i + 1 < n ? [String(i + 1)] : ['0'];
    };
    expect(findCycleThrough('0', next)?.length).toBe(n);
  });
});
