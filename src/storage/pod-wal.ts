// One write-ahead log for every Raft group of a process (TiKV's raft-engine, CockroachDB):
// the groups' records (entries, hard state, truncate, snapshot reset, drop) are tagged with
// the group id and share the segments, so the saves of many groups in one event-loop turn
// cost ONE write and ONE fdatasync. Each group reads its log back through its own view
// (GroupLog); its snapshots stay one file each in the group's own directory.
//
// The same writer, untagged, is the one-group WAL of RaftStorage (the lock node).
//
// Group commit: a save does not start a write at once; the write starts a microtask later,
// so that every group's save of this callback shares it (RaftHost runs the ready loops of
// all groups that have work in one callback). Saves that queue while a write is in flight
// share the next one. A save's promise settles only after the fsync that covers it.
//
// Segment deletion: each segment remembers, per group, the highest index of the group's
// entries in it that are still in the group's log (its pins, see recovery.pinRecord). The
// oldest segment is deleted once every pin is covered by its group's durable snapshot. A
// group that pins it without snapshotting (a quiet partition) must not hold the disk: once
// more than segmentsMax segments exist, the live entries of the groups pinning the oldest
// segment are rewritten into the active segment (a truncate record, then the entries again:
// raft-engine's "rewrite"), which unpins it; a group with more than REWRITE_ENTRIES_MAX
// live entries, or more than a REWRITE_SHARE of a segment's bytes, is asked for a snapshot
// instead, and one pass moves at most a segment's worth. Disk is so bounded by about
// segmentsMax segments plus what the groups' snapshotEntries let their live logs hold.
import { open, readFile, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Entry, HardState, Snapshot } from '../raft/types.js';
import { assert } from '../assert.js';
import { DsyncError } from '../errors.js';
import { CorruptLogError } from './corrupt-log-error.js';
import { FsSync, writeFully } from './fs-sync.js';
import { EMPTY_LOG, planSave, type GroupLogState, type SaveBatch } from './log-plan.js';
import { LogReplay } from './log-replay.js';
import { ensureDir, createFile } from './dirs.js';
import {
  parseSegmentFileName, pinRecord, recoverSegments, segmentFileName, type SegmentInfo,
} from './recovery.js';
import { GroupLog } from './group-log.js';
import { SnapshotStore, listDir } from './snapshot-store.js';
import {
  GROUP_BYTES_MAX, GROUP_SAVES_MAX, PENDING_JOBS_MAX, REWRITE_ENTRIES_MAX, REWRITE_SHARE,
  parseStorageOptions,
  type StorageOptions,
} from './wal-options.js';
import {
  RECORD_HEADER_BYTES, encodeRecord, encodeTaggedRecord, recordBodyBytes, scanSegment,
  type WalRecord,
} from './wal-record.js';

export interface Recovered {
  hardState: HardState | null;
  snapshot: Snapshot | null;
  entries: Entry[];
  /** What recovery repaired (a torn tail, a leftover temp file, a migration); log them. */
  warnings: string[];
}

export interface StorageStats {
  walBytes: number;
  segments: number;
  /** fsync/fdatasync calls on files and directories since open (recovery's included). */
  fsyncs: number;
  /** Last index of the group's log (the snapshot's when the log above it is empty). */
  lastIndex: number;
  /** Saves settled so far (of the group), and the writes (one fsync each) of the WAL. */
  saves: number;
  groupCommits: number;
}

export interface WalStats {
  readonly walBytes: number;
  readonly segments: number;
  readonly fsyncs: number;
  readonly groupCommits: number;
  readonly saves: number;
  /** Bytes appended to the WAL since open. */
  readonly bytesWritten: number;
  /** Groups whose live entries were rewritten forward, and the entries moved. */
  readonly rewrites: number;
  readonly rewrittenEntries: number;
  readonly groups: number;
  /** A write is queued or in progress (false: every save so far is settled). */
  readonly writing: boolean;
}

interface Deferred {
  resolve(): void;
  reject(err: unknown): void;
}

type Job =
  | { kind: 'save'; group: number; batch: SaveBatch; bytes: number; done: Deferred }
  /** Records the writer builds itself (a reset, a migration, a drop), and the state of the
   * group after them (null: the group is gone). */
  | { kind: 'records'; group: number; records: WalRecord[]; next: GroupLogState | null;
    done: Deferred }
  | { kind: 'compact'; done: Deferred }
  | { kind: 'close'; done: Deferred };
