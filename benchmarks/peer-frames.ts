// Many groups on one pod: what 3 `dsync serve --service queue` pods (R = 3, fsync on) send each
// other with P = 1, 16 and 64 partitions, idle and under the same light publish load spread
// over many topics. Per pod, from its own /metrics: Raft frames/s by lane
// (dsync_peer_frames_sent_total), Raft messages/s inside them
// (dsync_peer_raft_messages_sent_total) and WAL fsyncs/s (dsync_wal_fsync_duration_seconds).
// The raft host puts what all its groups send one peer on one lane in one event-loop job into
// one frame, so frames/s should stay nearly flat from P = 1 to 64 while messages/s grow.
// Run (after `npm run build`):
//   npx tsx benchmarks/peer-frames.ts [--quick] [--partitions 1,16,64] [--rate N]
//     [--topics N] [--idle-ms N] [--duration-ms N]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { assert } from '../src/assert.js';
import { startDsyncLockCluster, type DsyncLockCluster } from './lib/dsync-lock-cluster.js';
import { DsyncQueueHttp } from './lib/dsync-queue-http.js';
import {
  diffCounters, scrapeNodeCounters, type NodeCounters,
} from './lib/dsync-node-stats.js';
import { waitFor } from './lib/proc.js';
import { payload } from './lib/queue-bench.js';
import { leadersSettled, loadLine } from './queue.js';

export const DEFAULT_PARTITION_COUNTS = [1, 16, 64];
/** Publishes per second, all pods together: light, so the machine is not what is measured. */
export const DEFAULT_RATE_PER_SEC = 400;
/** Topics the load is spread over (each hashes to a partition). */
export const DEFAULT_TOPICS = 128;
export const DEFAULT_IDLE_MS = 5_000;
export const DEFAULT_DURATION_MS = 10_000;
/** Publishes waiting for an answer at most; a send beyond it is skipped (and counted). */
const IN_FLIGHT_MAX = 256;
/** The load's clock: this many sends per second are spread over this many slots. */
const SLOT_MS = 10;
const LEADER_TIMEOUT_MS = 30_000;

interface Args {
  partitions: number[];
  ratePerSec: number;
  topics: number;
  idleMs: number;
  durationMs: number;
}

interface PodRow {
  partitions: number;
  phase: 'idle' | 'load';
  pod: string;
  controlFramesPerSec: number;
  bulkFramesPerSec: number;
  raftMessagesPerSec: number;
  fsyncsPerSec: number;
  publishesPerSec: number;
}

function parse(argv = process.argv.slice(2)): Args {
  const { values } = parseArgs({ args: argv, options: {
    quick: { type: 'boolean' }, partitions: { type: 'string' }, rate: { type: 'string' },
    topics: { type: 'string' }, 'idle-ms': { type: 'string' },
    'duration-ms': { type: 'string' } } });
  const int = (v: string | undefined, dflt: number): number => {
    const n = v === undefined ? dflt : Number(v);
    assert(Number.isSafeInteger(n) && n > 0, `expected a positive integer, got ${v}`);
    return n;
  };
  const quick = values.quick === true;
  return {
    partitions: values.partitions === undefined ? DEFAULT_PARTITION_COUNTS
      : values.partitions.split(',').map((p) => int(p, 1)),
    ratePerSec: int(values.rate, DEFAULT_RATE_PER_SEC),
    topics: int(values.topics, DEFAULT_TOPICS),
    idleMs: int(values['idle-ms'], quick ? 2_000 : DEFAULT_IDLE_MS),
    durationMs: int(values['duration-ms'], quick ? 3_000 : DEFAULT_DURATION_MS),
  };
}

/** The client of each topic's partition leader (topics created first). */
async function topicLeaders(cluster: DsyncLockCluster, clients: Map<string, DsyncQueueHttp>,
  topics: readonly string[]): Promise<Map<string, DsyncQueueHttp>> {
  const any = clients.get(cluster.nodes[0]!.id)!;
  const out = new Map<string, DsyncQueueHttp>();
  for (const topic of topics) {
    await waitFor(`a leader of ${topic}'s partition`, async () => {
      await any.configure(topic, {});
      const leader = await any.leaderOf(topic);
      const client = leader === null ? undefined : clients.get(leader);
      if (client !== undefined) out.set(topic, client);
      return client !== undefined;
    }, { timeoutMs: LEADER_TIMEOUT_MS, pollMs: 100 });
  }
  return out;
}

/** Publishes at `ratePerSec` for `durationMs`, round-robin over the topics, each to its
 * partition's leader. Returns the publishes answered 201. */
async function publishAtRate(leaders: Map<string, DsyncQueueHttp>, ratePerSec: number,
  durationMs: number): Promise<{ ok: number; failed: number; skipped: number }> {
  const topics = [...leaders.keys()];
  const body = payload();
  const counts = { ok: 0, failed: 0, skipped: 0 };
  let inFlight = 0;
  let sent = 0;
  let next = 0;
  const t0 = performance.now();
  const pending = new Set<Promise<void>>();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - t0;
      if (elapsed >= durationMs) {
        clearInterval(timer);
        resolve();
        return;
      }
      const due = Math.floor(elapsed * ratePerSec / 1000);
      for (; sent < due; sent++) {
        if (inFlight >= IN_FLIGHT_MAX) { counts.skipped++; continue; }
        const topic = topics[next++ % topics.length]!;
        inFlight++;
        const p = leaders.get(topic)!.publish(topic, body)
          .then(() => { counts.ok++; }, () => { counts.failed++; })
          .finally(() => { inFlight--; pending.delete(p); });
        pending.add(p);
      }
    }, SLOT_MS);
  });
  await Promise.all(pending);
  return counts;
}

