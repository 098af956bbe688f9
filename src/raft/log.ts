// The in-memory Raft log with a snapshot offset: entries[i] has index snapIndex + 1 + i.
// It tracks which entries were already handed to the shell for persistence (`unstableFrom`),
// the commit index and the applied index. Pure and synchronous.

import { assert } from '../assert.js';
import type { Entry } from './types.js';

export class RaftLog {
  private snapIndex: number;
  private snapTerm: number;
  private entries: Entry[] = [];
  /** First index not yet handed out in a Ready for persistence. */
  unstableFrom: number;
  commit: number;
  /** Highest index the application confirmed applying (advance). */
  applied: number;

  constructor(snapIndex: number, snapTerm: number) {
    assert(Number.isSafeInteger(snapIndex) && snapIndex >= 0, 'snapshot index is a natural');
    assert(snapIndex > 0 || snapTerm === 0, 'the empty snapshot has term 0');
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    this.unstableFrom = snapIndex + 1;
    this.commit = snapIndex;
    this.applied = snapIndex;
  }

  firstIndex(): number {
    return this.snapIndex + 1;
  }

  lastIndex(): number {
    return this.snapIndex + this.entries.length;
  }

  snapshotIndex(): number {
    return this.snapIndex;
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'the last index always has a term');
    return t;
  }

  /** The term of entry `index`, or undefined when it was compacted away or does not exist. */
  term(index: number): number | undefined {
    if (index === this.snapIndex) return this.snapTerm;
    if (index < this.snapIndex || index > this.lastIndex()) return undefined;
    const e = this.entries[index - this.snapIndex - 1];
    assert(e !== undefined && e.index === index, () => `log hole at ${index}`);
    return e.term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.snapIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapIndex - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Leader-side append of new entries at the tail. */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = ents[0];
    assert(first !== undefined && first.index === this.lastIndex() + 1,
      'append must be contiguous');
    assert(first.term >= this.lastTerm(), 'appended entries never lower the term');
    for (const e of ents) {
      assert(e.index === this.lastIndex() + 1, () => `log gap before ${e.index}`);
      this.entries.push(e);
    }
  }

  /**
   * Follower-side append (§5.3): if the entry at prevIndex has prevTerm, append `ents`, deleting
   * a conflicting suffix. Returns the index of the last entry known to match the leader, or
   * null when the consistency check fails. Returns whether the log was truncated.
   */
  maybeAppend(
    prevIndex: number, prevTerm: number, ents: readonly Entry[],
  ): { lastNew: number; truncated: boolean } | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + ents.length;
    let truncated = false;
    for (const e of ents) {
      assert(e.index > prevIndex && e.index <= lastNew, 'append entries are contiguous');
      const t = this.term(e.index);
      if (t === e.term) continue;
      if (e.index <= this.snapIndex) continue;
      if (t !== undefined) {
        assert(e.index > this.commit, () =>
          `conflicting entry at committed index ${e.index} (commit ${this.commit})`);
        this.truncateFrom(e.index);
        truncated = true;
      }
      this.append(ents.slice(e.index - prevIndex - 1));
      break;
    }
    return { lastNew, truncated };
  }

  private truncateFrom(index: number): void {
    assert(index > this.snapIndex && index <= this.lastIndex(), 'truncation inside the log');
    assert(index > this.commit, 'never truncate committed entries');
    this.entries.length = index - this.snapIndex - 1;
    if (this.unstableFrom > index) this.unstableFrom = index;
  }

  /** Entries in [lo, hi) limited by count and data bytes (always at least one if any). */
  slice(lo: number, hi: number, maxBytes = Infinity, maxCount = Infinity): Entry[] {
    assert(lo > this.snapIndex, () => `slice from compacted index ${lo}`);
    assert(hi <= this.lastIndex() + 1, 'slice past the end');
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi && out.length < maxCount; i++) {
      const e = this.entries[i - this.snapIndex - 1];
      assert(e !== undefined, 'slice within bounds');
      if (out.length > 0 && bytes + e.data.length > maxBytes) break;
      bytes += e.data.length;
      out.push(e);
    }
    return out;
  }

  commitTo(index: number): void {
    assert(index >= this.commit, () => `commit going backwards ${this.commit} -> ${index}`);
    assert(index <= this.lastIndex(), () => `commit ${index} past last ${this.lastIndex()}`);
    this.commit = index;
  }

  appliedTo(index: number): void {
    assert(index >= this.applied, 'applied never goes backwards');
    assert(index <= this.commit, () => `applied ${index} beyond commit ${this.commit}`);
    this.applied = index;
  }

  /** Replace the whole log by a snapshot (InstallSnapshot on a follower). */
  restore(index: number, term: number): void {
    assert(index > this.commit, 'restore only moves forward');
    assert(term > 0 && index > 0, 'a real snapshot');
    this.snapIndex = index;
    this.snapTerm = term;
    this.entries = [];
    this.commit = index;
    this.unstableFrom = index + 1;
  }

  /** Drop entries up to `index` (the application snapshotted there). */
  compact(index: number): void {
    assert(index <= this.applied, 'compact only applied entries');
    assert(index <= this.lastIndex(), 'compact within the log');
    if (index <= this.snapIndex) return;
    const t = this.term(index);
    assert(t !== undefined, 'compaction point has a term');
    this.entries = this.entries.slice(index - this.snapIndex);
    this.snapIndex = index;
    this.snapTerm = t;
    if (this.unstableFrom < index + 1) this.unstableFrom = index + 1;
  }

  /** Entries not yet handed out for persistence; marks them handed out. */
  takeUnstable(): Entry[] {
    const last = this.lastIndex();
    if (this.unstableFrom > last) return [];
    const out = this.slice(this.unstableFrom, last + 1);
    this.unstableFrom = last + 1;
    return out;
  }

  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /**
   * Fast backtracking (§5.3 optimisation): the largest index <= `index` whose term is <= `term`,
   * so the leader can skip a whole conflicting term per round trip.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.snapIndex; i--) {
      const t = this.term(i);
      if (t !== undefined && t <= term) break;
    }
    return i;
  }

  allEntries(): readonly Entry[] {
    return this.entries;
  }
}
