// Every fsync the storage issues goes through here, so that the count in stats() is the
// disk's real cost and `fsync: false` (benchmarks only) turns all of them off in one place.
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';

export class FsSync {
  /** fsync/fdatasync calls completed (files and directories). */
  count = 0;

  constructor(readonly enabled: boolean) {}

  /** fdatasync: data plus the metadata needed to read it back (the file size). */
  async data(fh: FileHandle): Promise<void> {
    if (!this.enabled) return;
    await fh.datasync();
    this.count++;
  }

  /** fsync: data and all metadata; for new files and truncations. */
  async file(fh: FileHandle): Promise<void> {
    if (!this.enabled) return;
    await fh.sync();
    this.count++;
  }

  /** Makes creations, renames and deletions in `dir` durable. */
  async dir(dir: string): Promise<void> {
    if (!this.enabled) return;
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
      this.count++;
    } finally {
      await fh.close();
    }
  }
}

/** Writes all of `buf` at `position` (a positional write may be short). */
export async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, done, buf.byteLength - done, position + done);
    if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten} at ${position + done}`);
    done += bytesWritten;
  }
}

/** Replaces `dir/name` with `text` atomically: a temp file written and synced, renamed over
 * the old one, the directory synced. A crash leaves the old file or the new one, never half. */
export async function writeFileDurably(dir: string, name: string, text: string, sync: FsSync,
  mode = 0o644): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(text);
    await sync.file(fh);
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await sync.dir(dir);
}
