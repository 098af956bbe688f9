// Locks: dsync's lock service (3 `dsync serve` processes, fsync on) next to etcd's lock (3
// members, fsync on), in one run. One cycle is acquire + release on the HTTP API; we report
// cycles/s and the acquire latency alone, with 1, 16 and 64 workers on distinct keys, 16
// workers on one key, and 64 workers sent through a follower (which forwards to the leader).
// Run (after `npm run build`): npx tsx benchmarks/locks.ts [--json] [--duration-ms N]
// DSYNC_BENCH_CPU_PROF_DIR=dir writes a V8 CPU profile of every dsync node, one per setting;
// DSYNC_BENCH_SERVE_ARGS="--tick-ms 100" adds flags to every `dsync serve` (experiments).
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { assert } from '../src/assert.js';
import {
  benchEtcdLock, DEFAULT_CONTENDED_WORKERS, DEFAULT_LOCK_DURATION_MS, DEFAULT_LOCK_WORKERS,
  lockSetting,
} from './etcd-lock.js';
import {
  DSYNC_LOCK_NODES, DsyncHttpError, DsyncLockHttp, startDsyncLockCluster,
} from './lib/dsync-lock-cluster.js';
import type { DsyncLockCluster, DsyncLockClusterOptions } from './lib/dsync-lock-cluster.js';
import {
  diffCounters, scrapeNodeCounters, summarizeSetting, sumCounters,
} from './lib/dsync-node-stats.js';
import type { NodeCounters } from './lib/dsync-node-stats.js';
import { withCpu } from './lib/dsync-proc-cpu.js';
import { startEtcdCluster } from './lib/etcd-cluster.js';
import { runLoad } from './lib/load.js';
import { makeRow, parseBenchArgs, printRows, ratiosTo, selected } from './lib/stats.js';
import type { Row } from './lib/stats.js';

/** Lease of every grant (API.md's default): only matters if a worker dies holding it. */
export const LOCK_TTL_MS = 30_000;
/** How long a contended acquire waits in the server's FIFO queue before LOCK_TIMEOUT. */
export const DEFAULT_ACQUIRE_WAIT_MS = 10_000;
/** Workers of the row sent to a follower (default: the largest uncontended count). */
export const DEFAULT_VIA_FOLLOWER_WORKERS = 64;
/** Attempts of one call while the cluster answers 503 (an election takes about a second). */
export const RETRY_ATTEMPTS_MAX = 50;
/** Pause before retrying a call that got 503. */
export const RETRY_BACKOFF_MS = 100;
/** The issue's targets at 64 workers and on the contended key. */
export const TARGET_CYCLES_RATIO_64 = 10;
export const TARGET_P99_RATIO_64 = 1 / 5;
export const TARGET_CYCLES_RATIO_CONTENDED = 25;

export interface DsyncLockOptions {
  /** Measured ms per setting (default DEFAULT_LOCK_DURATION_MS, as etcd's side). */
  durationMs?: number;
  /** Uncontended worker counts, one row each (default 1, 16, 64). */
  workers?: readonly number[];
  /** Workers on one key for the contended row (default 16; 0 skips the row). */
  contendedWorkers?: number;
  /** Workers of the via-follower row (default 64; 0 skips the row). */
  viaFollowerWorkers?: number;
  /** See DsyncLockClusterOptions. */
  cluster?: DsyncLockClusterOptions;
  /** Runs only the settings it accepts (`--only`); default every setting. */
  select?: (setting: string) => boolean;
}

/** The setting of the row that goes through a follower (no etcd row pairs with it). */
export function viaFollowerSetting(workers: number): string {
  return `${lockSetting(workers, false)}, via follower`;
}

interface Setting {
  workers: number;
  contended: boolean;
  viaFollower: boolean;
}

