// Lock commands travel in Raft entries: the encoding must round-trip, be canonical, and
// refuse anything that is not a well-formed command, naming the field.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DsyncError } from '../../src/errors.js';
import {
  decodeLockCommand, describeLockCommand, encodeLockCommand, parseLockCommand,
  type LockCommand,
} from '../../src/lock/commands.js';

const text = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ minLength: 1, maxLength, unit: 'grapheme' })
    // eslint-disable-next-line no-control-regex
    .filter((s) => !/[\u0000-\u001f\u007f]/.test(s) && new TextEncoder().encode(s).length <= 128);

const command: fc.Arbitrary<LockCommand> = fc.oneof(
  fc.record({ type: fc.constant('acquire' as const), name: text(60), owner: text(30),
    mode: fc.constantFrom('exclusive' as const, 'shared' as const),
    ttlMs: fc.integer({ min: 100, max: 86_400_000 }), waitMs: fc.integer({ min: 0, max: 60_000 }),
    requestId: text(20) }, { requiredKeys: ['type', 'name', 'owner', 'mode', 'ttlMs', 'waitMs'] }),
  fc.record({ type: fc.constant('release' as const), name: text(60), owner: text(30),
    token: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) },
  { requiredKeys: ['type', 'name', 'owner'] }),
  fc.record({ type: fc.constant('renew' as const), name: text(60), owner: text(30),
    ttlMs: fc.integer({ min: 100, max: 100_000 }) }, { requiredKeys: ['type', 'name', 'owner'] }),
  fc.record({ type: fc.constant('cancelWait' as const), name: text(60), owner: text(30) }),
  fc.constant({ type: 'tick' as const }),
  fc.record({ type: fc.constant('extendLeases' as const),
    byMs: fc.integer({ min: 0, max: 60_000 }) }),
);

function fieldOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    if (err instanceof DsyncError) return [err.code, err.details.field];
    throw err;
  }
  return 'no error';
}

describe('lock command encoding', () => {
  it('round-trips every well-formed command', () => {
    fc.assert(fc.property(command, (cmd) => {
      expect(decodeLockCommand(encodeLockCommand(cmd))).toEqual(cmd);
      expect(describeLockCommand(cmd)).toContain(cmd.type);
    }), { numRuns: 300 });
  });

  it('is canonical: key order and unknown fields do not change the bytes', () => {
    const a = encodeLockCommand({ type: 'release', name: 'n', owner: 'o', token: 5 });
    const shuffled = { token: 5, owner: 'o', extra: 1, name: 'n', type: 'release' };
    expect(encodeLockCommand(parseLockCommand(shuffled))).toEqual(a);
  });

  it('refuses malformed commands, naming the field', () => {
    const ok = { type: 'acquire', name: 'n', owner: 'o', mode: 'shared', ttlMs: 100, waitMs: 0 };
    expect(fieldOf(() => parseLockCommand(ok))).toBe('no error');
    expect(fieldOf(() => parseLockCommand({ ...ok, ttlMs: 99 })))
      .toEqual(['INVALID_ARGUMENT', 'ttlMs']);
    expect(fieldOf(() => parseLockCommand({ ...ok, waitMs: -1 })))
      .toEqual(['INVALID_ARGUMENT', 'waitMs']);
    expect(fieldOf(() => parseLockCommand({ ...ok, name: '' })))
      .toEqual(['INVALID_ARGUMENT', 'name']);
    expect(fieldOf(() => parseLockCommand({ ...ok, name: 'x'.repeat(257) })))
      .toEqual(['INVALID_ARGUMENT', 'name']);
    expect(fieldOf(() => parseLockCommand({ ...ok, name: 'a\nb' })))
      .toEqual(['INVALID_ARGUMENT', 'name']);
    expect(fieldOf(() => parseLockCommand({ ...ok, owner: 'é'.repeat(65) })))
      .toEqual(['INVALID_ARGUMENT', 'owner']);
    expect(fieldOf(() => parseLockCommand({ ...ok, mode: 'read' })))
      .toEqual(['INVALID_ARGUMENT', 'mode']);
    expect(fieldOf(() => parseLockCommand({ ...ok, ttlMs: 1.5 })))
      .toEqual(['INVALID_ARGUMENT', 'ttlMs']);
    expect(fieldOf(() => parseLockCommand({ type: 'release', name: 'n', owner: 'o', token: 0 })))
      .toEqual(['INVALID_ARGUMENT', 'token']);
    expect(fieldOf(() => parseLockCommand({ type: 'nope' }))).toEqual(['INVALID_ARGUMENT', 'type']);
    expect(fieldOf(() => parseLockCommand([]))).toEqual(['INVALID_ARGUMENT', 'command']);
    expect(fieldOf(() => decodeLockCommand(new Uint8Array([0xff, 0x00]))))
      .toEqual(['INVALID_ARGUMENT', 'command']);
  });
});