type WriteJob = Extract<Job, { kind: 'save' | 'records' }>;

/** One group as the WAL knows it. */
interface Slot {
  state: GroupLogState;
  /** The replay of its records until the group is attached. */
  replay: LogReplay | null;
  view: GroupLog | null;
  saves: number;
}

const noop: Deferred = { resolve: () => undefined, reject: () => undefined };

export class PodWal {
  private readonly jobs: Job[] = [];
  private draining = false;
  private flushScheduled = false;
  private closing = false;
  /** Set by the first failed write: after a failed fsync the page cache state is unknown
   * (fsyncgate), so the WAL refuses everything instead of retrying. */
  private broken: unknown = null;
  private readonly slots = new Map<number, Slot>();
  private groupCommits = 0;
  private saves = 0;
  private bytesWritten = 0;
  private rewrites = 0;
  private rewrittenEntries = 0;
  /** Called with the seconds of every write + fdatasync (the fsync latency metric). */
  onWrite: ((seconds: number) => void) | null = null;
  /** A segment was started since the last compaction pass. */
  private rolled = false;

  private constructor(
    readonly opts: StorageOptions,
    /** Records carry a group tag (the pod WAL) or not (one group, 0: RaftStorage). */
    readonly tagged: boolean,
    readonly sync: FsSync,
    private readonly segments: SegmentInfo[],
    private active: FileHandle,
    /** What recovery repaired; handed to the caller once (takeWarnings). */
    private warnings: string[],
  ) {
    assert(segments.length > 0, 'there is always an active segment');
  }

  /** Reads every segment once, repairs a torn tail, and replays each group's records; the
   * groups then attach (attach()) to get their log. */
  static async open(input: Partial<StorageOptions> & { dir: string }, tagged: boolean):
  Promise<PodWal> {
    const opts = { ...parseStorageOptions(input), dir: resolve(input.dir) };
    // Two writers on one WAL would interleave records: refuse a second open in-process.
    if (openDirs.has(opts.dir)) {
      throw new DsyncError('UNAVAILABLE', `Raft storage in ${opts.dir} is already open in ` +
        'this process; close it first');
    }
    openDirs.add(opts.dir);
    try {
      return await PodWal.openLocked(opts, tagged);
    } catch (err) {
      openDirs.delete(opts.dir);
      throw err;
    }
  }

  private static async openLocked(opts: StorageOptions, tagged: boolean): Promise<PodWal> {
    const sync = new FsSync(opts.fsync);
    await ensureDir(opts.dir, sync);
    const names = await listDir(opts.dir);
    const r = await recoverSegments(opts.dir, names, opts.recordBytesMax,
      { untaggedGroup: tagged ? null : 0 }, sync, opts.dir);
    const segments = r.segments;
    let active: FileHandle;
    const last = segments[segments.length - 1];
    if (last === undefined) {
      const seg = { name: segmentFileName(1), nameIndex: 1, bytes: 0, pins: new Map() };
      active = await createFile(join(opts.dir, seg.name), sync);
      segments.push(seg);
    } else {
      active = await open(join(opts.dir, last.name), 'r+');
    }
    const wal = new PodWal(opts, tagged, sync, segments, active, r.warnings);
    for (const [group, replay] of r.replays) {
      wal.slots.set(group, { state: { ...EMPTY_LOG, hardState: replay.hardState,
        walNextIndex: replay.expectedNext }, replay, view: null, saves: 0 });
    }
    if (r.unsealed) {
      // Records of a write cut short become a completed write of their own (see recovery).
      await wal.appendUnit([]).catch(async (err: unknown) => {
        await active.close();
        throw err;
      });
    }
    return wal;
  }

  /** What recovery repaired so far (each warning is returned once). */
  takeWarnings(): string[] {
    const w = this.warnings;
    this.warnings = [];
    return w;
  }

  /** Groups with records in the WAL that no view has attached yet. */
  unattached(): number[] {
    return [...this.slots].filter(([, s]) => s.view === null).map(([g]) => g);
  }

