// What a queue row cost dsync's pods, beside its rate: CPU of the three pods per message
// (from /proc, as dsync-proc-cpu.ts), and on the leader of the row's partition its fsyncs,
// Raft entries, commands per entry and mean commit latency, also in units of its own mean
// fsync time. On a shared machine the disk's fsync time swings with the other tenants, and
// the rates with it; commit latency counted in fsyncs says what the pipeline itself costs.
import { withCpu } from './dsync-proc-cpu.js';
import type { Row } from './stats.js';

/** Sums of the leader's counters this file reads, from its /metrics text. */
interface LeaderCounters {
  fsyncs: number;
  fsyncSeconds: number;
  entries: number;
  commands: number;
  commits: number;
  commitSeconds: number;
}

const SERIES: ReadonlyArray<readonly [keyof LeaderCounters, string]> = [
  ['fsyncs', 'dsync_wal_fsync_duration_seconds_count'],
  ['fsyncSeconds', 'dsync_wal_fsync_duration_seconds_sum'],
  ['entries', 'dsync_raft_entry_commands_count'],
  ['commands', 'dsync_raft_entry_commands_sum'],
  ['commits', 'dsync_raft_commit_latency_seconds_count'],
  ['commitSeconds', 'dsync_raft_commit_latency_seconds_sum'],
];

async function scrape(url: string): Promise<LeaderCounters> {
  const c: LeaderCounters = { fsyncs: 0, fsyncSeconds: 0, entries: 0, commands: 0, commits: 0,
    commitSeconds: 0 };
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of text.split('\n')) {
    for (const [k, name] of SERIES) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      c[k] += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return c;
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** Runs one row (its ops/s are messages/s), adds the costs to its `extra` and returns a line
 * that says them. */
export async function withQueueCosts(pids: readonly number[], leaderUrl: string,
  run: () => Promise<Row>): Promise<{ row: Row; line: string }> {
  const before = await scrape(leaderUrl);
  const { value: row, cores } = await withCpu(pids, run);
  const after = await scrape(leaderUrl);
  const d = (k: keyof LeaderCounters): number => after[k] - before[k];
  const rate = row.opsPerSec;
  const cpuUsPerMessage = rate > 0 ? (cores / rate) * 1e6 : 0;
  const fsyncMs = d('fsyncs') > 0 ? (1000 * d('fsyncSeconds')) / d('fsyncs') : 0;
  const commitMs = d('commits') > 0 ? (1000 * d('commitSeconds')) / d('commits') : 0;
  const perEntry = d('entries') > 0 ? d('commands') / d('entries') : 0;
  const costs = { serverCores: round(cores, 2), cpuUsPerMessage: round(cpuUsPerMessage, 1),
    leaderFsyncs: d('fsyncs'), leaderFsyncMs: round(fsyncMs, 2), leaderEntries: d('entries'),
    commandsPerEntry: round(perEntry, 1), commitMs: round(commitMs, 2),
    commitInFsyncs: fsyncMs > 0 ? round(commitMs / fsyncMs, 2) : 0 };
  row.extra = { ...row.extra, ...costs };
  const line = `${row.setting}: 3 pods ${costs.serverCores} cores, ` +
    `${costs.cpuUsPerMessage} µs CPU per message; leader ${costs.leaderFsyncs} fsyncs ` +
    `(${costs.leaderFsyncMs} ms mean), ${costs.leaderEntries} entries of ` +
    `${costs.commandsPerEntry} commands, commit ${costs.commitMs} ms mean ` +
    `(${costs.commitInFsyncs} fsyncs)`;
  return { row, line };
}
