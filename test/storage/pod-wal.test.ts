// The pod WAL on real files with fsync: many groups interleaved in one log, each recovered on
// its own; one write and one fsync for the saves of all groups in a turn; a torn tail; one
// group's truncation leaves the others alone; segments a lagging group still needs are kept,
// and its live entries are rewritten forward once the WAL holds too many segments; the
// one-group WAL of the layout before is migrated; a dropped group pins nothing.
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { PodWal } from '../../src/storage/pod-wal.js';
import { REWRITE_ENTRIES_MAX } from '../../src/storage/wal-options.js';
import type { GroupLog } from '../../src/storage/group-log.js';
import { RaftStorage } from '../../src/storage/raft-storage.js';
import { entries, entry, freshDir, hs, plain, removeDir, segmentNames, snapshot } from './helpers.js';

let dir: string;
beforeEach(async () => { dir = await freshDir(); });
afterEach(async () => { await removeDir(dir); });

const walDir = (): string => join(dir, 'wal');
const groupDir = (g: number): string => join(dir, 'partitions', String(g));

async function openAll(groups: readonly number[], extra: { segmentBytes?: number;
  segmentsMax?: number } = {}) {
  const wal = await PodWal.open({ dir: walDir(), ...extra }, true);
  const logs = new Map<number, GroupLog>();
  const recovered = new Map<number, Awaited<ReturnType<PodWal['attach']>>['recovered']>();
  for (const g of groups) {
    const a = await wal.attach(g, groupDir(g));
    logs.set(g, a.storage);
    recovered.set(g, a.recovered);
  }
  const log = (g: number): GroupLog => {
    const l = logs.get(g);
    if (l === undefined) throw new Error(`group ${g} not attached`);
    return l;
  };
  const rec = (g: number) => {
    const r = recovered.get(g);
    if (r === undefined) throw new Error(`group ${g} not attached`);
    return r;
  };
  return { wal, log, rec };
}

const GROUPS = [0, 1, 2, 3, 4, 5, 6, 7];
const text = (g: number, i: number): string => `g${g}-cmd-${i}`;
const groupEntries = (g: number, from: number, to: number, term = 1): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, k) => entry(from + k, term, text(g, from + k)));