/** Rows in etcd's order (uncontended counts, then the contended key), then via follower. */
export async function benchDsyncLock(opts: DsyncLockOptions = {}): Promise<Row[]> {
  const settings = dsyncSettings(opts);
  const connections = Math.max(...settings.map((s) => s.workers));
  const cluster = await startDsyncLockCluster(opts.cluster);
  // One Pool per node, each with a connection per worker, opened once: every setting then
  // runs on warm keep-alive connections, as etcd's side runs on its warm gRPC channel.
  const clients = new Map(cluster.nodes.map((n) => [n.id, new DsyncLockHttp(n.url, connections)]));
  try {
    const rows: Row[] = [];
    for (const s of settings) rows.push(await runDsyncSetting(cluster, clients, s, opts));
    return rows;
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await cluster.stop();
  }
}

function dsyncSettings(opts: DsyncLockOptions): Setting[] {
  const contended = opts.contendedWorkers ?? DEFAULT_CONTENDED_WORKERS;
  const viaFollower = opts.viaFollowerWorkers ?? DEFAULT_VIA_FOLLOWER_WORKERS;
  const settings: Setting[] = (opts.workers ?? DEFAULT_LOCK_WORKERS)
    .map((workers) => ({ workers, contended: false, viaFollower: false }));
  if (contended > 0) settings.push({ workers: contended, contended: true, viaFollower: false });
  if (viaFollower > 0) settings.push({ workers: viaFollower, contended: false, viaFollower: true });
  for (const s of settings) {
    assert(Number.isSafeInteger(s.workers) && s.workers >= 1, `workers ≥ 1, got ${s.workers}`);
  }
  const select = opts.select ?? (() => true);
  return settings.filter((s) => select(settingName(s)));
}

function settingName(s: Setting): string {
  return s.viaFollower ? viaFollowerSetting(s.workers) : lockSetting(s.workers, s.contended);
}

async function runDsyncSetting(
  cluster: DsyncLockCluster, clients: Map<string, DsyncLockHttp>, s: Setting,
  opts: DsyncLockOptions,
): Promise<Row> {
  // Asked again before every setting: a leader change between settings must not turn the
  // "to the leader" rows into forwarded ones.
  const leader = await cluster.leader();
  const target = s.viaFollower ? await cluster.follower() : leader;
  const http = clients.get(target.id);
  assert(http !== undefined, `a client for ${target.id}`);
  const setting = settingName(s);
  // Distinct names per setting so that no grant of an earlier setting is still around.
  const prefix = `bench-${s.contended ? 'one' : 'distinct'}-${s.workers}${s.viaFollower ? '-f' : ''}`;
  const waitMs = s.contended ? DEFAULT_ACQUIRE_WAIT_MS : 0;
  process.stderr.write(`locks: dsync, ${setting}, sending to ${target.id}` +
    ` (load average ${(loadavg()[0] ?? 0).toFixed(1)})\n`);
  const before = await scrapeAll(cluster);
  const retry = new RetryOn503();
  const profiling = opts.cluster?.cpuProfDir !== undefined;
  if (profiling) cluster.toggleCpuProfiles();
  let cycles = 0;
  const pids = cluster.nodes.map((n) => n.pid).filter((pid) => pid !== undefined);
  const { value: result, cores, cpuMsPerOp } = await withCpu(pids, () => runLoad({
    label: `dsync lock, ${setting}`,
    concurrency: s.workers,
    durationMs: opts.durationMs ?? DEFAULT_LOCK_DURATION_MS,
    op: async (worker) => {
      // One owner per worker and, uncontended, one lock per worker: each (owner, lock) pair
      // belongs to one worker, so no acquire is an idempotent re-grant of another's.
      const name = s.contended ? prefix : `${prefix}-w${worker}`;
      const owner = `w${worker}`;
      const startNs = process.hrtime.bigint();
      const body = { owner, ttlMs: LOCK_TTL_MS, waitMs };
      const grant = await retry.run(() => http.acquire(name, body));
      const acquiredNs = process.hrtime.bigint() - startNs;
      await retry.run(() => http.release(name, owner, grant.token), () => undefined);
      cycles++;
      return Number(acquiredNs);
    },
  }));
  if (profiling) {
    process.stderr.write(`locks: CPU profiles of "${setting}" (leader ${leader.id}): ` +
      `${cluster.toggleCpuProfiles()}\n`);
  }
  const after = await scrapeAll(cluster);
  const delta = (id: string): NodeCounters =>
    diffCounters(after.get(id) ?? sumCounters([]), before.get(id) ?? sumCounters([]));
  const stats = summarizeSetting({ target: delta(target.id), leader: delta(leader.id),
    all: diffCounters(sumCounters([...after.values()]), sumCounters([...before.values()])) },
  cycles);
  return makeRow('dsync', setting, result, {
    node: target.id, role: s.viaFollower ? 'follower' : 'leader', waitMs, latency: 'acquire',
    retries: retry.retries, serverCores: cores, serverCpuMsPerCycle: cpuMsPerOp, ...stats,
  });
}

