// Crash recovery on real files: a torn tail at every byte of the last record is repaired; a
// damaged record with good ones after it is refused with a CorruptLogError naming file and
// offset.
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptLogError, RaftStorage } from '../../src/storage/raft-storage.js';
import { scanSegment } from '../../src/storage/wal-record.js';
import { entries, entry, freshDir, hs, plain, removeDir, segmentNames } from './helpers.js';

let root: string;
beforeEach(async () => { root = await freshDir(); });
afterEach(async () => { await removeDir(root); });

const LAST = 6;

interface Layout {
  name: string;
  bytes: Buffer;
  /** Where the record of entry i (1-based, at [i - 1]) starts, and where it ends. */
  starts: number[];
  ends: number[];
}

/** A one-segment WAL holding a hard state and entries 1..LAST, one save (one write, ended by
 * a commit record) each. */
async function buildLog(): Promise<Layout> {
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
  const scan = scanSegment(bytes, 1 << 20);
  expect(scan.problem).toBeNull();
  const starts: number[] = [];
  const ends: number[] = [];
  scan.records.forEach(({ record, offset }, i) => {
    if (record.kind !== 'entry') return;
    starts.push(offset);
    ends.push(scan.records[i + 1]?.offset ?? -1);
    // Each save is its own write: its entry is followed by the commit record closing it.
    expect(scan.records[i + 1]?.record.kind).toBe('commit');
  });
  expect(starts).toHaveLength(LAST);
  return { name, bytes, starts, ends };
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
  it('a cut at every byte offset of the last write recovers everything before it', async () => {
    const { name, bytes, starts, ends } = await buildLog();
    const lastStart = starts[LAST - 1] ?? -1;
    const lastEnd = ends[LAST - 1] ?? -1;
    expect(lastStart).toBeGreaterThan(0);
    for (let length = lastStart; length < bytes.byteLength; length++) {
      const dir = await dirWith(name, bytes.subarray(0, length));
      const { storage, recovered } = await RaftStorage.open({ dir });
      // The entry survives when its record is whole, even if the commit record after it
      // was cut: a prefix of an unfinished write is a state the log went through.
      const kept = length >= lastEnd ? LAST : LAST - 1;
      expect(plain(recovered.entries)).toEqual(plain(entries(1, kept, 1)));
      expect(recovered.hardState).toEqual(hs(1, 'a', 0));
      expect(recovered.warnings).toHaveLength(length === lastStart ? 0 : 1);
      // The tail was cut off on disk, so a new write lands on a clean end.
      await storage.save({ hardState: null, entries: [entry(kept + 1, 2)], snapshot: null });
      await storage.close();
      const again = await RaftStorage.open({ dir });
      expect(again.recovered.warnings).toEqual([]);
      expect(plain(again.recovered.entries)).toEqual(plain([...entries(1, kept, 1),
        entry(kept + 1, 2)]));
      await again.storage.close();
    }
  });

  it('a bit flip anywhere in the last write is a torn tail', async () => {
    const { name, bytes, starts, ends } = await buildLog();
    const lastStart = starts[LAST - 1] ?? -1;
    const lastEnd = ends[LAST - 1] ?? -1;
    for (let offset = lastStart; offset < bytes.byteLength; offset++) {
      const dir = await dirWith(name, flipBit(bytes, offset));
      const { storage, recovered } = await RaftStorage.open({ dir });
      const kept = offset >= lastEnd ? LAST : LAST - 1;
      expect(plain(recovered.entries)).toEqual(plain(entries(1, kept, 1)));
      const badRecord = offset >= lastEnd ? lastEnd : lastStart;
      expect(recovered.warnings.join()).toContain(`byte offset ${badRecord}`);
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

/** Two group commits of 40 entries of 300 bytes each; returns the segment and where the
 * second write starts. */
async function buildTwoBigWrites(): Promise<{ dir: string; name: string; bytes: Buffer;
  secondStart: number }> {
  const dir = join(root, 'big');
  const { storage } = await RaftStorage.open({ dir });
  await storage.save({ hardState: null, entries: entries(1, 40, 1, 'p'.repeat(300)),
    snapshot: null });
  const secondStart = storage.stats().walBytes;
  await storage.save({ hardState: null, entries: entries(41, 80, 1, 'q'.repeat(300)),
    snapshot: null });
  await storage.close();
  const [name = ''] = await segmentNames(dir);
  return { dir, name, bytes: await readFile(join(dir, name)), secondStart };
}

describe('a page lost inside one write', () => {
  it('in the last write, whose fsync never finished, is a torn tail', async () => {
    const { name, bytes, secondStart } = await buildTwoBigWrites();
    // The disk persisted the write's later pages but not this one (zeros instead).
    const page = Buffer.from(bytes);
    page.fill(0, secondStart + 4096, secondStart + 8192);
    const dir = await dirWith(name, page);
    const { storage, recovered } = await RaftStorage.open({ dir });
    const kept = recovered.entries.length;
    expect(kept).toBeGreaterThanOrEqual(40);
    expect(kept).toBeLessThan(80);
    expect(plain(recovered.entries)).toEqual(plain([...entries(1, 40, 1, 'p'.repeat(300)),
      ...entries(41, kept, 1, 'q'.repeat(300))]));
    expect(recovered.warnings.join()).toContain('torn tail');
    await storage.close();
  });

  it('in an earlier write, followed by a complete one, is corruption', async () => {
    const { name, bytes, secondStart } = await buildTwoBigWrites();
    const page = Buffer.from(bytes);
    page.fill(0, 4096, 8192);
    expect(8192).toBeLessThan(secondStart);
    const dir = await dirWith(name, page);
    const err = await RaftStorage.open({ dir }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect((err as CorruptLogError).offset).toBeLessThanOrEqual(4096);
    expect((err as CorruptLogError).message).toContain('a later write follows');
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
  it('a bit flip at every byte of a write in the middle throws CorruptLogError', async () => {
    const { name, bytes, starts, ends } = await buildLog();
    const [, second = -1, third = -1] = starts;
    const [, secondEnd = -1] = ends;
    for (let offset = second; offset < third; offset++) {
      const dir = await dirWith(name, flipBit(bytes, offset));
      // The entry record, or the commit record after it, whichever holds the flipped bit.
      await expectCorrupt(dir, name, offset < secondEnd ? second : secondEnd);
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
    const cut = scanSegment(bytes, 1 << 20).records.at(-1)?.offset ?? -1;
    await writeFile(join(dir, first), bytes.subarray(0, cut + 3));
    await expectCorrupt(dir, first, cut);
  });
});

describe('recordBytesMax on read', () => {
  it('a whole record over a lowered recordBytesMax is refused, not cut off as torn', async () => {
    const dir = join(root, 'lowered');
    const { storage } = await RaftStorage.open({ dir });
    await storage.save({ hardState: null, entries: [entry(1, 1)], snapshot: null });
    await storage.save({ hardState: null, entries: [entry(2, 1, 'z'.repeat(1000))],
      snapshot: null });
    await storage.close();
    const err = await RaftStorage.open({ dir, recordBytesMax: 500 }).then(() => null,
      (e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect((err as Error).message).toContain('restart with recordBytesMax of at least');
    // Nothing was cut: with the old setting everything is there.
    const again = await RaftStorage.open({ dir });
    expect(plain(again.recovered.entries)).toEqual(plain([entry(1, 1),
      entry(2, 1, 'z'.repeat(1000))]));
    expect(again.recovered.warnings).toEqual([]);
    await again.storage.close();
  });
});
