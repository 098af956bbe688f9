// Many groups, one disk (issue 9): 3 queue pods (R = 3, fsync on) with P = 1, 16 and 64
// partitions under the same publish load, spread over many topics (and so over every
// partition), sent to each topic's leader. Per pod, from its /metrics: fsyncs/s of the pod
// WAL (dsync_wal_fsyncs_total), WAL writes/s (dsync_wal_group_commits_total), bytes written/s,
// and Raft frames sent/s to peers (dsync_peer_frames_sent_total, both lanes). With one WAL
// per pod, fsyncs/s stay nearly flat from P = 1 to 64; the frames are the Raft host's side
// (coalesced per pod pair, see benchmarks/peer-frames.ts).
// --perf: also count each pod's fdatasync and fsync system calls during the load with
// `perf stat` (kernel tracepoints, root only): the same figure for a version without the
// WAL metrics (the one-WAL-per-group layout before), and a check of the metric.
// Run (after `npm run build`):
//   npx tsx benchmarks/queue-disk.ts [--json] [--partitions 1,16,64] [--rate N]
//     [--duration-ms N] [--topics N] [--perf]
import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { assert } from '../src/assert.js';
import { RetryOn503 } from './locks.js';
import { leadersSettled } from './queue.js';
import { startDsyncLockCluster, type DsyncLockCluster } from './lib/dsync-lock-cluster.js';
import { DsyncQueueHttp } from './lib/dsync-queue-http.js';
import { describeMachine, machineLine } from './lib/machine.js';
import { waitFor } from './lib/proc.js';
import { payload } from './lib/queue-bench.js';

export const DEFAULT_PARTITION_COUNTS = [1, 16, 64] as const;
/** Publishes per second offered to the cluster, the same for every P. */
export const DEFAULT_RATE = 1000;
export const DEFAULT_DURATION_MS = 10_000;
export const DEFAULT_TOPICS = 256;
/** Publishes in flight at most (beyond it the pacer waits: the offered rate is then missed,
 * which the row shows as publishes/s below the rate). */
const IN_FLIGHT_MAX = 256;
const PACE_MS = 10;
const LEADER_TIMEOUT_MS = 30_000;

export interface DiskRow {
  readonly partitions: number;
  readonly pod: string;
  readonly publishesPerSec: number;
  readonly fsyncsPerSec: number;
  readonly walWritesPerSec: number;
  readonly walBytesPerSec: number;
  readonly peerFramesPerSec: number;
  /** fdatasync + fsync system calls per second counted by perf (--perf), else null. */
  readonly syncCallsPerSec: number | null;
  readonly loadAvgStart: number;
  readonly loadAvgEnd: number;
}

/** The sum of a series' samples in a Prometheus text exposition (0 when absent). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) {
      continue;
    }
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

const SERIES = ['dsync_wal_fsyncs_total', 'dsync_wal_group_commits_total',
  'dsync_wal_bytes_written_total', 'dsync_peer_frames_sent_total'] as const;

async function scrape(url: string): Promise<number[]> {
  const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await r.text();
  return SERIES.map((s) => metricSum(text, s));
}

/** The client of each topic's leader (topics created first, leaders settled). */
async function leaderClients(cluster: DsyncLockCluster, clients: Map<string, DsyncQueueHttp>,
  topics: readonly string[]): Promise<DsyncQueueHttp[]> {
  const any = [...clients.values()][0];
  assert(any !== undefined, 'a client per node');
  for (const t of topics) await any.configure(t, {});
  await leadersSettled(cluster);
  return Promise.all(topics.map(async (t) => {
    let leader: string | null = null;
    await waitFor(`a leader of ${t}`, async () => (leader = await any.leaderOf(t)) !== null,
      { timeoutMs: LEADER_TIMEOUT_MS, pollMs: 100 });
    const c = leader === null ? undefined : clients.get(leader);
    assert(c !== undefined, `a client for ${String(leader)}`);
    return c;
  }));
}

/** Offers `rate` publishes/s for `durationMs`, round-robin over the topics; returns how many
 * were answered 201. */
