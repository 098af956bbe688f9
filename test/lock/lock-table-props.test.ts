// Property tests: random command sequences from a few owners and locks with a virtual clock,
// checked after every step by CheckedRun (model-check.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LockTable } from '../../src/lock/lock-table.js';
import { CheckedRun, type GenCmd, type GenStep } from './model-check.js';

const NAMES = ['a', 'b', 'c', 'd'];
const OWNERS = ['o1', 'o2', 'o3', 'o4'];
// Small bounds so that sequences reach them.
const LIMITS = { waitersPerLockMax: 2, holdersPerLockMax: 2, locksPerOwnerMax: 2, locksMax: 3,
  expiredMemoryMax: 2 };

const name = fc.constantFrom(...NAMES);
const owner = fc.constantFrom(...OWNERS);

const genCmd: fc.Arbitrary<GenCmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({
    kind: fc.constant('acquire' as const), name, owner,
    mode: fc.constantFrom('exclusive' as const, 'shared' as const),
    ttlMs: fc.constantFrom(100, 500, 2000, 10_000),
    waitMs: fc.constantFrom(0, 300, 1000, 5000, 5000),
  }) },
  { weight: 3, arbitrary: fc.record({
    kind: fc.constant('release' as const), name, owner,
    token: fc.constantFrom('none' as const, 'current' as const, 'stale' as const),
  }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant('renew' as const), name, owner,
    ttlMs: fc.constantFrom(null, 200, 1500),
  }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancelWait' as const), name, owner }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'tick' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const),
    byMs: fc.constantFrom(0, 500) }) },
);

const genStep: fc.Arbitrary<GenStep> = fc.record({
  dtMs: fc.constantFrom(0, 0, 0, 50, 100, 400, 1000),
  cmd: genCmd,
});

