// Locks: dsync's lock service (3 `dsync serve` processes, fsync on) next to etcd's lock (3
// members, fsync on), in one run. One cycle is acquire + release on the HTTP API; we report
// cycles/s and the acquire latency alone, with 1, 16 and 64 workers on distinct keys, 16
// workers on one key, and 64 workers sent through a follower (which forwards to the leader
// over the peer transport, and again with --forward-via http); then 64 workers GETting locks
// they hold, on the leader, with ReadIndex reads and with --read-mode lease.
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
/** Workers of the GET rows. */
export const DEFAULT_READ_WORKERS = 64;
/** Lease of the locks the GET rows read: longer than the row. */
export const READ_ROW_TTL_MS = 120_000;
/** Attempts of one call while the cluster answers 503 (an election takes about a second). */
export const RETRY_ATTEMPTS_MAX = 50;
/** Pause before retrying a call that got 503. */
export const RETRY_BACKOFF_MS = 100;
/** Issue 8's targets: 1 worker, 64 workers (cycles/s and p99 against etcd's), the contended
 * key, and the via-follower row against the same leader run. */
export const TARGET_CYCLES_RATIO_1 = 1.5;
export const TARGET_CYCLES_RATIO_64 = 5;
export const TARGET_P99_RATIO_64 = 0.25;
export const TARGET_CYCLES_RATIO_CONTENDED = 15;
export const TARGET_VIA_FOLLOWER_RATIO = 0.9;

export interface DsyncLockOptions {
  /** Measured ms per setting (default DEFAULT_LOCK_DURATION_MS, as etcd's side). */
  durationMs?: number;
  /** Uncontended worker counts, one row each (default 1, 16, 64). */
  workers?: readonly number[];
  /** Workers on one key for the contended row (default 16; 0 skips the row). */
  contendedWorkers?: number;
  /** Workers of the via-follower rows (default 64; 0 skips the rows). */
  viaFollowerWorkers?: number;
  /** Workers of the GET rows (default 64; 0 skips the rows). */
  readWorkers?: number;
  /** See DsyncLockClusterOptions. */
  cluster?: DsyncLockClusterOptions;
  /** Runs only the settings it accepts (`--only`); default every setting. */
  select?: (setting: string) => boolean;
}

/** The setting of the row that goes through a follower (no etcd row pairs with it). */
export function viaFollowerSetting(workers: number, httpHop = false): string {
  return `${lockSetting(workers, false)}, via follower${httpHop ? ', HTTP hop' : ''}`;
}

/** The setting of a read row: every worker GETs a lock it holds, on the leader. */
export function getSetting(workers: number, lease: boolean): string {
  return `${workers} workers, GET of held locks${lease ? ', lease reads' : ''}`;
}

type SettingKind = 'cycle' | 'contended' | 'viaFollower' | 'get';

interface Setting {
  readonly workers: number;
  readonly kind: SettingKind;
  readonly name: string;
  /** `dsync serve` flags of the cluster this setting runs on (settings with the same flags
   * share one cluster). */
  readonly serveArgs: readonly string[];
}

/** Rows in etcd's order (uncontended counts, then the contended key), then via follower
 * (over the peer transport, then with a second HTTP request), then reads (ReadIndex, then
 * lease). The rows that need other server flags run on a cluster of their own. */
export async function benchDsyncLock(opts: DsyncLockOptions = {}): Promise<Row[]> {
  const settings = dsyncSettings(opts);
  const byArgs = new Map<string, Setting[]>();
  for (const s of settings) {
    const key = s.serveArgs.join(' ');
    byArgs.set(key, [...byArgs.get(key) ?? [], s]);
  }
  const rows = new Map<Setting, Row>();
  for (const group of byArgs.values()) {
    const serveArgs = [...opts.cluster?.extraServeArgs ?? [], ...group[0]?.serveArgs ?? []];
    const cluster = await startDsyncLockCluster({ ...opts.cluster, extraServeArgs: serveArgs });
    const connections = Math.max(...group.map((s) => s.workers));
    // One Pool per node, each with a connection per worker, opened once: every setting then
    // runs on warm keep-alive connections, as etcd's side runs on its warm gRPC channel.
    const clients = new Map(cluster.nodes.map((n) =>
      [n.id, new DsyncLockHttp(n.url, connections)]));
    try {
      for (const s of group) rows.set(s, await runDsyncSetting(cluster, clients, s, opts));
    } finally {
      await Promise.all([...clients.values()].map((c) => c.close()));
      await cluster.stop();
    }
  }
  return settings.map((s) => rows.get(s)).filter((r) => r !== undefined);
}

