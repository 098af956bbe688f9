// `dsync status`: one row per node of every service — service, id, Raft state, term, leader,
// lag — from each node's /health. Given one node of a service it finds the others through
// GET /v1/cluster. A queue node, with one Raft group per partition, reports `partitions`:
// its row says how many it hosts and leads; a second table has one row per partition (leader,
// term, its replicas' states, lag), and -o json/yaml keep them all.
import type { Command } from 'commander';
import { DsyncError, nodeHealth, type NodeHealth } from '../client/index.js';
import { nodeCaller } from '../client/health.js';
import { checkedUrls, devNodes, globalOptions } from './options.js';
import { print, table } from './output.js';
import { reportErrors } from './report.js';

export interface NodeStatus {
  readonly url: string;
  readonly service: string | null;
  readonly node: string | null;
  /** "up", or "down" with `error`. */
  readonly status: 'up' | 'down';
  readonly error?: string;
  readonly raft?: NodeHealth['raft'];
  readonly partitions?: NodeHealth['partitions'];
  /** Commit index of the service's most advanced node minus this node's applied index. */
  readonly lag?: number;
  /** The node's whole /health answer (cache pods: store, start-up grace, peers, counters). */
  readonly health?: NodeHealth;
}

const HEALTH_TIMEOUT_MS = 2000;

