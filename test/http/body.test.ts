// The nesting-depth scan of request bodies against a naive reference: JSON.parse, then a
// recursive walk. They must agree on every JSON text (STYLE.md 14: a fast function checked
// against a naive one), whatever its strings contain.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nestedDeeperThan } from '../../src/http/body.js';

/** Depth of a parsed value: scalars 0, an array or object 1 + its deepest member. */
function depthOf(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  const members = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...members.map(depthOf));
}

/** Strings full of what a byte scanner could mistake for structure. */
const trickyString = fc.array(fc.constantFrom('[', ']', '{', '}', '"', '\\', 'é', '\u0000',
  '\u2028', 'a'), { maxLength: 12 }).map((cs) => cs.join(''));
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    fc.oneof(trickyString, fc.integer(), fc.constant(null)),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(trickyString, tie('v'), { maxKeys: 3 })),
})).v;

describe('nestedDeeperThan', () => {
  it('agrees with parse-and-walk on arbitrary JSON, for every bound', () => {
    fc.assert(fc.property(value, fc.integer({ min: 0, max: 8 }), (v, max) => {
      const bytes = Buffer.from(JSON.stringify(v), 'utf8');
      expect(nestedDeeperThan(bytes, max)).toBe(depthOf(v) > max);
    }), { numRuns: 2000 });
  });

  it('is linear: a megabyte of brackets is scanned without recursion', () => {
    const deep = Buffer.from(`${'['.repeat(500_000)}${']'.repeat(500_000)}`);
    expect(nestedDeeperThan(deep, 64)).toBe(true);
    expect(nestedDeeperThan(deep, 500_000)).toBe(false);
  });
});
