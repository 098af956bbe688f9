// How long a lock node takes to come back (issue 7.7). Two kinds of rows:
// - a one-node group started on a log of N committed entries written straight into its data
//   dir (test/support/lock-log.ts: a crowd of 1,500 waiters on one lock, then acquire/release
//   pairs and ticks, every entry with a request id), snapshots off so the log really holds N
//   entries: time to the first /health answer, and to /ready (log applied, leader known);
// - the scenario on three nodes: 20,000 acquire/release commands and a crowd of 1,500
//   waiters through the HTTP API, then a follower killed with -9 and restarted: time to its
//   first /health answer and until it has caught up and is ready.
// `dsync serve` processes with fsync on, from the compiled dist/.
// Run (after `npm run build`): npx tsx benchmarks/lock-startup.ts [--json] [--entries 10000,100000]
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadavg } from 'node:os';
import { Cluster, type ClusterNode } from '../test/support/cluster.js';
import { runCrowd } from '../test/support/lock-crowd.js';
import { LOG_CROWD, writeLockLog } from '../test/support/lock-log.js';
import { waitFor } from '../test/support/wait.js';
import { describeMachine, machineLine } from './lib/machine.js';
import { processCpuSeconds } from './lib/dsync-proc-cpu.js';
import { parseSizesArgs } from './lib/stats.js';
import { onCleanup } from './lib/proc.js';

export const DEFAULT_LOG_ENTRIES = [10_000, 100_000, 1_000_000] as const;
/** Commands sent through the API before the follower restart (the figure). */
export const SCENARIO_COMMANDS = 20_000;
const POLL_MS = 10;
const START_DEADLINE_MS = 600_000;

export interface StartupRow {
  readonly setting: string;
  readonly entries: number;
  readonly firstHealthMs: number;
  readonly readyMs: number;
  /** CPU the node used from its start until ready. */
  readonly cpuSeconds: number;
  readonly loadAvg1m: number;
}

async function ready(node: ClusterNode): Promise<boolean> {
  try {
    const r = await fetch(`${node.url}/ready`, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

/** Starts `node` and times its first /health answer and its first 200 from /ready. */
async function timeStart(node: ClusterNode): Promise<{ firstHealthMs: number; readyMs: number;
  cpuSeconds: number }> {
  const t0 = performance.now();
  node.start();
  await waitFor(`${node.id} /health`, () => node.health(2000), START_DEADLINE_MS, POLL_MS);
  const firstHealthMs = performance.now() - t0;
  await waitFor(`${node.id} /ready`, () => ready(node), START_DEADLINE_MS, POLL_MS);
  const pid = node.pid;
  return { firstHealthMs, readyMs: performance.now() - t0,
    cpuSeconds: pid === undefined ? 0 : processCpuSeconds(pid) };
}

async function withCluster<T>(opts: Parameters<typeof Cluster.start>[0],
  run: (c: Cluster) => Promise<T>): Promise<T> {
  const cluster = await Cluster.start(opts);
  const drop = onCleanup(() => {
    for (const n of cluster.nodes) if (n.running && n.pid !== undefined) process.kill(n.pid, 'SIGKILL');
  });
  try {
    return await run(cluster);
  } finally {
    await cluster.stop();
    drop();
  }
}

async function logRow(entries: number): Promise<StartupRow> {
  return withCluster({ service: 'lock', size: 1, startNodes: 0,
    extraArgs: ['--log-level', 'warn', '--snapshot-entries', '10000000'] }, async (c) => {
    const node = c.nodes[0]!;
    process.stderr.write(`lock-startup: writing a log of ${entries} entries\n`);
    await writeLockLog(join(node.spec.dataDir, 'raft'), node.id, entries);
    process.stderr.write(`lock-startup: starting on it (load ${(loadavg()[0] ?? 0).toFixed(1)})\n`);
    const t = await timeStart(node);
    return { setting: `one node, log of ${entries.toLocaleString('en-US')} entries`, entries,
      ...t, loadAvg1m: Number((loadavg()[0] ?? 0).toFixed(1)) };
  });
}

async function scenarioRow(): Promise<StartupRow> {
  return withCluster({ service: 'lock', startTimeoutMs: 60_000,
    extraArgs: ['--log-level', 'warn'] }, async (c) => {
    const leader = await c.leader(30_000);
    process.stderr.write(`lock-startup: ${SCENARIO_COMMANDS} commands and a crowd\n`);
    let next = 0;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (next < SCENARIO_COMMANDS / 2) {
        const i = next++;
        const body = (o: object): RequestInit => ({ method: 'POST', body: JSON.stringify(o),
          headers: { 'content-type': 'application/json' } });
        const name = `t${i % 100}`;
        const owner = `c${i}`;
        const g = await fetch(`${leader.url}/v1/locks/${name}/acquire`,
          body({ owner, waitMs: 10_000 }));
        const grant = await g.json() as { token?: number };
        if (g.ok) await (await fetch(`${leader.url}/v1/locks/${name}/release`,
          body({ owner, token: grant.token }))).arrayBuffer();
      }
    }));
    await runCrowd({ url: leader.url, nodeUrls: c.nodes.map((n) => n.url), name: 'crowded',
      count: LOG_CROWD, waitMs: 60_000, ttlMs: 30_000 });
    const entries = (await leader.health())?.raft?.commitIndex ?? 0;
    const follower = c.nodes.find((n) => n !== leader)!;
    await follower.crash();
    const t = await timeStart(follower);
    return { setting: `follower kill -9 and restart after ${SCENARIO_COMMANDS.toLocaleString(
      'en-US')} commands and a crowd of ${LOG_CROWD.toLocaleString('en-US')}`, entries, ...t,
    loadAvg1m: Number((loadavg()[0] ?? 0).toFixed(1)) };
  });
}

function markdown(rows: readonly StartupRow[]): string {
  const lines = ['| setting | log entries | first /health | ready (caught up) | node CPU | load |',
    '|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    lines.push(`| ${r.setting} | ${r.entries.toLocaleString('en-US')} | ` +
      `${(r.firstHealthMs / 1000).toFixed(2)} s | ${(r.readyMs / 1000).toFixed(2)} s | ` +
      `${r.cpuSeconds.toFixed(1)} s | ${r.loadAvg1m} |`);
  }
  return lines.join('\n');
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  // From the crowd at the start of the generated log up to what snapshotEntries allows.
  const { json, sizes } = parseSizesArgs(argv, 'entries', DEFAULT_LOG_ENTRIES, 2_000,
    10_000_000);
  const rows: StartupRow[] = [];
  for (const n of sizes) rows.push(await logRow(n));
  rows.push(await scenarioRow());
  const machine = describeMachine();
  if (json) {
    process.stdout.write(`${JSON.stringify({ title: 'lock start-up', machine, rows }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`\n## Lock node start-up\n\n${markdown(rows)}\n\n` +
    `Measured on ${machineLine(machine)}.\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
