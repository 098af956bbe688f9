// consume()'s nack delay (backoffDelayMs): base·2^(deliveries−1), capped, with equal jitter
// (half fixed, half random), so a message that keeps failing is retried less and less often.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../src/client/index.js';

describe('backoffDelayMs', () => {
  it('doubles per delivery from the base and stops at the cap', () => {
    const mid = (): number => 0.5;
    expect([1, 2, 3, 4, 5, 10].map((d) => backoffDelayMs(d, 1000, 60_000, mid)))
      .toEqual([750, 1500, 3000, 6000, 12_000, 45_000]);
    expect(backoffDelayMs(1, 0, 0, mid)).toBe(0);
  });

  it('stays within [d/2, d] of the capped delay for any delivery and random draw', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 5000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (deliveries, base, extra, r) => {
        const cap = base + extra;
        const d = Math.min(cap, base * 2 ** Math.min(30, deliveries - 1));
        const got = backoffDelayMs(deliveries, base, cap, () => r);
        return Number.isSafeInteger(got) && got >= Math.floor(d / 2) && got <= d;
      }));
  });
});
