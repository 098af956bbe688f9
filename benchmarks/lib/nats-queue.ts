// NATS JetStream's side of the queue benchmark: a stream with 3 replicas and file storage
// on the 3-server cluster of nats-cluster.ts, published to with `js.publish()` (which waits
// for the stream's PubAck) and drained by pull consumers (`fetch` of up to 100 messages,
// explicit `ack()` of each: JetStream's acks are fire-and-forget, the client does not wait
// for them).
import { AckPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import type { Consumer, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { waitFor } from './proc.js';
import type { NatsCluster } from './nats-cluster.js';
import {
  CONSUME_BATCH, consumeRow, consumeSetting, payload, publishRow, publishSetting,
} from './queue-bench.js';
import type { QueueBenchOptions } from './queue-bench.js';
import type { Row } from './stats.js';

/** Replicas of every benchmark stream: R3, as dsync's partitions. */
export const NATS_STREAM_REPLICAS = 3;
/** How long a stream may take to be created (the meta leader may still be settling). */
const STREAM_CREATE_TIMEOUT_MS = 30_000;
/** How long one fetch waits for messages before it returns what it has. */
const FETCH_EXPIRES_MS = 5000;
/** Publishes in flight while the consume row's stream is filled. */
const PREFILL_IN_FLIGHT = 256;

/** A stream named `name` on subject `name`, file storage, R3. Retried while JetStream
 * answers that it is not ready yet. */
async function addStream(jsm: JetStreamManager, name: string): Promise<void> {
  await waitFor(`JetStream to create stream ${name}`, async () => {
    await jsm.streams.add({ name, subjects: [name], storage: StorageType.File,
      num_replicas: NATS_STREAM_REPLICAS });
    return true;
  }, { timeoutMs: STREAM_CREATE_TIMEOUT_MS, pollMs: 250 });
}

async function prefill(js: JetStreamClient, subject: string, total: number): Promise<void> {
  const body = new TextEncoder().encode(payload());
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(PREFILL_IN_FLIGHT, total) }, async () => {
    while (next < total) {
      next++;
      await js.publish(subject, body);
    }
  }));
}

/** A durable pull consumer, once its own replicated group has a leader: a fetch sent before
 * that waits out its expiry, which would be timed as consuming. */
async function readyConsumer(nc: NatsConnection, stream: string, consumers: number):
  Promise<Consumer> {
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(stream, { durable_name: 'bench', ack_policy: AckPolicy.Explicit,
    max_ack_pending: consumers * CONSUME_BATCH * 2 });
  await waitFor('the JetStream consumer to have a leader', async () =>
    (await jsm.consumers.info(stream, 'bench')).cluster?.leader !== undefined,
  { timeoutMs: STREAM_CREATE_TIMEOUT_MS, pollMs: 100 });
  return jetstream(nc).consumers.get(stream, 'bench');
}

async function drain(nc: NatsConnection, consumer: Consumer, total: number, consumers: number,
  done: (n: number, ns: bigint) => void): Promise<void> {
  let taken = 0;
  // Fetches still waiting when the last message was taken would wait out their expiry.
  const open = new Set<{ stop(): void }>();
  await Promise.all(Array.from({ length: consumers }, async () => {
    while (taken < total) {
      const t0 = process.hrtime.bigint();
      const batch = await consumer.fetch({ max_messages: CONSUME_BATCH,
        expires: FETCH_EXPIRES_MS });
      open.add(batch);
      // The last message may have arrived elsewhere while this fetch was being set up.
      if (taken >= total) batch.stop();
      let n = 0;
      for await (const m of batch) {
        m.ack();
        n++;
        // A fetch returns once it has max_messages or expires: the last partial batches end
        // when the last message arrived anywhere.
        if (++taken >= total) for (const b of open) b.stop();
      }
      open.delete(batch);
      if (n > 0) done(n, process.hrtime.bigint() - t0);
    }
  }));
  // Acks are fire-and-forget: the last ones must have left before the row ends.
  await nc.flush();
}

/** Publish rows at each in-flight count, then the consume row, on one connection. */
export async function benchNatsQueue(cluster: NatsCluster, o: QueueBenchOptions):
  Promise<Row[]> {
  const system = `NATS ${cluster.version} JetStream R${NATS_STREAM_REPLICAS}`;
  const nc: NatsConnection = await connect({ servers: cluster.servers.map((s) => s.url) });
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const body = new TextEncoder().encode(payload());
    const rows: Row[] = [];
    for (const inFlight of o.publishInFlight) {
      const subject = `bench-publish-${inFlight}`;
      await addStream(jsm, subject);
      process.stderr.write(`queue: ${system}, ${publishSetting(inFlight)}\n`);
      rows.push(await publishRow(system, publishSetting(inFlight), inFlight, o,
        async () => { await js.publish(subject, body); }));
    }
    const stream = 'bench-consume';
    await addStream(jsm, stream);
    process.stderr.write(`queue: ${system}, filling ${o.consumeMessages} messages to consume\n`);
    await prefill(js, stream, o.consumeMessages);
    const consumer = await readyConsumer(nc, stream, o.consumers);
    process.stderr.write(`queue: ${system}, ${consumeSetting(o.consumers)}\n`);
    rows.push(await consumeRow(system, consumeSetting(o.consumers), o.consumeMessages,
      (done) => drain(nc, consumer, o.consumeMessages, o.consumers, done)));
    return rows;
  } finally {
    await nc.close();
  }
}
