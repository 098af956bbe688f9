// Where a dsync node's time went during one benchmark setting, read from its own /metrics
// before and after: CPU seconds, WAL fsyncs and their duration, Raft commit latency, and the
// server-side time of the lock routes. Client-side latency alone cannot tell a slow disk from
// a busy event loop; these counters can, and they cost nothing to collect.
import { assert } from '../../src/assert.js';

/** Deadline of one /metrics scrape. */
export const SCRAPE_TIMEOUT_MS = 5000;

/** Cumulative counters of one node (histograms as their _sum and _count). */
export interface NodeCounters {
  cpuS: number;
  fsyncs: number;
  fsyncS: number;
  commits: number;
  commitS: number;
  leaderChanges: number;
  acquires: number;
  acquireS: number;
  releases: number;
  releaseS: number;
  /** Raft frames sent to peers, by lane, and the Raft messages inside them. */
  controlFrames: number;
  bulkFrames: number;
  raftMessages: number;
}

const ZERO: NodeCounters = {
  cpuS: 0, fsyncs: 0, fsyncS: 0, commits: 0, commitS: 0, leaderChanges: 0,
  acquires: 0, acquireS: 0, releases: 0, releaseS: 0, controlFrames: 0, bulkFrames: 0,
  raftMessages: 0,
};

const ACQUIRE_ROUTE = 'route="/v1/locks/:name/acquire"';
const RELEASE_ROUTE = 'route="/v1/locks/:name/release"';
const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/;

/** Which counter a sample adds to, or null. Sums over label sets (groups, outcomes). */
function fieldOf(name: string, labels: string): keyof NodeCounters | null {
  switch (name) {
    case 'process_cpu_seconds_total': return 'cpuS';
    case 'dsync_wal_fsync_duration_seconds_count': return 'fsyncs';
    case 'dsync_wal_fsync_duration_seconds_sum': return 'fsyncS';
    case 'dsync_raft_commit_latency_seconds_count': return 'commits';
    case 'dsync_raft_commit_latency_seconds_sum': return 'commitS';
    case 'dsync_raft_leader_changes_total': return 'leaderChanges';
    case 'dsync_peer_frames_sent_total':
      return labels.includes('lane="control"') ? 'controlFrames' : 'bulkFrames';
    case 'dsync_peer_raft_messages_sent_total': return 'raftMessages';
    case 'dsync_http_request_duration_seconds_count':
      return labels.includes(ACQUIRE_ROUTE) ? 'acquires'
        : labels.includes(RELEASE_ROUTE) ? 'releases' : null;
    case 'dsync_http_request_duration_seconds_sum':
      return labels.includes(ACQUIRE_ROUTE) ? 'acquireS'
        : labels.includes(RELEASE_ROUTE) ? 'releaseS' : null;
    default: return null;
  }
}

/** Parses Prometheus text exposition into the counters above. */
export function parseNodeCounters(text: string): NodeCounters {
  const out = { ...ZERO };
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = SAMPLE_RE.exec(line);
    if (m === null) continue;
    const field = fieldOf(m[1] ?? '', m[2] ?? '');
    if (field === null) continue;
    const value = Number(m[3]);
    assert(Number.isFinite(value), `metric ${m[1]} has a finite value, got ${m[3]}`);
    out[field] += value;
  }
  return out;
}

export async function scrapeNodeCounters(url: string): Promise<NodeCounters> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
  if (!res.ok) throw new Error(`GET ${url}/metrics answered ${res.status}`);
  return parseNodeCounters(await res.text());
}

export function diffCounters(after: NodeCounters, before: NodeCounters): NodeCounters {
  const out = { ...ZERO };
  for (const key of Object.keys(out) as (keyof NodeCounters)[]) out[key] = after[key] - before[key];
  return out;
}

const perOp = (total: number, ops: number, scale = 1): number =>
  ops > 0 ? Number(((total * scale) / ops).toFixed(2)) : 0;

/**
 * Per-cycle figures of one setting for a row's `extra`: the target node's CPU ms per cycle,
 * the leader's fsyncs per cycle and mean fsync and commit ms,
 * and the target's mean server-side acquire and release ms.
 */
export function summarizeSetting(
  delta: { target: NodeCounters; leader: NodeCounters; all: NodeCounters }, cycles: number,
): Record<string, number> {
  const { target, leader, all } = delta;
  return {
    cycles,
    targetCpuMsPerCycle: perOp(target.cpuS, cycles, 1000),
    leaderFsyncsPerCycle: perOp(leader.fsyncs, cycles),
    leaderFsyncMeanMs: perOp(leader.fsyncS, leader.fsyncs, 1000),
    leaderCommitMeanMs: perOp(leader.commitS, leader.commits, 1000),
    serverAcquireMeanMs: perOp(target.acquireS, target.acquires, 1000),
    serverReleaseMeanMs: perOp(target.releaseS, target.releases, 1000),
    leaderChanges: all.leaderChanges,
  };
}

export function sumCounters(list: readonly NodeCounters[]): NodeCounters {
  const out = { ...ZERO };
  for (const c of list) {
    for (const key of Object.keys(out) as (keyof NodeCounters)[]) out[key] += c[key];
  }
  return out;
}
