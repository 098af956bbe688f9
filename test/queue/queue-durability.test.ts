// The queue's durability under faults: publishers send batches through the SDK to random pods
// while a seeded nemesis kills -9 and restarts, pauses and resumes, and partitions and heals
// pods; consumers in two groups receive and ack at the same time. Then everything heals, the
// consumers drain every topic, and the history checker (test/support/queue-history.ts)
// requires that every message whose publish returned 201 was delivered to both groups, with
// the id it was published under, FIFO per key for first deliveries, and nothing delivered
// after an ack that counted it. Duplicates are reported apart (at-least-once allows them).
// Reproduce a run's fault schedule with QUEUE_FAULT_SEED=<seed>.
//
// The SDK retries a publish on another pod with the same requestId when an attempt failed
// without an answer, so a retried publish that had committed is answered with its first ids
// (a second copy would be delivered under another id: idMismatch).
import { afterAll, describe, expect, it } from 'vitest';
import { DsyncClient, DsyncError, type QueueMessage } from '../../src/client/index.js';
import { seededRand, type Rand } from '../../src/raft/rand.js';
import { Cluster } from '../support/cluster.js';
import { HistoryRecorder } from '../support/history.js';
import { healEverything, nemesis } from '../support/nemesis.js';
import {
  checkQueueHistory, type QueueOutcome, type QueueRecord,
} from '../support/queue-history.js';
import { sleep, waitFor } from '../support/wait.js';

