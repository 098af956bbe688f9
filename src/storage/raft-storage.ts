// Durable Raft storage: a write-ahead log of segment files plus snapshot files, one directory
// per Raft group. The runtime persists each Ready here before it sends messages.
//
// Why hard state lives in the WAL and not in a file of its own: a Ready that changes the
// term or vote and appends entries must be durable with ONE fsync; a separate file written
// atomically costs a temp-file fsync, a rename and a directory fsync on every vote or term
// change. As a WAL record it rides in the same write as the entries. Compaction deletes old
// segments, so every new segment starts with the current hard state.
//
// Writes are serialized through one job queue, and consecutive saves that queued up while a
// write was in flight are merged into one write and one fdatasync (group commit). A save's
// promise is settled only in drain(), after runGroup() returned, i.e. after the fsync.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Entry, HardState, Snapshot } from '../raft/types.js';
import { assert } from '../assert.js';
import { DsyncError, InvalidArgumentError } from '../errors.js';
import { CorruptLogError } from './corrupt-log-error.js';
import { FsSync, writeFully } from './fs-sync.js';
import { recover, segmentFileName } from './recovery.js';
import type { RecoveredState, SegmentInfo } from './recovery.js';
import { SNAPSHOT_TEMP_SUFFIX, encodeSnapshot, snapshotFileName } from './snapshot-file.js';
import { RECORD_HEADER_BYTES, encodeRecord, recordBodyBytes } from './wal-record.js';
import type { WalRecord } from './wal-record.js';

export { CorruptLogError };

export interface StorageOptions {
  /** One directory per Raft group; created if missing. */
  dir: string;
  /** fsync every write (default true). false only for benchmarks (CLI --unsafe-no-fsync):
   * a crash of the machine then loses acknowledged writes. */
  fsync: boolean;
  /** WAL segment size before rolling to a new file (default 64 MiB, 4 KiB..1 GiB). Segments
   * roll between writes, so one may exceed this by at most one group commit. */
  segmentBytes: number;
  /** Largest record accepted (default 16 MiB, 64 B..1 GiB), checked on write and on read. */
  recordBytesMax: number;
}

export const DEFAULT_STORAGE_OPTIONS: Readonly<Omit<StorageOptions, 'dir'>> = {
  fsync: true,
  segmentBytes: 64 * 1024 * 1024,
  recordBytesMax: 16 * 1024 * 1024,
};

/** Saves waiting behind the one in flight; beyond this save() fails with RESOURCE_EXHAUSTED
 * (the runtime awaits each save, so reaching it means a caller lost its back-pressure). */
export const PENDING_JOBS_MAX = 4096;
/** Most saves merged into one write + fsync. */
export const GROUP_SAVES_MAX = 1024;
/** Most bytes merged into one write + fsync (a single larger save still goes alone). */
export const GROUP_BYTES_MAX = 32 * 1024 * 1024;
/** Snapshot files kept: the newest, and one previous in case the newest is unreadable. */
export const SNAPSHOTS_KEPT = 2;

export interface Recovered {
  hardState: HardState | null;
  snapshot: Snapshot | null;
  entries: Entry[];
  /** What recovery repaired (a torn tail, a leftover temp file); log them. */
  warnings: string[];
}

export interface SaveBatch {
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
}

export interface StorageStats {
  walBytes: number;
  segments: number;
  /** fsync/fdatasync calls on files and directories since open (recovery's included). */
  fsyncs: number;
  /** Last index of the log (the snapshot's when the log above it is empty). */
  lastIndex: number;
  /** Saves settled so far, and the writes (one fsync each) that carried them. */
  saves: number;
  groupCommits: number;
}

export function parseStorageOptions(input: Partial<StorageOptions> & { dir: string }):
StorageOptions {
  const opts = { ...DEFAULT_STORAGE_OPTIONS, ...input };
  if (typeof opts.dir !== 'string' || opts.dir === '') {
    throw new InvalidArgumentError('dir', 'dir must be a non-empty path');
  }
  if (typeof opts.fsync !== 'boolean') throw new InvalidArgumentError('fsync', 'a boolean');
  const inRange = (v: number, lo: number, hi: number): boolean =>
    Number.isSafeInteger(v) && v >= lo && v <= hi;
  if (!inRange(opts.segmentBytes, 4096, 2 ** 30)) {
    throw new InvalidArgumentError('segmentBytes', 'segmentBytes must be an integer in 4096..2^30');
  }
  if (!inRange(opts.recordBytesMax, 64, 2 ** 30)) {
    throw new InvalidArgumentError('recordBytesMax', 'recordBytesMax must be an integer in 64..2^30');
  }
  return opts;
}