describe('pod WAL: many groups in one log', () => {
  it('interleaved saves of many groups are each recovered on their own', async () => {
    const a = await openAll(GROUPS);
    for (let round = 1; round <= 20; round++) {
      // Every round: one save per group, all in one turn.
      await Promise.all(GROUPS.map((g) => a.log(g).save({ hardState: hs(1, `n${g}`, round - 1),
        entries: groupEntries(g, round, round), snapshot: null })));
    }
    expect(a.wal.stats().groupCommits).toBe(20);
    await a.wal.close();
    const b = await openAll(GROUPS);
    for (const g of GROUPS) {
      expect(plain(b.rec(g).entries)).toEqual(plain(groupEntries(g, 1, 20)));
      expect(b.rec(g).hardState).toEqual(hs(1, `n${g}`, 19));
    }
    await b.wal.close();
  });

  it('refuses a second writer on the same WAL in this process', async () => {
    const a = await PodWal.open({ dir: walDir() }, true);
    await expect(PodWal.open({ dir: walDir() }, true)).rejects.toMatchObject({
      code: 'UNAVAILABLE' });
    await a.close();
    const b = await PodWal.open({ dir: walDir() }, true);
    await b.close();
  });

  it('the saves of all groups in one turn cost one write and one fsync', async () => {
    const a = await openAll(GROUPS);
    const before = a.wal.stats();
    await Promise.all(GROUPS.map((g) => a.log(g).save({ hardState: hs(1, null, 0),
      entries: groupEntries(g, 1, 3), snapshot: null })));
    const after = a.wal.stats();
    expect(after.fsyncs - before.fsyncs).toBe(1);
    expect(after.groupCommits - before.groupCommits).toBe(1);
    expect(after.saves - before.saves).toBe(GROUPS.length);
    await a.wal.close();
  });

  it('a torn last write is cut off for every group in it; earlier writes survive', async () => {
    const a = await openAll([1, 2]);
    await Promise.all([1, 2].map((g) => a.log(g).save({ hardState: hs(1, null, 0),
      entries: groupEntries(g, 1, 5), snapshot: null })));
    await a.wal.close();
    const [seg] = await segmentNames(walDir());
    const path = join(walDir(), seg!);
    const whole = await readFile(path);
    // The next write of both groups, cut in its middle (a crash during the write).
    const c = await openAll([1, 2]);
    await Promise.all([1, 2].map((g) => c.log(g).save({ hardState: null,
      entries: groupEntries(g, 6, 8), snapshot: null })));
    await c.wal.close();
    const longer = await readFile(path);
    const cut = whole.byteLength + Math.floor((longer.byteLength - whole.byteLength) / 2);
    await writeFile(path, longer.subarray(0, cut));
    const b = await openAll([1, 2]);
    const warnings = b.wal.takeWarnings().concat(b.rec(1).warnings);
    expect(warnings.join()).toContain('torn tail');
    // Complete records before the cut are kept (as for one group): group 1's came first in
    // the write, group 2's last entry was cut.
    for (const g of [1, 2]) {
      const got = b.rec(g).entries;
      expect(got.length).toBeGreaterThanOrEqual(5);
      expect(plain(got)).toEqual(plain(groupEntries(g, 1, got.length)));
    }
    expect(b.rec(2).entries.length).toBeLessThan(8);
    // And the WAL goes on from there.
    await b.log(1).save({ hardState: null, entries: groupEntries(1, 6, 6, 2), snapshot: null });
    await b.wal.close();
    const d = await openAll([1, 2]);
    expect(plain(d.rec(1).entries)).toEqual(plain([...groupEntries(1, 1, 5),
      entry(6, 2, text(1, 6))]));
    await d.wal.close();
  });

  it('garbage after the last commit record of a group write is a torn tail too', async () => {
    const a = await openAll([3]);
    await a.log(3).save({ hardState: hs(2, 'x', 0), entries: groupEntries(3, 1, 2),
      snapshot: null });
    await a.wal.close();
    const [seg] = await segmentNames(walDir());
    await appendFile(join(walDir(), seg!), Buffer.from([7, 0, 0, 0, 1, 2]));
    const b = await openAll([3]);
    expect(plain(b.rec(3).entries)).toEqual(plain(groupEntries(3, 1, 2)));
    expect(b.rec(3).hardState).toEqual(hs(2, 'x', 0));
    await b.wal.close();
  });

  it("one group's truncation leaves the other groups' logs alone", async () => {
    const a = await openAll([1, 2]);
    await Promise.all([1, 2].map((g) => a.log(g).save({ hardState: hs(1, null, 0),
      entries: groupEntries(g, 1, 5), snapshot: null })));
    // Group 1 learns of a new leader whose log differs from entry 3 on.
    await a.log(1).save({ hardState: hs(2, null, 2), entries: groupEntries(1, 3, 4, 2),
      snapshot: null });
    await a.log(2).save({ hardState: null, entries: groupEntries(2, 6, 6), snapshot: null });
    expect(a.log(1).stats().lastIndex).toBe(4);
    expect(a.log(2).stats().lastIndex).toBe(6);
    await a.wal.close();
    const b = await openAll([1, 2]);
    expect(plain(b.rec(1).entries)).toEqual(plain([...groupEntries(1, 1, 2),
      ...groupEntries(1, 3, 4, 2)]));
    expect(plain(b.rec(2).entries)).toEqual(plain(groupEntries(2, 1, 6)));
    await b.wal.close();
  });
});

/** Group 1 writes ten records per round; group 2 wrote three entries at the start only. */
async function busyAndLagging(a: Awaited<ReturnType<typeof openAll>>, rounds: number):
Promise<number> {
  await a.log(2).save({ hardState: hs(1, null, 0), entries: groupEntries(2, 1, 3),
    snapshot: null });
  let last = 0;
  for (let r = 0; r < rounds; r++) {
    await a.log(1).save({ hardState: null, snapshot: null,
      entries: groupEntries(1, last + 1, last + 10).map((e) => ({ ...e,
        data: new TextEncoder().encode('p'.repeat(200)) })) });
    last += 10;
    await a.log(1).saveSnapshot(snapshot(last, 1));
  }
  return last;
}

