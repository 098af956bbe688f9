// The compressed wait-for graph of lock-table-graph.ts against the graph spelled out naively
// from the views (model-check.ts): the same reachability between owners, the O(1) shortcut
// ("nobody waits on the requester") only where the naive graph has no edge into it, and a
// reported cycle made of real edges. Tables come from random command sequences with many
// owners on few locks, so queues are long and mix shared and exclusive waiters.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LockView } from '../../src/lock/commands.js';
import {
  findCycleThrough, findWaitForCycle, isAuxNode, nobodyWaitsOn, waitForSuccessors,
  type WaitForSource,
} from '../../src/lock/lock-table-graph.js';
import { LockEntry } from '../../src/lock/lock-table-queue.js';
import { LockTable } from '../../src/lock/lock-table.js';
import { naiveGraph } from './model-check.js';

const NAMES = ['a', 'b', 'c'];
const OWNERS = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7', 'o8'];

interface Req { name: string; owner: string; shared: boolean; release: boolean }

const req: fc.Arbitrary<Req> = fc.record({
  name: fc.constantFrom(...NAMES), owner: fc.constantFrom(...OWNERS), shared: fc.boolean(),
  release: fc.integer({ min: 0, max: 9 }).map((n) => n < 3),
});

/** The graph source rebuilt from the table's views (what the table's own indexes hold). */
function sourceOf(views: readonly LockView[]): WaitForSource {
  const locks = new Map<string, LockEntry>();
  const ownerWaits = new Map<string, Set<string>>();
  const ownerLocks = new Map<string, Set<string>>();
  const add = (m: Map<string, Set<string>>, o: string, n: string): void => {
    m.set(o, (m.get(o) ?? new Set<string>()).add(n));
  };
  for (const v of views) {
    if (v.holders.length + v.waiters.length === 0) continue;
    locks.set(v.name, LockEntry.of(v.holders.map((h) => ({ ...h, ttlMs: 1000 })),
      v.waiters.map((w) => ({ ...w, ttlMs: 1000, deadline: 1, requestId: null }))));
    for (const h of v.holders) add(ownerLocks, h.owner, v.name);
    for (const w of v.waiters) {
      add(ownerLocks, w.owner, v.name);
      add(ownerWaits, w.owner, v.name);
    }
  }
  return { locks, ownerWaits, ownerLocks };
}

/** Owners reachable from `from` (not counting itself unless on a cycle) in a graph given by
 * its successor function; auxiliary nodes are walked through but not reported. */
function ownersReachable(from: string, succ: (n: string) => Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const todo = [...succ(from)];
  for (let n = todo.pop(); n !== undefined; n = todo.pop()) {
    if (seen.has(n)) continue;
    seen.add(n);
    todo.push(...succ(n));
  }
  return new Set([...seen].filter((n) => !isAuxNode(n)));
}

function tableFrom(reqs: readonly Req[]): LockTable {
  const t = new LockTable({ waitersPerLockMax: 100 });
  reqs.forEach((r, i) => {
    const ctx = { index: i + 1, nowMs: 1000 };
    if (r.release) t.apply({ type: 'release', name: r.name, owner: r.owner }, ctx);
    else t.apply({ type: 'acquire', name: r.name, owner: r.owner,
      mode: r.shared ? 'shared' : 'exclusive', ttlMs: 10_000, waitMs: 5000 }, ctx);
  });
  t.checkInvariants();
  return t;
}

type Graph = ReturnType<typeof naiveGraph>;

/** Runs `check` on the compressed and the naive graph of many random tables. */
function forRandomTables(check: (src: WaitForSource, naive: Graph) => void, runs: number): void {
  fc.assert(fc.property(fc.array(req, { maxLength: 40, size: 'max' }), (reqs) => {
    const table = tableFrom(reqs);
    const views = NAMES.map((n) => table.get(n));
    check(sourceOf(views), naiveGraph(views));
  }), { numRuns: runs });
}