interface Deferred {
  resolve(): void;
  reject(err: unknown): void;
}

type Job =
  | { kind: 'save'; batch: SaveBatch; bytes: number; done: Deferred }
  | { kind: 'snapshot'; snapshot: Snapshot; done: Deferred }
  | { kind: 'compact'; index: number; done: Deferred }
  | { kind: 'close'; done: Deferred };
type SaveJob = Extract<Job, { kind: 'save' }>;

export class RaftStorage {
  private readonly jobs: Job[] = [];
  private draining = false;
  private closing = false;
  /** Set by the first failed write: after a failed fsync the page cache state is unknown
   * (fsyncgate), so the storage refuses everything instead of retrying. */
  private broken: unknown = null;
  private saves = 0;
  private groupCommits = 0;

  private constructor(
    private readonly opts: StorageOptions,
    private readonly sync: FsSync,
    private readonly segments: SegmentInfo[],
    private active: FileHandle,
    private hardState: HardState | null,
    private lastIndex: number,
    private snapIndex: number,
    private snapshotIndexes: number[],
    /** What a replay of the WAL expects next; a write starting elsewhere emits a truncate. */
    private walNextIndex: number | null,
  ) {
    assert(segments.length > 0, 'there is always an active segment');
  }

  static async open(input: Partial<StorageOptions> & { dir: string }):
  Promise<{ storage: RaftStorage; recovered: Recovered }> {
    const opts = { ...parseStorageOptions(input), dir: resolve(input.dir) };
    // Two writers on one WAL would interleave records: refuse a second open in-process.
    if (openDirs.has(opts.dir)) {
      throw new DsyncError('UNAVAILABLE', `Raft storage in ${opts.dir} is already open in ` +
        'this process; close it first');
    }
    openDirs.add(opts.dir);
    try {
      return await RaftStorage.openLocked(opts);
    } catch (err) {
      openDirs.delete(opts.dir);
      throw err;
    }
  }

  private static async openLocked(opts: StorageOptions):
  Promise<{ storage: RaftStorage; recovered: Recovered }> {
    const sync = new FsSync(opts.fsync);
    await ensureDir(opts.dir, sync);
    const r = await recover(opts.dir, opts.recordBytesMax, sync);
    const snapIndex = r.snapshot?.meta.index ?? 0;
    const lastIndex = r.entries[r.entries.length - 1]?.index ?? snapIndex;
    const segments = r.segments;
    let active: FileHandle;
    const last = segments[segments.length - 1];
    if (last === undefined) {
      const seg = { name: segmentFileName(lastIndex + 1), nameIndex: lastIndex + 1, bytes: 0,
        maxIndex: 0 };
      active = await createFile(join(opts.dir, seg.name), sync);
      segments.push(seg);
    } else {
      active = await open(join(opts.dir, last.name), 'r+');
    }
    const storage = new RaftStorage(opts, sync, segments, active, r.hardState, lastIndex,
      snapIndex, r.snapshotIndexes, r.walNextIndex);
    await storage.repairAtOpen(r).catch(async (err: unknown) => {
      await active.close();
      throw err;
    });
    const recovered = { hardState: r.hardState, snapshot: r.snapshot, entries: r.entries,
      warnings: r.warnings };
    return { storage, recovered };
  }

  /** Makes the WAL say what recovery concluded, before anything is appended to it. */
  private async repairAtOpen(r: RecoveredState): Promise<void> {
    if (r.diverged) {
      // Without this record a replay would rebuild the diverged log again and then splice
      // new entries onto it.
      const snap = r.snapshot?.meta;
      assert(snap !== undefined, 'divergence needs a snapshot');
      await this.appendUnit([encodeRecord({ kind: 'reset', index: snap.index, term: snap.term })]);
      this.walNextIndex = snap.index + 1;
    } else if (r.unsealed) {
      // Records of a write cut short become a completed write of their own (see recovery).
      await this.appendUnit([]);
    }
  }

