// RaftStorage on real files with real fsync: round trips, overwrites, rolling, compaction,
// snapshots and group commit.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RaftStorage } from '../../src/storage/raft-storage.js';
import { encodeSnapshot, snapshotFileName } from '../../src/storage/snapshot-file.js';
import {
  entries, entry, freshDir, hs, plain, removeDir, segmentNames, snapshot,
} from './helpers.js';

let dir: string;
beforeEach(async () => { dir = await freshDir(); });
afterEach(async () => { await removeDir(dir); });

async function reopen(extra: { segmentBytes?: number } = {}) {
  return RaftStorage.open({ dir, ...extra });
}

describe('RaftStorage round trip', () => {
  it('a fresh directory recovers nothing', async () => {
    const { storage, recovered } = await reopen();
    expect(recovered).toEqual({ hardState: null, snapshot: null, entries: [], warnings: [] });
    expect(storage.stats().lastIndex).toBe(0);
    await storage.close();
  });

  it('entries, hard state and snapshot survive a restart', async () => {
    const a = (await reopen()).storage;
    await a.save({ hardState: hs(1, 'n1', 0), entries: entries(1, 5, 1), snapshot: null });
    const noop = { index: 6, term: 2, type: 'noop' as const, data: new Uint8Array() };
    const conf = { index: 7, term: 2, type: 'config' as const, data: new Uint8Array([1, 2, 3]) };
    await a.save({ hardState: hs(2, null, 5), entries: [noop, conf], snapshot: null });
    await a.saveSnapshot(snapshot(5, 1));
    await a.close();
    const { storage: b, recovered } = await reopen();
    expect(recovered.warnings).toEqual([]);
    expect(recovered.hardState).toEqual(hs(2, null, 5));
    expect(recovered.snapshot?.meta).toEqual(snapshot(5, 1).meta);
    expect(new TextDecoder().decode(recovered.snapshot?.data)).toBe('image-5');
    expect(plain(recovered.entries)).toEqual(plain([noop, conf]));
    expect(b.stats().lastIndex).toBe(7);
    await b.close();
  });

  it('an overwrite from a middle index survives a restart, and appends continue after it',
    async () => {
      const a = (await reopen()).storage;
      await a.save({ hardState: hs(1, 'n1', 0), entries: entries(1, 10, 1), snapshot: null });
      await a.save({ hardState: hs(2, 'n2', 0), entries: entries(6, 8, 2, 'new'), snapshot: null });
      expect(a.stats().lastIndex).toBe(8);
      await a.close();
      const r1 = await reopen();
      const expected = [...entries(1, 5, 1), ...entries(6, 8, 2, 'new')];
      expect(plain(r1.recovered.entries)).toEqual(plain(expected));
      await r1.storage.save({ hardState: null, entries: [entry(9, 2)], snapshot: null });
      // An overwrite reaching back before everything written since the restart.
      await r1.storage.save({ hardState: null, entries: entries(3, 4, 3, 'x'), snapshot: null });
      await r1.storage.close();
      const r2 = await reopen();
      expect(plain(r2.recovered.entries)).toEqual(plain([...entries(1, 2, 1),
        ...entries(3, 4, 3, 'x')]));
      expect(r2.recovered.hardState).toEqual(hs(2, 'n2', 0));
      await r2.storage.close();
    });

  it('a save carrying a snapshot replaces the whole log (InstallSnapshot)', async () => {
    const a = (await reopen()).storage;
    await a.save({ hardState: hs(1, null, 3), entries: entries(1, 10, 1), snapshot: null });
    await a.save({ hardState: hs(3, null, 20), entries: entries(21, 22, 3),
      snapshot: snapshot(20, 3) });
    await a.close();
    const { storage, recovered } = await reopen();
    expect(recovered.snapshot?.meta.index).toBe(20);
    expect(plain(recovered.entries)).toEqual(plain(entries(21, 22, 3)));
    expect(recovered.hardState).toEqual(hs(3, null, 20));
    await storage.close();
  });

  it('rejects an entry larger than recordBytesMax before writing anything', async () => {
    const { storage } = await RaftStorage.open({ dir, recordBytesMax: 100 });
    const big = { ...entry(1, 1), data: new Uint8Array(200) };
    await expect(storage.save({ hardState: null, entries: [big], snapshot: null }))
      .rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    await storage.save({ hardState: null, entries: [entry(1, 1)], snapshot: null });
    expect(storage.stats().lastIndex).toBe(1);
    await storage.close();
  });

  it('validates options, naming the field', async () => {
    await expect(RaftStorage.open({ dir, segmentBytes: 10 }))
      .rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'segmentBytes' } });
  });
});

describe('RaftStorage crash between an installed snapshot and its WAL record', () => {
  it('keeps only the snapshot when the log diverged from it, and appends go on from it',
    async () => {
      const a = (await reopen()).storage;
      await a.save({ hardState: hs(1, null, 2), entries: entries(1, 10, 1), snapshot: null });
      await a.close();
      // What save() leaves if it crashes after the snapshot file, before the WAL write:
      // a snapshot at 5 of term 2, where this log has term 1.
      await writeFile(join(dir, snapshotFileName(5)), encodeSnapshot(snapshot(5, 2)));
      const b = await reopen();
      expect(b.recovered.snapshot?.meta.index).toBe(5);
      expect(b.recovered.entries).toEqual([]);
      expect(b.recovered.warnings.join()).toContain('diverged');
      await b.storage.save({ hardState: hs(2, null, 5), entries: entries(6, 7, 2),
        snapshot: null });
      await b.storage.close();
      const c = await reopen();
      expect(c.recovered.warnings).toEqual([]);
      expect(plain(c.recovered.entries)).toEqual(plain(entries(6, 7, 2)));
      await c.storage.close();
    });

  it('keeps the log after the snapshot when it matches the snapshot\'s term', async () => {
    const a = (await reopen()).storage;
    await a.save({ hardState: null, entries: entries(1, 10, 1), snapshot: null });
    await a.close();
    await writeFile(join(dir, snapshotFileName(5)), encodeSnapshot(snapshot(5, 1)));
    const b = await reopen();
    expect(plain(b.recovered.entries)).toEqual(plain(entries(6, 10, 1)));
    expect(b.recovered.warnings).toEqual([]);
    await b.storage.close();
  });
});