describe('pod WAL: segments and compaction', () => {
  it('keeps the segments a lagging group still needs', async () => {
    const a = await openAll([1, 2], { segmentBytes: 4096, segmentsMax: 1_000 });
    await busyAndLagging(a, 40);
    // Group 1's snapshot covers everything it wrote; group 2's entries pin the first segment.
    const names = await segmentNames(walDir());
    expect(names.length).toBeGreaterThan(5);
    expect(names[0]).toBe('wal-0000000000000001.log');
    expect(a.wal.stats().rewrites).toBe(0);
    await a.wal.close();
    const b = await openAll([1, 2], { segmentBytes: 4096, segmentsMax: 1_000 });
    expect(plain(b.rec(2).entries)).toEqual(plain(groupEntries(2, 1, 3)));
    expect(b.rec(1).snapshot?.meta.index).toBe(400);
    expect(b.rec(1).entries).toEqual([]);
    await b.wal.close();
  });

  it('beyond segmentsMax, a lagging group is rewritten forward and the disk stays bounded',
    async () => {
      const a = await openAll([1, 2], { segmentBytes: 4096, segmentsMax: 3 });
      await busyAndLagging(a, 40);
      const stats = a.wal.stats();
      expect(stats.rewrites).toBeGreaterThan(0);
      expect(stats.segments).toBeLessThanOrEqual(4);
      expect(await segmentNames(walDir())).toHaveLength(stats.segments);
      // More of group 2's log after its rewrite continues it.
      await a.log(2).save({ hardState: hs(1, null, 3), entries: groupEntries(2, 4, 4),
        snapshot: null });
      await a.wal.close();
      const b = await openAll([1, 2], { segmentBytes: 4096, segmentsMax: 3 });
      expect(plain(b.rec(2).entries)).toEqual(plain(groupEntries(2, 1, 4)));
      expect(b.rec(2).hardState).toEqual(hs(1, null, 3));
      expect(b.rec(1).snapshot?.meta.index).toBe(400);
      await b.wal.close();
    });

  it('an installed snapshot replaces a group log; the other groups keep theirs', async () => {
    const a = await openAll([1, 2]);
    await Promise.all([1, 2].map((g) => a.log(g).save({ hardState: hs(1, null, 0),
      entries: groupEntries(g, 1, 5), snapshot: null })));
    await a.log(1).save({ hardState: hs(3, null, 50), entries: groupEntries(1, 51, 52, 3),
      snapshot: snapshot(50, 3) });
    await a.wal.close();
    const b = await openAll([1, 2]);
    expect(b.rec(1).snapshot?.meta.index).toBe(50);
    expect(plain(b.rec(1).entries)).toEqual(plain(groupEntries(1, 51, 52, 3)));
    expect(plain(b.rec(2).entries)).toEqual(plain(groupEntries(2, 1, 5)));
    await b.wal.close();
  });

  it('a dropped group pins no segment and is gone after a restart', async () => {
    const a = await openAll([1, 2], { segmentBytes: 4096, segmentsMax: 1_000 });
    await busyAndLagging(a, 40);
    await a.wal.dropGroup(2);
    await a.log(1).saveSnapshot(snapshot(401, 1));
    expect(a.wal.stats().segments).toBeLessThanOrEqual(2);
    await a.wal.close();
    const b = await PodWal.open({ dir: walDir(), segmentBytes: 4096 }, true);
    expect(b.unattached()).toEqual([1]);
    await b.close();
  });
  it('stays bounded by rewriting when no group ever snapshots', async () => {
    const a = await openAll([1, 2], { segmentBytes: 4096, segmentsMax: 3 });
    await a.log(2).save({ hardState: hs(1, null, 0), entries: groupEntries(2, 1, 3),
      snapshot: null });
    // Group 1 truncates its own log again and again (a follower overwritten by new leaders):
    // its live log stays short, and nothing is ever snapshotted.
    for (let r = 0; r < 60; r++) {
      await a.log(1).save({ hardState: hs(r + 1, null, 0), snapshot: null,
        entries: groupEntries(1, 1, 5, r + 1).map((e) => ({ ...e,
          data: new TextEncoder().encode('q'.repeat(200)) })) });
    }
    expect(a.wal.stats().rewrites).toBeGreaterThan(0);
    expect(a.wal.stats().segments).toBeLessThanOrEqual(5);
    await a.wal.close();
    const b = await openAll([1, 2], { segmentBytes: 4096, segmentsMax: 3 });
    expect(plain(b.rec(2).entries)).toEqual(plain(groupEntries(2, 1, 3)));
    expect(b.rec(1).entries.map((e) => e.term)).toEqual([60, 60, 60, 60, 60]);
    await b.wal.close();
  });
});

