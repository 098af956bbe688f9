// The pure helpers of the Raft core: quorum arithmetic (checked against a naive version with
// fast-check, like etcd-io/raft's quorum/quick_test.go), options, encodings, descriptions.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { Inflights, Progress } from '../../src/raft/progress.js';
import { committedIndex, voteResult } from '../../src/raft/quorum.js';
import {
  DEFAULT_RAFT_OPTIONS, decodeConfChange, describeMessage, encodeConfChange, parseRaftOptions,
} from '../../src/raft/raft.js';
import { seededRand } from '../../src/raft/rand.js';
import type { ConfChange } from '../../src/raft/types.js';

/** Naive: the largest index that at least a majority has reached. */
function naiveCommitted(matches: number[]): number {
  let best = 0;
  for (const candidate of matches) {
    const reached = matches.filter((m) => m >= candidate).length;
    if (reached > matches.length / 2) best = Math.max(best, candidate);
  }
  return best;
}

describe('quorum', () => {
  it('committedIndex equals the naive majority computation', () => {
    fc.assert(fc.property(fc.array(fc.nat(1000), { minLength: 1, maxLength: 9 }), (matches) => {
      const ids = matches.map((_, i) => `n${i}`);
      const got = committedIndex(ids, (id) => matches[Number(id.slice(1))] ?? -1);
      expect(got).toBe(naiveCommitted(matches));
    }));
  });

  it('voteResult: won with a majority of grants, lost with a majority of rejections', () => {
    const voters = ['a', 'b', 'c', 'd', 'e'];
    const tally = (g: string[], r: string[]): string => voteResult(voters,
      new Map([...g.map((x) => [x, true] as const), ...r.map((x) => [x, false] as const)]));
    expect(tally(['a', 'b'], ['c'])).toBe('pending');
    expect(tally(['a', 'b', 'c'], [])).toBe('won');
    expect(tally(['a'], ['b', 'c', 'd'])).toBe('lost');
    expect(tally(['a', 'x', 'y'], [])).toBe('pending'); // non-voters do not count
  });
});

describe('progress and the inflight window', () => {
  it('bounds the pipeline and frees acknowledged appends', () => {
    const w = new Inflights(3);
    w.add(2);
    w.add(4);
    w.add(7);
    expect(w.full()).toBe(true);
    w.freeLE(4);
    expect(w.count()).toBe(1);
    expect(w.full()).toBe(false);
  });

  it('probe backtracks to the follower hint and ignores stale rejections', () => {
    const p = new Progress(11, 4);
    expect(p.maybeDecrTo(10, 3)).toBe(true);
    expect(p.next).toBe(4);
    expect(p.maybeDecrTo(10, 3)).toBe(false);
    p.maybeUpdate(5);
    p.becomeReplicate();
    expect(p.next).toBe(6);
    expect(p.maybeDecrTo(4, 0)).toBe(false);
  });
});

describe('options', () => {
  const base = { id: 'a', rand: seededRand(1) };

  it('fills defaults', () => {
    expect(parseRaftOptions(base)).toMatchObject(DEFAULT_RAFT_OPTIONS);
  });

  it('names the offending field', () => {
    const bad = (over: object): unknown => {
      try {
        parseRaftOptions({ ...base, ...over });
      } catch (e) {
        return e;
      }
      return null;
    };
    expect(bad({ heartbeatTicks: 10 })).toBeInstanceOf(InvalidArgumentError);
    expect(bad({ heartbeatTicks: 10 })).toMatchObject({ details: { field: 'heartbeatTicks' } });
    expect(bad({ maxInflightAppends: 0 })).toMatchObject({ details: { field: 'maxInflightAppends' } });
    expect(bad({ electionTicks: 1.5 })).toMatchObject({ details: { field: 'electionTicks' } });
    expect(bad({ id: '' })).toMatchObject({ details: { field: 'id' } });
  });
});

describe('encodings and descriptions', () => {
  it('round-trips conf changes', () => {
    const ccs: ConfChange[] = [{ type: 'addLearner', node: 'lock-3' },
      { type: 'promote', node: 'ü' }, { type: 'remove', node: 'x' }];
    for (const cc of ccs) expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    expect(() => decodeConfChange(new Uint8Array([9, 65]))).toThrow(InvalidArgumentError);
    expect(() => decodeConfChange(new Uint8Array([1]))).toThrow(InvalidArgumentError);
  });

  it('describes messages on one line', () => {
    expect(describeMessage({ type: 'append', from: 'a', to: 'b', term: 3, prevIndex: 4,
      prevTerm: 2, commit: 4, entries: [
        { index: 5, term: 3, type: 'normal', data: new Uint8Array() },
        { index: 6, term: 3, type: 'noop', data: new Uint8Array() }] }))
      .toBe('a->b append t3 prev=4@2 commit=4 ents=[5..6]');
    expect(describeMessage({ type: 'vote', from: 'a', to: 'b', term: 2, lastIndex: 9,
      lastTerm: 1, transfer: true })).toBe('a->b vote t2 last=9@1 transfer');
    expect(describeMessage({ type: 'snapshot', from: 'a', to: 'b', term: 2, offset: 4,
      totalBytes: 8, chunk: new Uint8Array(4), done: true,
      meta: { index: 7, term: 2, config: { voters: ['a'], learners: [] } } }))
      .toBe('a->b snapshot t2 snap=7@2 off=4 len=4/8 done');
  });
});
