// The lock table as a Raft state machine: a new leader's first command extends every lease,
// `waiting` is provisional, and snapshots keep extendedInTerm (and the format before it
// still restores).
import { describe, expect, it } from 'vitest';
import type { LockCommand, LockResult } from '../../src/lock/commands.js';
import { LockStateMachine } from '../../src/lock/lock-state-machine.js';
import { DEFAULT_LOCK_LIMITS } from '../../src/lock/lock-table-limits.js';
import { decode } from '../../src/runtime/envelope.js';
import type { ApplyContext } from '../../src/runtime/state-machine.js';

const EXTEND_MS = 2000;
const machine = (): LockStateMachine =>
  new LockStateMachine(DEFAULT_LOCK_LIMITS, { leaseExtensionMs: EXTEND_MS });

function run(sm: LockStateMachine, cmd: LockCommand, ctx: Partial<ApplyContext> = {}): LockResult {
  return sm.apply(LockStateMachine.encode(cmd), { index: 1, position: 0, term: 1, nowMs: 1000,
    ...ctx });
}

describe('LockStateMachine', () => {
  it('a new leader\'s first command extends every lease by leaseExtensionMs, once per term',
    () => {
      const sm = machine();
      const cmds = sm.leaderStartCommands(3);
      expect(cmds.map((c) => decode<LockCommand>(c))).toEqual([
        { type: 'extendLeases', byMs: EXTEND_MS }]);
      run(sm, { type: 'acquire', name: 'a', owner: 'o', mode: 'exclusive', ttlMs: 500,
        waitMs: 0 }, { index: 5, term: 2 });
      sm.apply(cmds[0]!, { index: 6, position: 0, term: 3, nowMs: 1200 });
      expect(sm.extendedInTerm).toBe(3);
      expect(sm.table.get('a').holders[0]?.expiresAt).toBe(1000 + 500 + EXTEND_MS);
      expect(sm.leaderStartCommands(3)).toEqual([]);
      expect(sm.leaderStartCommands(4)).toHaveLength(1);
    });

  it('calls `waiting` provisional and every other result final', () => {
    const sm = machine();
    run(sm, { type: 'acquire', name: 'a', owner: 'o1', mode: 'exclusive', ttlMs: 500, waitMs: 0 });
    const waiting = run(sm, { type: 'acquire', name: 'a', owner: 'o2', mode: 'exclusive',
      ttlMs: 500, waitMs: 1000 });
    expect(waiting.type).toBe('waiting');
    expect(sm.isFinal(waiting)).toBe(false);
    for (const r of [{ type: 'timeout' }, { type: 'released' }, { type: 'granted' }]) {
      expect(sm.isFinal(r)).toBe(true);
    }
  });

  it('keeps extendedInTerm in its snapshot, and restores a snapshot of the table alone',
    () => {
      const sm = machine();
      run(sm, { type: 'acquire', name: 'a', owner: 'o', mode: 'shared', ttlMs: 500, waitMs: 0 });
      run(sm, { type: 'extendLeases', byMs: 10 }, { index: 2, term: 7 });
      const back = machine();
      back.restore(sm.snapshot());
      expect(back.extendedInTerm).toBe(7);
      expect(back.table.get('a')).toEqual(sm.table.get('a'));
      expect(back.snapshot()).toEqual(sm.snapshot());
      expect(back.leaderStartCommands(7)).toEqual([]);
      // The format before: the table's own bytes.
      const old = machine();
      old.restore(sm.table.snapshot());
      expect(old.table.get('a')).toEqual(sm.table.get('a'));
      expect(old.extendedInTerm).toBe(0);
    });

  it('refuses a lease extension out of bounds at construction', () => {
    expect(() => new LockStateMachine(DEFAULT_LOCK_LIMITS, { leaseExtensionMs: -1 })).toThrow();
    expect(() => new LockStateMachine(DEFAULT_LOCK_LIMITS, { leaseExtensionMs: 1e9 })).toThrow();
  });
});
