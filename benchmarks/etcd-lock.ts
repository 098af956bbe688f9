// Reference for "Locks": the etcd3 client's lock against a 3-member etcd cluster. One cycle
// is acquire + release; we report cycles/s and the acquire latency. etcd3's Lock is a
// try-lock (grant a lease, create the key if absent, revoke the lease on release); it does
// not queue waiters, so a worker that finds the key taken retries at once, and the acquire
// latency it reports includes every failed attempt. Run: npx tsx benchmarks/etcd-lock.ts
import { pathToFileURL } from 'node:url';
import { EtcdLockFailedError } from 'etcd3';
import { assert } from '../src/assert.js';
import { startEtcdCluster } from './lib/etcd-cluster.js';
import type { EtcdCluster } from './lib/etcd-cluster.js';
import { runLoad } from './lib/load.js';
import { makeRow, parseBenchArgs, printRows } from './lib/stats.js';
import type { Row } from './lib/stats.js';

export const DEFAULT_LOCK_DURATION_MS = 5000;
/** Worker counts for the uncontended rows (each worker has its own key). */
export const DEFAULT_LOCK_WORKERS = [1, 16, 64] as const;
/** Workers that all fight over one key in the contended row. */
export const DEFAULT_CONTENDED_WORKERS = 16;
/** Failed attempts one acquire may make before the cycle counts as an error. */
export const ACQUIRE_ATTEMPTS_MAX = 10_000;
/** Lease TTL of each lock in seconds (etcd3's default): only matters if a worker dies. */
const LOCK_TTL_S = 30;

export interface EtcdLockOptions {
  /** A running cluster to use (left running); by default one is started and stopped. */
  cluster?: EtcdCluster;
  /** Measured ms per setting (default DEFAULT_LOCK_DURATION_MS). */
  durationMs?: number;
  /** Uncontended worker counts, one row each (default 1, 16, 64). */
  workers?: readonly number[];
  /** Workers on one key for the contended row (default 16; 0 skips the row). */
  contendedWorkers?: number;
}

/** Settings as they appear in the table, shared with the dsync side of the benchmark. */
export function lockSetting(workers: number, contended: boolean): string {
  const noun = workers === 1 ? 'worker' : 'workers';
  return contended ? `${workers} ${noun}, one key` : `${workers} ${noun}, distinct keys`;
}

/**
 * Rows: one per uncontended worker count, then the contended row. p50/p99 are acquire.
 * etcd3's leases leave a keep-alive timer (about the lease TTL) behind after release, so a
 * script that calls this should end with process.exit() rather than wait for the loop to drain.
 */
export async function benchEtcdLock(opts: EtcdLockOptions = {}): Promise<Row[]> {
  const contended = opts.contendedWorkers ?? DEFAULT_CONTENDED_WORKERS;
  assert(Number.isSafeInteger(contended) && contended >= 0, 'contendedWorkers is an integer ≥ 0');
  const cluster = opts.cluster ?? await startEtcdCluster();
  try {
    const rows: Row[] = [];
    for (const workers of opts.workers ?? DEFAULT_LOCK_WORKERS) {
      rows.push(await runLockSetting(cluster, workers, false, opts));
    }
    if (contended > 0) rows.push(await runLockSetting(cluster, contended, true, opts));
    return rows;
  } finally {
    if (opts.cluster === undefined) await cluster.stop();
  }
}

async function runLockSetting(
  cluster: EtcdCluster, workers: number, contended: boolean, opts: EtcdLockOptions,
): Promise<Row> {
  const client = cluster.client();
  const prefix = `bench/lock/${contended ? 'one' : 'distinct'}-${workers}`;
  let attempts = 0;
  let cycles = 0;
  const result = await runLoad({
    label: `etcd lock, ${lockSetting(workers, contended)}`,
    concurrency: workers,
    durationMs: opts.durationMs ?? DEFAULT_LOCK_DURATION_MS,
    op: async (worker) => {
      const key = contended ? prefix : `${prefix}/${worker}`;
      const startNs = process.hrtime.bigint();
      for (let attempt = 1; ; attempt++) {
        attempts++;
        const lock = client.lock(key).ttl(LOCK_TTL_S);
        try {
          await lock.acquire();
        } catch (err) {
          if (!(err instanceof EtcdLockFailedError) || attempt >= ACQUIRE_ATTEMPTS_MAX) throw err;
          continue;
        }
        const acquiredNs = process.hrtime.bigint() - startNs;
        await lock.release();
        cycles++;
        return Number(acquiredNs);
      }
    },
  });
  return makeRow(`etcd ${cluster.version}`, lockSetting(workers, contended), result, {
    attemptsPerAcquire: cycles === 0 ? 0 : Number((attempts / cycles).toFixed(2)),
    latency: 'acquire',
  });
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const rows = await benchEtcdLock(
    args.durationMs === undefined ? {} : { durationMs: args.durationMs });
  printRows('Locks: acquire + release cycles, 3 members (p50/p99 of acquire)', rows,
    rows[0]?.system ?? '', args);
  if (!args.json) {
    for (const row of rows) {
      process.stdout.write(`- ${row.setting}: ${row.extra?.attemptsPerAcquire} attempts per acquire\n`);
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
  // See benchEtcdLock: etcd3's lease timers would keep the process alive for ~30 s more.
  process.exit(0);
}
