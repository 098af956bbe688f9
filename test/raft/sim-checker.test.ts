// The simulator's own checks must be able to fail, and a seed must replay identically.

import { describe, expect, it } from 'vitest';
import { SafetyChecker, SimViolation } from '../sim/checker.js';
import { runSeed } from '../sim/cluster-sim.js';
import { deriveWorld } from '../sim/world.js';
import { entry } from './harness.js';

describe('sim safety checker', () => {
  it('flags two leaders in one term', () => {
    const c = new SafetyChecker();
    c.leader(3, 'a');
    c.leader(3, 'a');
    expect(() => c.leader(3, 'b')).toThrow(SimViolation);
  });

  it('flags log matching violations', () => {
    const c = new SafetyChecker();
    c.persisted('a', [entry(1, 1, 'x'), entry(2, 1, 'y')], 0);
    expect(() => c.persisted('b', [entry(2, 1, 'z')], 1)).toThrow(/log matching/);
    expect(() => c.persisted('b', [entry(2, 1, 'y')], 0)).toThrow(/log matching/);
  });

  it('flags a new leader missing a committed entry, diverging state and stale reads', () => {
    const c = new SafetyChecker();
    c.committed('a', 5, 2);
    expect(() => c.newLeader({ id: 'b', term: 3, firstIndex: 1, lastIndex: 4,
      entryAt: () => undefined })).toThrow(/leader completeness/);
    c.applied('a', 5, 111);
    expect(() => c.applied('b', 5, 222)).toThrow(/state machine safety/);
    c.commitSeen('a', 9, 0);
    c.readRequested('a', 1);
    expect(() => c.readAnswered('a', 1, 8)).toThrow(/linearizability/);
    expect(() => c.commitSeen('a', 8, 9)).toThrow(/backwards/);
  });
});

describe('sim determinism', () => {
  it('replays a seed identically', () => {
    const a = runSeed(deriveWorld(77));
    const b = runSeed(deriveWorld(77));
    expect(a).toEqual(b);
    expect(a.committed).toBeGreaterThan(0);
  });
});
