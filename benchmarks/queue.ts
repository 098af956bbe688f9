// The queue: dsync (3 `dsync serve --service queue` pods, R = 3, fsync on) next to NATS
// JetStream (3 servers, a stream with 3 replicas, file storage) and a RabbitMQ quorum queue
// (one node), in one run on this machine. Per system: publish of 100-byte messages, one per
// request, with 1 and 64 in flight; for dsync also batches of 100 per request; then consume
// + ack of a prefilled queue by 4 consumers taking up to 100 messages at a time (for dsync
// twice: each consumer waiting for its ack before it receives again, and with its ack in
// flight while it receives, as the SDK's consume loop and the other two systems do). Every
// server is started by this script on free ports with temp dirs and stopped by pid at the end.
// Run (after `npm run build`):
//   npx tsx benchmarks/queue.ts [--quick] [--json] [--duration-ms N] [--messages N]
//     [--systems dsync,nats,rabbitmq] [--only 'batches;consume']
// --only: dsync's rows whose setting contains one of these (`=name`: exactly that one).
// DSYNC_BENCH_CPU_PROF_DIR=dir: a CPU profile of every pod per dsync row, for
// benchmarks/profile-summary.ts. DSYNC_BENCH_SERVE_ARGS: more `dsync serve` flags.
// --quick: 1 s per publish row and 2,000 messages to consume (shows that it works; the
// figures to quote come from the defaults on a quiet machine).
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { assert } from '../src/assert.js';
import { RetryOn503 } from './locks.js';
import { DsyncHttpError, startDsyncLockCluster } from './lib/dsync-lock-cluster.js';
import type { DsyncLockCluster } from './lib/dsync-lock-cluster.js';
import { DsyncQueueHttp } from './lib/dsync-queue-http.js';
import { withQueueCosts } from './lib/dsync-queue-stats.js';
import { startNatsCluster } from './lib/nats-cluster.js';
import { benchNatsQueue } from './lib/nats-queue.js';
import { waitFor } from './lib/proc.js';
import {
  batchSetting, CONSUME_BATCH, consumeRow, consumeSetting, DEFAULT_BATCH_IN_FLIGHT,
  DEFAULT_BATCH_MESSAGES, DEFAULT_CONSUME_MESSAGES, DEFAULT_CONSUMERS,
  DEFAULT_PUBLISH_IN_FLIGHT, DEFAULT_QUEUE_DURATION_MS, payload, publishRow, publishSetting,
  QUICK_CONSUME_MESSAGES, QUICK_DURATION_MS, QUICK_WARMUP_MS,
} from './lib/queue-bench.js';
import type { BatchDone, QueueBenchOptions } from './lib/queue-bench.js';
import { benchRabbitQueue } from './lib/rabbitmq-queue.js';
import { startRabbitMq } from './lib/rabbitmq-server.js';
import { printRows, ratiosTo, selected } from './lib/stats.js';
import type { Row } from './lib/stats.js';

/** The issue's targets: dsync's unbatched publish at 64 in flight at least NATS R3's, at
 * least 50k messages/s batched, consume + ack at least RabbitMQ's. */
export const TARGET_PUBLISH_RATIO_NATS = 1;
export const TARGET_BATCHED_MESSAGES_PER_SEC = 50_000;
export const TARGET_CONSUME_RATIO_RABBITMQ = 1;
/** How long a topic's partition may take to have a leader. */
const LEADER_TIMEOUT_MS = 30_000;
/** Group of the consume row. */
const CONSUME_GROUP = 'bench';
/** Leaders count as settled once no partition's leader changed for this long (right after
 * start-up each partition moves to its preferred pod). */
const LEADERS_SETTLED_MS = 3000;
/** Long poll of the consume row's receives. */
const CONSUME_WAIT_MS = 1000;
const SYSTEMS = ['dsync', 'nats', 'rabbitmq'] as const;

