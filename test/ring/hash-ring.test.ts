import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HashRing, DEFAULT_VNODES_PER_NODE } from '../../src/ring/hash-ring.js';

const keys = (n: number, prefix = 'key'): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('HashRing', () => {
  it('balances keys within ±30% of the mean with the default vnodes', () => {
    for (const size of [3, 5, 8]) {
      const nodes = Array.from({ length: size }, (_, i) => `cache-${i}`);
      const ring = new HashRing(nodes);
      const counts = new Map<string, number>();
      const all = keys(20_000);
      for (const k of all) {
        const owner = ring.ownerOf(k);
        expect(owner).not.toBeNull();
        counts.set(owner!, (counts.get(owner!) ?? 0) + 1);
      }
      const mean = all.length / size;
      expect(counts.size).toBe(size);
      for (const c of counts.values()) {
        expect(c).toBeGreaterThan(mean * 0.7);
        expect(c).toBeLessThan(mean * 1.3);
      }
    }
  });

  it('is deterministic across instances and insertion orders', () => {
    const a = new HashRing(['a', 'b', 'c', 'd']);
    const b = new HashRing(['d', 'b', 'a', 'c']);
    for (const k of keys(2000)) {
      expect(a.ownerOf(k)).toBe(b.ownerOf(k));
      expect(a.successors(k, 3)).toEqual(b.successors(k, 3));
    }
  });

  it('answers null / [] on an empty ring and caps successors at the member count', () => {
    const ring = new HashRing();
    expect(ring.ownerOf('x')).toBeNull();
    expect(ring.successors('x', 3)).toEqual([]);
    ring.addNode('only');
    expect(ring.successors('x', 3)).toEqual(['only']);
    expect(ring.addNode('only')).toBe(false);
    expect(ring.removeNode('missing')).toBe(false);
    expect(ring.removeNode('only')).toBe(true);
    expect(ring.size).toBe(0);
  });

  it('rejects bad options', () => {
    expect(() => new HashRing([], { vnodesPerNode: 0 })).toThrow(/vnodesPerNode/);
    expect(() => new HashRing([''])).toThrow(/non-empty/);
  });

  const nodeSet = fc.uniqueArray(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 1, maxLength: 6 });

  it('successors are distinct, start with the owner and are a prefix of longer walks', () => {
    fc.assert(fc.property(nodeSet, fc.string(), fc.integer({ min: 0, max: 8 }), (nodes, k, n) => {
      const ring = new HashRing(nodes, { vnodesPerNode: 16 });
      const s = ring.successors(k, n);
      expect(new Set(s).size).toBe(s.length);
      expect(s.length).toBe(Math.min(n, nodes.length));
      if (n > 0) expect(s[0]).toBe(ring.ownerOf(k));
      expect(ring.successors(k, n + 1).slice(0, s.length)).toEqual(s);
    }), { numRuns: 100 });
  });

  it('adding a node moves keys only onto the new node (minimal movement)', () => {
    fc.assert(fc.property(nodeSet, fc.stringMatching(/^[A-Z]{1,4}$/), (nodes, extra) => {
      const before = new HashRing(nodes, { vnodesPerNode: 32 });
      const after = new HashRing(nodes, { vnodesPerNode: 32 });
      after.addNode(extra);
      for (const k of keys(300)) {
        const was = before.ownerOf(k);
        const now = after.ownerOf(k);
        if (was !== now) expect(now).toBe(extra);
      }
    }), { numRuns: 50 });
  });

  it('removing a node moves only its own keys, and successors shift minimally', () => {
    fc.assert(fc.property(nodeSet.filter((n) => n.length >= 2), fc.nat(), (nodes, pick) => {
      const gone = nodes[pick % nodes.length]!;
      const before = new HashRing(nodes, { vnodesPerNode: 32 });
      const after = new HashRing(nodes, { vnodesPerNode: 32 });
      after.removeNode(gone);
      for (const k of keys(300)) {
        const was = before.ownerOf(k);
        if (was !== gone) expect(after.ownerOf(k)).toBe(was);
        // The replica set loses the removed node and otherwise keeps its order.
        const expected = before.successors(k, nodes.length).filter((n) => n !== gone);
        expect(after.successors(k, nodes.length - 1)).toEqual(expected);
      }
    }), { numRuns: 50 });
  });

  it('uses the documented default', () => {
    expect(DEFAULT_VNODES_PER_NODE).toBe(128);
  });
});
