// Name and duration rules of API.md ("Names: 1–256 bytes of UTF-8, no control characters";
// "Durations are integers in milliseconds ... out of bounds is 400, never silently clamped").
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { z } from 'zod';
import { InvalidArgumentError } from '../../src/errors.js';
import {
  NAME_BYTES_MAX, OWNER_BYTES_MAX, checkName, decodePathSegment, durationMs, intInRange,
  nameSchema, ownerSchema, parseName, parseWith,
} from '../../src/http/validate.js';

function fieldOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as InvalidArgumentError).details.field;
  }
  return 'no error';
}

describe('names', () => {
  it('accepts exactly 256 bytes and rejects 257, counting UTF-8 bytes not characters', () => {
    expect(parseName('a'.repeat(NAME_BYTES_MAX), 'name')).toHaveLength(256);
    expect(fieldOf(() => parseName('a'.repeat(257), 'name'))).toBe('name');
    // '€' is 3 bytes: 85 of them + 1 = 256 bytes, 86 = 258 bytes.
    expect(parseName(`${'€'.repeat(85)}a`, 'name')).toHaveLength(86);
    expect(fieldOf(() => parseName('€'.repeat(86), 'name'))).toBe('name');
    // A 4-byte emoji is two UTF-16 units; 64 of them are exactly 256 bytes.
    expect(() => parseName('😀'.repeat(64), 'name')).not.toThrow();
    expect(fieldOf(() => parseName(`${'😀'.repeat(64)}a`, 'name'))).toBe('name');
  });

  it('rejects empty names, C0/DEL/C1 controls and lone surrogates, allows other Unicode', () => {
    for (const bad of ['', 'a\u0000', 'tab\there', 'nl\n', 'del\u007f', 'c1\u0085', '\ud800x']) {
      expect(fieldOf(() => parseName(bad, 'topic'))).toBe('topic');
    }
    for (const good of ['a', 'orders/2024', 'ключ', '名前', 'a b', '%', 'x\u00a0y']) {
      expect(parseName(good, 'topic')).toBe(good);
    }
    expect(fieldOf(() => parseName(undefined, 'name'))).toBe('name');
    expect(fieldOf(() => checkName(42, 'owner', OWNER_BYTES_MAX))).toBe('owner');
  });

  it('owners and groups: 1..128 bytes', () => {
    expect(ownerSchema.safeParse('o'.repeat(OWNER_BYTES_MAX)).success).toBe(true);
    expect(ownerSchema.safeParse('o'.repeat(129)).success).toBe(false);
    expect(nameSchema.safeParse('o'.repeat(129)).success).toBe(true);
    expect(ownerSchema.safeParse('').success).toBe(false);
  });

  it('agrees with a naive byte count on arbitrary strings (property)', () => {
    // Pieces that straddle every rule: controls of each range, both surrogate halves alone,
    // multibyte characters, and arbitrary code points; lengths straddle 256 bytes.
    const piece = fc.oneof(
      { weight: 1, arbitrary: fc.constantFrom('\u0000', '\u001f', '\u007f', '\u0085', '\u009f',
        '\ud800', '\udfff') },
      { weight: 20, arbitrary: fc.constantFrom('a', '€', '😀', '\u00a0', '/') },
      { weight: 40, arbitrary: fc.integer({ min: 0x20, max: 0x10ffff })
        .filter((c) => c < 0xd800 || c > 0xdfff).map((c) => String.fromCodePoint(c)) },
    );
    const str = fc.array(piece, { maxLength: 110, size: 'max' }).map((p) => p.join(''));
    const seen = { tooLong: 0, ok: 0 };
    fc.assert(fc.property(str, (s) => {
      const naiveOk = s.length > 0 && new TextEncoder().encode(s).length <= 256 &&
        ![...s].some((ch) => { const c = ch.codePointAt(0) ?? 0; return c < 0x20 ||
          (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xdfff); });
      if (naiveOk) seen.ok += 1;
      if (Buffer.byteLength(s) > 256) seen.tooLong += 1;
      return nameSchema.safeParse(s).success === naiveOk;
    }), { numRuns: 150 });
    // The generator must reach both sides of the rules for the comparison to mean anything.
    expect(seen.ok).toBeGreaterThan(0);
    expect(seen.tooLong).toBeGreaterThan(0);
  });

  it('decodes percent-encoding once and rejects malformed sequences with 400', () => {
    expect(decodePathSegment('a%2Fb%20%E2%82%AC%25', 'name')).toBe('a/b €%');
    for (const bad of ['%', '%2', '%zz', '%E2%82', '%C3%28', '%FF']) {
      expect(fieldOf(() => decodePathSegment(bad, 'name'))).toBe('name');
    }
  });
});

describe('durations and body schemas', () => {
  const schema = z.strictObject({
    ttlMs: durationMs(100, 3_600_000).optional(),
    max: intInRange(1, 1000).optional(),
    owner: ownerSchema.optional(),
    messages: z.array(z.object({ delayMs: durationMs(0, 900_000).optional() })).optional(),
  });

  it('never clamps: out of bounds, fractional and stringly numbers are 400 on their field', () => {
    expect(parseWith(schema, { ttlMs: 100, max: 1000 })).toEqual({ ttlMs: 100, max: 1000 });
    expect(fieldOf(() => parseWith(schema, { ttlMs: 99 }))).toBe('ttlMs');
    expect(fieldOf(() => parseWith(schema, { ttlMs: 3_600_001 }))).toBe('ttlMs');
    expect(fieldOf(() => parseWith(schema, { ttlMs: 150.5 }))).toBe('ttlMs');
    expect(fieldOf(() => parseWith(schema, { ttlMs: '150' }))).toBe('ttlMs');
    expect(fieldOf(() => parseWith(schema, { max: 0 }))).toBe('max');
    expect(fieldOf(() => parseWith(schema, { owner: 'a\nb' }))).toBe('owner');
  });

  it('nested paths are named with dots; the root is "body"', () => {
    const f = fieldOf(() => parseWith(schema, { messages: [{}, { delayMs: -1 }] }));
    expect(f).toBe('messages.1.delayMs');
    expect(fieldOf(() => parseWith(schema, [1]))).toBe('body');
    expect(fieldOf(() => parseWith(schema, { bogus: 1 }))).toBe('bogus');
    try {
      parseWith(schema, { ttlMs: 5 });
    } catch (err) {
      expect((err as Error).message).toBe('ttlMs: must be at least 100 ms');
    }
  });
});
