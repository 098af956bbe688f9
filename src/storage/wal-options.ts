// The options of a write-ahead log (the one-group WAL of RaftStorage and the pod WAL alike),
// their defaults and bounds, and the limits of the writer's job queue.
import { InvalidArgumentError } from '../errors.js';

export interface StorageOptions {
  /** The WAL's directory; created if missing. */
  dir: string;
  /** fsync every write (default true). false only for benchmarks (CLI --unsafe-no-fsync):
   * a crash of the machine then loses acknowledged writes. */
  fsync: boolean;
  /** WAL segment size before rolling to a new file (default 64 MiB, 4 KiB..1 GiB). Segments
   * roll between writes, so one may exceed this by at most one group commit. */
  segmentBytes: number;
  /** Largest record accepted (default 16 MiB, 64 B..1 GiB), checked on write and on read. */
  recordBytesMax: number;
  /** Segments kept before the pod WAL moves the entries of groups that pin the oldest one
   * forward (see PodWal.compactSegments). Default 16, 2..1,000,000. */
  segmentsMax: number;
}

export const DEFAULT_STORAGE_OPTIONS: Readonly<Omit<StorageOptions, 'dir'>> = {
  fsync: true,
  segmentBytes: 64 * 1024 * 1024,
  recordBytesMax: 16 * 1024 * 1024,
  segmentsMax: 16,
};

/** Saves waiting behind the one in flight; beyond this save() fails with RESOURCE_EXHAUSTED
 * (the runtime awaits each save, so reaching it means a caller lost its back-pressure). */
export const PENDING_JOBS_MAX = 4096;
/** Most saves merged into one write + fsync. */
export const GROUP_SAVES_MAX = 1024;
/** Most bytes merged into one write + fsync (a single larger save still goes alone). */
export const GROUP_BYTES_MAX = 32 * 1024 * 1024;
/** A group pinning the oldest segment has its live entries rewritten forward only when they
 * are this few; a longer log is asked for a snapshot instead (rewriting it would cost more
 * than the segment it frees). */
export const REWRITE_ENTRIES_MAX = 20_000;
/** ... and when their bytes are at most this fraction of segmentBytes (1/16: 4 MiB of the
 * default 64 MiB), for the same reason. */
export const REWRITE_SHARE = 16;

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
  if (!inRange(opts.segmentsMax, 2, 1_000_000)) {
    throw new InvalidArgumentError('segmentsMax', 'segmentsMax must be an integer in 2..1000000');
  }
  return opts;
}