  /**
   * The log of `group`: its snapshot (from `snapDir`, one directory per group) and its
   * entries above it from the WAL. A group whose `snapDir` still holds segments of a
   * one-group WAL (the layout before the pod WAL) has them copied into the pod WAL, made
   * durable, and then removed.
   */
  async attach(group: number, snapDir: string):
  Promise<{ storage: GroupLog; recovered: Recovered }> {
    const existing = this.slots.get(group);
    assert(existing?.view == null, () => `group ${group} is attached twice`);
    const warnings = this.takeWarnings();
    await ensureDir(snapDir, this.sync);
    let names = await listDir(snapDir);
    let replay = existing?.replay ?? new LogReplay();
    let migrate = false;
    if (this.tagged && names.some((n) => parseSegmentFileName(n) !== null)) {
      if (existing === undefined) {
        const legacy = await recoverSegments(snapDir, names, this.opts.recordBytesMax,
          { untaggedGroup: group }, this.sync, snapDir);
        warnings.push(...legacy.warnings);
        replay = legacy.replays.get(group) ?? replay;
        migrate = true;
      } else {
        // A migration that was made durable before its old segments were removed.
        await removeSegments(snapDir, names, this.sync);
        warnings.push(`removed the one-group WAL segments of group ${group} in ${snapDir}: ` +
          'the pod WAL already holds their copy');
      }
      names = await listDir(snapDir);
    }
    const { store, snapshot } = await SnapshotStore.load(snapDir, names, this.sync, warnings);
    const done = replay.finish(snapshot?.meta ?? null);
    if (done.problem !== null) {
      throw new CorruptLogError(join(this.opts.dir, this.segments[0]?.name ?? '(no segment)'), 0,
        `group ${group}: ${done.problem}`, snapDir);
    }
    const snapIndex = snapshot?.meta.index ?? 0;
    const state: GroupLogState = { hardState: replay.hardState,
      lastIndex: done.entries[done.entries.length - 1]?.index ?? snapIndex, snapIndex,
      walNextIndex: replay.expectedNext };
    const log = new GroupLog(this, group, store);
    const slot: Slot = { state, replay: null, view: log, saves: 0 };
    this.slots.set(group, slot);
    if (migrate) {
      await this.migrate(group, state, snapshot, done.entries);
      await removeSegments(snapDir, await listDir(snapDir), this.sync);
      warnings.push(`migrated group ${group}'s one-group WAL (${done.entries.length} entries) ` +
        `from ${snapDir} into the pod WAL in ${this.opts.dir}`);
    } else if (done.diverged) {
      // Without this record a replay would rebuild the diverged log again and then splice
      // new entries onto it.
      assert(snapshot !== null, 'divergence needs a snapshot');
      warnings.push(`group ${group}: the WAL's log diverged from the snapshot at index ` +
        `${snapIndex}; kept the snapshot and dropped the entries after it`);
      await this.enqueueRecords(group, [{ kind: 'reset', index: snapIndex,
        term: snapshot.meta.term }], { ...state, lastIndex: snapIndex,
        walNextIndex: snapIndex + 1 });
    }
    return { storage: log,
      recovered: { hardState: replay.hardState, snapshot, entries: done.entries, warnings } };
  }

  /** Writes a recovered one-group log into the pod WAL as one durable write. */
  private async migrate(group: number, state: GroupLogState, snapshot: Snapshot | null,
    entries: Entry[]): Promise<void> {
    const plan = planSave({ ...EMPTY_LOG, snapIndex: state.snapIndex },
      { hardState: state.hardState, entries, snapshot });
    await this.enqueueRecords(group, plan.records, { ...plan.next, snapIndex: state.snapIndex });
  }

  /** The group's log is gone from this pod (its replica was removed): a drop record makes
   * its records garbage, so that they pin no segment. */
  dropGroup(group: number): Promise<void> {
    assert(this.tagged, 'only the pod WAL holds many groups');
    const slot = this.slots.get(group);
    if (slot === undefined) return Promise.resolve();
    slot.view = null;
    return this.enqueueRecords(group, [{ kind: 'drop' }], null);
  }

  stats(): WalStats {
    return {
      walBytes: this.segments.reduce((sum, s) => sum + s.bytes, 0),
      segments: this.segments.length, fsyncs: this.sync.count, groupCommits: this.groupCommits,
      saves: this.saves, bytesWritten: this.bytesWritten, rewrites: this.rewrites,
      rewrittenEntries: this.rewrittenEntries, groups: this.slots.size,
      writing: this.draining || this.flushScheduled || this.jobs.length > 0,
    };
  }

  /** The per-group figures for a view's stats(). */
  groupStats(group: number): { lastIndex: number; saves: number } {
    const s = this.slots.get(group);
    return { lastIndex: s?.state.lastIndex ?? 0, saves: s?.saves ?? 0 };
  }

