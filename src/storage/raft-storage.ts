// Durable Raft storage of one group in its own directory: a write-ahead log of segment files
// plus snapshot files. The runtime persists each Ready here before it sends messages. It is
// the pod WAL's writer (pod-wal.ts) with untagged records and one group: the lock node's
// layout. The queue's groups share one PodWal instead.
//
// Why hard state lives in the WAL and not in a file of its own: a Ready that changes the
// term or vote and appends entries must be durable with ONE fsync; a separate file written
// atomically costs a temp-file fsync, a rename and a directory fsync on every vote or term
// change. As a WAL record it rides in the same write as the entries. Compaction deletes old
// segments, so every new segment starts with the current hard state.
import { resolve } from 'node:path';
import type { Snapshot } from '../raft/types.js';
import { CorruptLogError } from './corrupt-log-error.js';
import type { SaveBatch } from './log-plan.js';
import type { GroupLog } from './group-log.js';
import { PodWal, type Recovered, type StorageStats } from './pod-wal.js';
import { parseStorageOptions, type StorageOptions } from './wal-options.js';

export { CorruptLogError };
export type { Recovered, SaveBatch, StorageOptions, StorageStats };
export {
  DEFAULT_STORAGE_OPTIONS, GROUP_BYTES_MAX, GROUP_SAVES_MAX, PENDING_JOBS_MAX,
  parseStorageOptions,
} from './wal-options.js';
export { SNAPSHOTS_KEPT } from './snapshot-store.js';

/** What RaftGroup needs of its log: RaftStorage, or a group's view of the pod WAL. */
export interface GroupStorage {
  save(batch: SaveBatch): Promise<void>;
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  compact(index: number): Promise<void>;
  stats(): StorageStats;
  close(): Promise<void>;
  /** The WAL needs a snapshot of this group to free disk (pod WAL only). */
  onSnapshotWanted?(cb: () => void): void;
}

export class RaftStorage implements GroupStorage {
  private constructor(private readonly wal: PodWal, private readonly log: GroupLog) {}

  static async open(input: Partial<StorageOptions> & { dir: string }):
  Promise<{ storage: RaftStorage; recovered: Recovered }> {
    const opts = { ...parseStorageOptions(input), dir: resolve(input.dir) };
    const wal = await PodWal.open(opts, false);
    const { storage: log, recovered } = await wal.attach(0, opts.dir)
      .catch(async (err: unknown) => {
        await wal.close();
        throw err;
      });
    return { storage: new RaftStorage(wal, log), recovered };
  }

  save(batch: SaveBatch): Promise<void> {
    return this.log.save(batch);
  }

  /** After the app's snapshot at `snapshot.meta.index` is durable, drop WAL segments wholly
   * covered. Atomic: temp file, fsync, rename, fsync dir. An older snapshot than the one on
   * disk is ignored. */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.log.saveSnapshot(snapshot);
  }

  /** Deletes WAL segments holding only entries <= index. `index` must be covered by a durable
   * snapshot (saveSnapshot or a save with a snapshot) — anything else is a bug. */
  compact(index: number): Promise<void> {
    return this.log.compact(index);
  }

  stats(): StorageStats {
    return this.log.stats();
  }

  /** Waits for queued writes, then closes the files; later calls are rejected. */
  async close(): Promise<void> {
    await this.log.close();
    await this.wal.close();
  }
}
