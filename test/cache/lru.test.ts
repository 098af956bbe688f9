import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Lru } from '../../src/cache/lru.js';

describe('Lru', () => {
  it('charges value bytes plus the per-entry overhead', () => {
    const lru = new Lru<string, string>({ capacityBytes: 1000, entryOverheadBytes: 10 });
    lru.set('a', 'x', 5);
    lru.set('b', 'y', 7);
    expect(lru.bytes).toBe(32);
    lru.set('a', 'xx', 1);
    expect(lru.bytes).toBe(28);
    expect(lru.delete('b')).toBe('y');
    expect(lru.bytes).toBe(11);
    expect(lru.delete('b')).toBeUndefined();
  });

  it('evicts least recently used first; get and touch refresh, peek does not', () => {
    const lru = new Lru<string, number>({ capacityBytes: 1000, entryOverheadBytes: 0 });
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) lru.set(k, i, 10);
    lru.get('a');
    lru.touch('b');
    lru.peek('c');
    const victims = lru.evictUntil(20);
    expect(victims.map((v) => v.key)).toEqual(['c', 'd']);
    expect(lru.keys()).toEqual(['b', 'a']);
    expect(lru.bytes).toBe(20);
  });

  it('never evicts a pinned entry or one the caller refuses', () => {
    const lru = new Lru<string, number>({ capacityBytes: 1000, entryOverheadBytes: 0 });
    lru.set('old', 1, 10);
    lru.set('mid', 2, 10);
    lru.set('new', 3, 10);
    lru.pin('old');
    const victims = lru.evictUntil(0, (k) => k !== 'new');
    expect(victims.map((v) => v.key)).toEqual(['mid']);
    expect(lru.keys()).toEqual(['new', 'old']);
    lru.unpin('old');
    expect(lru.isPinned('old')).toBe(false);
    expect(lru.evictUntil(0).map((v) => v.key)).toEqual(['old', 'new']);
    expect(lru.size).toBe(0);
  });

  it('asserts on unbalanced pins and rejects bad options', () => {
    const lru = new Lru<string, number>();
    expect(() => lru.pin('none')).toThrow(/invariant/);
    lru.set('a', 1, 1);
    expect(() => lru.unpin('a')).toThrow(/invariant/);
    expect(() => new Lru({ capacityBytes: 0 })).toThrow(/capacityBytes/);
    expect(() => new Lru({ entryOverheadBytes: -1 })).toThrow(/entryOverheadBytes/);
  });

  it('matches a naive array model under random operations', () => {
    type Op = { t: 'set'; k: number; b: number } | { t: 'get' | 'del'; k: number } |
      { t: 'evict'; target: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ t: fc.constant('set' as const), k: fc.nat(6), b: fc.nat(50) }),
      fc.record({ t: fc.constant('get' as const), k: fc.nat(6) }),
      fc.record({ t: fc.constant('del' as const), k: fc.nat(6) }),
      fc.record({ t: fc.constant('evict' as const), target: fc.nat(300) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const lru = new Lru<number, number>({ capacityBytes: 1000, entryOverheadBytes: 8 });
      let model: { k: number; b: number }[] = []; // most recent first
      for (const o of ops) {
        if (o.t === 'set') {
          model = [{ k: o.k, b: o.b + 8 }, ...model.filter((e) => e.k !== o.k)];
          lru.set(o.k, o.k, o.b);
        } else if (o.t === 'get') {
          const e = model.find((x) => x.k === o.k);
          if (e) model = [e, ...model.filter((x) => x.k !== o.k)];
          expect(lru.get(o.k)).toBe(e ? o.k : undefined);
        } else if (o.t === 'del') {
          model = model.filter((x) => x.k !== o.k);
          lru.delete(o.k);
        } else if (o.t === 'evict') {
          const expected: number[] = [];
          let total = model.reduce((s, e) => s + e.b, 0);
          while (total > o.target && model.length > 0) {
            const last = model.pop()!;
            expected.push(last.k);
            total -= last.b;
          }
          expect(lru.evictUntil(o.target).map((v) => v.key)).toEqual(expected);
        }
        expect(lru.keys()).toEqual(model.map((e) => e.k));
        expect(lru.bytes).toBe(model.reduce((s, e) => s + e.b, 0));
      }
    }), { numRuns: 200 });
  });
});
