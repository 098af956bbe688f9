// Crash recovery on real files: a torn tail at every byte of the last record is repaired; a
// damaged record with good ones after it is refused with a CorruptLogError naming file and
// offset.
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptLogError, RaftStorage } from '../../src/storage/raft-storage.js';
import { encodeRecord } from '../../src/storage/wal-record.js';
import { entries, entry, freshDir, hs, plain, removeDir, segmentNames } from './helpers.js';

let root: string;
beforeEach(async () => { root = await freshDir(); });
afterEach(async () => { await removeDir(root); });

const LAST = 6;

/** A one-segment WAL holding a hard state and entries 1..LAST, one save each; returns the
 * segment's name, bytes and where each entry record starts. */
async function buildLog(): Promise<{ name: string; bytes: Buffer; starts: number[] }> {
  const dir = join(root, 'origin');
  const { storage } = await RaftStorage.open({ dir });
  await storage.save({ hardState: hs(1, 'a', 0), entries: [], snapshot: null });
  for (let i = 1; i <= LAST; i++) {
    await storage.save({ hardState: null, entries: [entry(i, 1)], snapshot: null });
  }
  await storage.close();
  const [name] = await segmentNames(dir);
  if (name === undefined) throw new Error('no segment written');
  const bytes = await readFile(join(dir, name));
  const starts: number[] = [];
  let end = bytes.byteLength;
  for (let i = LAST; i >= 1; i--) {
    end -= encodeRecord({ kind: 'entry', entry: entry(i, 1) }).byteLength;
    starts.unshift(end);
  }
  return { name, bytes, starts };
}

let case_ = 0;
/** A data dir whose only segment holds `bytes`. */
async function dirWith(name: string, bytes: Buffer): Promise<string> {
  const dir = join(root, `case-${case_++}`);
  await mkdir(dir);
  await writeFile(join(dir, name), bytes);
  return dir;
}

function flipBit(buf: Buffer, offset: number): Buffer {
  const copy = Buffer.from(buf);
  copy[offset] = (copy[offset] ?? 0) ^ (1 << (offset % 8));
  return copy;
}

describe('torn tail', () => {
  it('a cut at every byte offset of the last record recovers everything before it', async () => {
    const { name, bytes, starts } = await buildLog();
    const lastStart = starts[LAST - 1] ?? -1;
    expect(lastStart).toBeGreaterThan(0);
    for (let length = lastStart; length < bytes.byteLength; length++) {
      const dir = await dirWith(name, bytes.subarray(0, length));
      const { storage, recovered } = await RaftStorage.open({ dir });
      expect(plain(recovered.entries)).toEqual(plain(entries(1, LAST - 1, 1)));
      expect(recovered.hardState).toEqual(hs(1, 'a', 0));
      expect(recovered.warnings).toHaveLength(length === lastStart ? 0 : 1);
      // The tail was cut off on disk, so a new write lands on a clean end.
      await storage.save({ hardState: null, entries: [entry(LAST, 2)], snapshot: null });
      await storage.close();
      const again = await RaftStorage.open({ dir });
      expect(again.recovered.warnings).toEqual([]);
      expect(plain(again.recovered.entries)).toEqual(plain([...entries(1, LAST - 1, 1),
        entry(LAST, 2)]));
      await again.storage.close();
    }
  });

  it('a bit flip anywhere in the last record is a torn tail', async () => {
    const { name, bytes, starts } = await buildLog();
    const lastStart = starts[LAST - 1] ?? -1;
    for (let offset = lastStart; offset < bytes.byteLength; offset++) {
      const dir = await dirWith(name, flipBit(bytes, offset));
      const { storage, recovered } = await RaftStorage.open({ dir });
      expect(plain(recovered.entries)).toEqual(plain(entries(1, LAST - 1, 1)));
      expect(recovered.warnings.join()).toContain(`byte offset ${lastStart}`);
      await storage.close();
    }
  });

  it('zeros after the last record (a file extended but never written) are a torn tail',
    async () => {
      const { name, bytes } = await buildLog();
      const dir = await dirWith(name, bytes);
      await appendFile(join(dir, name), Buffer.alloc(4096));
      const { storage, recovered } = await RaftStorage.open({ dir });
      expect(plain(recovered.entries)).toEqual(plain(entries(1, LAST, 1)));
      expect(recovered.warnings).toHaveLength(1);
      await storage.close();
    });
});

async function expectCorrupt(dir: string, file: string, offset: number): Promise<void> {
  const err = await RaftStorage.open({ dir }).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(CorruptLogError);
  const c = err as CorruptLogError;
  expect(c.file).toBe(join(dir, file));
  expect(c.offset).toBe(offset);
  expect(c.message).toContain(join(dir, file));
  expect(c.message).toContain(`byte offset ${offset}`);
  expect(c.message).toContain('rejoins as a fresh member');
}

describe('corruption before the tail', () => {
  it('a bit flip at every byte of a record in the middle throws CorruptLogError', async () => {
    const { name, bytes, starts } = await buildLog();
    const [, second = -1, third = -1] = starts;
    for (let offset = second; offset < third; offset++) {
      const dir = await dirWith(name, flipBit(bytes, offset));
      await expectCorrupt(dir, name, second);
    }
  });

  it('a damaged record in a segment that is not the last throws CorruptLogError', async () => {
    const dir = join(root, 'multi');
    const { storage } = await RaftStorage.open({ dir, segmentBytes: 4096 });
    for (let i = 1; i <= 100; i++) {
      await storage.save({ hardState: null, entries: [entry(i, 1, 'y'.repeat(100))],
        snapshot: null });
    }
    await storage.close();
    const [first] = await segmentNames(dir);
    expect((await segmentNames(dir)).length).toBeGreaterThan(1);
    if (first === undefined) throw new Error('no segment');
    const bytes = await readFile(join(dir, first));
    // Cut the first segment's last record short: harmless at the end of the log, but this
    // segment was fsynced before the next one began, so it is damage, not a torn write.
    const lastRecord = encodeRecord({ kind: 'entry', entry: entry(1, 1, 'y'.repeat(100)) });
    const cut = bytes.byteLength - lastRecord.byteLength;
    await writeFile(join(dir, first), bytes.subarray(0, cut + 3));
    await expectCorrupt(dir, first, cut);
  });
});