/** dsync's consume row with each consumer's ack in flight while it receives again. */
export function pipelinedConsumeSetting(consumers: number): string {
  return `${consumeSetting(consumers)}, acks pipelined`;
}
type System = (typeof SYSTEMS)[number];

interface DsyncQueueSide {
  readonly cluster: DsyncLockCluster;
  readonly clients: Map<string, DsyncQueueHttp>;
}

/** The client of the node that leads `topic`'s partition, after creating the topic (retried
 * while the partition elects its first leader). */
async function leaderClient(side: DsyncQueueSide, topic: string): Promise<DsyncQueueHttp> {
  const any = [...side.clients.values()][0];
  assert(any !== undefined, 'a client per node');
  let leader: string | null = null;
  await waitFor(`a leader of ${topic}'s partition`, async () => {
    await any.configure(topic, {});
    leader = await any.leaderOf(topic);
    return leader !== null;
  }, { timeoutMs: LEADER_TIMEOUT_MS, pollMs: 100 });
  const client = leader === null ? undefined : side.clients.get(leader);
  assert(client !== undefined, `a client for the leader ${String(leader)}`);
  return client;
}

/** Waits until every partition that any pod reports has a leader, and none changed for
 * LEADERS_SETTLED_MS: a leadership transfer inside a measured row would measure the transfer. */
export async function leadersSettled(cluster: DsyncLockCluster): Promise<void> {
  let last = '';
  let since = performance.now();
  await waitFor('every partition leader to settle', async () => {
    const views = await Promise.all(cluster.nodes.map((n) => n.health()));
    const leaders = new Map<number, string | null>();
    for (const v of views) {
      const parts = (v?.partitions ?? []) as Array<{ partition: number; leader: string | null }>;
      for (const p of parts) if (p.leader !== null || !leaders.has(p.partition)) {
        leaders.set(p.partition, p.leader);
      }
    }
    const now = JSON.stringify([...leaders].sort((a, b) => a[0] - b[0]));
    if (now !== last || [...leaders.values()].includes(null) || leaders.size === 0) {
      last = now;
      since = performance.now();
      return false;
    }
    return performance.now() - since >= LEADERS_SETTLED_MS;
  }, { timeoutMs: LEADER_TIMEOUT_MS * 2, pollMs: 250 });
}

async function prefillDsync(http: DsyncQueueHttp, topic: string, total: number): Promise<void> {
  const bodies = Array.from({ length: CONSUME_BATCH }, payload);
  let left = total;
  await Promise.all(Array.from({ length: DEFAULT_BATCH_IN_FLIGHT }, async () => {
    while (left > 0) {
      const n = Math.min(left, bodies.length);
      left -= n;
      await http.publishBatch(topic, bodies.slice(0, n));
    }
  }));
}

/** Each consumer takes up to CONSUME_BATCH and acks them all in one request. `pipelined`:
 * it asks for its next batch while that ack is in flight (one ack in flight per consumer),
 * as the SDK's consume loop does; else it waits for the ack first. */
async function drainDsync(http: DsyncQueueHttp, topic: string, total: number,
  consumers: number, done: BatchDone, pipelined = false): Promise<void> {
  let acked = 0;
  // Receives still long-polling once the last message is acked are called off.
  const finished = new AbortController();
  await Promise.all(Array.from({ length: consumers }, async () => {
    let inFlight: Promise<void> = Promise.resolve();
    while (acked < total) {
      const t0 = process.hrtime.bigint();
      const got = await http.receive(topic, CONSUME_GROUP, CONSUME_BATCH, CONSUME_WAIT_MS,
        finished.signal).catch((err: unknown) => {
        if (finished.signal.aborted) return [];
        throw err;
      });
      if (got.length === 0) continue;
      await inFlight;
      inFlight = http.ack(topic, CONSUME_GROUP, got.map((m) => m.receipt)).then((n) => {
        acked += n;
        done(n, process.hrtime.bigint() - t0);
        if (acked >= total) finished.abort();
      });
      if (!pipelined) await inFlight;
    }
    await inFlight;
  }));
}

