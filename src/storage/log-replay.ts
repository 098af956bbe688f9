// Rebuilds the Raft log from WAL records at start-up. Pure: records in, log out; the caller
// maps a returned problem to a CorruptLogError naming the file and offset.
import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';
import type { WalRecord } from './wal-record.js';

export class LogReplay {
  /** Contiguous: entries[i].index === entries[0].index + i. */
  private entries: Entry[] = [];
  hardState: HardState | null = null;
  /** The index the next entry record must carry; null while nothing pins it down (the WAL
   * head was compacted away and no entry, truncate or reset record has been seen yet). */
  expectedNext: number | null = null;
  /** The latest snapshot the log was replaced by, as recorded in the WAL. */
  lastReset: { readonly index: number; readonly term: number } | null = null;

  /** Applies one record; returns what is wrong with it, or null. */
  apply(rec: WalRecord): string | null {
    switch (rec.kind) {
      case 'entry': return this.appendEntry(rec.entry);
      case 'hardState':
        this.hardState = rec.hardState;
        return null;
      case 'truncate':
        this.truncateFrom(rec.index);
        return null;
      case 'commit':
        return null;
      case 'reset':
        this.entries = [];
        this.expectedNext = rec.index + 1;
        this.lastReset = { index: rec.index, term: rec.term };
        return null;
      case 'drop':
        // The group's log so far is garbage: what follows starts a new one.
        this.entries = [];
        this.hardState = null;
        this.expectedNext = null;
        this.lastReset = null;
        return null;
    }
  }

  private appendEntry(e: Entry): string | null {
    if (this.expectedNext !== null && e.index !== this.expectedNext) {
      return `entry ${e.index} where entry ${this.expectedNext} was expected (gap or reorder)`;
    }
    const prev = this.entries[this.entries.length - 1];
    if (prev !== undefined && e.term < prev.term) {
      return `entry ${e.index} has term ${e.term}, lower than the term ${prev.term} before it`;
    }
    this.entries.push(e);
    this.expectedNext = e.index + 1;
    return null;
  }

  /** "The log continues at `index`": drops entries >= index. When the log ended before
   * index - 1, what it held is dropped too, since the entries in between can only be
   * covered by a snapshot (checked by finish()). */
  private truncateFrom(index: number): void {
    const first = this.entries[0];
    if (first !== undefined) {
      const keep = index - first.index;
      if (keep <= 0 || keep > this.entries.length) this.entries = [];
      else this.entries.length = keep;
    }
    this.expectedNext = index;
  }

  /**
   * The log above `snap` (Raft §7: a snapshot replaces the prefix it covers). If the log
   * holds an entry at the snapshot's index with another term, the log diverged from the
   * snapshot and only the snapshot is kept, as InstallSnapshot would do.
   */
  finish(snap: SnapshotMeta | null): { entries: Entry[]; problem: string | null;
    diverged: boolean } {
    const snapIndex = snap?.index ?? 0;
    if (this.lastReset !== null && this.lastReset.index > snapIndex) {
      return { entries: [], diverged: false, problem: `the WAL says the log was replaced by ` +
        `the snapshot at index ${this.lastReset.index}, but the newest readable snapshot is ` +
        `at ${snapIndex}` };
    }
    let entries = this.entries;
    let diverged = false;
    const first = entries[0];
    if (snap !== null && first !== undefined) {
      const atSnap = entries[snap.index - first.index];
      if (atSnap !== undefined && atSnap.term !== snap.term) {
        entries = [];
        diverged = true;
      } else {
        entries = entries.slice(Math.max(0, snap.index + 1 - first.index));
      }
    }
    const head = entries[0];
    if (head !== undefined && head.index !== snapIndex + 1) {
      return { entries: [], diverged, problem: `the log starts at entry ${head.index} but ` +
        `the snapshot covers only up to ${snapIndex}: entries ${snapIndex + 1}..` +
        `${head.index - 1} are missing` };
    }
    return { entries, problem: null, diverged };
  }
}
