// A cache pod's incarnation: a number that grows on every start, so that peers drop copies
// granted by an earlier life. It is max(previous + 1, wall clock ms), recorded with fsync
// under the data dir before the node talks to anyone, together with whether that life ended
// drained ("clean": SIGTERM handed every copy and dirty line back, so none of its copies can
// be left anywhere).
//
// What the record tells the core (priorCopiesOf): only a record that says clean lets the new
// life grant at once. A missing record is treated like a crash: a first start and a lost
// data dir (a new volume, a wiped disk) look exactly alike, and after a lost data dir peers
// may still hold copies the last life granted. Waiting is cheap when nothing is left: the
// home asks every peer, and the grace ends as soon as all of them confirm that they hold
// nothing of an earlier life (or, for a pod alone on its ring, at once). Only while a peer
// cannot be reached does a start wait the full startupGraceMs.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync,
  writeSync } from 'node:fs';
import { join } from 'node:path';
import type { PriorCopies } from './coherence-config.js';

export const INCARNATION_FILE = 'cache-incarnation';

/** What the incarnation file said at start-up. */
export type IncarnationRecord = 'missing' | 'clean' | 'unclean';

/** The core's `priorCopies` for what the record said (see the header). */
export function priorCopiesOf(record: IncarnationRecord): PriorCopies {
  return record === 'clean' ? 'none' : 'unknown';
}

/** Reads, bumps and durably records this pod's incarnation (see the header). */
export function nextIncarnation(dataDir: string):
  { incarnation: number; record: IncarnationRecord } {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, INCARNATION_FILE);
  const missing = !existsSync(path);
  const [num, flag] = missing ? ['0', ''] : readFileSync(path, 'utf8').trim().split(' ');
  const prior = Number(num);
  if (!Number.isSafeInteger(prior) || prior < 0) {
    throw new Error(`${path} holds no incarnation number; remove it only if no copy of this ` +
      'pod\'s earlier life can still be alive');
  }
  const incarnation = Math.max(prior + 1, Date.now());
  recordIncarnation(dataDir, incarnation, false);
  return { incarnation, record: missing ? 'missing' : flag === 'clean' ? 'clean' : 'unclean' };
}

/** Writes `incarnation` (and whether it ended drained) with fsync, atomically by rename. */
export function recordIncarnation(dataDir: string, incarnation: number, clean: boolean): void {
  const path = join(dataDir, INCARNATION_FILE);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, `${incarnation}${clean ? ' clean' : ''}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dataDir, 'r');
  try { fsyncSync(dirFd); } finally { closeSync(dirFd); }
}
