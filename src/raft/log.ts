// The in-memory Raft log with a snapshot offset: entries[i] has index snapIndex + 1 + i.
// It tracks which entries were already handed to the shell for persistence (`unstableFrom`),
// which of those the shell confirmed durable (`stableIndex`), the commit index and the
// applied index. Pure and synchronous.

import { assert } from '../assert.js';
import type { Entry } from './types.js';

export class RaftLog {
  private snapIndex: number;
  private snapTerm: number;
  private entries: Entry[] = [];
  /** First index not yet handed out in a Ready for persistence. */
  unstableFrom: number;
  /** Every entry of this log up to here is durable on the shell's disk (the leader counts
   * itself toward a commit quorum only up to here, dissertation §10.2.1). */
  private stable: number;
  /** The entries handed out in the Ready being persisted end here; they become stable when
   * the shell confirms the write, unless a truncation or a snapshot replaced them meanwhile. */
  private writing: number;
  commit: number;
  /** Highest index the application confirmed applying (advance). */
  applied: number;

  constructor(snapIndex: number, snapTerm: number) {
    assert(Number.isSafeInteger(snapIndex) && snapIndex >= 0, 'snapshot index is a natural');
    assert(snapIndex > 0 || snapTerm === 0, 'the empty snapshot has term 0');
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    this.unstableFrom = snapIndex + 1;
    this.stable = snapIndex;
    this.writing = snapIndex;
    this.commit = snapIndex;
    this.applied = snapIndex;
  }

  /** Everything in the log now was read back from disk (a restart). */
  markAllStable(): void {
    this.unstableFrom = this.lastIndex() + 1;
    this.stable = this.lastIndex();
    this.writing = this.lastIndex();
  }

  /** The last index known durable on disk together with everything before it. */
  stableIndex(): number {
    return this.stable;
  }

  /** The shell made the last Ready durable: what it handed out (and still holds) is stable.
   * Returns whether the stable index moved. */
  stableToWriting(): boolean {
    assert(this.writing <= this.lastIndex(), 'entries being written are in the log');
    if (this.writing <= this.stable) return false;
    this.stable = this.writing;
    return true;
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
    // The durable copies of the truncated entries are overwritten by the next write: they
    // no longer count, and neither do those of a write in progress.
    this.stable = Math.min(this.stable, index - 1);
    this.writing = Math.min(this.writing, index - 1);
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
    // Only the committed prefix of the old log is known to agree with the snapshot; the
    // snapshot itself is durable once the Ready carrying it was persisted.
    this.stable = Math.min(this.stable, this.commit);
    this.writing = Math.min(this.writing, this.commit);
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

  /** Entries not yet handed out for persistence; marks them handed out. Once the shell has
   * persisted them (and any snapshot handed out with them), everything before unstableFrom is
   * durable: see stableToWriting. */
  takeUnstable(): Entry[] {
    const last = this.lastIndex();
    const out = this.unstableFrom > last ? [] : this.slice(this.unstableFrom, last + 1);
    this.unstableFrom = last + 1;
    this.writing = last;
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
