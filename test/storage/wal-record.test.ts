// The record format and the log replay, without files: property tests compare the decoder
// with the encoder's input, and the replay with a naive array model of the log.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { LogReplay } from '../../src/storage/log-replay.js';
import {
  GROUP_ID_MAX, checkRecordAt, encodeRecord, encodeTaggedRecord, scanSegment,
} from '../../src/storage/wal-record.js';
import type { WalRecord } from '../../src/storage/wal-record.js';
import { decodeSnapshot, encodeSnapshot } from '../../src/storage/snapshot-file.js';
import { entries, plain, snapshot } from './helpers.js';

const MAX = 1 << 20;
const natural = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const arbRecord: fc.Arbitrary<WalRecord> = fc.oneof(
  fc.record({ term: natural, index: natural, type: fc.constantFrom(...(['normal', 'config',
    'noop'] as const)), data: fc.uint8Array({ maxLength: 64 }) })
    .map((entry) => ({ kind: 'entry' as const, entry })),
  fc.record({ term: natural, commit: natural, vote: fc.option(fc.string({ maxLength: 20 })) })
    .map((hardState) => ({ kind: 'hardState' as const, hardState })),
  natural.map((index) => ({ kind: 'truncate' as const, index })),
  fc.record({ index: natural, term: natural }).map((r) => ({ kind: 'reset' as const, ...r })),
);

describe('WAL records', () => {
  it('decode(encode(r)) === r for any record, back to back in a segment', () => {
    fc.assert(fc.property(fc.array(arbRecord, { maxLength: 20 }), (recs) => {
      const buf = Buffer.concat(recs.map(encodeRecord));
      const scan = scanSegment(buf, MAX);
      expect(scan.problem).toBeNull();
      expect(scan.validBytes).toBe(buf.byteLength);
      expect(scan.records.map((r) => r.record)).toEqual(recs);
    }), { numRuns: 200 });
  });

  it('any single bit flip in a record is detected', () => {
    fc.assert(fc.property(arbRecord, fc.nat(), (rec, pick) => {
      const buf = encodeRecord(rec);
      const bit = pick % (buf.byteLength * 8);
      buf[bit >> 3] = (buf[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      expect(checkRecordAt(buf, 0, MAX).ok).toBe(false);
    }), { numRuns: 300 });
  });

  it('a record longer than recordBytesMax is refused on read', () => {
    const buf = encodeRecord({ kind: 'truncate', index: 7 });
    expect(checkRecordAt(buf, 0, 8)).toMatchObject({ ok: false });
    expect(checkRecordAt(buf, 0, 9)).toMatchObject({ ok: true });
  });

  it('snapshot files round-trip and detect damage', () => {
    const s = snapshot(42, 7);
    const buf = encodeSnapshot(s);
    const back = decodeSnapshot(buf);
    expect(back).toEqual({ ok: true, snapshot: s });
    buf[buf.byteLength - 1] = (buf[buf.byteLength - 1] ?? 0) ^ 1;
    expect(decodeSnapshot(buf)).toEqual({ ok: false, reason: 'CRC32C mismatch' });
  });
});

/** The naive model: a plain array where an overwrite is splice-and-push. */
function naiveWrite(log: Entry[], batch: readonly Entry[]): Entry[] {
  const first = batch[0];
  if (first === undefined) return log;
  return [...log.filter((e) => e.index < first.index), ...batch];
}

describe('log replay', () => {
  it('matches the naive model for any sequence of appends and overwrites', () => {
    // Each step: overwrite from a point in 1..last+1 with 1..5 entries of a higher term.
    const step = fc.record({ back: fc.nat({ max: 8 }), count: fc.integer({ min: 1, max: 5 }) });
    fc.assert(fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
      let model: Entry[] = [];
      const replay = new LogReplay();
      steps.forEach(({ back, count }, term) => {
        const last = model[model.length - 1]?.index ?? 0;
        const from = Math.max(1, last + 1 - back);
        const batch = entries(from, from + count - 1, term + 1);
        if (from !== last + 1) expect(replay.apply({ kind: 'truncate', index: from })).toBeNull();
        for (const e of batch) expect(replay.apply({ kind: 'entry', entry: e })).toBeNull();
        model = naiveWrite(model, batch);
      });
      const done = replay.finish(null);
      expect(done.problem).toBeNull();
      expect(plain(done.entries)).toEqual(plain(model));
    }), { numRuns: 200 });
  });

  it('reports a gap between entries', () => {
    const replay = new LogReplay();
    expect(replay.apply({ kind: 'entry', entry: entries(1, 1, 1)[0] ?? fail() })).toBeNull();
    expect(replay.apply({ kind: 'entry', entry: entries(3, 3, 1)[0] ?? fail() }))
      .toContain('entry 3 where entry 2 was expected');
  });

  it('keeps only the snapshot when the log diverged from it (Raft §7)', () => {
    const replay = new LogReplay();
    for (const e of entries(1, 10, 1)) replay.apply({ kind: 'entry', entry: e });
    const done = replay.finish(snapshot(5, 2).meta);
    expect(done).toMatchObject({ entries: [], diverged: true, problem: null });
    const same = new LogReplay();
    for (const e of entries(1, 10, 1)) same.apply({ kind: 'entry', entry: e });
    expect(plain(same.finish(snapshot(5, 1).meta).entries)).toEqual(plain(entries(6, 10, 1)));
  });

  it('a log that starts after the snapshot leaves a gap', () => {
    const replay = new LogReplay();
    replay.apply({ kind: 'truncate', index: 20 });
    for (const e of entries(20, 22, 1)) replay.apply({ kind: 'entry', entry: e });
    expect(replay.finish(snapshot(10, 1).meta).problem).toContain('entries 11..19 are missing');
    expect(replay.finish(snapshot(19, 1).meta).problem).toBeNull();
  });

  it('a reset to a snapshot newer than the readable one is a problem', () => {
    const replay = new LogReplay();
    replay.apply({ kind: 'reset', index: 30, term: 2 });
    expect(replay.finish(snapshot(20, 1).meta).problem).toContain('replaced by the snapshot');
  });
});

function fail(): never {
  throw new Error('unreachable');
}

describe('tagged records (the pod WAL)', () => {
  it('decode(encodeTagged(r, g)) === (r, g) for any record and group', () => {
    fc.assert(fc.property(arbRecord.filter((r) => r.kind !== 'commit'),
      fc.integer({ min: 0, max: GROUP_ID_MAX }), (rec, group) => {
        const buf = encodeTaggedRecord(rec, group);
        const check = checkRecordAt(buf, 0, MAX);
        expect(check.ok).toBe(true);
        if (!check.ok) return;
        expect(check.group).toBe(group);
        expect(JSON.stringify(check.record)).toBe(JSON.stringify(rec));
      }));
  });

  it('a segment mixes groups; a commit record is never tagged, a drop always is', () => {
    const buf = Buffer.concat([encodeTaggedRecord({ kind: 'drop' }, 3),
      encodeTaggedRecord({ kind: 'truncate', index: 5 }, 9),
      encodeRecord({ kind: 'commit', unitBytes: 0 })]);
    const scan = scanSegment(buf, MAX);
    expect(scan.problem).toBeNull();
    expect(scan.records.map((r) => [r.record.kind, r.group])).toEqual([['drop', 3],
      ['truncate', 9], ['commit', null]]);
    expect(() => encodeTaggedRecord({ kind: 'commit', unitBytes: 0 }, 1)).toThrow(/never tagged/);
    expect(() => encodeRecord({ kind: 'drop' })).toThrow(/always tagged/);
  });
});
