// The de-duplication table against a naive model (a Map evicted by iterating it from the
// start, as it was), and its cost: a replay of the log remembers one request per command,
// so remembering must stay O(1) however full the window is.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DedupTable } from '../../src/runtime/dedup.js';

function naiveRemember(m: Map<string, number>, key: string, nowMs: number, windowMs: number,
  max: number): void {
  m.set(key, nowMs);
  for (const [k, at] of m) {
    if (m.size <= max && nowMs - at <= windowMs) break;
    m.delete(k);
  }
}

describe('DedupTable', () => {
  it('remembers and forgets exactly what the naive table does, and restores the same', () => {
    const step = fc.record({ key: fc.integer({ min: 0, max: 30 }), dtMs: fc.nat(40) });
    fc.assert(fc.property(fc.array(step, { maxLength: 300 }), fc.integer({ min: 1, max: 20 }),
      (steps, max) => {
        const t = new DedupTable(100, max);
        const model = new Map<string, number>();
        let now = 0;
        for (const s of steps) {
          now += s.dtMs;
          const key = `k${s.key}`;
          if (t.lookup(key) === undefined) {
            t.remember(key, now, s.key);
            naiveRemember(model, key, now, 100, max);
          }
          expect(t.toJSON().map(([k, at]) => [k, at])).toEqual([...model]);
        }
        const back = DedupTable.fromJSON(t.toJSON(), 100, max);
        expect(back.toJSON()).toEqual(t.toJSON());
      }), { numRuns: 150 });
  });

  // The test's own deadline is the check: the table that iterated its Map from the start
  // took 15 s here (each remember skipped up to a table's worth of deleted slots), this one
  // takes a fraction of a second.
  it('remembering 400,000 requests through a full window stays linear', { timeout: 10_000 }, () => {
    const t = new DedupTable(60_000, 100_000);
    for (let i = 0; i < 400_000; i++) t.remember(`c\u0000${i}`, i, i);
    expect(t.size).toBe(60_001);
    expect(t.lookup(`c\u0000${400_000 - 60_001}`)).toBeDefined();
    expect(t.lookup(`c\u0000${400_000 - 60_002}`)).toBeUndefined();
  });
});
