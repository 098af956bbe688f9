// Start-up: read the snapshot and the WAL segments back, repair a torn tail, and rebuild the
// log. Runs once per open, before the storage accepts writes.
import { open, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Entry, HardState, Snapshot } from '../raft/types.js';
import { assert } from '../assert.js';
import { CorruptLogError } from './corrupt-log-error.js';
import type { FsSync } from './fs-sync.js';
import { LogReplay } from './log-replay.js';
import {
  SNAPSHOT_TEMP_SUFFIX, decodeSnapshot, parseSnapshotFileName,
} from './snapshot-file.js';
import { scanSegment } from './wal-record.js';

const SEGMENT_INDEX_DIGITS = 16;

/** One WAL segment file as the writer tracks it. */
export interface SegmentInfo {
  readonly name: string;
  /** The number in the name: orders segments (see segmentFileName). */
  readonly nameIndex: number;
  bytes: number;
  /** Highest entry index ever written to this segment (0: none). Compaction may delete a
   * prefix of segments whose maxIndex is covered by a durable snapshot. */
  maxIndex: number;
}

/** `wal-<n>.log`. n is the first index the segment was opened for, raised when needed to
 * stay above the previous segment's n (an overwrite may reach back before it), so that the
 * numeric order of the names is always the order in which the segments were written. */
export function segmentFileName(nameIndex: number): string {
  assert(Number.isSafeInteger(nameIndex) && nameIndex >= 0, 'segment index is a natural');
  return `wal-${String(nameIndex).padStart(SEGMENT_INDEX_DIGITS, '0')}.log`;
}

