// The Raft simulator's checks can fail: Raft variants with a known bug, each planted by an
// exact textual replacement in a copy of src/raft (test/support/mutant.ts), must each be
// caught by the simulator within SEEDS_MAX seeds of the CI worlds, and by the invariant the
// bug breaks. A replacement that no longer matches the code fails the test: update the
// mutant rather than delete it.

import { describe, expect, it } from 'vitest';
import { runSeed, SimFailure } from '../sim/cluster-sim.js';
import { SimViolation } from '../sim/checker.js';
import { deriveWorld } from '../sim/world.js';
import { firstCatch, loadMutant, type MutantSpec } from '../support/mutant.js';

import type * as RaftModule from '../../src/raft/raft.js';

/** Every mutant below is caught well within this many seeds (the slowest near seed 60). */
const SEEDS_MAX = 300;

interface RaftMutant extends MutantSpec {
  /** What the simulator's report must say: the invariant the bug breaks. */
  readonly caughtAs: RegExp;
}

const raftTs = (find: string, replace: string): MutantSpec['replacements'][number] =>
  ({ file: 'raft.ts', find, replace });

const MUTANTS: readonly RaftMutant[] = [
  {
    name: 'vote-counted-twice',
    bug: 'a duplicated vote response counts again, as the vote of a voter not heard from',
    folder: 'src/raft',
    replacements: [raftTs('this.votes.set(m.from, m.granted);',
      'this.votes.set(this.votes.has(m.from) ?\n' +
      '          this.config.voters.find((v) => !this.votes.has(v)) ?? m.from : m.from,\n' +
      '          m.granted);')],
    caughtAs: /election quorum/,
  },
  {
    name: 'commit-previous-term-by-count',
    bug: 'the leader commits an entry of an earlier term once a majority holds it (§5.4.2)',
    folder: 'src/raft',
    replacements: [
      raftTs('if (mci <= this.log.commit || this.log.term(mci) !== this.term) return false;',
        'if (mci <= this.log.commit) return false;'),
      raftTs("assert(this.log.term(this.log.commit) === this.term, 'committed in the current " +
        "term');", ''),
    ],
    caughtAs: /commit rule/,
  },
  {
    name: 'no-log-matching-check',
    bug: 'a follower appends without checking the term of the entry before the new ones (§5.3)',
    folder: 'src/raft',
    replacements: [{ file: 'log.ts',
      find: 'if (!this.matchTerm(prevIndex, prevTerm)) return null;',
      replace: 'if (prevIndex > this.lastIndex()) return null;' }],
    caughtAs: /log matching|committed entry changed|state machine safety/,
  },
  {
    name: 'vote-not-persisted',
    bug: 'the vote is left out of the persisted hard state, so a restarted node votes again',
    folder: 'src/raft',
    replacements: [raftTs(
      'return { term: this.term, vote: this.vote, commit: this.log.commit };',
      'return { term: this.term, vote: null, commit: this.log.commit };')],
    caughtAs: /durability: n\d+ granted its vote/,
  },
  {
    name: 'vote-for-stale-log',
    bug: 'a vote is granted without checking that the candidate\'s log is up to date (§5.4.1)',
    folder: 'src/raft',
    replacements: [raftTs(
      'const granted = canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm);',
      'const granted = canVote;')],
    caughtAs: /leader completeness/,
  },
  {
    name: 'leader-counts-unwritten-self',
    bug: 'the leader counts its own entries toward a commit before its write is durable',
    folder: 'src/raft',
    replacements: [raftTs('const self = this.log.stableIndex();',
      'const self = this.log.lastIndex();')],
    caughtAs: /committed \d+@\d+ held on disk only by/,
  },
  {
    name: 'ack-before-persist',
    bug: 'a follower acknowledges appended entries before they are on its disk',
    folder: 'src/raft',
    replacements: [raftTs("if (m.type === 'append' && m.entries.length > 0) {",
      "if ((m.type === 'append' && m.entries.length > 0) || m.type === 'appendResp') {")],
    caughtAs: /durability: n\d+ acknowledged entries/,
  },
];

describe('raft simulator catches planted bugs', () => {
  it('runs an unmutated copy exactly like the original (the harness itself is sound)', async () => {
    const copy = await loadMutant<typeof RaftModule>(
      { name: 'identity', bug: 'none', folder: 'src/raft', replacements: [] }, 'raft.ts');
    const world = deriveWorld(77);
    expect(runSeed(world, undefined, undefined, copy.RaftNode)).toEqual(runSeed(world));
  });

  for (const m of MUTANTS) {
    it(`catches ${m.name}: ${m.bug}`, async () => {
      const { RaftNode } = await loadMutant<typeof RaftModule>(m, 'raft.ts');
      const caught = firstCatch(1, SEEDS_MAX,
        (seed) => { runSeed(deriveWorld(seed), undefined, undefined, RaftNode); });
      expect(caught, `${m.name} survived seeds 1..${SEEDS_MAX}`).not.toBeNull();
      const err = caught?.error;
      expect(err).toBeInstanceOf(SimFailure);
      // Caught by the simulator's checker, not by an assertion of the core itself.
      expect(err?.cause, err?.message).toBeInstanceOf(SimViolation);
      expect(err?.message).toMatch(m.caughtAs);
    });
  }
});
