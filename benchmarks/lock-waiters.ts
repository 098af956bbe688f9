// A crowd of waiters on one lock (issue 7.6): N owners each send one blocking acquire
// (waitMs) at once through one node while the lock is held, over their own connections; once
// every one is queued or answered, the holder releases and each granted owner releases at
// once, so the lock passes down the queue. Per row: how long until the crowd was in (queued
// or answered), how long the queue took to drain, what everyone was answered, how late the
// LOCK_TIMEOUTs came past waitMs, the slowest /health of any node meanwhile, and elections
// (term changes). Three `dsync serve` processes with fsync on, the default bounds (1,000
// waiters per lock: past it, 429).
// Run (after `npm run build`): npx tsx benchmarks/lock-waiters.ts [--json] [--counts 1000,10000]
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { DEFAULT_LOCK_LIMITS } from '../src/lock/lock-table-limits.js';
import {
  checkCrowd, countCodes, distinctErrors, electionsDuring, runCrowd, timeoutLateness,
} from '../test/support/lock-crowd.js';
import { startDsyncLockCluster } from './lib/dsync-lock-cluster.js';
import { totalCpuSeconds } from './lib/dsync-proc-cpu.js';
import { describeMachine, machineLine } from './lib/machine.js';
import { parseSizesArgs } from './lib/stats.js';

/** Crowd sizes, one row each (and the first again through a follower). */
export const DEFAULT_CROWD_COUNTS = [1_000, 10_000] as const;
/** Each waiter's waitMs: long enough for 1,000 handoffs on a busy machine. */
export const CROWD_WAIT_MS = 30_000;
export const CROWD_TTL_MS = 30_000;

export interface CrowdRow {
  readonly setting: string;
  readonly count: number;
  readonly enqueueMs: number;
  readonly drainMs: number;
  readonly answers: Record<string, number>;
  readonly lateMaxMs: number;
  readonly healthMaxMs: number;
  readonly elections: number;
  /** CPU of the three nodes together during the row (user + system). */
  readonly cpuSeconds: number;
  readonly problems: readonly string[];
  readonly errors: readonly string[];
  readonly loadAvg1m: number;
}

async function crowdRow(count: number, viaFollower: boolean): Promise<CrowdRow> {
  const cluster = await startDsyncLockCluster();
  try {
    const leader = await cluster.leader();
    const node = viaFollower ? await cluster.follower() : leader;
    const setting = `${count.toLocaleString('en-US')} waiters via ${viaFollower ? 'a follower'
      : 'the leader'}`;
    process.stderr.write(`lock-waiters: ${setting} (load average ` +
      `${(loadavg()[0] ?? 0).toFixed(1)})\n`);
    const pids = cluster.nodes.map((n) => n.pid).filter((p) => p !== undefined);
    const cpuBefore = totalCpuSeconds(pids);
    const r = await runCrowd({
      url: node.url, nodeUrls: cluster.nodes.map((n) => n.url), name: 'crowd', count,
      waitMs: CROWD_WAIT_MS, ttlMs: CROWD_TTL_MS, enqueueTimeoutMs: 300_000,
    });
    const cpuSeconds = totalCpuSeconds(pids) - cpuBefore;
    const elections = electionsDuring(r);
    return {
      setting, count, enqueueMs: r.enqueueMs, drainMs: r.drainMs, answers: countCodes(r),
      lateMaxMs: timeoutLateness(r, CROWD_WAIT_MS).maxMs, healthMaxMs: r.healthMaxMs,
      elections, cpuSeconds,
      problems: checkCrowd(r, count, DEFAULT_LOCK_LIMITS.waitersPerLockMax).slice(0, 5),
      errors: distinctErrors(r), loadAvg1m: Number((loadavg()[0] ?? 0).toFixed(1)),
    };
  } finally {
    await cluster.stop();
  }
}

function markdown(rows: readonly CrowdRow[]): string {
  const lines = [
    '| setting | in (queued or answered) | queue drained | answers | LOCK_TIMEOUT late by | ' +
      'slowest /health | elections | node CPU | load |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const answers = Object.entries(r.answers).map(([k, v]) => `${v} ${k}`).join(', ');
    lines.push(`| ${r.setting} | ${(r.enqueueMs / 1000).toFixed(1)} s | ` +
      `${(r.drainMs / 1000).toFixed(1)} s | ${answers} | ${r.lateMaxMs.toFixed(0)} ms | ` +
      `${r.healthMaxMs.toFixed(0)} ms | ${r.elections} | ${r.cpuSeconds.toFixed(1)} s | ` +
      `${r.loadAvg1m} |`);
  }
  return lines.join('\n');
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  // At most 12,000: one connection each, beside the node's other connections.
  const { json, sizes: counts } = parseSizesArgs(argv, 'counts', DEFAULT_CROWD_COUNTS, 1,
    12_000);
  const rows: CrowdRow[] = [];
  for (const n of counts) rows.push(await crowdRow(n, false));
  rows.push(await crowdRow(counts[0] ?? DEFAULT_CROWD_COUNTS[0], true));
  const machine = describeMachine();
  if (json) {
    process.stdout.write(`${JSON.stringify({ title: 'lock waiters', machine, rows }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`\n## A crowd of waiters on one lock\n\n${markdown(rows)}\n\n` +
    `Measured on ${machineLine(machine)}.\n`);
  for (const r of rows) {
    for (const p of [...r.problems, ...r.errors.filter((e) => !/RESOURCE_EXHAUSTED|LOCK_TIMEOUT/
      .test(e))]) process.stdout.write(`- ${r.setting}: ${p}\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