async function offerLoad(targets: readonly DsyncQueueHttp[], topics: readonly string[],
  rate: number, durationMs: number): Promise<number> {
  const body = payload();
  let inFlight = 0;
  let done = 0;
  let next = 0;
  const pending = new Set<Promise<void>>();
  // A partition's leadership may move during the row (to its preferred pod): retried.
  const retry = new RetryOn503();
  const t0 = performance.now();
  for (let tick = 1; performance.now() - t0 < durationMs; tick++) {
    const due = Math.floor((tick * PACE_MS * rate) / 1000) - Math.floor(((tick - 1) * PACE_MS *
      rate) / 1000);
    for (let i = 0; i < due && inFlight < IN_FLIGHT_MAX; i++) {
      const k = next++ % topics.length;
      const client = targets[k];
      const topic = topics[k];
      assert(client !== undefined && topic !== undefined, 'a topic per target');
      inFlight++;
      const p = retry.run(() => client.publish(topic, body)).then(() => { done++; }).finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
    const wait = t0 + tick * PACE_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(pending);
  return done;
}

const SYNC_EVENTS = 'syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync';

/** `perf stat` counting the sync system calls of `pid` until stopped; resolves the count. */
function countSyncCalls(pid: number): { stop(): Promise<number> } {
  const perf: ChildProcess = spawn('perf', ['stat', '-x', ',', '-e', SYNC_EVENTS, '-p',
    String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  perf.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((resolve) => perf.on('exit', () => resolve()));
  return { stop: async () => {
    perf.kill('SIGINT');
    await exited;
    let n = 0;
    for (const line of err.split('\n')) {
      const count = Number(line.split(',')[0]);
      if (line.includes('syscalls:sys_enter_') && Number.isFinite(count)) n += count;
    }
    return n;
  } };
}

export async function benchQueueDisk(partitions: number, rate: number, durationMs: number,
  topicCount: number, perf = false): Promise<DiskRow[]> {
  const cluster = await startDsyncLockCluster({ service: 'queue',
    extraServeArgs: ['--partitions', String(partitions)] });
  try {
    const clients = new Map(cluster.nodes.map((n) => [n.id, new DsyncQueueHttp(n.url,
      IN_FLIGHT_MAX)] as const));
    const topics = Array.from({ length: topicCount }, (_, i) => `disk-${i}`);
    const targets = await leaderClients(cluster, clients, topics);
    const loadAvgStart = loadavg()[0] ?? 0;
    const counters = perf ? cluster.nodes.map((n) => {
      assert(n.pid !== undefined, 'a running pod has a pid');
      return countSyncCalls(n.pid);
    }) : [];
    const before = await Promise.all(cluster.nodes.map((n) => scrape(n.url)));
    const t0 = performance.now();
    const published = await offerLoad(targets, topics, rate, durationMs);
    const seconds = (performance.now() - t0) / 1000;
    const after = await Promise.all(cluster.nodes.map((n) => scrape(n.url)));
    const syncCalls = await Promise.all(counters.map((c) => c.stop()));
    const loadAvgEnd = loadavg()[0] ?? 0;
    return cluster.nodes.map((n, i) => {
      const d = SERIES.map((_, s) => ((after[i]?.[s] ?? 0) - (before[i]?.[s] ?? 0)) / seconds);
      return { partitions, pod: n.id, publishesPerSec: published / seconds,
        fsyncsPerSec: d[0] ?? 0, walWritesPerSec: d[1] ?? 0, walBytesPerSec: d[2] ?? 0,
        peerFramesPerSec: d[3] ?? 0, loadAvgStart, loadAvgEnd,
        syncCallsPerSec: perf ? (syncCalls[i] ?? 0) / seconds : null };
    });
  } finally {
    await cluster.stop();
  }
}

function printDiskRows(rows: readonly DiskRow[]): void {
  const f = (v: number): string => v.toFixed(0).padStart(9);
  console.log('    P  pod              publish/s   fsync/s  writes/s  KiB/s   frames/s' +
    '  perf-sync/s  load');
  for (const r of rows) {
    console.log(`${String(r.partitions).padStart(5)}  ${r.pod.padEnd(15)}${f(r.publishesPerSec)}` +
      `${f(r.fsyncsPerSec)}${f(r.walWritesPerSec)}${f(r.walBytesPerSec / 1024).slice(2)}` +
      `${f(r.peerFramesPerSec)}${r.syncCallsPerSec === null ? '        -' :
        f(r.syncCallsPerSec)}     ${r.loadAvgStart.toFixed(1)}-${r.loadAvgEnd.toFixed(1)}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    json: { type: 'boolean', default: false },
    partitions: { type: 'string', default: DEFAULT_PARTITION_COUNTS.join(',') },
    rate: { type: 'string', default: String(DEFAULT_RATE) },
    'duration-ms': { type: 'string', default: String(DEFAULT_DURATION_MS) },
    topics: { type: 'string', default: String(DEFAULT_TOPICS) },
    perf: { type: 'boolean', default: false },
  } });
  const counts = values.partitions.split(',').map(Number);
  const rate = Number(values.rate);
  const durationMs = Number(values['duration-ms']);
  const topics = Number(values.topics);
  assert(counts.every((p) => Number.isSafeInteger(p) && p >= 1) && rate > 0 &&
    durationMs > 0 && topics >= 1, 'usage: --partitions 1,16,64 --rate N --duration-ms N');
  console.log(machineLine(describeMachine()));
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`offered: ${rate} publishes/s of 100 bytes over ${topics} topics for ` +
    `${durationMs} ms, to each topic's leader`);
  const rows: DiskRow[] = [];
  for (const p of counts) {
    const got = await benchQueueDisk(p, rate, durationMs, topics, values.perf);
    rows.push(...got);
    if (!values.json) printDiskRows(got);
  }
  console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  if (values.json) console.log(JSON.stringify(rows, null, 2));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