describe('lock table properties', () => {
  it('every step keeps the rules; waits all end once time runs past the deadlines', () => {
    const tally: Record<string, number> = {};
    fc.assert(fc.property(fc.array(genStep, { minLength: 1, maxLength: 60, size: 'max' }),
      fc.nat(60), (steps, forkAt) => {
        const run = new CheckedRun(LIMITS, NAMES);
        steps.forEach((s, i) => {
          if (i === forkAt) run.forkTwin();
          run.step(s);
        });
        run.drain();
        for (const [k, n] of Object.entries(run.tally)) tally[k] = (tally[k] ?? 0) + n;
      }), { numRuns: 120 });
    // The runs must have reached every kind of answer, or the checks above prove little
    // (deadlocks are rare here: the next test makes them common).
    for (const kind of ['granted', 'waiting', 'timeout', 'exhausted']) {
      expect(tally[kind], kind).toBeGreaterThan(0);
    }
  });

  it('under contention, deadlock is answered iff a naive search finds a cycle', () => {
    const contended: fc.Arbitrary<GenStep> = fc.record({
      dtMs: fc.constant(0),
      cmd: fc.oneof(
        { weight: 5, arbitrary: fc.record({
          kind: fc.constant('acquire' as const), name: fc.constantFrom('a', 'b', 'c'),
          owner: fc.constantFrom('o1', 'o2', 'o3'),
          mode: fc.constantFrom('exclusive' as const, 'shared' as const),
          ttlMs: fc.constant(10_000), waitMs: fc.constantFrom(0, 5000, 5000),
        }) },
        { weight: 1, arbitrary: fc.record({
          kind: fc.constant('release' as const), name: fc.constantFrom('a', 'b', 'c'),
          owner: fc.constantFrom('o1', 'o2', 'o3'), token: fc.constant('none' as const),
        }) },
      ),
    });
    const tally: Record<string, number> = {};
    fc.assert(fc.property(fc.array(contended, { maxLength: 30, size: 'max' }), (steps) => {
      const run = new CheckedRun({}, ['a', 'b', 'c']);
      for (const s of steps) run.step(s);
      run.drain();
      for (const [k, n] of Object.entries(run.tally)) tally[k] = (tally[k] ?? 0) + n;
    }), { numRuns: 60 });
    expect(tally.deadlock).toBeGreaterThan(0);
  });

  it('with long mixed queues too, deadlock is answered iff a naive search finds a cycle', () => {
    // Six owners on two locks: queues of several shared and exclusive waiters, where the
    // table's shortcut and its compressed graph (lock-table-graph.ts) both get used.
    const owners = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'];
    const crowded: fc.Arbitrary<GenStep> = fc.record({
      dtMs: fc.constantFrom(0, 0, 0, 200),
      cmd: fc.oneof(
        { weight: 6, arbitrary: fc.record({
          kind: fc.constant('acquire' as const), name: fc.constantFrom('a', 'b'),
          owner: fc.constantFrom(...owners),
          mode: fc.constantFrom('exclusive' as const, 'shared' as const),
          ttlMs: fc.constant(10_000), waitMs: fc.constantFrom(0, 1000, 5000),
        }) },
        { weight: 1, arbitrary: fc.record({
          kind: fc.constant('release' as const), name: fc.constantFrom('a', 'b'),
          owner: fc.constantFrom(...owners), token: fc.constant('none' as const),
        }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancelWait' as const),
          name: fc.constantFrom('a', 'b'), owner: fc.constantFrom(...owners) }) },
      ),
    });
    const tally: Record<string, number> = {};
    fc.assert(fc.property(fc.array(crowded, { maxLength: 40, size: 'max' }), (steps) => {
      const run = new CheckedRun({}, ['a', 'b']);
      for (const s of steps) run.step(s);
      run.drain();
      for (const [k, n] of Object.entries(run.tally)) tally[k] = (tally[k] ?? 0) + n;
    }), { numRuns: 60 });
    expect(tally.deadlock).toBeGreaterThan(0);
    expect(tally.waiting).toBeGreaterThan(0);
  });

  it("the leader's early refusal agrees with what apply answers (nothing in flight)", () => {
    // LockTable.refusal runs on the leader before it proposes an acquire: whatever it refuses
    // must be what apply would refuse, and with nothing in flight it must refuse all of that
    // (a retry or an upgrade aside, which only apply can judge), so a bound never lets work
    // into the log that the table then throws away.
    const none = { onLock: () => 0, locksOf: () => 0, newLocks: () => 0, createsLock: () => false };
    const seen = { refused: 0, admitted: 0 };
    fc.assert(fc.property(fc.array(genStep, { maxLength: 60, size: 'max' }), (steps) => {
      const run = new CheckedRun(LIMITS, NAMES);
      for (const s of steps) {
        const c = s.cmd;
        // Only where apply expires nothing first: refusal sees the state as it stands.
        const due = run.table.nextDeadline();
        if (c.kind === 'acquire' && (due === null || due > run.nowMs + s.dtMs)) {
          const cmd = run.toCommand(c, run.views());
          if (cmd.type !== 'acquire') throw new Error('an acquire step makes an acquire');
          const early = run.table.refusal(cmd, none);
          const judged = run.table.isInLock(c.name, c.owner);
          const { result } = run.step(s);
          if (early !== null) {
            seen.refused++;
            expect(result).toEqual(early);
          } else if (!judged) {
            seen.admitted++;
            expect(result.type).not.toBe('exhausted');
          }
          continue;
        }
        run.step(s);
      }
    }), { numRuns: 120 });
    expect(seen.refused).toBeGreaterThan(0);
    expect(seen.admitted).toBeGreaterThan(0);
  });

  it('snapshot → restore gives the same bytes at every point', () => {
    fc.assert(fc.property(fc.array(genStep, { maxLength: 40, size: 'max' }), (steps) => {
      const run = new CheckedRun(LIMITS, NAMES);
      for (const s of steps) {
        run.step(s);
        const bytes = run.table.snapshot();
        expect(LockTable.restore(bytes, LIMITS).snapshot()).toEqual(bytes);
      }
    }), { numRuns: 40 });
  });

  it('deterministic replay: two tables fed the same commands agree byte for byte', () => {
    fc.assert(fc.property(fc.array(genStep, { maxLength: 60, size: 'max' }), (steps) => {
      const one = new CheckedRun(LIMITS, NAMES);
      const two = new CheckedRun(LIMITS, NAMES);
      for (const s of steps) {
        one.step(s);
        two.step(s);
      }
      expect(two.table.snapshot()).toEqual(one.table.snapshot());
    }), { numRuns: 40 });
  });
});