describe('pod WAL: a long lagging log', () => {
  it('is asked for a snapshot instead of being rewritten, and its snapshot frees the disk',
    async () => {
      const a = await openAll([1, 2, 3], { segmentBytes: 4096, segmentsMax: 3 });
      let asked = 0;
      a.log(3).onSnapshotWanted(() => { asked++; });
      const long = REWRITE_ENTRIES_MAX + 1;
      for (let from = 1; from <= long; from += 1000) {
        await a.log(3).save({ hardState: null, snapshot: null,
          entries: entries(from, Math.min(long, from + 999), 1, 'x') });
      }
      await busyAndLagging(a, 5);
      expect(asked).toBeGreaterThan(0);
      // Group 2's three entries were rewritten; group 3's long log was not.
      expect(a.wal.stats().rewrittenEntries).toBeLessThan(REWRITE_ENTRIES_MAX);
      await a.log(3).saveSnapshot(snapshot(long, 1));
      expect(a.wal.stats().segments).toBeLessThanOrEqual(4);
      await a.wal.close();
    });
});

describe('pod WAL: upgrade from one WAL per group', () => {
  it("moves a group's own WAL into the pod WAL at start-up, then removes it", async () => {
    const old = await RaftStorage.open({ dir: groupDir(4) });
    await old.storage.save({ hardState: hs(2, 'b', 10), entries: entries(1, 10, 1),
      snapshot: null });
    await old.storage.saveSnapshot(snapshot(6, 1));
    await old.storage.save({ hardState: null, entries: entries(11, 12, 2), snapshot: null });
    await old.storage.close();
    const legacy = await Promise.all((await segmentNames(groupDir(4))).map(async (n) =>
      [n, await readFile(join(groupDir(4), n))] as const));
    const a = await openAll([4]);
    expect(a.rec(4).snapshot?.meta.index).toBe(6);
    expect(plain(a.rec(4).entries)).toEqual(plain([...entries(7, 10, 1), ...entries(11, 12, 2)]));
    expect(a.rec(4).warnings.join()).toContain('migrated');
    expect((await readdir(groupDir(4))).filter((n) => n.startsWith('wal-'))).toEqual([]);
    await a.log(4).save({ hardState: null, entries: [entry(13, 2)], snapshot: null });
    await a.wal.close();
    const b = await openAll([4]);
    expect(plain(b.rec(4).entries)).toEqual(plain([...entries(7, 10, 1), ...entries(11, 13, 2)]));
    expect(b.rec(4).hardState).toEqual(hs(2, 'b', 10));
    await b.wal.close();
    // A crash after the copy was durable and before the old segments were gone: they are
    // removed at the next start, and the pod WAL's log is the one kept.
    for (const [name, data] of legacy) await writeFile(join(groupDir(4), name), data);
    const c = await openAll([4]);
    expect(c.rec(4).warnings.join()).toContain('already holds their copy');
    expect(plain(c.rec(4).entries)).toEqual(plain([...entries(7, 10, 1), ...entries(11, 13, 2)]));
    expect(await segmentNames(groupDir(4))).toEqual([]);
    await c.wal.close();
  });
});