const SECONDS = Number(process.env.QUEUE_FAULT_SECONDS ?? (process.env.CI ? 60 : 15));
const SEED = Number(process.env.QUEUE_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const TOPICS = ['faults-a', 'faults-b', 'faults-c'];
const GROUPS = ['g1', 'g2'];
const KEYS = ['k0', 'k1', 'k2', 'k3'];
const PUBLISHERS = 4;
const CONSUMERS = 4;
const BATCH_MAX = 20;
const VISIBILITY_MS = 3000;
/** The SDK's retry deadline of one call during faults. */
const CALL_DEADLINE_MS = 4000;
/** How long the drain after healing may take. */
const DRAIN_MS = 90_000;

let cluster: Cluster | null = null;
afterAll(async () => { await cluster?.stop(); });

interface Body { token: string }

class Stats {
  readonly errors = new Map<string, number>();
  published = 0; publishCalls = 0; received = 0; acked = 0;

  fail(what: string, err: unknown): void {
    const kind = err instanceof DsyncError ? `${what} ${err.status} ${err.code}`
      : `${what} ${(err as Error).name}`;
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }
}

/** 2xx: ok; an answer of 4xx: nothing was published; anything else may have been. */
function outcomeOf(err: unknown): QueueOutcome {
  return err instanceof DsyncError && err.status >= 400 && err.status < 500 ? 'failed'
    : 'indeterminate';
}

class Publisher {
  private n = 0;
  constructor(private readonly id: number, private readonly rand: Rand,
    private readonly client: DsyncClient, private readonly h: HistoryRecorder<QueueRecord>,
    private readonly stats: Stats) {}

  async run(stop: () => boolean): Promise<void> {
    while (!stop()) {
      await this.once();
      await sleep(this.rand.int(0, 30));
    }
  }

  private async once(): Promise<void> {
    const topic = TOPICS[this.rand.int(0, TOPICS.length)]!;
    const count = this.rand.int(1, BATCH_MAX + 1);
    const messages = Array.from({ length: count }, () => {
      const token = `p${this.id}-${this.n++}`;
      const key = this.rand.next() < 0.8 ? KEYS[this.rand.int(0, KEYS.length)] : undefined;
      return { token, ...(key === undefined ? {} : { key }) };
    });
    const sentAt = this.h.now();
    this.stats.publishCalls++;
    try {
      const { ids } = await this.client.queues.publishBatch(topic, messages.map((m) =>
        ({ body: { token: m.token }, ...(m.key === undefined ? {} : { key: m.key }) })));
      this.h.record({ type: 'publish', topic, messages, outcome: 'ok', ids, sentAt,
        returnedAt: this.h.now() });
      this.stats.published += count;
    } catch (err) {
      this.stats.fail('publish', err);
      this.h.record({ type: 'publish', topic, messages, outcome: outcomeOf(err), sentAt,
        returnedAt: this.h.now() });
    }
  }
}

class Consumer {
  constructor(private readonly rand: Rand, private readonly client: DsyncClient,
    private readonly h: HistoryRecorder<QueueRecord>, private readonly stats: Stats) {}

  async run(stop: () => boolean): Promise<void> {
    while (!stop()) {
      const topic = TOPICS[this.rand.int(0, TOPICS.length)]!;
      const group = GROUPS[this.rand.int(0, GROUPS.length)]!;
      await this.once(topic, group, 500);
    }
  }

  /** One receive and the ack of what it got; how many messages it got. */
  async once(topic: string, group: string, waitMs: number): Promise<number> {
    const q = this.client.queues;
    const sentAt = this.h.now();
    let got: QueueMessage<Body>[];
    try {
      got = await q.receive<Body>(topic, { group, max: 50, visibilityMs: VISIBILITY_MS,
        waitMs });
    } catch (err) {
      this.stats.fail('receive', err);
      return 0;
    }
    this.h.record({ type: 'receive', topic, group, sentAt, returnedAt: this.h.now(),
      messages: got.map((m) => ({ id: m.id, token: m.body.token, deliveries: m.deliveries,
        ...(m.key === undefined ? {} : { key: m.key }) })) });
    this.stats.received += got.length;
    if (got.length === 0) return 0;
    const ackSentAt = this.h.now();
    const ids = got.map((m) => m.id);
    try {
      const acked = await q.ack(topic, got, { group });
      this.stats.acked += acked;
      this.h.record({ type: 'ack', topic, group, ids, outcome: 'ok', acked, sentAt: ackSentAt,
        returnedAt: this.h.now() });
    } catch (err) {
      this.stats.fail('ack', err);
      this.h.record({ type: 'ack', topic, group, ids, outcome: outcomeOf(err),
        sentAt: ackSentAt, returnedAt: this.h.now() });
    }
    return got.length;
  }
}

/** After healing: receive and ack every topic for every group until the topic's view shows
 * nothing ready, in flight or delayed for it (a lease of a lost answer is in flight until it
 * runs out, then ready again). */
async function drain(consumer: Consumer, client: DsyncClient): Promise<void> {
  const deadline = performance.now() + DRAIN_MS;
  for (const topic of TOPICS) {
    for (const group of GROUPS) {
      while (performance.now() < deadline) {
        if (await consumer.once(topic, group, 1000) > 0) continue;
        const g = (await client.queues.get(topic))?.groups[group];
        if (g !== undefined && g.ready + g.inflight + (g.delayed ?? 0) === 0) break;
      }
    }
  }
}

describe('queue service under faults', () => {
  it(`every 201'd message is delivered to every group (${SECONDS} s, seed ${SEED})`,
    async () => {
      console.log(`queue fault test: seed ${SEED} (QUEUE_FAULT_SEED=${SEED} reproduces the ` +
        `fault schedule), ${SECONDS} s, ${PUBLISHERS} publishers, ${CONSUMERS} consumers`);
      expect(Number.isSafeInteger(SEED) && SECONDS > 0).toBe(true);
      const c = await Cluster.start({ service: 'queue', proxies: true, startTimeoutMs: 60_000 });
      cluster = c;
      const urls = c.nodes.map((n) => n.url);
      const clients: DsyncClient[] = [];
      const client = (): DsyncClient => {
        const made = new DsyncClient({ queue: urls, timeoutMs: CALL_DEADLINE_MS,
          attemptTimeoutMs: 2000 });
        clients.push(made);
        return made;
      };
      const setup = client();
      // Every group exists before the first publish, so each sees every message.
      await waitFor('every topic and group created', async () => {
        for (const t of TOPICS) {
          await setup.queues.put(t, { maxDeliveries: 1000 });
          for (const g of GROUPS) await setup.queues.receive(t, { group: g });
        }
        return true;
      }, 60_000, 200);
      const rand = seededRand(SEED);
      const history = new HistoryRecorder<QueueRecord>();
      const stats = new Stats();
      const endAt = performance.now() + SECONDS * 1000;
      const stop = (): boolean => performance.now() >= endAt;
      const log: string[] = [];
      const publishers = Array.from({ length: PUBLISHERS }, (_, i) =>
        new Publisher(i, seededRand(SEED + 1 + i), client(), history, stats));
      const consumers = Array.from({ length: CONSUMERS }, (_, i) =>
        new Consumer(seededRand(SEED + 100 + i), client(), history, stats));
      await Promise.all([nemesis(c, rand, stop, log), ...publishers.map((p) => p.run(stop)),
        ...consumers.map((x) => x.run(stop))]);

      await healEverything(c);
      const drainer = new DsyncClient({ queue: urls, timeoutMs: 30_000 });
      clients.push(drainer);
      await drain(new Consumer(seededRand(SEED + 999), drainer, history, stats), drainer);

      await Promise.all(clients.map((x) => x.close()));
      const report = checkQueueHistory(history.records, { groups: GROUPS, listMax: 20 });
      console.log(`nemesis:\n  ${log.join('\n  ')}`);
      console.log(`publish calls ${stats.publishCalls}, messages acknowledged ` +
        `${report.acknowledged}, indeterminate ${report.indeterminate}; received ` +
        `${stats.received}, acked ${stats.acked}; delivered (group, message) pairs ` +
        `${report.delivered}; duplicates ${report.duplicates.count}; errors ` +
        `${JSON.stringify([...stats.errors])}`);
      if (!report.ok) {
        console.log(`ANOMALIES (seed ${SEED}): ${JSON.stringify({ lost: report.lost,
          unknown: report.unknown, failedButDelivered: report.failedButDelivered,
          idMismatch: report.idMismatch, redeliveredAfterAck: report.redeliveredAfterAck,
          fifo: report.fifo }, null, 2)}`);
      }
      expect(report.lost).toEqual([]);
      expect(report.idMismatch).toEqual([]);
      expect(report.unknown).toEqual([]);
      expect(report.failedButDelivered).toEqual([]);
      expect(report.redeliveredAfterAck).toEqual([]);
      expect(report.fifo).toEqual([]);
      // Progress under faults: thousands of messages in a CI run.
      expect(report.acknowledged).toBeGreaterThanOrEqual(SECONDS * 20);
    }, SECONDS * 1000 + DRAIN_MS + 120_000);
});
