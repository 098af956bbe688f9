// The snapshot files of one Raft group in its own directory: read back at start-up (the newest
// readable one), and written atomically (temp file, fsync, rename, fsync of the directory),
// keeping the newest SNAPSHOTS_KEPT. Used by the one-group WAL (RaftStorage) and by each group
// of the pod WAL alike: snapshots stay per group, whatever holds the log.
import { open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Snapshot } from '../raft/types.js';
import { assert } from '../assert.js';
import { writeFully, type FsSync } from './fs-sync.js';
import {
  SNAPSHOT_TEMP_SUFFIX, decodeSnapshot, encodeSnapshot, parseSnapshotFileName, snapshotFileName,
} from './snapshot-file.js';

/** Snapshot files kept: the newest, and one previous in case the newest is unreadable. */
export const SNAPSHOTS_KEPT = 2;

export class SnapshotStore {
  private constructor(
    readonly dir: string,
    private readonly sync: FsSync,
    /** Snapshot file indexes on disk, ascending. */
    private indexes: number[],
    /** The newest snapshot made durable (read back or written); 0 for none. */
    private newest: number,
  ) {}

  /** Removes leftover temp files, and reads the newest readable snapshot of `dir`. `names`
   * are the directory's entries (read once by the caller). */
  static async load(dir: string, names: readonly string[], sync: FsSync, warnings: string[]):
  Promise<{ store: SnapshotStore; snapshot: Snapshot | null }> {
    await removeTempFiles(dir, names, warnings, sync);
    const nameOf = new Map<number, string>();
    for (const n of names) {
      const index = parseSnapshotFileName(n);
      if (index !== null) nameOf.set(index, n);
    }
    const indexes = [...nameOf.keys()].sort((a, b) => a - b);
    let snapshot: Snapshot | null = null;
    for (let i = indexes.length - 1; i >= 0; i--) {
      const index = indexes[i];
      const name = index === undefined ? undefined : nameOf.get(index);
      assert(index !== undefined && name !== undefined, 'a snapshot index comes from a name');
      const decoded = decodeSnapshot(await readFile(join(dir, name)));
      if (decoded.ok && decoded.snapshot.meta.index === index) {
        snapshot = decoded.snapshot;
        break;
      }
      // An older snapshot may still do: if the log it needs was compacted away, the replay's
      // finish() reports the gap as corruption.
      const why = decoded.ok ? 'its index differs from its name' : decoded.reason;
      warnings.push(`snapshot ${name} is unreadable (${why}); trying an older one`);
    }
    return { store: new SnapshotStore(dir, sync, indexes, snapshot?.meta.index ?? 0), snapshot };
  }

  /** The index of the newest durable snapshot (0: none). */
  get index(): number {
    return this.newest;
  }

  /** Temp file, fsync, rename, fsync dir; then drops snapshots beyond SNAPSHOTS_KEPT. */
  async write(snapshot: Snapshot): Promise<void> {
    const name = snapshotFileName(snapshot.meta.index);
    const path = join(this.dir, name);
    const tmp = path + SNAPSHOT_TEMP_SUFFIX;
    const fh = await open(tmp, 'w');
    try {
      await writeFully(fh, encodeSnapshot(snapshot), 0);
      await this.sync.file(fh);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await this.sync.dir(this.dir);
    this.newest = Math.max(this.newest, snapshot.meta.index);
    this.indexes = [...this.indexes.filter((i) => i !== snapshot.meta.index),
      snapshot.meta.index].sort((a, b) => a - b);
    const stale = this.indexes.slice(0, -SNAPSHOTS_KEPT);
    for (const index of stale) await rm(join(this.dir, snapshotFileName(index)), { force: true });
    if (stale.length > 0) {
      this.indexes = this.indexes.slice(-SNAPSHOTS_KEPT);
      await this.sync.dir(this.dir);
    }
  }
}

/** A `.tmp` file is a snapshot whose write was interrupted before its rename: never valid. */
async function removeTempFiles(dir: string, names: readonly string[], warnings: string[],
  sync: FsSync): Promise<void> {
  const temps = names.filter((n) => n.endsWith(SNAPSHOT_TEMP_SUFFIX));
  for (const name of temps) {
    await rm(join(dir, name), { force: true });
    warnings.push(`removed ${name}, left by an interrupted snapshot write`);
  }
  if (temps.length > 0) await sync.dir(dir);
}

/** The entries of `dir` (none when it does not exist yet). */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
