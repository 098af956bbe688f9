// Directories and files whose creation must survive a crash: the entry in the parent
// directory is fsynced too.
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FsSync } from './fs-sync.js';

/** Creates the directory (and makes its entry durable in the parent) if missing. */
export async function ensureDir(dir: string, sync: FsSync): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  if (created === undefined) return;
  // Every directory created needs its entry in its parent made durable, top-down.
  for (let p = dir; ; p = dirname(p)) {
    await sync.dir(dirname(p));
    if (p === created || dirname(p) === p) break;
  }
}

/** Creates a new, empty file and makes its directory entry durable. */
export async function createFile(path: string, sync: FsSync): Promise<FileHandle> {
  const fh = await open(path, 'wx');
  await sync.dir(dirname(path));
  return fh;
}
