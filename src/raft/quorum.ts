// Majority quorum arithmetic over a set of voters (§5.2, §5.3). Pure helpers so they can be
// compared against a naive implementation by property tests.

import { assert } from '../assert.js';
import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

export function quorumSize(voterCount: number): number {
  assert(Number.isSafeInteger(voterCount) && voterCount > 0, 'a quorum needs voters');
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of `voters` has matched: sort matches descending and take
 * the quorum-th one.
 */
export function committedIndex(
  voters: readonly NodeId[], matchOf: (id: NodeId) => number,
): number {
  assert(voters.length > 0, 'committedIndex needs voters');
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  const idx = matches[quorumSize(voters.length) - 1];
  assert(idx !== undefined && idx >= 0, 'quorum match is a natural');
  return idx;
}

/** Tally an election: won with a majority of grants, lost with a majority of rejections. */
export function voteResult(
  voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  assert(voters.length > 0, 'an election needs voters');
  let granted = 0;
  let rejected = 0;
  for (const v of voters) {
    const g = votes.get(v);
    if (g === true) granted++;
    else if (g === false) rejected++;
  }
  const q = quorumSize(voters.length);
  if (granted >= q) return 'won';
  if (rejected >= q) return 'lost';
  return 'pending';
}

/** Whether the members for which `ok` holds form a majority of `voters`. */
export function hasQuorum(voters: readonly NodeId[], ok: (id: NodeId) => boolean): boolean {
  assert(voters.length > 0, 'hasQuorum needs voters');
  let n = 0;
  for (const v of voters) if (ok(v)) n++;
  return n >= quorumSize(voters.length);
}