  /** Persist one Ready: snapshot (if any) first, then entries (overwriting from
   * entries[0].index), then hard state; one fsync of the WAL for the batch (the snapshot has
   * its own atomic write). A snapshot here replaces the whole log (InstallSnapshot): entries
   * must then start right after it. Resolves only once everything is durable. */
  save(batch: SaveBatch): Promise<void> {
    let bytes = 0;
    for (const e of batch.entries) {
      const body = recordBodyBytes({ kind: 'entry', entry: e });
      if (body > this.opts.recordBytesMax) {
        return Promise.reject(new DsyncError('PAYLOAD_TOO_LARGE', `entry ${e.index} encodes ` +
          `to ${body} bytes, over recordBytesMax ${this.opts.recordBytesMax}; nothing was ` +
          'written: propose smaller commands', { details: { index: e.index, bytes: body } }));
      }
      bytes += RECORD_HEADER_BYTES + body;
    }
    return this.enqueue((done) => ({ kind: 'save', batch, bytes, done }));
  }

  /** After the app's snapshot at `snapshot.meta.index` is durable, drop WAL segments wholly
   * covered. Atomic: temp file, fsync, rename, fsync dir. An older snapshot than the one on
   * disk is ignored. */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.enqueue((done) => ({ kind: 'snapshot', snapshot, done }));
  }

  /** Deletes WAL segments holding only entries <= index. `index` must be covered by a durable
   * snapshot (saveSnapshot or a save with a snapshot) — anything else is a bug. */
  compact(index: number): Promise<void> {
    return this.enqueue((done) => ({ kind: 'compact', index, done }));
  }

  stats(): StorageStats {
    return {
      walBytes: this.segments.reduce((sum, s) => sum + s.bytes, 0),
      segments: this.segments.length,
      fsyncs: this.sync.count,
      lastIndex: this.lastIndex,
      saves: this.saves,
      groupCommits: this.groupCommits,
    };
  }

  /** Waits for queued writes, then closes the files; later calls are rejected. */
  close(): Promise<void> {
    return this.enqueue((done) => ({ kind: 'close', done }));
  }

  private enqueue(make: (done: Deferred) => Job): Promise<void> {
    if (this.closing) {
      return Promise.reject(new DsyncError('UNAVAILABLE', 'Raft storage is closed'));
    }
    if (this.jobs.length >= PENDING_JOBS_MAX) {
      return Promise.reject(new DsyncError('RESOURCE_EXHAUSTED', `more than ${PENDING_JOBS_MAX} ` +
        'storage writes are queued; wait for earlier saves before issuing more', {
        retryable: true }));
    }
    return new Promise<void>((resolve, reject) => {
      const job = make({ resolve, reject });
      if (job.kind === 'close') this.closing = true;
      this.jobs.push(job);
      if (!this.draining) {
        this.draining = true;
        void this.drain();
      }
    });
  }

  /** The only place that settles jobs: after runGroup(), whose last step is the fsync. */
  private async drain(): Promise<void> {
    while (this.jobs.length > 0) {
      const group = this.takeGroup();
      try {
        if (group[0]?.kind === 'close') {
          // Closing releases the file even after a failure: nothing is written any more.
          openDirs.delete(this.opts.dir);
          await this.active.close();
          group[0].done.resolve();
          continue;
        }
        if (this.broken !== null) {
          throw new DsyncError('INTERNAL', 'Raft storage failed earlier and accepts no more ' +
            'writes; restart the node', { cause: this.broken });
        }
        await this.runGroup(group);
        for (const job of group) job.done.resolve();
      } catch (err) {
        this.broken ??= err;
        for (const job of group) job.done.reject(err);
      }
    }
    this.draining = false;
  }

  /** The next job, with the saves right behind it merged in (group commit). A save carrying
   * a snapshot only leads a group, so its snapshot file is written before any of it. */
  private takeGroup(): Job[] {
    const head = this.jobs.shift();
    assert(head !== undefined, 'takeGroup on an empty queue');
    const group: Job[] = [head];
    if (head.kind !== 'save') return group;
    let bytes = head.bytes;
    for (;;) {
      const next = this.jobs[0];
      if (next === undefined || next.kind !== 'save' || next.batch.snapshot !== null) break;
      if (group.length >= GROUP_SAVES_MAX || bytes + next.bytes > GROUP_BYTES_MAX) break;
      bytes += next.bytes;
      group.push(next);
      this.jobs.shift();
    }
    return group;
  }

  private async runGroup(group: Job[]): Promise<void> {
    const head = group[0];
    assert(head !== undefined, 'a group has a job');
    switch (head.kind) {
      case 'save':
        await this.writeSaves(group as SaveJob[]);
        this.saves += group.length;
        return;
      case 'snapshot':
        if (head.snapshot.meta.index > this.snapIndex) {
          await this.writeSnapshotFile(head.snapshot);
          this.lastIndex = Math.max(this.lastIndex, head.snapshot.meta.index);
        }
        return this.deleteCoveredSegments(this.snapIndex);
      case 'compact':
        assert(head.index <= this.snapIndex, () => `compact(${head.index}) beyond the durable ` +
          `snapshot at ${this.snapIndex} would lose entries`);
        return this.deleteCoveredSegments(head.index);
      case 'close':
        assert(false, 'drain() handles close itself');
    }
  }

  /** One write and one fdatasync for every save of the group; resolves after the fsync. */
  private async writeSaves(jobs: SaveJob[]): Promise<void> {
    const snapshot = jobs[0]?.batch.snapshot ?? null;
    if (snapshot !== null) {
      assert(snapshot.meta.index > this.snapIndex, () => `snapshot ${snapshot.meta.index} ` +
        `does not move past the durable one at ${this.snapIndex}`);
      await this.writeSnapshotFile(snapshot);
    }
    const plan = this.planRecords(jobs.map((j) => j.batch));
    if (plan.records.length === 0) return;
    const encoded = plan.records.map(encodeRecord);
    const bytes = encoded.reduce((sum, r) => sum + r.byteLength, 0);
    if (await this.maybeRoll(bytes, plan.firstEntryIndex ?? plan.lastIndex + 1)) {
      // Older segments (and their hard state records) may be compacted away.
      if (this.hardState !== null) {
        encoded.unshift(encodeRecord({ kind: 'hardState', hardState: this.hardState }));
      }
    }
    const seg = await this.appendUnit(encoded);
    this.groupCommits++;
    seg.maxIndex = Math.max(seg.maxIndex, plan.maxEntryIndex);
    this.lastIndex = plan.lastIndex;
    this.walNextIndex = plan.walNextIndex;
    if (plan.hardState !== null) this.hardState = plan.hardState;
    // The log now starts at the installed snapshot: what came before it is garbage.
    if (snapshot !== null) await this.deleteCoveredSegments(this.snapIndex);
  }

  /** Appends records and a commit record closing them as one unit, with ONE write and ONE
   * fdatasync; returns the segment written. */
  private async appendUnit(encoded: Buffer[]): Promise<SegmentInfo> {
    let unitBytes = 0;
    for (const r of encoded) {
      // save() checked entries; this also covers hard state and the other record kinds.
      assert(r.byteLength - RECORD_HEADER_BYTES <= this.opts.recordBytesMax,
        () => `a ${r.byteLength}-byte record exceeds recordBytesMax`);
      unitBytes += r.byteLength;
    }
    const buf = Buffer.concat([...encoded, encodeRecord({ kind: 'commit', unitBytes })]);
    const seg = this.segments[this.segments.length - 1];
    assert(seg !== undefined, 'an active segment');
    await writeFully(this.active, buf, seg.bytes);
    await this.sync.data(this.active);
    seg.bytes += buf.byteLength;
    return seg;
  }

  /** The records for a group of saves, and the state after them. Pure bookkeeping. */
  private planRecords(batches: readonly SaveBatch[]): {
    records: WalRecord[]; lastIndex: number; walNextIndex: number | null;
    hardState: HardState | null; firstEntryIndex: number | null; maxEntryIndex: number } {
    const records: WalRecord[] = [];
    let lastIndex = this.lastIndex;
    let walNext = this.walNextIndex;
    let hardState: HardState | null = null;
    let firstEntryIndex: number | null = null;
    let maxEntryIndex = 0;
    for (const b of batches) {
      if (b.snapshot !== null) {
        records.push({ kind: 'reset', index: b.snapshot.meta.index, term: b.snapshot.meta.term });
        lastIndex = b.snapshot.meta.index;
        walNext = lastIndex + 1;
      }
      const first = b.entries[0];
      if (first !== undefined) {
        assert(first.index > this.snapIndex, () => `entry ${first.index} overwrites the ` +
          `snapshot at ${this.snapIndex}`);
        assert(first.index <= lastIndex + 1, () => `entry ${first.index} leaves a gap after ` +
          `the last index ${lastIndex}`);
        if (first.index !== walNext) records.push({ kind: 'truncate', index: first.index });
        firstEntryIndex ??= first.index;
        for (const [i, e] of b.entries.entries()) {
          assert(e.index === first.index + i, 'entries of a save are contiguous');
          assert(e.term >= (b.entries[i - 1]?.term ?? 0), 'entry terms never decrease (§5.3)');
          records.push({ kind: 'entry', entry: e });
          maxEntryIndex = Math.max(maxEntryIndex, e.index);
        }
        lastIndex = first.index + b.entries.length - 1;
        walNext = lastIndex + 1;
      }
      if (b.hardState !== null) {
        checkHardState(hardState ?? this.hardState, b.hardState);
        records.push({ kind: 'hardState', hardState: b.hardState });
        hardState = b.hardState;
      }
    }
    return { records, lastIndex, walNextIndex: walNext, hardState, firstEntryIndex,
      maxEntryIndex };
  }

  /** Starts a new segment when this write would overflow the active one; true if it did.
   * The old segment was fsynced by the write that filled it, so only the last segment can
   * ever be torn. */
  private async maybeRoll(writeBytes: number, nextIndex: number): Promise<boolean> {
    const cur = this.segments[this.segments.length - 1];
    assert(cur !== undefined, 'an active segment');
    if (cur.bytes === 0 || cur.bytes + writeBytes <= this.opts.segmentBytes) return false;
    const nameIndex = Math.max(nextIndex, cur.nameIndex + 1);
    const seg: SegmentInfo = { name: segmentFileName(nameIndex), nameIndex, bytes: 0,
      maxIndex: 0 };
    const fh = await createFile(join(this.opts.dir, seg.name), this.sync);
    await this.active.close();
    this.active = fh;
    this.segments.push(seg);
    return true;
  }

  /** Temp file, fsync, rename, fsync dir; then drops snapshots beyond SNAPSHOTS_KEPT. */
  private async writeSnapshotFile(snapshot: Snapshot): Promise<void> {
    const name = snapshotFileName(snapshot.meta.index);
    const path = join(this.opts.dir, name);
    const tmp = path + SNAPSHOT_TEMP_SUFFIX;
    const fh = await open(tmp, 'w');
    try {
      await writeFully(fh, encodeSnapshot(snapshot), 0);
      await this.sync.file(fh);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await this.sync.dir(this.opts.dir);
    this.snapIndex = snapshot.meta.index;
    this.snapshotIndexes = [...this.snapshotIndexes.filter((i) => i !== this.snapIndex),
      this.snapIndex].sort((a, b) => a - b);
    const stale = this.snapshotIndexes.slice(0, -SNAPSHOTS_KEPT);
    for (const index of stale) {
      await rm(join(this.opts.dir, snapshotFileName(index)), { force: true });
    }
    if (stale.length > 0) {
      this.snapshotIndexes = this.snapshotIndexes.slice(-SNAPSHOTS_KEPT);
      await this.sync.dir(this.opts.dir);
    }
  }

  /** Deletes the oldest segments while every entry ever written to them is <= index. The
   * active segment stays. Truncate records in deleted segments only ever removed entries
   * of deleted segments, so a replay of the rest yields the same log above `index`. */
  private async deleteCoveredSegments(index: number): Promise<void> {
    while (this.segments.length > 1) {
      const oldest = this.segments[0];
      assert(oldest !== undefined, 'segments is non-empty');
      if (oldest.maxIndex > index) break;
      await rm(join(this.opts.dir, oldest.name), { force: true });
      // One directory fsync per deletion: were a later deletion durable and an earlier one
      // not, a crash would leave a hole in the middle of the WAL instead of a shorter prefix.
      await this.sync.dir(this.opts.dir);
      this.segments.shift();
    }
  }
}

/** Data directories open in this process (resolved paths). */
const openDirs = new Set<string>();

/** Figure 2's rules for what survives a crash: the term never goes back, and a vote once
 * cast in a term is never changed in that term (else a node could vote twice). */
function checkHardState(prev: HardState | null, next: HardState): void {
  if (prev === null) return;
  assert(next.term >= prev.term, () => `term goes back from ${prev.term} to ${next.term}`);
  assert(next.term > prev.term || prev.vote === null || next.vote === prev.vote,
    () => `vote changes from ${prev.vote} to ${next.vote} within term ${next.term}`);
}

/** Creates the directory (and makes its entry durable in the parent) if missing. */
async function ensureDir(dir: string, sync: FsSync): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  if (created === undefined) return;
  // Every directory created needs its entry in its parent made durable, top-down.
  for (let p = dir; ; p = dirname(p)) {
    await sync.dir(dirname(p));
    if (p === created || dirname(p) === p) break;
  }
}

/** Creates a new, empty file and makes its directory entry durable. */
async function createFile(path: string, sync: FsSync): Promise<FileHandle> {
  const fh = await open(path, 'wx');
  await sync.dir(dirname(path));
  return fh;
}