export interface DsyncQueueBenchExtra {
  /** More `dsync serve` flags (DSYNC_BENCH_SERVE_ARGS). */
  readonly serveArgs?: readonly string[];
  /** One CPU profile per node and row into this directory (DSYNC_BENCH_CPU_PROF_DIR). */
  readonly cpuProfDir?: string;
  /** `--only`: the rows to run (null: all). */
  readonly only?: readonly string[] | null;
}

/** Runs a row against `http`'s pod, the leader of its topic, and says what it cost. */
type Measure = (http: DsyncQueueHttp, row: () => Promise<Row>) => Promise<Row>;

/** The consume rows: each consumer waiting for its ack, and with its ack in flight. */
async function consumeRows(side: DsyncQueueSide, o: QueueBenchOptions,
  run: (name: string, row: () => Promise<Row>) => Promise<void>, measure: Measure):
  Promise<void> {
  for (const pipelined of [false, true]) {
    const name = pipelined ? pipelinedConsumeSetting(o.consumers) : consumeSetting(o.consumers);
    await run(name, async () => {
      const topic = pipelined ? 'bench-consume-pipelined' : 'bench-consume';
      const http = await leaderClient(side, topic);
      process.stderr.write(`queue: dsync, filling ${o.consumeMessages} messages to consume\n`);
      await prefillDsync(http, topic, o.consumeMessages);
      process.stderr.write(`queue: dsync, ${name}\n`);
      return measure(http, () => consumeRow('dsync', name, o.consumeMessages,
        (done) => drainDsync(http, topic, o.consumeMessages, o.consumers, done, pipelined)));
    });
  }
}

/** Topics the batched row spreads its batches over. */
const BATCH_TOPICS = 4;

/** dsync's rows: each setting on its own topic, sent to the node that leads its partition. */
export async function benchDsyncQueue(o: QueueBenchOptions, x: DsyncQueueBenchExtra = {}):
  Promise<Row[]> {
  const cpuProfDir = x.cpuProfDir;
  const cluster = await startDsyncLockCluster({ service: 'queue',
    extraServeArgs: x.serveArgs ?? [], ...(cpuProfDir === undefined ? {} : { cpuProfDir }) });
  const connections = Math.max(...o.publishInFlight, DEFAULT_BATCH_IN_FLIGHT, o.consumers);
  const side: DsyncQueueSide = { cluster, clients: new Map(cluster.nodes.map((n) =>
    [n.id, new DsyncQueueHttp(n.url, connections)])) };
  const rows: Row[] = [];
  // A selected row runs (with cpuProfDir, inside one CPU profile per node); `row` sets it up.
  const run = async (name: string, row: () => Promise<Row>): Promise<void> => {
    if (!selected({ only: x.only ?? null }, name)) return;
    if (cpuProfDir === undefined) {
      rows.push(await row());
      return;
    }
    cluster.toggleCpuProfiles();
    try { rows.push(await row()); } finally {
      process.stderr.write(`queue: CPU profiles of "${name}": ${cluster.toggleCpuProfiles()}\n`);
    }
  };
  const pids = cluster.nodes.map((n) => n.pid).filter((pid) => pid !== undefined);
  const measure: Measure = async (http, row) => {
    const { row: r, line } = await withQueueCosts(pids, http.url, row);
    process.stderr.write(`queue: dsync, ${line}\n`);
    return r;
  };
  const body = payload();
  const retry = new RetryOn503();
  try {
    await leadersSettled(cluster);
    for (const inFlight of o.publishInFlight) {
      await run(publishSetting(inFlight), async () => {
        const topic = `bench-publish-${inFlight}`;
        const http = await leaderClient(side, topic);
        process.stderr.write(`queue: dsync, ${publishSetting(inFlight)} to ${http.url}\n`);
        return measure(http, () => publishRow('dsync', publishSetting(inFlight), inFlight, o,
          () => retry.run(() => http.publish(topic, body))));
      });
    }
    const bodies = Array.from({ length: DEFAULT_BATCH_MESSAGES }, payload);
    const batched = batchSetting(DEFAULT_BATCH_MESSAGES, DEFAULT_BATCH_IN_FLIGHT);
    await run(batched, async () => {
      // Over a few topics: at tens of thousands of messages/s, one topic of a 10 s row would
      // pass the topicRetainedBytes bound (64 MiB of messages nobody consumes) and get 429s.
      const targets = await Promise.all(Array.from({ length: BATCH_TOPICS }, async (_, i) =>
        ({ topic: `bench-batch-${i}`, http: await leaderClient(side, `bench-batch-${i}`) })));
      let next = 0;
      process.stderr.write(`queue: dsync, ${batched}, over ${BATCH_TOPICS} topics\n`);
      return measure(targets[0]!.http, () => publishRow('dsync', batched,
        DEFAULT_BATCH_IN_FLIGHT, o, () => {
          const t = targets[next++ % targets.length]!;
          return retry.run(() => t.http.publishBatch(t.topic, bodies));
        }, DEFAULT_BATCH_MESSAGES));
    });
    await consumeRows(side, o, run, measure);
    if (retry.retries > 0) process.stderr.write(`queue: dsync retried ${retry.retries} 503s\n`);
    return rows;
  } finally {
    await Promise.all([...side.clients.values()].map((c) => c.close()));
    await cluster.stop();
  }
}