describe('RaftStorage segments and compaction', () => {
  it('rolls segments, compacts the ones a snapshot covers, and keeps the hard state', async () => {
    const a = (await reopen({ segmentBytes: 4096 })).storage;
    // The hard state is written once, at the start: after compaction only the copy at the
    // head of each new segment can bring it back.
    await a.save({ hardState: hs(4, 'n3', 0), entries: [], snapshot: null });
    const text = 'x'.repeat(100);
    for (let i = 1; i <= 200; i++) {
      await a.save({ hardState: null, entries: [entry(i, 4, text)], snapshot: null });
    }
    const before = a.stats();
    expect(before.segments).toBeGreaterThan(4);
    expect(before.lastIndex).toBe(200);
    await a.saveSnapshot(snapshot(150, 4));
    await a.compact(150);
    const after = a.stats();
    expect(after.segments).toBeLessThan(before.segments);
    expect(after.segments).toBeGreaterThanOrEqual(2);
    expect(after.walBytes).toBeLessThan(before.walBytes);
    expect(await segmentNames(dir)).toHaveLength(after.segments);
    await a.close();
    const { storage, recovered } = await reopen({ segmentBytes: 4096 });
    expect(recovered.warnings).toEqual([]);
    expect(recovered.hardState).toEqual(hs(4, 'n3', 0));
    expect(recovered.snapshot?.meta.index).toBe(150);
    expect(plain(recovered.entries)).toEqual(plain(entries(151, 200, 4, text)));
    await storage.close();
  });

  it('keeps the newest two snapshot files', async () => {
    const a = (await reopen()).storage;
    await a.save({ hardState: null, entries: entries(1, 30, 1), snapshot: null });
    for (const i of [10, 20, 30]) await a.saveSnapshot(snapshot(i, 1));
    await a.saveSnapshot(snapshot(5, 1)); // older than the newest: ignored
    const snaps = (await readdir(dir)).filter((n) => n.startsWith('snap-')).sort();
    expect(snaps).toEqual(['snap-0000000000000020.bin', 'snap-0000000000000030.bin']);
    await a.close();
  });

  it('an interrupted snapshot write (temp file left) is removed and the old snapshot used',
    async () => {
      const a = (await reopen()).storage;
      await a.save({ hardState: null, entries: entries(1, 12, 1), snapshot: null });
      await a.saveSnapshot(snapshot(5, 1));
      await a.close();
      // What a crash between the temp file's write and its rename leaves behind.
      const tmp = 'snap-0000000000000010.bin.tmp';
      await writeFile(join(dir, tmp), Buffer.from('DSNP\x01 half a snapshot'));
      const { storage, recovered } = await reopen();
      expect(recovered.snapshot?.meta.index).toBe(5);
      expect(plain(recovered.entries)).toEqual(plain(entries(6, 12, 1)));
      expect(recovered.warnings.join('\n')).toContain(tmp);
      expect(await readdir(dir)).not.toContain(tmp);
      await storage.close();
    });

  it('a corrupt newest snapshot falls back to the previous one when the WAL still has the log',
    async () => {
      const a = (await reopen()).storage;
      await a.save({ hardState: null, entries: entries(1, 12, 1), snapshot: null });
      await a.saveSnapshot(snapshot(5, 1));
      await a.saveSnapshot(snapshot(10, 1));
      await a.close();
      await writeFile(join(dir, 'snap-0000000000000010.bin'), Buffer.from('garbage'));
      const { storage, recovered } = await reopen();
      expect(recovered.snapshot?.meta.index).toBe(5);
      expect(plain(recovered.entries)).toEqual(plain(entries(6, 12, 1)));
      expect(recovered.warnings.join('\n')).toContain('unreadable');
      await storage.close();
    });
});

describe('RaftStorage invariants', () => {
  it('refuses a second open of the same directory in one process', async () => {
    const { storage } = await reopen();
    await expect(reopen()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await storage.close();
    const again = await reopen();
    await again.storage.close();
  });

  it('a vote changed within a term is a bug that stops the storage', async () => {
    const { storage } = await reopen();
    await storage.save({ hardState: hs(3, 'a', 0), entries: [], snapshot: null });
    await expect(storage.save({ hardState: hs(3, 'b', 0), entries: [], snapshot: null }))
      .rejects.toThrow('vote changes from a to b within term 3');
    await expect(storage.save({ hardState: hs(4, 'b', 0), entries: [], snapshot: null }))
      .rejects.toMatchObject({ code: 'INTERNAL' });
    await storage.close();
    const after = await reopen();
    expect(after.recovered.hardState).toEqual(hs(3, 'a', 0));
    await after.storage.close();
  });
});
