// The pure bookkeeping of one group's save: which WAL records, in which order, and the log
// state after them; and the segment pins that decide which segments may be deleted.
import { describe, expect, it } from 'vitest';
import { EMPTY_LOG, planSave } from '../../src/storage/log-plan.js';
import { pinRecord, type SegmentInfo } from '../../src/storage/recovery.js';
import { entries, entry, hs, snapshot } from './helpers.js';

const kinds = (recs: ReadonlyArray<{ kind: string }>): string[] => recs.map((r) => r.kind);

describe('planSave', () => {
  it('entries that continue the log need no truncate; the hard state comes last', () => {
    const a = planSave(EMPTY_LOG, { hardState: hs(1, 'a', 0), entries: entries(1, 2, 1),
      snapshot: null });
    // The first write of a log pins its start with a truncate (a replay expects anything).
    expect(kinds(a.records)).toEqual(['truncate', 'entry', 'entry', 'hardState']);
    expect(a.next).toMatchObject({ lastIndex: 2, walNextIndex: 3, hardState: hs(1, 'a', 0) });
    const b = planSave(a.next, { hardState: null, entries: [entry(3, 1)], snapshot: null });
    expect(kinds(b.records)).toEqual(['entry']);
    expect(b.next.hardState).toEqual(hs(1, 'a', 0));
  });

  it('an overwrite starts with a truncate at its first index', () => {
    const a = planSave(EMPTY_LOG, { hardState: null, entries: entries(1, 5, 1), snapshot: null });
    const b = planSave(a.next, { hardState: hs(2, null, 0), entries: entries(3, 3, 2),
      snapshot: null });
    expect(b.records[0]).toEqual({ kind: 'truncate', index: 3 });
    expect(b.next.lastIndex).toBe(3);
  });

  it('an installed snapshot is a reset record, and the entries follow it', () => {
    const a = planSave(EMPTY_LOG, { hardState: null, entries: entries(1, 5, 1), snapshot: null });
    const s = snapshot(40, 3);
    const b = planSave({ ...a.next, snapIndex: 40 }, { hardState: hs(3, null, 40),
      entries: [entry(41, 3)], snapshot: s });
    expect(kinds(b.records)).toEqual(['reset', 'entry', 'hardState']);
    expect(b.records[0]).toEqual({ kind: 'reset', index: 40, term: 3 });
    expect(b.next).toMatchObject({ lastIndex: 41, walNextIndex: 42, snapIndex: 40 });
  });

  it('refuses what Raft never does: a gap, an overwrite of the snapshot, a vote changed', () => {
    const a = planSave(EMPTY_LOG, { hardState: hs(2, 'a', 0), entries: entries(1, 2, 1),
      snapshot: null });
    expect(() => planSave(a.next, { hardState: null, entries: [entry(4, 1)], snapshot: null }))
      .toThrow(/gap/);
    expect(() => planSave({ ...a.next, snapIndex: 2 }, { hardState: null,
      entries: [entry(2, 1)], snapshot: null })).toThrow(/overwrites the snapshot/);
    expect(() => planSave(a.next, { hardState: hs(2, 'b', 0), entries: [], snapshot: null }))
      .toThrow(/vote changes/);
    expect(() => planSave(a.next, { hardState: hs(1, 'a', 0), entries: [], snapshot: null }))
      .toThrow(/term goes back/);
  });
});

describe('pinRecord', () => {
  const seg = (n: number): SegmentInfo => ({ name: `s${n}`, nameIndex: n, bytes: 0,
    pins: new Map() });

  it('an entry pins its segment for its group; a truncate lowers the pins of every segment',
    () => {
      const s1 = seg(1);
      const s2 = seg(2);
      const all = [s1, s2];
      for (let i = 1; i <= 5; i++) pinRecord(all, s1, 7, { kind: 'entry', entry: entry(i, 1) });
      pinRecord(all, s1, 8, { kind: 'entry', entry: entry(1, 1) });
      for (let i = 6; i <= 9; i++) pinRecord(all, s2, 7, { kind: 'entry', entry: entry(i, 1) });
      expect([...s1.pins]).toEqual([[7, 5], [8, 1]]);
      // Group 7 rewrites from 3: its entries 3.. are gone wherever they were.
      pinRecord(all, s2, 7, { kind: 'truncate', index: 3 });
      expect(s1.pins.get(7)).toBe(2);
      expect(s2.pins.get(7)).toBe(2);
      expect(s1.pins.get(8)).toBe(1);
      pinRecord(all, s2, 7, { kind: 'truncate', index: 1 });
      expect(s1.pins.has(7)).toBe(false);
    });

  it('a reset or a drop unpins the group everywhere; a hard state pins nothing', () => {
    const s1 = seg(1);
    pinRecord([s1], s1, 3, { kind: 'entry', entry: entry(1, 1) });
    pinRecord([s1], s1, 4, { kind: 'entry', entry: entry(1, 1) });
    pinRecord([s1], s1, 3, { kind: 'hardState', hardState: hs(1, null, 0) });
    pinRecord([s1], s1, 3, { kind: 'reset', index: 10, term: 1 });
    pinRecord([s1], s1, 4, { kind: 'drop' });
    expect(s1.pins.size).toBe(0);
  });
});
