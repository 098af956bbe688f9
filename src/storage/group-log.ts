// One group's view of the pod WAL (pod-wal.ts): what RaftGroup persists each Ready to, with
// the group's snapshot files in the group's own directory.
import type { Snapshot } from '../raft/types.js';
import { assert } from '../assert.js';
import { DsyncError } from '../errors.js';
import type { SaveBatch } from './log-plan.js';
import type { PodWal, StorageStats } from './pod-wal.js';
import type { SnapshotStore } from './snapshot-store.js';

/**
 * One group's log in a PodWal: what RaftGroup persists each Ready to. Saves go straight to
 * the WAL's queue (and merge there with every group's); a snapshot file is written first,
 * after the group's earlier saves are durable, and the saves behind it wait for it, so that
 * the group's records keep their order.
 */
export class GroupLog {
  private last: Promise<void> = Promise.resolve();
  /** A snapshot write in progress: later operations of the group wait for it. */
  private gate: Promise<void> | null = null;
  private closed = false;
  private snapshotWanted: (() => void) | null = null;

  constructor(
    private readonly wal: PodWal,
    readonly group: number,
    private readonly store: SnapshotStore,
  ) {}

  /** Persist one Ready: snapshot (if any) first, then entries (overwriting from
   * entries[0].index), then hard state; one fsync of the WAL for the batch, shared with
   * the other groups' saves of the turn. Resolves only once everything is durable. */
  save(batch: SaveBatch): Promise<void> {
    if (this.closed) return Promise.reject(new DsyncError('UNAVAILABLE', 'Raft storage is closed'));
    const snapshot = batch.snapshot;
    if (snapshot === null && this.gate === null) {
      return this.track(this.wal.saveFor(this.group, batch));
    }
    return this.serial(async () => {
      if (snapshot !== null) {
        assert(snapshot.meta.index > this.store.index, () => `snapshot ${snapshot.meta.index} ` +
          `does not move past the durable one at ${this.store.index}`);
        await this.writeSnapshot(snapshot);
      }
    }, () => this.wal.saveFor(this.group, batch));
  }

  /** After the app's snapshot is durable, drop WAL segments no group needs any more. An
   * older snapshot than the one on disk is ignored. */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    if (this.closed) return Promise.reject(new DsyncError('UNAVAILABLE', 'Raft storage is closed'));
    return this.serial(async () => {
      if (snapshot.meta.index > this.store.index) await this.writeSnapshot(snapshot);
    }, () => this.wal.compact());
  }

  /** Deletes WAL segments no longer needed; `index` must be covered by a durable snapshot. */
  compact(index: number): Promise<void> {
    assert(index <= this.store.index, () => `compact(${index}) beyond the durable snapshot at ` +
      `${this.store.index} would lose entries`);
    return this.serial(async () => undefined, () => this.wal.compact());
  }

  stats(): StorageStats {
    const w = this.wal.stats();
    const g = this.wal.groupStats(this.group);
    return { walBytes: w.walBytes, segments: w.segments, fsyncs: w.fsyncs,
      lastIndex: g.lastIndex, saves: g.saves, groupCommits: w.groupCommits };
  }

  /** Called when the WAL needs this group's snapshot to free its oldest segment. */
  onSnapshotWanted(cb: () => void): void {
    this.snapshotWanted = cb;
  }

  wantSnapshot(): void {
    this.snapshotWanted?.();
  }

  /** Waits for this group's queued writes; the WAL stays open for the others. */
  async close(): Promise<void> {
    this.closed = true;
    await this.last.catch(() => undefined);
  }

  private async writeSnapshot(snapshot: Snapshot): Promise<void> {
    await this.store.write(snapshot);
    this.wal.snapshotWritten(this.group, this.store.index);
  }

  private track(p: Promise<void>): Promise<void> {
    this.last = p.catch(() => undefined);
    return p;
  }

  /** Runs `before` once the group's earlier writes are durable, then queues `write`; the
   * operations after it wait until it is queued. */
  private serial(before: () => Promise<void>, write: () => Promise<void>): Promise<void> {
    const prior = this.last;
    let durable: Promise<void> = Promise.resolve();
    const queued = (this.gate ?? Promise.resolve()).then(() => prior).then(before)
      .then(() => { durable = write(); });
    const gate = queued.catch(() => undefined);
    this.gate = gate;
    void gate.then(() => { if (this.gate === gate) this.gate = null; });
    return this.track(queued.then(() => durable));
  }
}
