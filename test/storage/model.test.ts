// Model-based test: random sequences of appends, overwrites, hard states, app snapshots with
// compaction and installed snapshots, on small segments so that rolling and compaction are
// exercised, then a restart, and finally a crash that tears the last write at a random byte.
// The recovered state is compared with a naive in-memory model of the Raft log.
import { readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Entry, HardState } from '../../src/raft/types.js';
import { RaftStorage } from '../../src/storage/raft-storage.js';
import type { Recovered } from '../../src/storage/raft-storage.js';
import { freshDir, plain, removeDir, segmentNames, snapshot } from './helpers.js';

let root: string;
beforeEach(async () => { root = await freshDir(); });
afterEach(async () => { await removeDir(root); });

type Op =
  | { kind: 'append'; back: number; count: number; bytes: number }
  | { kind: 'hardState'; commit: number }
  | { kind: 'appSnapshot'; back: number }
  | { kind: 'install'; ahead: number; count: number }
  | { kind: 'burst'; count: number };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const),
    back: fc.nat({ max: 4 }), count: fc.integer({ min: 1, max: 4 }),
    bytes: fc.nat({ max: 400 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('hardState' as const),
    commit: fc.nat({ max: 50 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('appSnapshot' as const),
    back: fc.nat({ max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('install' as const),
    ahead: fc.integer({ min: 1, max: 5 }), count: fc.nat({ max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('burst' as const),
    count: fc.integer({ min: 2, max: 6 }) }) },
);

/** The naive model: the log above the snapshot as a plain array. */
interface Model {
  snap: { index: number; term: number } | null;
  log: Entry[];
  hardState: HardState | null;
  term: number;
}

const lastIndex = (m: Model): number => m.log[m.log.length - 1]?.index ?? m.snap?.index ?? 0;

function makeEntries(from: number, count: number, term: number, bytes: number): Entry[] {
  return Array.from({ length: count }, (_, i) => ({ index: from + i, term, type: 'normal' as const,
    data: new Uint8Array(bytes).fill((from + i) % 251) }));
}

/** Applies `op` to the model and the storage alike. */
async function step(m: Model, s: RaftStorage, op: Op): Promise<void> {
  const snapIndex = m.snap?.index ?? 0;
  switch (op.kind) {
    case 'append': {
      const from = Math.max(snapIndex + 1, lastIndex(m) + 1 - op.back);
      if (from <= lastIndex(m)) m.term++; // only a new leader overwrites
      const batch = makeEntries(from, op.count, m.term, op.bytes);
      m.log = [...m.log.filter((e) => e.index < from), ...batch];
      return s.save({ hardState: null, entries: batch, snapshot: null });
    }
    case 'hardState':
      // A vote, once cast, stays for the rest of its term (Figure 2).
      m.hardState = { term: m.term, commit: op.commit, vote: m.hardState?.term === m.term &&
        m.hardState.vote !== null ? m.hardState.vote : op.commit % 2 === 0 ? 'n1' : null };
      return s.save({ hardState: m.hardState, entries: [], snapshot: null });
    case 'appSnapshot': {
      const target = m.log[m.log.length - 1 - op.back];
      if (target === undefined) return;
      m.snap = { index: target.index, term: target.term };
      m.log = m.log.filter((e) => e.index > target.index);
      await s.saveSnapshot(snapshot(target.index, target.term));
      return s.compact(target.index);
    }
    case 'install': {
      m.term++;
      const index = lastIndex(m) + op.ahead;
      m.snap = { index, term: m.term };
      m.log = makeEntries(index + 1, op.count, m.term, 10);
      m.hardState = { term: m.term, vote: null, commit: index };
      return s.save({ hardState: m.hardState, entries: m.log, snapshot: snapshot(index, m.term) });
    }
    case 'burst': {
      // Saves issued back to back without waiting: group commit merges them.
      const saves: Promise<void>[] = [];
      for (let i = 0; i < op.count; i++) {
        const batch = makeEntries(lastIndex(m) + 1, 1, m.term, 50);
        m.log = [...m.log, ...batch];
        saves.push(s.save({ hardState: null, entries: batch, snapshot: null }));
      }
      await Promise.all(saves);
    }
  }
}

function expectMatches(r: Recovered, m: Model): void {
  expect(r.snapshot === null ? null : { index: r.snapshot.meta.index, term: r.snapshot.meta.term })
    .toEqual(m.snap);
  expect(plain(r.entries)).toEqual(plain(m.log));
  expect(r.hardState).toEqual(m.hardState);
}

let run = 0;
describe('RaftStorage against a model', () => {
  it('recovers exactly what was saved, and a torn last write loses only that write', async () => {
    await fc.assert(fc.asyncProperty(fc.array(arbOp, { minLength: 1, maxLength: 30 }),
      fc.double({ min: 0, max: 1, noNaN: true }), async (ops, cutAt) => {
        const dir = join(root, `run-${run++}`);
        const opts = { dir, segmentBytes: 4096 };
        const m: Model = { snap: null, log: [], hardState: null, term: 1 };
        let { storage } = await RaftStorage.open(opts);
        for (const op of ops) await step(m, storage, op);
        await storage.close();
        const again = await RaftStorage.open(opts);
        expect(again.recovered.warnings).toEqual([]);
        expectMatches(again.recovered, m);
        storage = again.storage;
        // A crash in the middle of one more append: cut its write at a random byte.
        const names = await segmentNames(dir);
        const before = structuredClone(m);
        const lastName = names[names.length - 1] ?? '';
        const sizeBefore = (await readFile(join(dir, lastName))).byteLength;
        await step(m, storage, { kind: 'append', back: 0, count: 2, bytes: 30 });
        await storage.close();
        if ((await segmentNames(dir)).length !== names.length) return; // it rolled: no cut
        const sizeAfter = (await readFile(join(dir, lastName))).byteLength;
        const cut = sizeBefore + Math.floor(cutAt * (sizeAfter - sizeBefore));
        await truncate(join(dir, lastName), cut);
        const crashed = await RaftStorage.open(opts);
        // Each entry is its own record: a cut keeps the ones whose record is whole (the
        // commit record closing the write may be cut after both).
        const kept = crashed.recovered.entries.length - before.log.length;
        expect([0, 1, 2]).toContain(kept);
        if (cut === sizeAfter) expect(kept).toBe(2);
        expectMatches(crashed.recovered, { ...before,
          log: [...before.log, ...m.log.slice(before.log.length, before.log.length + kept)] });
        await crashed.storage.close();
      }), { numRuns: 25 });
  });
});
