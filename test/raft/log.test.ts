// RaftLog against a naive array model (§5.3 AppendEntries receiver rules 2-4), with
// fast-check generating a leader log and a follower log that diverges from it.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RaftLog } from '../../src/raft/log.js';
import { entry } from './harness.js';

/** Naive receiver: reject on a prev mismatch, else drop the first conflict on and append. */
function naiveAppend(follower: number[], prevIndex: number, prevTerm: number,
  ents: number[]): number[] | null {
  if (prevIndex > follower.length) return null;
  if (prevIndex > 0 && follower[prevIndex - 1] !== prevTerm) return null;
  const out = [...follower];
  for (let i = 0; i < ents.length; i++) {
    const idx = prevIndex + i; // zero-based position of ents[i]
    if (out[idx] === ents[i]) continue;
    out.length = idx;
    out.push(...ents.slice(i));
    break;
  }
  return out;
}

// Leader terms are even and follower-only terms odd, so that equal (index, term) pairs
// always mean the same entry, as the log matching property guarantees.
const scenario = fc.record({
  leaderSteps: fc.array(fc.nat(2), { minLength: 1, maxLength: 12 }),
  shared: fc.nat(12),
  divergentSteps: fc.array(fc.nat(1), { maxLength: 6 }),
  prevIndex: fc.nat(12),
  count: fc.nat(5),
}).map((s) => {
  let t = 2;
  const leader = s.leaderSteps.map((d) => (t += 2 * d));
  const shared = Math.min(s.shared, leader.length);
  let ft = (leader[shared - 1] ?? 0) + 1;
  const follower = [...leader.slice(0, shared), ...s.divergentSteps.map((d) => (ft += 2 * d))];
  const prevIndex = Math.min(s.prevIndex, leader.length);
  const ents = leader.slice(prevIndex, prevIndex + s.count);
  return { leader, follower, prevIndex, ents };
});

describe('RaftLog.maybeAppend', () => {
  it('matches the naive receiver on random divergent logs', () => {
    fc.assert(fc.property(scenario, ({ leader, follower, prevIndex, ents }) => {
      const log = new RaftLog(0, 0);
      log.append(follower.map((term, i) => entry(i + 1, term)));
      const prevTerm = prevIndex === 0 ? 0 : leader[prevIndex - 1] ?? 0;
      const got = log.maybeAppend(prevIndex, prevTerm,
        ents.map((term, i) => entry(prevIndex + 1 + i, term)));
      const want = naiveAppend(follower, prevIndex, prevTerm, ents);
      if (want === null) {
        expect(got).toBeNull();
        return;
      }
      expect(got?.lastNew).toBe(prevIndex + ents.length);
      expect(log.allEntries().map((e) => e.term)).toEqual(want);
    }));
  });

  it('keeps the snapshot offset through compaction and restore', () => {
    const log = new RaftLog(0, 0);
    log.append([entry(1, 1), entry(2, 1), entry(3, 2)]);
    log.commitTo(3);
    log.appliedTo(2);
    log.compact(2);
    expect([log.firstIndex(), log.lastIndex(), log.term(2), log.term(1)])
      .toEqual([3, 3, 1, undefined]);
    log.restore(9, 4);
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm(), log.commit]).toEqual([10, 9, 4, 9]);
  });
});

describe('RaftLog durable (stable) index', () => {
  it('counts handed-out entries once written, minus those a truncation replaced meanwhile', () => {
    const log = new RaftLog(0, 0);
    log.append([entry(1, 1)]);
    log.takeUnstable();
    expect(log.stableIndex()).toBe(0);
    expect(log.stableToWriting()).toBe(true);
    expect(log.stableIndex()).toBe(1);
    log.append([entry(2, 1), entry(3, 1)]);
    expect(log.takeUnstable().map((e) => e.index)).toEqual([2, 3]);
    // While 2..3 are being written, a new leader's entry replaces them in memory.
    expect(log.maybeAppend(1, 1, [entry(2, 2)])).toEqual({ lastNew: 2, truncated: true });
    expect(log.stableToWriting()).toBe(false);
    expect(log.stableIndex()).toBe(1);
    expect(log.takeUnstable().map((e) => `${e.index}@${e.term}`)).toEqual(['2@2']);
    log.stableToWriting();
    expect(log.stableIndex()).toBe(2);
  });

  it('a snapshot installed over the log is durable only once its write completes', () => {
    const log = new RaftLog(0, 0);
    log.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    log.takeUnstable();
    log.stableToWriting();
    log.commitTo(1);
    log.restore(5, 2);
    expect(log.stableIndex()).toBe(1);
    expect(log.takeUnstable()).toEqual([]);
    log.stableToWriting();
    expect(log.stableIndex()).toBe(5);
  });
});
