// Start-up: read the WAL segments back once, repair a torn tail, and replay every group's
// records into its own log (one LogReplay per group). Runs once per open, before the WAL
// accepts writes. The snapshots, one directory per group, are read when a group attaches.
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../assert.js';
import { CorruptLogError } from './corrupt-log-error.js';
import type { FsSync } from './fs-sync.js';
import { LogReplay } from './log-replay.js';
import { scanSegment, type WalRecord } from './wal-record.js';

const SEGMENT_INDEX_DIGITS = 16;

/** One WAL segment file as the writer tracks it. */
export interface SegmentInfo {
  readonly name: string;
  /** The number in the name: orders segments (see segmentFileName). */
  readonly nameIndex: number;
  bytes: number;
  /** Per group: the highest index of its entries in this segment that are still part of its
   * log (not truncated away, replaced by an installed snapshot, or dropped). A segment may
   * be deleted once each of these is covered by its group's snapshot. */
  readonly pins: Map<number, number>;
}

/** `wal-<n>.log`; the numeric order of the names is the order the segments were written. */
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

/** How recovery maps a record's tag to a group: a one-group WAL holds untagged records of
 * group `untaggedGroup`; the pod WAL holds tagged records only (untagged: null). */
export interface RecoveryMode {
  readonly untaggedGroup: number | null;
}

export interface RecoveredSegments {
  readonly segments: SegmentInfo[];
  /** The replay of each group's records (a dropped group starts again after its drop). */
  readonly replays: Map<number, LogReplay>;
  readonly warnings: string[];
  /** The last segment does not end with a commit record: its last write was cut short (or
   * fsync was off). The writer seals it with an empty commit record before appending, so
   * that its records count as a completed write from then on. */
  readonly unsealed: boolean;
}

/** Updates the pins of `group` for one of its records written to `current`. */
export function pinRecord(segments: readonly SegmentInfo[], current: SegmentInfo, group: number,
  rec: WalRecord): void {
  switch (rec.kind) {
    case 'entry': {
      const pin = current.pins.get(group);
      if (pin === undefined || rec.entry.index > pin) current.pins.set(group, rec.entry.index);
      return;
    }
    case 'truncate':
      // Entries from rec.index on, wherever they were written, are no longer in the log.
      for (const seg of segments) {
        const pin = seg.pins.get(group);
        if (pin === undefined || pin < rec.index) continue;
        if (rec.index > 1) seg.pins.set(group, rec.index - 1);
        else seg.pins.delete(group);
      }
      return;
    case 'reset':
    case 'drop':
      for (const seg of segments) seg.pins.delete(group);
      return;
    case 'hardState':
    case 'commit':
      // A hard state is copied to the head of every new segment: older copies pin nothing.
      return;
  }
}

/** Reads every segment of `names` in `dir`. Throws CorruptLogError for damage a crash cannot
 * explain; cuts a torn tail off the last segment. */
export async function recoverSegments(dir: string, names: readonly string[],
  recordBytesMax: number, mode: RecoveryMode, sync: FsSync, restoreDir: string):
Promise<RecoveredSegments> {
  const warnings: string[] = [];
  const segments: SegmentInfo[] = names
    .map((name) => ({ name, nameIndex: parseSegmentFileName(name) }))
    .filter((s): s is { name: string; nameIndex: number } => s.nameIndex !== null)
    .sort((a, b) => a.nameIndex - b.nameIndex)
    .map((s) => ({ ...s, bytes: 0, pins: new Map<number, number>() }));
  const replays = new Map<number, LogReplay>();
  let unsealed = false;
  let torn = false;
  for (const [i, seg] of segments.entries()) {
    const path = join(dir, seg.name);
    const buf = await readFile(path);
    const scan = scanSegment(buf, recordBytesMax);
    for (const { record, group: tag, offset } of scan.records) {
      if (record.kind === 'commit') continue;
      const group = tag ?? mode.untaggedGroup;
      if (group === null || (tag !== null && mode.untaggedGroup !== null)) {
        throw new CorruptLogError(path, offset, tag === null ? 'a record without a group in ' +
          'a WAL shared by many groups' : 'a record tagged with a group in the WAL of one group',
        restoreDir);
      }
      if (record.kind === 'drop') {
        // What the group wrote before is garbage; a later record starts a new log.
        replays.delete(group);
        pinRecord(segments, seg, group, record);
        continue;
      }
      let replay = replays.get(group);
      if (replay === undefined) {
        replay = new LogReplay();
        replays.set(group, replay);
      }
      const problem = replay.apply(record);
      if (problem !== null) {
        throw new CorruptLogError(path, offset, `group ${group}: ${problem}`, restoreDir);
      }
      pinRecord(segments, seg, group, record);
    }
    seg.bytes = scan.validBytes;
    const lastRecord = scan.records[scan.records.length - 1]?.record;
    unsealed = lastRecord !== undefined && lastRecord.kind !== 'commit';
    const p = scan.problem;
    if (p === null) continue;
    if (i !== segments.length - 1) {
      throw new CorruptLogError(path, p.offset, `${p.reason}, in a segment that is not the ` +
        'last one (it was complete and fsynced before the next one was started)', restoreDir,
      p.advice);
    }
    if (!p.torn) {
      throw new CorruptLogError(path, p.offset, `${p.reason}; not a torn tail: ` +
        p.notTornBecause, restoreDir, p.advice);
    }
    torn = true;
    warnings.push(`torn tail in ${seg.name}: ${p.reason} at byte offset ${p.offset}; ` +
      `truncated ${buf.byteLength - p.offset} bytes of an unfinished write`);
    await truncateFile(path, p.offset, sync);
  }
  const last = segments[segments.length - 1];
  if (unsealed && last !== undefined && !torn) {
    warnings.push(`the last write in ${last.name} has no commit record (cut by a crash at a ` +
      'record boundary, or written without fsync); kept its complete records');
  }
  return { segments, replays, warnings, unsealed };
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