function dsyncSettings(opts: DsyncLockOptions): Setting[] {
  const contended = opts.contendedWorkers ?? DEFAULT_CONTENDED_WORKERS;
  const viaFollower = opts.viaFollowerWorkers ?? DEFAULT_VIA_FOLLOWER_WORKERS;
  const readers = opts.readWorkers ?? DEFAULT_READ_WORKERS;
  const settings: Setting[] = (opts.workers ?? DEFAULT_LOCK_WORKERS).map((workers) =>
    ({ workers, kind: 'cycle', name: lockSetting(workers, false), serveArgs: [] }));
  if (contended > 0) {
    settings.push({ workers: contended, kind: 'contended', name: lockSetting(contended, true),
      serveArgs: [] });
  }
  if (viaFollower > 0) {
    settings.push({ workers: viaFollower, kind: 'viaFollower',
      name: viaFollowerSetting(viaFollower), serveArgs: [] });
    settings.push({ workers: viaFollower, kind: 'viaFollower',
      name: viaFollowerSetting(viaFollower, true), serveArgs: ['--forward-via', 'http'] });
  }
  if (readers > 0) {
    settings.push({ workers: readers, kind: 'get', name: getSetting(readers, false),
      serveArgs: [] });
    settings.push({ workers: readers, kind: 'get', name: getSetting(readers, true),
      serveArgs: ['--read-mode', 'lease'] });
  }
  for (const s of settings) {
    assert(Number.isSafeInteger(s.workers) && s.workers >= 1, `workers ≥ 1, got ${s.workers}`);
  }
  const select = opts.select ?? (() => true);
  return settings.filter((s) => select(s.name));
}

/** The operation of a setting's workers; resolves to the latency to record, in ns. */
type Op = (worker: number) => Promise<number>;

function cycleOp(s: Setting, http: DsyncLockHttp, prefix: string, retry: RetryOn503,
  count: () => void): Op {
  const waitMs = s.kind === 'contended' ? DEFAULT_ACQUIRE_WAIT_MS : 0;
  return async (worker) => {
    // One owner per worker and, uncontended, one lock per worker: each (owner, lock) pair
    // belongs to one worker, so no acquire is an idempotent re-grant of another's.
    const name = s.kind === 'contended' ? prefix : `${prefix}-w${worker}`;
    const owner = `w${worker}`;
    const startNs = process.hrtime.bigint();
    const body = { owner, ttlMs: LOCK_TTL_MS, waitMs };
    const grant = await retry.run(() => http.acquire(name, body));
    const acquiredNs = process.hrtime.bigint() - startNs;
    await retry.run(() => http.release(name, owner, grant.token), () => undefined);
    count();
    return Number(acquiredNs);
  };
}

/** Every worker holds its own lock first (for the whole row), then GETs it. */
async function getOp(s: Setting, http: DsyncLockHttp, prefix: string, retry: RetryOn503,
  count: () => void): Promise<Op> {
  await Promise.all(Array.from({ length: s.workers }, (_, w) => retry.run(() =>
    http.acquire(`${prefix}-w${w}`, { owner: `w${w}`, ttlMs: READ_ROW_TTL_MS, waitMs: 0 }))));
  return async (worker) => {
    const startNs = process.hrtime.bigint();
    await retry.run(() => http.view(`${prefix}-w${worker}`));
    count();
    return Number(process.hrtime.bigint() - startNs);
  };
}

