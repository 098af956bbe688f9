// The disk's raw fsync rate: append 100 bytes and fdatasync, in a loop, in a temp dir. One
// commit that waits for its own fsync can go no faster, so this is the "limit for unbatched
// commits" the Raft benchmark compares with. For contrast it also runs dsync's RaftStorage
// with one save in flight (one fsync each) and with 64 (group commit shares the fsyncs).
// Run: npx tsx benchmarks/fsync-rate.ts [--json] [--duration-ms N]   (TMPDIR=/path picks the disk)
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RaftStorage } from '../src/storage/raft-storage.js';
import { runLoad } from './lib/load.js';
import { makeRow, parseBenchArgs, printRows } from './lib/stats.js';
import type { Row } from './lib/stats.js';

/** Measured ms per row. */
export const DEFAULT_FSYNC_DURATION_MS = 3000;
export const FSYNC_WARMUP_MS = 300;
export const FSYNC_RECORD_BYTES = 100;
/** Saves in flight for the group-commit row. */
export const GROUP_COMMIT_INFLIGHT = 64;
const DISK = 'disk';

/** append FSYNC_RECORD_BYTES + fdatasync, one at a time. */
async function rawFsyncRow(dir: string, durationMs: number): Promise<Row> {
  const fh = await open(join(dir, 'fsync-probe.log'), 'a');
  const record = Buffer.alloc(FSYNC_RECORD_BYTES, 'r');
  try {
    const result = await runLoad({
      label: 'append + fdatasync', concurrency: 1, durationMs, warmupMs: FSYNC_WARMUP_MS,
      progressMs: 0,
      op: async () => {
        await fh.write(record);
        await fh.datasync();
      },
    });
    return makeRow(DISK, '1 in flight', result,
      { fsyncsPerSec: Math.round(result.opsPerSec), recordBytes: FSYNC_RECORD_BYTES });
  } finally {
    await fh.close();
  }
}

/** RaftStorage.save of one 100-byte entry, `inflight` callers at once. */
async function storageRow(dir: string, durationMs: number, inflight: number): Promise<Row> {
  const { storage } = await RaftStorage.open({ dir });
  const data = new Uint8Array(FSYNC_RECORD_BYTES);
  let nextIndex = 1;
  try {
    const before = storage.stats();
    const result = await runLoad({
      label: `RaftStorage.save, ${inflight} in flight`, concurrency: inflight, durationMs,
      warmupMs: FSYNC_WARMUP_MS, progressMs: 0,
      // Index assigned at call time: saves are queued, hence written, in call order.
      op: () => storage.save({ hardState: null, snapshot: null,
        entries: [{ index: nextIndex++, term: 1, type: 'normal', data }] }),
    });
    const after = storage.stats();
    const saves = after.saves - before.saves;
    const fsyncs = after.fsyncs - before.fsyncs;
    return makeRow('dsync RaftStorage', `${inflight} in flight`, result, {
      savesPerFsync: fsyncs === 0 ? 0 : Number((saves / fsyncs).toFixed(2)),
    });
  } finally {
    await storage.close();
  }
}

export async function benchFsyncRate(durationMs = DEFAULT_FSYNC_DURATION_MS): Promise<Row[]> {
  const dir = await mkdtemp(join(tmpdir(), 'dsync-fsync-'));
  try {
    return [
      await rawFsyncRow(dir, durationMs),
      await storageRow(join(dir, 'seq'), durationMs, 1),
      await storageRow(join(dir, 'group'), durationMs, GROUP_COMMIT_INFLIGHT),
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const rows = await benchFsyncRate(args.durationMs ?? DEFAULT_FSYNC_DURATION_MS);
  printRows(`fsync rate of ${tmpdir()}: disk = append ${FSYNC_RECORD_BYTES} B + fdatasync ` +
    '(limit for unbatched commits); RaftStorage = save of one entry', rows, DISK, args);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