async function scrapeAll(cluster: DsyncLockCluster): Promise<NodeCounters[]> {
  return await Promise.all(cluster.nodes.map((n) => scrapeNodeCounters(n.url)));
}

function podRows(cluster: DsyncLockCluster, partitions: number, phase: PodRow['phase'],
  before: NodeCounters[], after: NodeCounters[], seconds: number, publishes: number): PodRow[] {
  const rate = (x: number): number => Number((x / seconds).toFixed(1));
  return cluster.nodes.map((n, i) => {
    const d = diffCounters(after[i]!, before[i]!);
    return { partitions, phase, pod: n.id, controlFramesPerSec: rate(d.controlFrames),
      bulkFramesPerSec: rate(d.bulkFrames), raftMessagesPerSec: rate(d.raftMessages),
      fsyncsPerSec: rate(d.fsyncs), publishesPerSec: rate(publishes) };
  });
}

async function benchPartitions(partitions: number, a: Args): Promise<PodRow[]> {
  const cluster = await startDsyncLockCluster({ service: 'queue',
    extraServeArgs: ['--partitions', String(partitions)] });
  const clients = new Map(cluster.nodes.map((n) => [n.id, new DsyncQueueHttp(n.url, 64)]));
  try {
    const topics = Array.from({ length: a.topics }, (_, i) => `frames-${i}`);
    const leaders = await topicLeaders(cluster, clients, topics);
    await leadersSettled(cluster);
    const rows: PodRow[] = [];
    let before = await scrapeAll(cluster);
    let t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, a.idleMs));
    let after = await scrapeAll(cluster);
    rows.push(...podRows(cluster, partitions, 'idle', before, after,
      (performance.now() - t0) / 1000, 0));
    before = after;
    t0 = performance.now();
    const done = await publishAtRate(leaders, a.ratePerSec, a.durationMs);
    after = await scrapeAll(cluster);
    const seconds = (performance.now() - t0) / 1000;
    if (done.failed + done.skipped > 0) {
      process.stderr.write(`peer-frames: P=${partitions}: ${done.failed} publishes failed, ` +
        `${done.skipped} skipped (over ${IN_FLIGHT_MAX} in flight)\n`);
    }
    rows.push(...podRows(cluster, partitions, 'load', before, after, seconds, done.ok));
    return rows;
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await cluster.stop();
  }
}

function printTable(rows: readonly PodRow[]): void {
  const out = ['| P | phase | pod | control frames/s | bulk frames/s | Raft messages/s | ' +
    'messages/frame | fsyncs/s | publishes/s (all pods) |', '|---|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const frames = r.controlFramesPerSec + r.bulkFramesPerSec;
    const perFrame = frames > 0 ? (r.raftMessagesPerSec / frames).toFixed(1) : '-';
    out.push(`| ${r.partitions} | ${r.phase} | ${r.pod} | ${r.controlFramesPerSec} | ` +
      `${r.bulkFramesPerSec} | ${r.raftMessagesPerSec} | ${perFrame} | ${r.fsyncsPerSec} | ` +
      `${r.phase === 'idle' ? '-' : r.publishesPerSec} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

/** The mean over the pods of each (P, phase). */
function meanRows(rows: readonly PodRow[]): PodRow[] {
  const out: PodRow[] = [];
  for (const r of rows) {
    if (out.some((o) => o.partitions === r.partitions && o.phase === r.phase)) continue;
    const same = rows.filter((o) => o.partitions === r.partitions && o.phase === r.phase);
    const mean = (f: (x: PodRow) => number): number =>
      Number((same.reduce((t, x) => t + f(x), 0) / same.length).toFixed(1));
    out.push({ partitions: r.partitions, phase: r.phase, pod: 'mean per pod',
      controlFramesPerSec: mean((x) => x.controlFramesPerSec),
      bulkFramesPerSec: mean((x) => x.bulkFramesPerSec),
      raftMessagesPerSec: mean((x) => x.raftMessagesPerSec),
      fsyncsPerSec: mean((x) => x.fsyncsPerSec), publishesPerSec: r.publishesPerSec });
  }
  return out;
}

async function main(): Promise<void> {
  const a = parse();
  const before = loadLine('before');
  process.stderr.write(`peer-frames: ${before}\n`);
  const rows: PodRow[] = [];
  for (const p of a.partitions) rows.push(...await benchPartitions(p, a));
  const after = loadLine('after');
  process.stdout.write(`Many groups on one pod: 3 queue pods, R = 3, fsync on; load ` +
    `${a.ratePerSec} publishes/s of 100 bytes over ${a.topics} topics, idle ` +
    `${a.idleMs / 1000} s, load ${a.durationMs / 1000} s\n`);
  printTable(rows);
  process.stdout.write('\n');
  printTable(meanRows(rows));
  process.stdout.write(`- ${before}; ${after}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
  process.exit(0);
}