async function runDsyncSetting(
  cluster: DsyncLockCluster, clients: Map<string, DsyncLockHttp>, s: Setting,
  opts: DsyncLockOptions,
): Promise<Row> {
  // Asked again before every setting: a leader change between settings must not turn the
  // "to the leader" rows into forwarded ones.
  const leader = await cluster.leader();
  const target = s.kind === 'viaFollower' ? await cluster.follower() : leader;
  const http = clients.get(target.id);
  assert(http !== undefined, `a client for ${target.id}`);
  // Distinct names per setting so that no grant of an earlier setting is still around.
  const prefix = `bench-${s.name.replace(/[^a-z0-9]+/gi, '-')}`;
  process.stderr.write(`locks: dsync, ${s.name}, sending to ${target.id}` +
    ` (load average ${(loadavg()[0] ?? 0).toFixed(1)})\n`);
  const retry = new RetryOn503();
  let ops = 0;
  const count = (): void => { ops++; };
  const op = s.kind === 'get' ? await getOp(s, http, prefix, retry, count)
    : cycleOp(s, http, prefix, retry, count);
  const before = await scrapeAll(cluster);
  const profiling = opts.cluster?.cpuProfDir !== undefined;
  if (profiling) cluster.toggleCpuProfiles();
  const pids = cluster.nodes.map((n) => n.pid).filter((pid) => pid !== undefined);
  const { value: result, cores, cpuMsPerOp } = await withCpu(pids, () => runLoad({
    label: `dsync lock, ${s.name}`, concurrency: s.workers,
    durationMs: opts.durationMs ?? DEFAULT_LOCK_DURATION_MS, op,
  }));
  if (profiling) {
    process.stderr.write(`locks: CPU profiles of "${s.name}" (leader ${leader.id}): ` +
      `${cluster.toggleCpuProfiles()}\n`);
  }
  const after = await scrapeAll(cluster);
  const delta = (id: string): NodeCounters =>
    diffCounters(after.get(id) ?? sumCounters([]), before.get(id) ?? sumCounters([]));
  const stats = summarizeSetting({ target: delta(target.id), leader: delta(leader.id),
    all: diffCounters(sumCounters([...after.values()]), sumCounters([...before.values()])) },
  ops);
  return makeRow('dsync', s.name, result, {
    node: target.id, role: s.kind === 'viaFollower' ? 'follower' : 'leader',
    waitMs: s.kind === 'contended' ? DEFAULT_ACQUIRE_WAIT_MS : 0,
    latency: s.kind === 'get' ? 'get' : 'acquire', serveArgs: s.serveArgs.join(' '),
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
  const at1 = find('dsync', lockSetting(1, false));
  if (at1 !== undefined && at1[1] !== null) {
    lines.push(`1 worker, distinct keys: ${at1[1].toFixed(2)}× etcd's cycles/s (target ≥ ` +
      `${TARGET_CYCLES_RATIO_1}×): ${at1[1] >= TARGET_CYCLES_RATIO_1 ? 'met' : 'MISSED'}`);
  }
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
  const w = DEFAULT_VIA_FOLLOWER_WORKERS;
  const direct = find('dsync', lockSetting(w, false));
  for (const httpHop of [false, true]) {
    const via = find('dsync', viaFollowerSetting(w, httpHop));
    if (via === undefined || direct === undefined || direct[0].opsPerSec <= 0) continue;
    const r = via[0].opsPerSec / direct[0].opsPerSec;
    lines.push(`${via[0].setting}: ${r.toFixed(2)} of the same leader run` +
      (httpHop ? '' : ` (target ≥ ${TARGET_VIA_FOLLOWER_RATIO}): ` +
        `${r >= TARGET_VIA_FOLLOWER_RATIO ? 'met' : 'MISSED'}`));
  }
  const index = find('dsync', getSetting(DEFAULT_READ_WORKERS, false));
  const lease = find('dsync', getSetting(DEFAULT_READ_WORKERS, true));
  if (index !== undefined && lease !== undefined && index[0].opsPerSec > 0) {
    lines.push(`lease reads: ${(lease[0].opsPerSec / index[0].opsPerSec).toFixed(2)}× the ` +
      'GETs/s of ReadIndex reads');
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
    for (const { workers, contendedWorkers } of settings) {
      const { value: row, cores, cpuMsPerOp } = await withCpu(pids, async () => {
        const [only] = await benchEtcdLock({ cluster, durationMs, workers, contendedWorkers });
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
  return `${x.cycles} ops incl. warm-up; CPU ${x.targetCpuMsPerCycle} ms/op on ` +
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
    const etcd64 = etcd.find((r) => r.setting === lockSetting(64, false));
    for (const via of dsync.filter((r) => r.extra?.role === 'follower')) {
      if (etcd64 === undefined || etcd64.opsPerSec <= 0) break;
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