export function parseSegmentFileName(name: string): number | null {
  const m = /^wal-(\d{1,20})\.log$/.exec(name);
  if (m === null) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

export interface RecoveredState {
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  /** Snapshot file indexes on disk, ascending (the newest readable one is `snapshot`). */
  readonly snapshotIndexes: number[];
  readonly entries: Entry[];
  readonly segments: SegmentInfo[];
  /** What the next entry record must carry for a replay to accept it (null: anything). */
  readonly walNextIndex: number | null;
  readonly warnings: string[];
  /** The last segment does not end with a commit record: its last write was cut short (or
   * fsync was off). The writer seals it with an empty commit record before appending, so
   * that its records count as a completed write from then on. */
  readonly unsealed: boolean;
  /** The WAL's log diverged from the snapshot (a crash between an installed snapshot's file
   * and its WAL record): the writer must record the reset before appending. */
  readonly diverged: boolean;
}

/** Reads everything back. Throws CorruptLogError for damage a crash cannot explain. */
export async function recover(dir: string, recordBytesMax: number, sync: FsSync):
Promise<RecoveredState> {
  const warnings: string[] = [];
  const names = await readdir(dir);
  await removeTempFiles(dir, names, warnings, sync);
  const snaps = await loadSnapshot(dir, names, warnings);
  const { segments, replay, unsealed } =
    await loadSegments(dir, names, recordBytesMax, warnings, sync);
  const done = replay.finish(snaps.snapshot?.meta ?? null);
  if (done.problem !== null) {
    throw new CorruptLogError(join(dir, segments[0]?.name ?? '(no WAL segment)'), 0,
      done.problem, dir);
  }
  if (done.diverged) {
    warnings.push(`the WAL's log diverged from the snapshot at index ` +
      `${snaps.snapshot?.meta.index}; kept the snapshot and dropped the entries after it`);
  }
  return { hardState: replay.hardState, snapshot: snaps.snapshot, entries: done.entries,
    snapshotIndexes: snaps.indexes, segments, walNextIndex: replay.expectedNext, warnings,
    unsealed, diverged: done.diverged };
}

/** A `.tmp` file is a snapshot whose write was interrupted before its rename: never valid. */
async function removeTempFiles(dir: string, names: string[], warnings: string[], sync: FsSync):
Promise<void> {
  const temps = names.filter((n) => n.endsWith(SNAPSHOT_TEMP_SUFFIX));
  for (const name of temps) {
    await rm(join(dir, name), { force: true });
    warnings.push(`removed ${name}, left by an interrupted snapshot write`);
  }
  if (temps.length > 0) await sync.dir(dir);
}

async function loadSnapshot(dir: string, names: string[], warnings: string[]):
Promise<{ snapshot: Snapshot | null; indexes: number[] }> {
  const indexes = names.map(parseSnapshotFileName).filter((i): i is number => i !== null)
    .sort((a, b) => a - b);
  for (let i = indexes.length - 1; i >= 0; i--) {
    const name = names.find((n) => parseSnapshotFileName(n) === indexes[i]);
    assert(name !== undefined, 'snapshot index comes from a name');
    const decoded = decodeSnapshot(await readFile(join(dir, name)));
    if (decoded.ok && decoded.snapshot.meta.index === indexes[i]) {
      return { snapshot: decoded.snapshot, indexes };
    }
    // An older snapshot may still do: if the WAL it needs was compacted away, finish()
    // reports the gap as corruption.
    const why = decoded.ok ? 'its index differs from its name' : decoded.reason;
    warnings.push(`snapshot ${name} is unreadable (${why}); trying an older one`);
  }
  return { snapshot: null, indexes };
}

async function loadSegments(dir: string, names: string[], recordBytesMax: number,
  warnings: string[], sync: FsSync):
Promise<{ segments: SegmentInfo[]; replay: LogReplay; unsealed: boolean }> {
  const segments: SegmentInfo[] = names
    .map((name) => ({ name, nameIndex: parseSegmentFileName(name) }))
    .filter((s): s is { name: string; nameIndex: number } => s.nameIndex !== null)
    .sort((a, b) => a.nameIndex - b.nameIndex)
    .map((s) => ({ ...s, bytes: 0, maxIndex: 0 }));
  const replay = new LogReplay();
  let unsealed = false;
  for (const [i, seg] of segments.entries()) {
    const path = join(dir, seg.name);
    const buf = await readFile(path);
    const scan = scanSegment(buf, recordBytesMax);
    for (const { record, offset } of scan.records) {
      const problem = replay.apply(record);
      if (problem !== null) throw new CorruptLogError(path, offset, problem, dir);
      if (record.kind === 'entry') seg.maxIndex = Math.max(seg.maxIndex, record.entry.index);
    }
    seg.bytes = scan.validBytes;
    const lastRecord = scan.records[scan.records.length - 1]?.record;
    unsealed = lastRecord !== undefined && lastRecord.kind !== 'commit';
    const p = scan.problem;
    if (p === null) continue;
    if (i !== segments.length - 1) {
      throw new CorruptLogError(path, p.offset, `${p.reason}, in a segment that is not the ` +
        'last one (it was complete and fsynced before the next one was started)', dir, p.advice);
    }
    if (!p.torn) {
      throw new CorruptLogError(path, p.offset, `${p.reason}; not a torn tail: ` +
        p.notTornBecause, dir, p.advice);
    }
    warnings.push(`torn tail in ${seg.name}: ${p.reason} at byte offset ${p.offset}; ` +
      `truncated ${buf.byteLength - p.offset} bytes of an unfinished write`);
    await truncateFile(path, p.offset, sync);
  }
  const last = segments[segments.length - 1];
  if (unsealed && last !== undefined && !warnings.some((w) => w.startsWith('torn tail'))) {
    warnings.push(`the last write in ${last.name} has no commit record (cut by a crash at a ` +
      'record boundary, or written without fsync); kept its complete records');
  }
  return { segments, replay, unsealed };
}

async function truncateFile(path: string, bytes: number, sync: FsSync): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(bytes);
    await sync.file(fh);
  } finally {
    await fh.close();
  }
}
