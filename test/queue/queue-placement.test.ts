// Placement of partitions on real pods: with five pods every partition lives on the three the
// placement names and leadership is spread so that pod leader counts differ by at most one;
// a sixth pod added to the ring (every pod restarted with the longer peer list, the new one
// with --join) takes over about R·P/N replicas through the runtime's membership changes
// (learner, caught up from a snapshot, promoted, the old member removed), and the pods that
// lost a partition stop hosting it. Messages published before the move are still there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planPlacement } from '../../src/ring/placement.js';
import type { Cluster, ClusterNode } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';
import {
  partitionOfTopic, partitionsOf, QueueApi, startQueueCluster, waitReady, type PartitionRow,
} from './queue-cluster.js';

const PARTITIONS = 16;
const REPLICAS = 3;
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startQueueCluster({ size: 6, peerCount: 5, startNodes: 5,
    partitions: PARTITIONS, nodeArgs: (i) => (i === 5 ? ['--join'] : []) });
});
afterAll(async () => { await cluster.stop(); });

const ids = (nodes: readonly ClusterNode[]): string[] => nodes.map((n) => n.id);

/** Per partition, the pods that host it and the configuration its leader reports. */
async function layout(nodes: readonly ClusterNode[]): Promise<Map<number,
  { hosts: string[]; leader: string | null; leaderRow: PartitionRow | null }>> {
  const out = new Map<number, { hosts: string[]; leader: string | null;
    leaderRow: PartitionRow | null }>();
  for (const n of nodes) {
    for (const r of (await partitionsOf(n)) ?? []) {
      const e = out.get(r.partition) ?? { hosts: [], leader: null, leaderRow: null };
      e.hosts.push(n.id);
      if (r.state === 'leader') {
        e.leader = n.id;
        e.leaderRow = r;
      }
      out.set(r.partition, e);
    }
  }
  return out;
}

/** Waits until the pods host exactly `sets` and each partition's leader has exactly that
 * set as voters, with leader counts per pod within one of each other. */
async function waitPlaced(nodes: readonly ClusterNode[], sets: string[][]): Promise<void> {
  let last = '';
  try {
    await waitFor('the placement on the pods, with balanced leaders', async () => {
      const l = await layout(nodes);
      const counts = new Map(ids(nodes).map((id) => [id, 0]));
      const wrong: string[] = [];
      for (let p = 0; p < PARTITIONS; p++) {
        const e = l.get(p);
        const want = [...sets[p]!].sort();
        if (e === undefined || e.leader === null || e.leaderRow === null) {
          wrong.push(`${p}: no leader`);
          continue;
        }
        counts.set(e.leader, (counts.get(e.leader) ?? 0) + 1);
        if (e.hosts.sort().join() !== want.join()) wrong.push(`${p}: hosted on ${e.hosts}`);
        if ([...e.leaderRow.voters].sort().join() !== want.join() ||
          e.leaderRow.learners.length > 0) {
          wrong.push(`${p}: voters ${e.leaderRow.voters} learners ${e.leaderRow.learners}`);
        }
      }
      const c = [...counts.values()];
      if (Math.max(...c) - Math.min(...c) > 1) wrong.push(`leaders per pod ${[...counts]}`);
      last = wrong.join('; ');
      return wrong.length === 0;
    }, 90_000, 250);
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${last}`, { cause: err });
  }
}

/** A topic name on each partition. */
function topicPerPartition(): string[] {
  const out: Array<string | undefined> = new Array<string | undefined>(PARTITIONS).fill(undefined);
  for (let i = 0; out.includes(undefined); i++) {
    out[partitionOfTopic(`placed-${i}`, PARTITIONS)] ??= `placed-${i}`;
  }
  return out as string[];
}

describe('placement', { timeout: 240_000 }, () => {
  it('5 pods: every partition on the 3 pods the placement names, leaders balanced within one',
    async () => {
      const five = cluster.nodes.slice(0, 5);
      const sets = planPlacement(ids(five), PARTITIONS, REPLICAS).sets;
      for (const set of sets) expect(new Set(set).size).toBe(REPLICAS);
      await waitPlaced(five, sets);
    });

  it('a sixth pod moves at most about R·P/N replicas, through learner, promotion and removal',
    async () => {
      const five = cluster.nodes.slice(0, 5);
      const before = planPlacement(ids(five), PARTITIONS, REPLICAS).sets;
      const after = planPlacement(ids(cluster.nodes), PARTITIONS, REPLICAS).sets;
      const moved = after.reduce((n, set, p) =>
        n + set.filter((id) => !before[p]!.includes(id)).length, 0);
      expect(moved).toBeGreaterThan(0);
      expect(moved).toBeLessThanOrEqual(Math.ceil(REPLICAS * PARTITIONS / 6) + 2);

      const topics = topicPerPartition();
      const api = new QueueApi(five[0]!.url);
      for (const t of topics) await api.publish(t, { body: { t } });

      cluster.setPeerCount(6);
      await Promise.all(five.map((n) => n.stop()));
      for (const n of cluster.nodes) n.start();
      await Promise.all(cluster.nodes.map((n) => n.waitHealthy(60_000)));
      await waitPlaced(cluster.nodes, after);
      await waitReady(cluster.nodes);

      // Every message is still there, whoever holds its partition now.
      const newcomer = new QueueApi(cluster.nodes[5]!.url);
      for (const t of topics) {
        const got = await newcomer.receive(t, { max: 10 });
        expect(got.map((m) => m.body), t).toEqual([{ t }]);
      }
    });
});