interface QueueArgs {
  readonly json: boolean;
  /** `--only 'a;b'`: dsync's rows whose setting contains one of these (see selected()). */
  readonly only: readonly string[] | null;
  readonly systems: readonly System[];
  readonly bench: QueueBenchOptions;
}

function parseQueueArgs(argv: readonly string[] = process.argv.slice(2)): QueueArgs {
  const { values } = parseArgs({ args: [...argv], strict: true, options: {
    json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false },
    'duration-ms': { type: 'string' }, messages: { type: 'string' },
    systems: { type: 'string', default: SYSTEMS.join(',') }, only: { type: 'string' },
  } });
  const quick = values.quick ?? false;
  const intArg = (name: string, raw: string | undefined, dflt: number, min: number): number => {
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new Error(`--${name} must be an integer ≥ ${min}, got ${raw}`);
    }
    return n;
  };
  const systems = (values.systems ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of systems) {
    if (!(SYSTEMS as readonly string[]).includes(s)) {
      throw new Error(`--systems: unknown system "${s}"; choose from ${SYSTEMS.join(', ')}`);
    }
  }
  const only = values.only === undefined ? null
    : values.only.split(';').map((x) => x.trim()).filter((x) => x !== '');
  return {
    json: values.json ?? false, systems: systems as System[], only,
    bench: {
      durationMs: intArg('duration-ms', values['duration-ms'],
        quick ? QUICK_DURATION_MS : DEFAULT_QUEUE_DURATION_MS, 100),
      ...(quick ? { warmupMs: QUICK_WARMUP_MS } : {}),
      consumeMessages: intArg('messages', values.messages,
        quick ? QUICK_CONSUME_MESSAGES : DEFAULT_CONSUME_MESSAGES, 1),
      publishInFlight: DEFAULT_PUBLISH_IN_FLIGHT, consumers: DEFAULT_CONSUMERS,
    },
  };
}