describe('compressed wait-for graph', () => {
  it('reaches exactly the owners the naive graph reaches, from every owner', () => {
    forRandomTables((src, naive) => {
      for (const o of OWNERS) {
        const fast = ownersReachable(o, (n) => waitForSuccessors(src, n));
        const slow = ownersReachable(o, (n) => naive.get(n) ?? []);
        expect([...fast].sort(), o).toEqual([...slow].sort());
      }
    }, 150);
  });

  it('the shortcut says "nobody waits on o" only when no naive edge ends at o', () => {
    const seen = { shortcut: 0, search: 0 };
    forRandomTables((src, naive) => {
      const targets = new Set([...naive.values()].flatMap((s) => [...s]));
      for (const o of OWNERS) {
        if (!src.ownerLocks.has(o)) continue;
        if (nobodyWaitsOn(src, o)) {
          seen.shortcut++;
          expect(targets.has(o), `${o} has an incoming edge`).toBe(false);
        } else {
          seen.search++;
        }
      }
    }, 150);
    expect(seen.shortcut).toBeGreaterThan(0);
    expect(seen.search).toBeGreaterThan(0);
  });

  it('a cycle closed by an extra edge is found with real edges, through the requester', () => {
    // The table never holds a cycle, so close one by hand: `o` also waits on every owner
    // that can reach it. Then the search from `o` must find a cycle of naive edges.
    forRandomTables((src, naive) => {
      for (const o of OWNERS) {
        const into = OWNERS.filter((x) => x !== o && ownersReachable(x, (n) =>
          naive.get(n) ?? []).has(o));
        const succ = (n: string): string[] => n === o
          ? [...waitForSuccessors(src, n), ...into] : waitForSuccessors(src, n);
        const path = findCycleThrough(o, succ);
        expect(path !== null).toBe(into.length > 0 || findWaitForCycle(src, o) !== null);
        if (path === null) continue;
        const cycle = path.filter((n) => !isAuxNode(n));
        expect(cycle[0]).toBe(o);
        cycle.forEach((from, i) => {
          const to = cycle[(i + 1) % cycle.length] ?? '';
          const real = naive.get(from)?.has(to) === true || (from === o && into.includes(to));
          expect(real, `${from} → ${to} is an edge`).toBe(true);
        });
      }
    }, 100);
  });
});

describe('lock table at scale (each command O(1) in the queue length)', () => {
  it('queues, answers and restores 20,000 waiters on one lock', () => {
    const t = new LockTable({ waitersPerLockMax: 20_000 });
    let index = 0;
    const now = 1_000_000;
    const ctx = (nowMs = now): { index: number; nowMs: number } => ({ index: ++index, nowMs });
    t.apply({ type: 'acquire', name: 'L', owner: 'h', mode: 'exclusive', ttlMs: 60_000,
      waitMs: 0 }, ctx());
    for (let i = 0; i < 20_000; i++) {
      const r = t.apply({ type: 'acquire', name: 'L', owner: `w${i}`,
        mode: i % 4 === 3 ? 'exclusive' : 'shared', ttlMs: 60_000, waitMs: 10_000 + i }, ctx());
      expect(r.result.type).toBe('waiting');
    }
    const bytes = Buffer.from(t.snapshot());
    expect(bytes.equals(LockTable.restore(bytes, t.limits).snapshot())).toBe(true);
    // The first 5,000 waits run out in one tick, in queue order; then the holder leaves and
    // the run of shared waiters at the head is granted together.
    const timedOut = t.apply({ type: 'tick' }, ctx(now + 14_999)).events;
    expect(timedOut.map((e) => e.owner)).toEqual(
      Array.from({ length: 5_000 }, (_, i) => `w${i}`));
    const granted = t.apply({ type: 'release', name: 'L', owner: 'h' }, ctx(now + 14_999));
    expect(granted.events.map((e) => `${e.type} ${e.owner}`)).toEqual(
      ['granted w5000', 'granted w5001', 'granted w5002']);
    t.checkInvariants();
  });
});
