// The simulator's own checks must be able to fail, and a seed must replay identically.

import { describe, expect, it } from 'vitest';
import { SafetyChecker, SimViolation } from '../sim/checker.js';
import { emptySimStats, runSeed } from '../sim/cluster-sim.js';
import { addSimStats, faultShortfalls } from '../sim/fault-coverage.js';
import { deriveWorld, type SimWorld } from '../sim/world.js';
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

describe('sim election and commit checks', () => {
  it('flags a second vote in one term, and a leader elected without a quorum of votes', () => {
    const c = new SafetyChecker();
    c.voteGranted('b', 2, 'a');
    c.voteGranted('b', 2, 'a'); // the same vote, resent
    c.voteGranted('b', 3, 'c'); // a new term, a new vote
    expect(() => c.voteGranted('b', 2, 'c')).toThrow(/vote safety: b voted for a and c/);
    c.elected('a', 2, ['a', 'b', 'c']);
    expect(() => c.elected('a', 2, ['a', 'b', 'c', 'd', 'e']))
      .toThrow(/election quorum: a leads term 2 with the votes of \[a,b\]/);
  });

  it('flags a leader that commits an entry of an earlier term by counting', () => {
    const c = new SafetyChecker();
    c.leaderCommitted('a', 4, 7, 4);
    expect(() => c.leaderCommitted('a', 4, 6, 2)).toThrow(/commit rule/);
    expect(() => c.leaderCommitted('a', 4, 8, undefined)).toThrow(/commit rule/);
  });
});

/** A world with every fault of the simulator switched off. */
function faultless(w: SimWorld): SimWorld {
  const off = Object.fromEntries(Object.keys(w.faults).map((k) => [k, 0])) as
    unknown as SimWorld['faults'];
  return { ...w, faults: { ...off, healRate: w.faults.healRate },
    net: { ...w.net, lossRate: 0, dupRate: 0, longDelayRate: 0 } };
}

describe('sim fault coverage', () => {
  // Unchanged, these worlds pass (sim.test.ts checks seeds 1..100 in one chunk).
  const batch = (seeds: number, world: (seed: number) => SimWorld): string[] => {
    const total = emptySimStats();
    for (let seed = 1; seed <= seeds; seed++) addSimStats(total, runSeed(world(seed)));
    return faultShortfalls(total, seeds).map((line) => line.split(':')[0] ?? line);
  };

  it('flags a batch of CI worlds with their faults switched off', () => {
    const missing = batch(20, (seed) => faultless(deriveWorld(seed)));
    for (const kind of ['crashes', 'crashesRandom', 'crashesBeforePersist', 'crashesMidReady',
      'crashesAfterEarlySend', 'crashesAfterSend', 'restarts', 'quickRestarts', 'partitions',
      'heals', 'drops', 'cutDrops', 'duplicates', 'longDelays', 'tickSkips']) {
      expect(missing).toContain(kind);
    }
  });

  it('flags one fault switched off alone', () => {
    const noDup = batch(50, (seed) => {
      const w = deriveWorld(seed);
      return { ...w, net: { ...w.net, dupRate: 0 } };
    });
    expect(noDup).toEqual(['duplicates']);
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
