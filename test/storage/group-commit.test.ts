// Group commit: the saves of one turn share one write and fsync, those queued behind a write
// in flight share the next one, and no save resolves before the fsync that covers its data.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RaftStorage } from '../../src/storage/raft-storage.js';
import { entries, entry, freshDir, hs, plain, removeDir, snapshot } from './helpers.js';

let dir: string;
beforeEach(async () => { dir = await freshDir(); });
afterEach(async () => {
  vi.restoreAllMocks();
  await removeDir(dir);
});

const N = 64;

/** Records, in order, every WAL write, every completed fdatasync and every resolved save. */
async function traceFileHandles(events: string[]): Promise<void> {
  const probe = await open(`${dir}/probe`, 'w');
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  type Method = (this: FileHandle, ...args: unknown[]) => Promise<unknown>;
  const original = (name: string): Method =>
    Object.getOwnPropertyDescriptor(proto, name)?.value as Method;
  const write = original('write');
  const datasync = original('datasync');
  vi.spyOn(proto, 'write').mockImplementation(async function (this: FileHandle, ...args) {
    const r = await write.apply(this, args);
    events.push('write');
    return r as never;
  });
  vi.spyOn(proto, 'datasync').mockImplementation(async function (this: FileHandle) {
    await datasync.apply(this, []);
    events.push('datasync');
  });
}

describe('group commit', () => {
  it('one fsync per save when saves come one at a time', async () => {
    const { storage } = await RaftStorage.open({ dir });
    for (let i = 1; i <= 5; i++) {
      const before = storage.stats().fsyncs;
      await storage.save({ hardState: hs(1, null, i - 1), entries: [entry(i, 1)],
        snapshot: null });
      expect(storage.stats().fsyncs - before).toBe(1);
    }
    await storage.close();
  });

  it(`${N} saves of one callback share one write and one fsync`, async () => {
    const { storage } = await RaftStorage.open({ dir });
    const before = storage.stats();
    const saves = [];
    for (let i = 1; i <= N; i++) {
      saves.push(storage.save({ hardState: hs(1, 'a', i - 1), entries: [entry(i, 1)],
        snapshot: null }));
    }
    await Promise.all(saves);
    const after = storage.stats();
    expect(after.saves - before.saves).toBe(N);
    // The write starts a microtask later: every save of this callback is in it.
    expect(after.groupCommits - before.groupCommits).toBe(1);
    expect(after.fsyncs - before.fsyncs).toBe(1);
    await storage.close();
    const { storage: again, recovered } = await RaftStorage.open({ dir });
    expect(plain(recovered.entries)).toEqual(plain(entries(1, N, 1)));
    expect(recovered.hardState).toEqual(hs(1, 'a', N - 1));
    await again.close();
  });

  it('saves queued while a write is in flight share the next one', async () => {
    const { storage } = await RaftStorage.open({ dir });
    const before = storage.stats();
    const first = storage.save({ hardState: null, entries: [entry(1, 1)], snapshot: null });
    // Let the first write start.
    await new Promise((r) => setImmediate(r));
    const rest = [];
    for (let i = 2; i <= N; i++) {
      rest.push(storage.save({ hardState: null, entries: [entry(i, 1)], snapshot: null }));
    }
    await Promise.all([first, ...rest]);
    expect(storage.stats().groupCommits - before.groupCommits).toBe(2);
    await storage.close();
  });

  it('a save carrying a snapshot waits for the saves before it, and those behind it wait',
    async () => {
      const { storage } = await RaftStorage.open({ dir });
      await Promise.all([
        storage.save({ hardState: null, entries: entries(1, 3, 1), snapshot: null }),
        storage.save({ hardState: null, entries: entries(4, 5, 1), snapshot: null }),
        storage.save({ hardState: hs(2, null, 10), entries: [entry(11, 2)],
          snapshot: snapshot(10, 2) }),
        storage.save({ hardState: null, entries: [entry(12, 2)], snapshot: null }),
      ]);
      // [1..5] together; the snapshot file waits for them, then [reset, 11]; [12] waits for
      // the snapshot's save to be durable (a group's records keep their order).
      expect(storage.stats().groupCommits).toBe(3);
      await storage.close();
      const { storage: again, recovered } = await RaftStorage.open({ dir });
      expect(recovered.snapshot?.meta.index).toBe(10);
      expect(plain(recovered.entries)).toEqual(plain([entry(11, 2), entry(12, 2)]));
      await again.close();
    });

  it('no save resolves before the fsync that follows the write of its data', async () => {
    const events: string[] = [];
    await traceFileHandles(events);
    const { storage } = await RaftStorage.open({ dir });
    events.length = 0;
    const fsyncsAtCall: number[] = [];
    const fsyncsAtResolve: number[] = [];
    const saves = [];
    for (let i = 1; i <= N; i++) {
      fsyncsAtCall.push(storage.stats().fsyncs);
      saves.push(storage.save({ hardState: null, entries: [entry(i, 1)], snapshot: null })
        .then(() => {
          events.push(`resolved ${i}`);
          fsyncsAtResolve[i - 1] = storage.stats().fsyncs;
        }));
    }
    await Promise.all(saves);
    const resolvedRest = Array.from({ length: N - 1 }, (_, k) => `resolved ${k + 2}`);
    expect(events).toEqual(['write', 'datasync', 'resolved 1', ...resolvedRest]);
    // Counting: every save needs the fsync after its call.
    for (let i = 0; i < N; i++) {
      expect((fsyncsAtResolve[i] ?? 0) - (fsyncsAtCall[i] ?? 0)).toBeGreaterThanOrEqual(1);
    }
    await storage.close();
  });

  it('after a failed write every later save is refused (no retry after a failed fsync)',
    async () => {
      const { storage } = await RaftStorage.open({ dir });
      await storage.save({ hardState: null, entries: [entry(1, 1)], snapshot: null });
      const probe = await open(`${dir}/probe`, 'w');
      const proto = Object.getPrototypeOf(probe) as FileHandle;
      await probe.close();
      vi.spyOn(proto, 'datasync').mockRejectedValueOnce(new Error('EIO: simulated'));
      await expect(storage.save({ hardState: null, entries: [entry(2, 1)], snapshot: null }))
        .rejects.toThrow('EIO: simulated');
      await expect(storage.save({ hardState: null, entries: [entry(2, 1)], snapshot: null }))
        .rejects.toMatchObject({ code: 'INTERNAL' });
      vi.restoreAllMocks();
      await storage.close().catch(() => undefined);
    });
});