async function scrapeAll(cluster: DsyncLockCluster): Promise<Map<string, NodeCounters>> {
  const entries = await Promise.all(cluster.nodes.map(async (n) =>
    [n.id, await scrapeNodeCounters(n.url)] as const));
  return new Map(entries);
}

/**
 * What any dsync client does on 503 (no leader during an election, or an indeterminate
 * outcome): wait a moment and try again, as etcd's client does on its side. Acquire is
 * idempotent for one owner and lock; a retried release whose first attempt did commit
 * answers NOT_HELD, which then means "released". Every retry is counted in the row.
 */
export class RetryOn503 {
  retries = 0;

  /** `ifRetriedNotHeld` answers for a retry that got NOT_HELD (a release). */
  async run<T>(call: () => Promise<T>, ifRetriedNotHeld?: () => T): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (ifRetriedNotHeld !== undefined && attempt > 1 && err instanceof DsyncHttpError &&
          err.code === 'NOT_HELD') return ifRetriedNotHeld();
        if (!(err instanceof DsyncHttpError) || err.status !== 503 ||
          attempt >= RETRY_ATTEMPTS_MAX) throw err;
        this.retries++;
        await new Promise((resolve) => setTimeout(resolve, RETRY_BACKOFF_MS));
      }
    }
  }
}

/** One line per target of the issue: met or missed, with the figures it was judged on. */
export function targetLines(rows: readonly Row[], etcdSystem: string): string[] {
  const ratios = ratiosTo(rows, etcdSystem);
  const find = (system: string, setting: string): [Row, number | null] | undefined => {
    const i = rows.findIndex((r) => r.system === system && r.setting === setting);
    const row = rows[i];
    return row === undefined ? undefined : [row, ratios[i] ?? null];
  };
  const lines: string[] = [];
  const at64 = find('dsync', lockSetting(64, false));
  const etcd64 = find(etcdSystem, lockSetting(64, false));
  if (at64 !== undefined && etcd64 !== undefined && at64[1] !== null) {
    const p99Ratio = etcd64[0].p99Ms > 0 ? at64[0].p99Ms / etcd64[0].p99Ms : Infinity;
    const met = at64[1] >= TARGET_CYCLES_RATIO_64 && p99Ratio <= TARGET_P99_RATIO_64;
    lines.push(`64 workers, distinct keys: ${at64[1].toFixed(2)}× etcd's cycles/s ` +
      `(target ≥ ${TARGET_CYCLES_RATIO_64}×), p99 ${p99Ratio.toFixed(3)} of etcd's ` +
      `(target ≤ ${TARGET_P99_RATIO_64}): ${met ? 'met' : 'MISSED'}`);
  }
  const one = find('dsync', lockSetting(DEFAULT_CONTENDED_WORKERS, true));
  if (one !== undefined && one[1] !== null) {
    const met = one[1] >= TARGET_CYCLES_RATIO_CONTENDED;
    lines.push(`${one[0].setting}: ${one[1].toFixed(2)}× etcd's cycles/s ` +
      `(target ≥ ${TARGET_CYCLES_RATIO_CONTENDED}×): ${met ? 'met' : 'MISSED'}`);
  }
  return lines;
}

