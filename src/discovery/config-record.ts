// The configuration a Raft group was created with, kept beside its data. A group without a
// snapshot reads its membership as "the bootstrap configuration plus the changes in its log",
// so the bootstrap must stay what it was when the group was created, even after the peers
// (and with them what a fresh start would compute) changed: it is written once, before the
// group writes anything, and read back on every start.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DsyncError } from '../errors.js';
import type { ClusterConfig } from '../raft/types.js';
import { type FsSync, writeFileDurably } from '../storage/fs-sync.js';

export const BOOTSTRAP_FILE = 'bootstrap.json';
/** Largest record read back: anything bigger is not ours. */
const RECORD_BYTES_MAX = 64 * 1024;

function isConfig(v: unknown): v is ClusterConfig {
  const c = v as { voters?: unknown; learners?: unknown } | null;
  const ids = (x: unknown): boolean => Array.isArray(x) && x.every((i) => typeof i === 'string');
  return typeof c === 'object' && c !== null && ids(c.voters) && ids(c.learners) &&
    (c.voters as unknown[]).length > 0;
}

/** The recorded configuration of the group whose data lives in `dir`, or null. */
export async function readConfigRecord(dir: string): Promise<ClusterConfig | null> {
  const path = join(dir, BOOTSTRAP_FILE);
  if (!existsSync(path)) return null;
  const text = await readFile(path, 'utf8');
  let c: unknown;
  try {
    c = text.length > RECORD_BYTES_MAX ? null : JSON.parse(text) as unknown;
  } catch {
    c = null;
  }
  if (!isConfig(c)) {
    throw new DsyncError('INVALID_ARGUMENT', `${path} is not a configuration: restore it from ` +
      'a backup, or move the data directory away so that the node joins as a new member');
  }
  return { voters: [...c.voters], learners: [...c.learners] };
}

/** The recorded configuration, else `initial` (recorded now, before the group writes). */
export async function openConfigRecord(dir: string, initial: ClusterConfig, sync: FsSync):
  Promise<ClusterConfig> {
  const recorded = await readConfigRecord(dir);
  if (recorded !== null) return recorded;
  await mkdir(dir, { recursive: true });
  await writeFileDurably(dir, BOOTSTRAP_FILE, `${JSON.stringify(initial)}\n`, sync);
  return initial;
}