async function health(url: string): Promise<NodeHealth | Error> {
  const base = url.replace(/\/+$/, '');
  try {
    return await nodeHealth(base, HEALTH_TIMEOUT_MS);
  } catch (err) {
    // The row already shows the URL: keep only why.
    if (err instanceof DsyncError) {
      return new Error(err.message.replace(`cannot reach ${base}: `, ''));
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** The members' URLs of every service seen, from one answering node of each. */
async function members(seen: ReadonlyArray<readonly [string, NodeHealth | Error]>):
  Promise<string[]> {
  const caller = nodeCaller('any');
  const firstOf = new Map<string, string>();
  for (const [u, h] of seen) {
    if (!(h instanceof Error) && !firstOf.has(h.service)) firstOf.set(h.service, u);
  }
  const lists = await Promise.all([...firstOf.values()].map(async (u) => {
    try {
      const v = await caller.callOn<{ members?: Array<{ url?: unknown }> }>(u,
        { method: 'GET', path: '/v1/cluster' }, { timeoutMs: HEALTH_TIMEOUT_MS });
      return (v.members ?? []).map((m) => m.url).filter((x): x is string => typeof x === 'string');
    } catch {
      return [];
    }
  }));
  return lists.flat();
}

export async function nodeStatuses(urls: readonly string[], discover: boolean):
  Promise<NodeStatus[]> {
  const norm = (u: string): string => u.replace(/\/+$/, '');
  let all = await Promise.all([...new Set(urls.map(norm))].map(async (u) =>
    [u, await health(u)] as const));
  if (discover) {
    const known = new Set(all.map(([u]) => u));
    const extra = (await members(all)).map(norm).filter((u) => !known.has(u));
    all = [...all, ...await Promise.all([...new Set(extra)].map(async (u) =>
      [u, await health(u)] as const))];
  }
  const maxCommit = new Map<string, number>();
  for (const [, h] of all) {
    if (h instanceof Error || !h.raft) continue;
    maxCommit.set(h.service, Math.max(maxCommit.get(h.service) ?? 0, h.raft.commitIndex));
  }
  const order = ['lock', 'queue', 'cache'];
  return all.map(([url, h]): NodeStatus => h instanceof Error
    ? { url, service: null, node: null, status: 'down', error: h.message }
    : { url, service: h.service, node: h.node, status: 'up',
      ...(h.raft ? { raft: h.raft, lag: (maxCommit.get(h.service) ?? 0) - h.raft.appliedIndex }
        : {}),
      ...(h.partitions ? { partitions: h.partitions } : {}), health: h })
    .sort((a, b) => rank(a.service) - rank(b.service) ||
      (a.node ?? a.url).localeCompare(b.node ?? b.url));
  function rank(s: string | null): number {
    const i = s === null ? -1 : order.indexOf(s);
    return i < 0 ? order.length : i;
  }
}

function stateOf(s: NodeStatus): string {
  if (s.status === 'down') return `DOWN (${s.error ?? '?'})`;
  if (s.raft) return s.raft.state;
  if (s.partitions) {
    const led = s.partitions.filter((p) => p.state === 'leader').length;
    return `${s.partitions.length} partitions, leads ${led}`;
  }
  // A cache pod: what keeps it from serving, when something does.
  const notes = [s.health?.storeUp === false ? 'store DOWN' : null,
    s.health?.startupGrace === true ? 'start-up grace' : null].filter((n) => n !== null);
  return notes.length === 0 ? 'up' : `up (${notes.join(', ')})`;
}

export function statusText(rows: readonly NodeStatus[]): string {
  const nodes = table(rows, [['service', (s) => s.service ?? '?'], ['node', (s) => s.node ?? '?'],
    ['url', (s) => s.url], ['state', stateOf], ['term', (s) => s.raft?.term ?? ''],
    ['leader', (s) => (s.raft ? s.raft.leader ?? '-' : '')],
    ['commit', (s) => s.raft?.commitIndex ?? ''], ['lag', (s) => s.lag ?? '']]);
  const partitions = partitionRows(rows);
  return partitions.length === 0 ? nodes : `${nodes}\n\nqueue partitions\n${table(partitions,
    [['partition', (r) => r.partition], ['leader', (r) => r.leader], ['term', (r) => r.term],
      ['replicas', (r) => r.replicas], ['commit', (r) => r.commit], ['lag', (r) => r.lag]])}`;
}

interface PartitionStatus {
  readonly partition: number;
  readonly leader: string;
  readonly term: number;
  readonly replicas: string;
  readonly commit: number | string;
  readonly lag: number | string;
}

type PartitionHealth = NonNullable<NodeHealth['partitions']>[number] &
  { readonly commitIndex?: number; readonly appliedIndex?: number };

/** One row per queue partition: its leader and term as its replicas see them (the highest
 * term wins), each replica's state, and how far the slowest replica's applied index is
 * behind the highest commit index any of them knows (blank when the pods do not say). */
export function partitionRows(rows: readonly NodeStatus[]): PartitionStatus[] {
  const by = new Map<number, Array<{ node: string; p: PartitionHealth }>>();
  for (const r of rows) {
    for (const p of (r.partitions ?? []) as readonly PartitionHealth[]) {
      by.set(p.partition, [...(by.get(p.partition) ?? []), { node: r.node ?? r.url, p }]);
    }
  }
  return [...by].sort((a, b) => a[0] - b[0]).map(([partition, list]) => {
    const newest = list.reduce((a, b) => (b.p.term > a.p.term ? b : a));
    const commits = list.map((x) => x.p.commitIndex).filter((c) => c !== undefined);
    const commit = commits.length === 0 ? '' : Math.max(...commits);
    const lag = commit === '' ? ''
      : Math.max(...list.map((x) => commit - (x.p.appliedIndex ?? commit)));
    return { partition, leader: newest.p.leader ?? '-', term: newest.p.term,
      replicas: list.map((x) => `${x.node}:${x.p.state}`).join(' '), commit, lag };
  });
}

export function addStatusCommand(program: Command): void {
  program.command('status')
    .description('one row per node of every service: Raft state, term, leader, lag')
    .argument('[urls...]', 'node URLs (default: --endpoints, else the nodes of `dsync dev`)')
    .action(async (urls: string[], _o: unknown, c: Command) => {
      const g = globalOptions(c);
      let list: string[];
      let guessed = false;
      try {
        const given = urls.length > 0 ? urls.join(',') : g.urls ?? g.endpoints;
        if (given !== undefined) {
          list = checkedUrls(given, urls.length > 0 ? 'dsync status' : '--endpoints');
        } else {
          ({ urls: list, guessed } = devNodes(null));
        }
      } catch (err) {
        process.exitCode = reportErrors([err]);
        return;
      }
      let rows = await nodeStatuses(list, true);
      // Default ports nobody listens on are not worth a row each.
      if (guessed && rows.some((r) => r.status === 'up')) rows = rows.filter((r) => r.status === 'up');
      print(g.output, rows, statusText);
      const down = rows.filter((r) => r.status === 'down').length;
      if (down > 0) {
        process.stderr.write(`${down} node(s) unreachable: is the cluster running? ` +
          '`dsync dev` keeps its logs under .dsync/dev/logs.\n');
        process.exitCode = 1;
      }
    });
}
