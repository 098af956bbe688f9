// `dsync status`: one row per node — service, id, Raft state, term, leader, lag.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { DsyncApiError, nodeHealth, type NodeHealth } from '../client/index.js';

export const DEFAULT_DEV_DIR = '.dsync/dev';

/** The nodes of `dsync dev` (its cluster.json), else every default dev port; `guessed` says
 * that the list is a guess, so unreachable ports are not worth a row each. */
export function defaultUrls(devDir = DEFAULT_DEV_DIR): { urls: string[]; guessed: boolean } {
  const file = join(devDir, 'cluster.json');
  if (existsSync(file)) {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Array<{ url: string }> };
    // Only HTTP nodes have /health (the dev Redis is listed with a redis:// url).
    return { urls: doc.nodes.map((n) => n.url).filter((u) => u.startsWith('http')),
      guessed: false };
  }
  const ports = [8000, 8001, 8002, 8100, 8101, 8102, 8200, 8201, 8202];
  return { urls: ports.map((p) => `http://127.0.0.1:${p}`), guessed: true };
}

async function health(url: string): Promise<NodeHealth | Error> {
  const base = url.replace(/\/$/, '');
  try {
    return await nodeHealth(base, 2000);
  } catch (err) {
    // The row already shows the URL: keep only why.
    if (err instanceof DsyncApiError) {
      return new Error(err.message.replace(`cannot reach ${base}/health: `, ''));
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

export async function statusTable(urls: string[], hideDown = false):
  Promise<{ text: string; down: number }> {
  const all = await Promise.all(urls.map(async (u) => [u, await health(u)] as const));
  const anyUp = all.some(([, h]) => !(h instanceof Error));
  const results = hideDown && anyUp ? all.filter(([, h]) => !(h instanceof Error)) : all;
  const t = new Table({ head: ['service', 'node', 'url', 'state', 'term', 'leader', 'commit', 'lag'],
    style: { head: [], border: [] } });
  // Lag is measured against the highest commit index seen in the same service.
  const maxCommit = new Map<string, number>();
  for (const [, h] of results) {
    if (h instanceof Error || !h.raft) continue;
    const s = h.service ?? '?';
    maxCommit.set(s, Math.max(maxCommit.get(s) ?? 0, h.raft.commitIndex));
  }
  let down = 0;
  for (const [u, h] of results) {
    if (h instanceof Error) {
      down++;
      t.push(['?', '?', u, `DOWN (${h.message})`, '', '', '', '']);
      continue;
    }
    if (h.raft) {
      const lag = (maxCommit.get(h.service ?? '?') ?? 0) - h.raft.appliedIndex;
      t.push([h.service ?? '?', h.node ?? '?', u, h.raft.state, String(h.raft.term),
        h.raft.leader ?? '-', String(h.raft.commitIndex), String(lag)]);
    } else if (h.partitions) {
      const led = h.partitions.filter((p) => p.state === 'leader').length;
      t.push([h.service ?? '?', h.node ?? '?', u, `${h.partitions.length} partitions, leads ${led}`,
        '', '', '', '']);
    } else {
      t.push([h.service ?? '?', h.node ?? '?', u, 'up', '', '', '', '']);
    }
  }
  return { text: t.toString(), down };
}
