import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  checkLinearizable, describeReport, type RegisterOp, type RegisterValue,
} from './linearizability.js';

const w = (key: string, value: string | null, call: number, ret: number | null): RegisterOp =>
  ({ op: 'write', key, value, call, ret });
const r = (key: string, value: string | null, call: number, ret: number | null): RegisterOp =>
  ({ op: 'read', key, value, call, ret });

describe('checkLinearizable (register per key)', () => {
  it('accepts the empty history and sequential histories', () => {
    expect(checkLinearizable([])).toEqual({ ok: true, keys: [], violations: [], gaveUp: [] });
    expect(checkLinearizable([r('k', null, 0, 1), w('k', 'a', 2, 3), r('k', 'a', 4, 5)]).ok)
      .toBe(true);
  });

  it('accepts a read overlapping a write returning either value', () => {
    for (const seen of ['a', null]) {
      expect(checkLinearizable([w('k', 'a', 0, 10), r('k', seen, 1, 2)]).ok).toBe(true);
    }
  });

  it('rejects a stale read after a completed write and names the key', () => {
    const res = checkLinearizable([
      w('x', 'ok', 0, 1), w('k', 'a', 0, 1), w('k', 'b', 2, 3), r('k', 'a', 4, 5),
    ]);
    expect(res.ok).toBe(false);
    expect(res.keys.map((k) => [k.key, k.verdict])).toEqual([['k', 'violation'], ['x', 'ok']]);
    const [v] = res.violations;
    expect(v?.key).toBe('k');
    expect(v?.counterexample.history).toHaveLength(3);
    expect(v?.counterexample.longestLinearization.length).toBeGreaterThan(0);
  });

  it('rejects a read of a value never written, and reads that flip back', () => {
    expect(checkLinearizable([r('k', 'ghost', 0, 1)]).ok).toBe(false);
    // Two sequential reads may not see b then a when the writes are ordered a then b.
    const flip = [w('k', 'a', 0, 10), w('k', 'b', 0, 10), r('k', 'b', 11, 12), r('k', 'a', 13, 14)];
    expect(checkLinearizable(flip).ok).toBe(false);
    // ...but two concurrent readers may disagree on the order while the writes are in flight.
    const ok = [w('k', 'a', 0, 10), w('k', 'b', 0, 10), r('k', 'b', 1, 2), r('k', 'a', 3, 4)];
    expect(checkLinearizable(ok).ok).toBe(true);
  });

  it('treats a pending write as possibly applied at any later time, or never', () => {
    expect(checkLinearizable([w('k', 'a', 0, null), r('k', null, 1, 2), r('k', 'a', 3, 4)]).ok)
      .toBe(true);
    expect(checkLinearizable([w('k', 'a', 0, null), r('k', null, 1, 2)]).ok).toBe(true);
    // Once seen, a pending write cannot be unseen.
    expect(checkLinearizable([w('k', 'a', 0, null), r('k', 'a', 1, 2), r('k', null, 3, 4)]).ok)
      .toBe(false);
    // Pending reads constrain nothing.
    expect(checkLinearizable([r('k', 'nonsense', 0, null)]).ok).toBe(true);
  });

  it('uses the initial value and keys independently', () => {
    const h = [r('a', 'A0', 0, 1), r('b', 'B0', 0, 1)];
    expect(checkLinearizable(h, { initial: (k) => `${k.toUpperCase()}0` }).ok).toBe(true);
    expect(checkLinearizable(h).ok).toBe(false);
  });

  it('returns unknown instead of searching forever', () => {
    // Many concurrent writes and a read history that fails late forces a wide search.
    const h: RegisterOp[] = [];
    for (let i = 0; i < 14; i++) h.push(w('k', `v${i}`, 0, 100));
    h.push(r('k', 'never', 101, 102));
    const res = checkLinearizable(h, { statesMax: 500 });
    expect(res.ok).toBe('unknown');
    expect(res.gaveUp).toEqual([{ key: 'k', verdict: 'gaveUp', exploredStates: 501, ops: 15 }]);
    expect(describeReport(res)).toMatch(/gave up on 1 key\(s\).*k \(15 ops, 501 states\)/);
  });

  it('checks every key, past one it gives up on, and reports each verdict', () => {
    // 'a' needs a wide search, 'b' and 'd' are not linearizable, 'c' is.
    const h: RegisterOp[] = [];
    for (let i = 0; i < 14; i++) h.push(w('a', `v${i}`, 0, 100));
    h.push(r('a', 'never', 101, 102));
    h.push(w('b', 'x', 0, 1), r('b', null, 2, 3));
    h.push(w('c', 'y', 0, 1), r('c', 'y', 2, 3));
    h.push(r('d', 'ghost', 0, 1));
    const res = checkLinearizable(h, { statesMax: 500 });
    expect(res.keys.map((k) => `${k.key}:${k.verdict}`))
      .toEqual(['a:gaveUp', 'b:violation', 'c:ok', 'd:violation']);
    expect(res.ok).toBe(false);
    expect(res.violations.map((v) => v.key)).toEqual(['b', 'd']);
    expect(res.gaveUp.map((g) => g.key)).toEqual(['a']);
    const text = describeReport(res);
    expect(text).toContain('history of b is not linearizable');
    expect(text).toContain('history of d is not linearizable');
    expect(text).toContain('gave up on 1 key(s)');
    // Without the violations the verdict is 'unknown', not ok.
    const rest = h.filter((o) => o.key === 'a' || o.key === 'c');
    expect(checkLinearizable(rest, { statesMax: 500 }).ok).toBe('unknown');
  });

  it('drops pending writes that nobody read, so a crash of every writer stays checkable', () => {
    // 40 writes cut off by a crash, all concurrent with each other and with the reads, and
    // one of them read afterwards: the unread ones may never have happened.
    const h: RegisterOp[] = [w('k', 'a', 0, 1)];
    for (let i = 0; i < 40; i++) h.push(w('k', `lost${i}`, 2 + i, null));
    h.push(r('k', 'lost7', 100, 101), r('k', 'lost7', 102, 103));
    const res = checkLinearizable(h, { statesMax: 500 });
    expect(res.ok).toBe(true);
    // Still a violation: a read returns to the old value after the pending write was seen.
    h.push(r('k', 'a', 104, 105));
    expect(checkLinearizable(h, { statesMax: 500 }).ok).toBe(false);
    // A pending write whose value another write also wrote is kept (it could explain a read).
    const dup = [w('k', 'x', 0, 1), w('k', 'y', 2, 3), w('k', 'x', 4, null), r('k', 'x', 10, 11)];
    expect(checkLinearizable(dup).ok).toBe(true);
  });

  it('checks a long sequential history quickly', () => {
    const h: RegisterOp[] = [];
    for (let i = 0; i < 2000; i++) {
      h.push(w('k', `v${i}`, 4 * i, 4 * i + 1), r('k', `v${i}`, 4 * i + 2, 4 * i + 3));
    }
    expect(checkLinearizable(h).ok).toBe(true);
  });

  it('agrees with a brute-force search over every order on small random histories', () => {
    // Naive definition: some total order of the completed ops plus a subset of the pending
    // writes respects real time and register semantics.
    const naive = (h: readonly RegisterOp[]): boolean => {
      const must = h.filter((o) => o.ret !== null);
      const may = h.filter((o) => o.ret === null && o.op === 'write');
      for (let mask = 0; mask < 1 << may.length; mask++) {
        const chosen = [...must, ...may.filter((_, i) => (mask >> i) & 1)];
        if (somePermutation(chosen, [], null)) return true;
      }
      return false;
    };
    const somePermutation = (left: RegisterOp[], placed: RegisterOp[],
      state: RegisterValue): boolean => {
      if (left.length === 0) return true;
      for (const [i, op] of left.entries()) {
        // op may go next only if no remaining op returned before op was called.
        if (left.some((o) => o !== op && o.ret !== null && o.ret < op.call)) continue;
        if (op.op === 'read' && op.value !== state) continue;
        const rest = left.filter((_, j) => j !== i);
        if (somePermutation(rest, [...placed, op], op.op === 'write' ? op.value : state)) {
          return true;
        }
      }
      return false;
    };
    const opArb = fc.record({
      op: fc.constantFrom('read' as const, 'write' as const),
      value: fc.constantFrom<RegisterValue>(null, 'a', 'b'),
      call: fc.nat(10),
      len: fc.nat(6),
      pending: fc.boolean(),
    }).map(({ op, value, call, len, pending }): RegisterOp =>
      ({ op, key: 'k', value, call, ret: pending && op === 'write' ? null : call + len }));
    fc.assert(fc.property(fc.array(opArb, { maxLength: 6 }), (h) => {
      expect(checkLinearizable(h).ok).toBe(naive(h));
    }), { numRuns: 300 });
  });
});