  /** The group's durable snapshot moved: its entries up to `snapIndex` pin nothing now. */
  snapshotWritten(group: number, snapIndex: number): void {
    const slot = this.slots.get(group);
    assert(slot !== undefined, () => `group ${group} is not attached`);
    slot.state = { ...slot.state, snapIndex,
      lastIndex: Math.max(slot.state.lastIndex, snapIndex) };
  }

  /** Waits for queued writes, then closes the active segment; later calls are rejected. */
  close(): Promise<void> {
    return this.enqueue((done) => ({ kind: 'close', done }));
  }

  saveFor(group: number, batch: SaveBatch): Promise<void> {
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
    return this.enqueue((done) => ({ kind: 'save', group, batch, bytes, done }));
  }

  /** Deletes the segments the groups' snapshots cover (and bounds the rest, see the top). */
  compact(): Promise<void> {
    return this.enqueue((done) => ({ kind: 'compact', done }));
  }

  private enqueueRecords(group: number, records: WalRecord[], next: GroupLogState | null):
  Promise<void> {
    return this.enqueue((done) => ({ kind: 'records', group, records, next, done }));
  }

  private enqueue(make: (done: Deferred) => Job): Promise<void> {
    if (this.closing) return Promise.reject(new DsyncError('UNAVAILABLE', 'the WAL is closed'));
    if (this.jobs.length >= PENDING_JOBS_MAX) {
      return Promise.reject(new DsyncError('RESOURCE_EXHAUSTED', `more than ${PENDING_JOBS_MAX} ` +
        'storage writes are queued; wait for earlier saves before issuing more', {
        retryable: true }));
    }
    return new Promise<void>((resolve, reject) => {
      const job = make({ resolve, reject });
      if (job.kind === 'close') this.closing = true;
      this.jobs.push(job);
      if (this.draining || this.flushScheduled) return;
      // The other groups' saves of this callback join the write (group commit): RaftHost
      // runs every due group's ready loop in one callback, each queues its save before its
      // first await, and the write starts a microtask later. (A setImmediate here would
      // cost a whole turn of the event loop on every save.)
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        if (this.draining) return;
        this.draining = true;
        void this.drain();
      });
    });
  }

  /** The only place that settles jobs: after runJobs(), whose last step is the fsync. */
  private async drain(): Promise<void> {
    while (this.jobs.length > 0) {
      const batch = this.takeJobs();
      try {
        const head = batch[0];
        if (head?.kind === 'close') {
          // Closing releases the file even after a failure: nothing is written any more.
          openDirs.delete(this.opts.dir);
          await this.active.close();
          head.done.resolve();
          continue;
        }
        if (this.broken !== null) {
          throw new DsyncError('INTERNAL', 'the WAL failed earlier and accepts no more ' +
            'writes; restart the node', { cause: this.broken });
        }
        await this.runJobs(batch);
        for (const job of batch) job.done.resolve();
      } catch (err) {
        this.broken ??= err;
        for (const job of batch) job.done.reject(err);
      }
    }
    this.draining = false;
  }

  /** The next job, with the writes right behind it merged in (group commit). */
  private takeJobs(): Job[] {
    const head = this.jobs.shift();
    assert(head !== undefined, 'takeJobs on an empty queue');
    const batch: Job[] = [head];
    if (head.kind !== 'save' && head.kind !== 'records') return batch;
    let bytes = head.kind === 'save' ? head.bytes : 0;
    for (;;) {
      const next = this.jobs[0];
      if (next === undefined || (next.kind !== 'save' && next.kind !== 'records')) break;
      const more = next.kind === 'save' ? next.bytes : 0;
      if (batch.length >= GROUP_SAVES_MAX || bytes + more > GROUP_BYTES_MAX) break;
      bytes += more;
      batch.push(next);
      this.jobs.shift();
    }
    return batch;
  }

  private async runJobs(batch: Job[]): Promise<void> {
    const head = batch[0];
    assert(head !== undefined, 'a batch has a job');
    if (head.kind === 'compact') return this.compactSegments();
    assert(head.kind === 'save' || head.kind === 'records', 'drain() handles close itself');
    const reset = await this.writeJobs(batch as WriteJob[]);
    // An installed snapshot replaced a log: what came before it may be garbage now. And a
    // WAL that grows past segmentsMax is bounded even when no group snapshots.
    const tooMany = this.rolled && this.segments.length > this.opts.segmentsMax;
    if (reset || tooMany) {
      this.rolled = false;
      await this.compactSegments();
    }
  }

  /** One write and one fdatasync for every job of the batch, whatever its group; returns
   * whether it carried a snapshot reset. */
  private async writeJobs(jobs: WriteJob[]): Promise<boolean> {
    const next = new Map<number, GroupLogState | null>();
    const records: Array<{ group: number; rec: WalRecord }> = [];
    for (const job of jobs) {
      const slot = this.slots.get(job.group);
      assert(slot !== undefined, () => `group ${job.group} is not attached`);
      if (job.kind === 'records') {
        for (const rec of job.records) records.push({ group: job.group, rec });
        next.set(job.group, job.next);
        continue;
      }
      const from = next.get(job.group) ?? slot.state;
      const plan = planSave(from, job.batch);
      for (const rec of plan.records) records.push({ group: job.group, rec });
      next.set(job.group, plan.next);
    }
    if (records.length === 0) return false;
    const encoded = records.map(({ group, rec }) => this.encode(rec, group));
    const bytes = encoded.reduce((sum, r) => sum + r.byteLength, 0);
    const copies = await this.maybeRoll(bytes);
    const seg = await this.appendUnit([...copies, ...encoded]);
    for (const { group, rec } of records) pinRecord(this.segments, seg, group, rec);
    for (const [group, state] of next) {
      if (state === null) this.slots.delete(group);
      else {
        const slot = this.slots.get(group);
        if (slot !== undefined) slot.state = state;
      }
    }
    for (const job of jobs) {
      if (job.kind !== 'save') continue;
      this.saves++;
      const slot = this.slots.get(job.group);
      if (slot !== undefined) slot.saves++;
    }
    this.groupCommits++;
    return records.some(({ rec }) => rec.kind === 'reset');
  }

  private encode(rec: WalRecord, group: number): Buffer {
    if (this.tagged) return encodeTaggedRecord(rec, group);
    assert(group === 0, 'the one-group WAL holds group 0 only');
    return encodeRecord(rec);
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
    const t0 = performance.now();
    await writeFully(this.active, buf, seg.bytes);
    await this.sync.data(this.active);
    this.onWrite?.((performance.now() - t0) / 1000);
    seg.bytes += buf.byteLength;
    this.bytesWritten += buf.byteLength;
    return seg;
  }

  /** Starts a new segment when this write would overflow the active one, and returns the
   * records it must start with: every group's current hard state (older segments, and the
   * hard state records in them, may be deleted). The old segment was fsynced by the write
   * that filled it, so only the last segment can ever be torn. */
  private async maybeRoll(writeBytes: number): Promise<Buffer[]> {
    const cur = this.segments[this.segments.length - 1];
    assert(cur !== undefined, 'an active segment');
    if (cur.bytes === 0 || cur.bytes + writeBytes <= this.opts.segmentBytes) return [];
    const nameIndex = cur.nameIndex + 1;
    const seg: SegmentInfo = { name: segmentFileName(nameIndex), nameIndex, bytes: 0,
      pins: new Map() };
    const fh = await createFile(join(this.opts.dir, seg.name), this.sync);
    await this.active.close();
    this.active = fh;
    this.segments.push(seg);
    this.rolled = true;
    const copies: Buffer[] = [];
    for (const [group, slot] of this.slots) {
      const hardState = slot.state.hardState;
      if (hardState !== null) copies.push(this.encode({ kind: 'hardState', hardState }, group));
    }
    return copies;
  }

  /** Deletes the oldest segments while each group's snapshot covers its pins; beyond
   * segmentsMax, moves the pinning groups' live entries forward and deletes again. */
  private async compactSegments(): Promise<void> {
    await this.deleteCoveredSegments();
    if (!this.tagged || this.segments.length <= this.opts.segmentsMax) return;
    const oldest = this.segments[0];
    assert(oldest !== undefined, 'segments is non-empty');
    const rewrite: number[] = [];
    for (const [group, pin] of oldest.pins) {
      const slot = this.slots.get(group);
      if (slot === undefined || slot.view === null || pin <= slot.state.snapIndex) continue;
      if (slot.state.lastIndex - slot.state.snapIndex <= REWRITE_ENTRIES_MAX) rewrite.push(group);
      else slot.view.wantSnapshot();
    }
    if (rewrite.length === 0) return;
    await this.rewriteForward(rewrite);
    await this.deleteCoveredSegments();
  }

  private async deleteCoveredSegments(): Promise<void> {
    while (this.segments.length > 1) {
      const oldest = this.segments[0];
      assert(oldest !== undefined, 'segments is non-empty');
      if (!this.covered(oldest)) break;
      await rm(join(this.opts.dir, oldest.name), { force: true });
      // One directory fsync per deletion: were a later deletion durable and an earlier one
      // not, a crash would leave a hole in the middle of the WAL instead of a shorter prefix.
      await this.sync.dir(this.opts.dir);
      this.segments.shift();
    }
  }

  /** Every group's entries in `seg` are covered by its snapshot. A group not attached yet
   * has no snapshot known: it pins. */
  private covered(seg: SegmentInfo): boolean {
    for (const [group, pin] of seg.pins) {
      const slot = this.slots.get(group);
      if (slot === undefined) continue;
      if (slot.view === null && slot.replay !== null) return false;
      if (pin > slot.state.snapIndex) return false;
    }
    return true;
  }

  /** Writes the live entries (above the snapshot) of `groups` again, after a truncate at
   * their first index, as one unit in the active segment. They are read back from the
   * segments that hold them (those whose pin for the group is above its snapshot); the last
   * record of an index is the live one. */
  private async rewriteForward(groups: number[]): Promise<void> {
    const live = await this.readLiveEntries(groups);
    const jobs: WriteJob[] = [];
    // At most a segment's worth per pass, each group at most REWRITE_SHARE of it: moving a
    // log forward must cost less than the segment it frees, or the disk would grow.
    let budget = this.opts.segmentBytes;
    for (const [group, { byIndex, bytes }] of live) {
      const slot = this.slots.get(group);
      assert(slot !== undefined, 'a rewritten group is attached');
      if (bytes > this.opts.segmentBytes / REWRITE_SHARE || bytes > budget) {
        slot.view?.wantSnapshot();
        continue;
      }
      budget -= bytes;
      const { snapIndex, lastIndex } = slot.state;
      const records: WalRecord[] = [{ kind: 'truncate', index: snapIndex + 1 }];
      for (let i = snapIndex + 1; i <= lastIndex; i++) {
        const entry = byIndex.get(i);
        assert(entry !== undefined, () => `group ${group}: live entry ${i} not found in the WAL`);
        records.push({ kind: 'entry', entry });
      }
      this.rewrites++;
      this.rewrittenEntries += records.length - 1;
      jobs.push({ kind: 'records', group, records,
        next: { ...slot.state, walNextIndex: lastIndex + 1 }, done: noop });
    }
    if (jobs.length > 0) await this.writeJobs(jobs);
  }

  /** The live entries of `groups` and their encoded bytes, read back from the segments
   * whose pin for the group is above its snapshot; the last record of an index is live. */
  private async readLiveEntries(groups: number[]):
  Promise<Map<number, { byIndex: Map<number, Entry>; bytes: number }>> {
    const live = new Map(groups.map((g) => [g, new Map<number, Entry>()]));
    for (const seg of this.segments) {
      const wanted = groups.some((g) => (seg.pins.get(g) ?? 0) >
        (this.slots.get(g)?.state.snapIndex ?? Infinity));
      if (!wanted) continue;
      const buf = await readFile(join(this.opts.dir, seg.name));
      for (const { record, group } of scanSegment(buf.subarray(0, seg.bytes),
        this.opts.recordBytesMax).records) {
        if (record.kind !== 'entry' || group === null) continue;
        const entries = live.get(group);
        const snapIndex = this.slots.get(group)?.state.snapIndex;
        if (entries === undefined || snapIndex === undefined) continue;
        if (record.entry.index > snapIndex) entries.set(record.entry.index, record.entry);
      }
    }
    const out = new Map<number, { byIndex: Map<number, Entry>; bytes: number }>();
    for (const [group, byIndex] of live) {
      const last = this.slots.get(group)?.state.lastIndex ?? 0;
      let bytes = 0;
      for (const [i, e] of byIndex) {
        if (i > last) byIndex.delete(i);
        else bytes += RECORD_HEADER_BYTES + recordBodyBytes({ kind: 'entry', entry: e });
      }
      out.set(group, { byIndex, bytes });
    }
    return out;
  }
}

/** WAL directories open in this process (resolved paths). */
const openDirs = new Set<string>();

/** The one-group WAL segments left in a group's directory. */
async function removeSegments(dir: string, names: readonly string[], sync: FsSync):
Promise<void> {
  const segs = names.filter((n) => parseSegmentFileName(n) !== null);
  for (const name of segs) await rm(join(dir, name), { force: true });
  if (segs.length > 0) await sync.dir(dir);
}