/** etcd's rows, one setting at a time on one cluster, each with the members' CPU use. */
async function benchEtcdWithCpu(durationMs: number, select: (setting: string) => boolean):
  Promise<Row[]> {
  const settings = [
    ...DEFAULT_LOCK_WORKERS.map((w) => ({ workers: [w], contendedWorkers: 0,
      name: lockSetting(w, false) })),
    { workers: [], contendedWorkers: DEFAULT_CONTENDED_WORKERS,
      name: lockSetting(DEFAULT_CONTENDED_WORKERS, true) },
  ].filter((s) => select(s.name));
  if (settings.length === 0) return [];
  const cluster = await startEtcdCluster();
  const pids = cluster.members.map((m) => m.pid);
  try {
    const rows: Row[] = [];
    for (const { name: _name, ...setting } of settings) {
      const { value: row, cores, cpuMsPerOp } = await withCpu(pids, async () => {
        const [only] = await benchEtcdLock({ cluster, durationMs, ...setting });
        assert(only !== undefined, 'one etcd row per setting');
        return only;
      });
      row.extra = { ...row.extra, serverCores: cores, serverCpuMsPerCycle: cpuMsPerOp };
      rows.push(row);
    }
    return rows;
  } finally {
    await cluster.stop();
  }
}

/** Where a dsync row's time went, from the nodes' own metrics (see dsync-node-stats.ts). */
function inside(row: Row): string {
  const x = row.extra ?? {};
  return `${x.cycles} cycles incl. warm-up; CPU ${x.targetCpuMsPerCycle} ms/cycle on ` +
    `${x.node}, ${x.serverCpuMsPerCycle} ms/cycle on all 3 (${x.serverCores} cores); leader ` +
    `${x.leaderFsyncsPerCycle} fsyncs/cycle of ${x.leaderFsyncMeanMs} ms, commit ` +
    `${x.leaderCommitMeanMs} ms; server acquire ${x.serverAcquireMeanMs} ms, release ` +
    `${x.serverReleaseMeanMs} ms (means); ${x.retries} retries, ${x.leaderChanges} leader changes`;
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const durationMs = args.durationMs ?? DEFAULT_LOCK_DURATION_MS;
  const cpuProfDir = process.env.DSYNC_BENCH_CPU_PROF_DIR ?? '';
  const extraServeArgs = (process.env.DSYNC_BENCH_SERVE_ARGS ?? '').split(' ')
    .filter((a) => a !== '');
  process.stderr.write(`locks: dsync, ${DSYNC_LOCK_NODES} lock nodes (fsync on)` +
    `${extraServeArgs.length > 0 ? `, serve ${extraServeArgs.join(' ')}` : ''}…\n`);
  const select = (setting: string): boolean => selected(args, setting);
  const dsync = await benchDsyncLock({ durationMs, select,
    cluster: { extraServeArgs, ...(cpuProfDir === '' ? {} : { cpuProfDir }) } });
  let etcd: Row[] = [];
  if (!args.noReference) {
    process.stderr.write(`locks: etcd, 3 members (fsync on)…\n`);
    etcd = await benchEtcdWithCpu(durationMs, select);
  }
  const etcdSystem = etcd[0]?.system ?? '';
  const rows = [...dsync, ...etcd];
  printRows('Locks: acquire + release cycles, 3 members, fsync on (p50/p99 of acquire)', rows,
    etcdSystem, args);
  if (!args.json) {
    const via = dsync.find((r) => r.extra?.role === 'follower');
    const etcd64 = etcd.find((r) => r.setting === lockSetting(64, false));
    if (via !== undefined && etcd64 !== undefined && etcd64.opsPerSec > 0) {
      process.stdout.write(`- ${via.setting}: ${(via.opsPerSec / etcd64.opsPerSec).toFixed(2)}× ` +
        `etcd's ${etcd64.setting}\n`);
    }
    for (const row of dsync) process.stdout.write(`- dsync ${row.setting}: ${inside(row)}\n`);
    for (const row of etcd) {
      process.stdout.write(`- etcd ${row.setting}: ${row.extra?.attemptsPerAcquire} attempts ` +
        `per acquire; CPU ${row.extra?.serverCpuMsPerCycle} ms/cycle on all 3 ` +
        `(${row.extra?.serverCores} cores)\n`);
    }
    for (const line of targetLines(rows, etcdSystem)) process.stdout.write(`- target: ${line}\n`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
  // etcd3's lease keep-alive timers would keep the process alive for ~30 s more.
  process.exit(0);
}
