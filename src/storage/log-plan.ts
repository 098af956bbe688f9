// What one group's save turns into on disk: the WAL records for a Ready (reset, truncate,
// entries, hard state) and the group's log state after them. Pure bookkeeping, shared by
// every WAL; the caller writes the records and adopts the state once they are durable.
import type { Entry, HardState, Snapshot } from '../raft/types.js';
import { assert } from '../assert.js';
import type { WalRecord } from './wal-record.js';

export interface SaveBatch {
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
}

/** One group's log as its WAL records describe it. */
export interface GroupLogState {
  readonly hardState: HardState | null;
  /** Last index of the log (the snapshot's when the log above it is empty). */
  readonly lastIndex: number;
  /** The newest durable snapshot: entries must lie above it. */
  readonly snapIndex: number;
  /** What a replay of the WAL expects next; a write starting elsewhere emits a truncate
   * (null: anything, the head of the log was compacted away). */
  readonly walNextIndex: number | null;
}

export const EMPTY_LOG: GroupLogState = Object.freeze({
  hardState: null, lastIndex: 0, snapIndex: 0, walNextIndex: null,
});

export interface PlannedSave {
  readonly records: WalRecord[];
  readonly next: GroupLogState;
}

/** The records of one save, in the order a replay needs them: the reset of an installed
 * snapshot (whose file was written before, so `state.snapIndex` is already its index), a
 * truncate when the entries do not continue the log, the entries, the hard state. */
export function planSave(state: GroupLogState, b: SaveBatch): PlannedSave {
  const records: WalRecord[] = [];
  let lastIndex = state.lastIndex;
  let walNext = state.walNextIndex;
  if (b.snapshot !== null) {
    records.push({ kind: 'reset', index: b.snapshot.meta.index, term: b.snapshot.meta.term });
    lastIndex = b.snapshot.meta.index;
    walNext = lastIndex + 1;
  }
  const first = b.entries[0];
  if (first !== undefined) {
    assert(first.index > state.snapIndex, () => `entry ${first.index} overwrites the ` +
      `snapshot at ${state.snapIndex}`);
    assert(first.index <= lastIndex + 1, () => `entry ${first.index} leaves a gap after ` +
      `the last index ${lastIndex}`);
    if (first.index !== walNext) records.push({ kind: 'truncate', index: first.index });
    let prevTerm = 0;
    for (const [i, e] of b.entries.entries()) {
      assert(e.index === first.index + i, 'entries of a save are contiguous');
      assert(e.term >= prevTerm, 'entry terms never decrease (§5.3)');
      prevTerm = e.term;
      records.push({ kind: 'entry', entry: e });
    }
    lastIndex = first.index + b.entries.length - 1;
    walNext = lastIndex + 1;
  }
  let hardState = state.hardState;
  if (b.hardState !== null) {
    checkHardState(hardState, b.hardState);
    records.push({ kind: 'hardState', hardState: b.hardState });
    hardState = b.hardState;
  }
  return { records, next: { hardState, lastIndex, snapIndex: state.snapIndex,
    walNextIndex: walNext } };
}

/** Figure 2's rules for what survives a crash: the term never goes back, and a vote once
 * cast in a term is never changed in that term (else a node could vote twice). */
export function checkHardState(prev: HardState | null, next: HardState): void {
  if (prev === null) return;
  assert(next.term >= prev.term, () => `term goes back from ${prev.term} to ${next.term}`);
  assert(next.term > prev.term || prev.vote === null || next.vote === prev.vote,
    () => `vote changes from ${prev.vote} to ${next.vote} within term ${next.term}`);
}