/** One line per target of the issue: met or missed, with the figures it was judged on. */
export function queueTargetLines(rows: readonly Row[]): string[] {
  const find = (system: string | RegExp, setting: string): Row | undefined => rows.find((r) =>
    (typeof system === 'string' ? r.system === system : system.test(r.system)) &&
    r.setting === setting);
  const lines: string[] = [];
  const ratioLine = (what: string, setting: string, ref: RegExp, target: number,
    dsyncSetting = setting): void => {
    const d = find('dsync', dsyncSetting);
    const r = find(ref, setting);
    if (d === undefined || r === undefined || r.opsPerSec === 0) return;
    const x = d.opsPerSec / r.opsPerSec;
    lines.push(`${dsyncSetting}: ${x.toFixed(2)}× ${r.system} (target ≥ ${target}× ${what}): ` +
      `${x >= target ? 'met' : 'MISSED'}`);
  };
  ratioLine('NATS R3', publishSetting(64), /^NATS/, TARGET_PUBLISH_RATIO_NATS);
  const b = find('dsync', batchSetting(DEFAULT_BATCH_MESSAGES, DEFAULT_BATCH_IN_FLIGHT));
  if (b !== undefined) {
    lines.push(`${b.setting}: ${Math.round(b.opsPerSec).toLocaleString('en-US')} messages/s ` +
      `(target ≥ ${TARGET_BATCHED_MESSAGES_PER_SEC.toLocaleString('en-US')}): ` +
      `${b.opsPerSec >= TARGET_BATCHED_MESSAGES_PER_SEC ? 'met' : 'MISSED'}`);
  }
  ratioLine('RabbitMQ', consumeSetting(DEFAULT_CONSUMERS), /^RabbitMQ/,
    TARGET_CONSUME_RATIO_RABBITMQ);
  // RabbitMQ's and NATS's consumers never wait for an ack either (neither confirms one).
  ratioLine('RabbitMQ', consumeSetting(DEFAULT_CONSUMERS), /^RabbitMQ/,
    TARGET_CONSUME_RATIO_RABBITMQ, pipelinedConsumeSetting(DEFAULT_CONSUMERS));
  return lines;
}

export function loadLine(when: string): string {
  return `load average ${when}: ${loadavg().map((x) => x.toFixed(2)).join(', ')} ` +
    '(1, 5, 15 min)';
}

async function main(): Promise<void> {
  const args = parseQueueArgs();
  const before = loadLine('before');
  process.stderr.write(`queue: ${before}\n`);
  const rows: Row[] = [];
  const extraServeArgs = (process.env.DSYNC_BENCH_SERVE_ARGS ?? '').split(' ')
    .filter((a) => a !== '');
  if (args.systems.includes('dsync')) {
    const prof = process.env.DSYNC_BENCH_CPU_PROF_DIR;
    rows.push(...await benchDsyncQueue(args.bench, { serveArgs: extraServeArgs, only: args.only,
      ...(prof === undefined || prof === '' ? {} : { cpuProfDir: prof }) }));
  }
  if (args.systems.includes('nats')) {
    const nats = await startNatsCluster();
    try { rows.push(...await benchNatsQueue(nats, args.bench)); } finally { await nats.stop(); }
  }
  if (args.systems.includes('rabbitmq')) {
    const rabbit = await startRabbitMq();
    try { rows.push(...await benchRabbitQueue(rabbit, args.bench)); } finally {
      await rabbit.stop();
    }
  }
  const after = loadLine('after');
  const natsSystem = rows.find((r) => r.system.startsWith('NATS'))?.system ?? '';
  printRows('Queue: 100-byte messages, 3 replicas (RabbitMQ: 1 node), messages/s; p50/p99 ' +
    'of one request (consume: of one batch of up to 100)', rows, natsSystem, args);
  if (args.json) return;
  const rabbitSystem = rows.find((r) => r.system.startsWith('RabbitMQ'))?.system;
  if (rabbitSystem !== undefined) {
    const toRabbit = ratiosTo(rows, rabbitSystem);
    rows.forEach((r, i) => {
      const x = toRabbit[i];
      if (r.system === 'dsync' && x !== null && x !== undefined) {
        process.stdout.write(`- dsync ${r.setting}: ${x.toFixed(2)}× ${rabbitSystem}\n`);
      }
    });
  }
  for (const line of queueTargetLines(rows)) process.stdout.write(`- target: ${line}\n`);
  process.stdout.write(`- ${before}; ${after}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    await main();
  } catch (err) {
    if (err instanceof DsyncHttpError) {
      process.stderr.write(`queue: dsync answered ${err.message}\n`);
    }
    throw err;
  }
  process.exit(0);
}
