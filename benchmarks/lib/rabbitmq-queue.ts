// RabbitMQ's side of the queue benchmark: a quorum queue (a Raft log that the broker fsyncs
// before it confirms) on the node of rabbitmq-server.ts, published to through a confirm
// channel (each publish waits for its broker confirm, persistent messages) and drained by
// consumers on channels of their own with a prefetch of 100, acking each message.
import { connect } from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import {
  CONSUME_BATCH, consumeRow, consumeSetting, payload, publishRow, publishSetting,
} from './queue-bench.js';
import type { QueueBenchOptions } from './queue-bench.js';
import type { RabbitMqNode } from './rabbitmq-server.js';
import type { Row } from './stats.js';

/** Publishes in flight while the consume row's queue is filled. */
const PREFILL_IN_FLIGHT = 256;

async function quorumQueue(ch: Channel, name: string): Promise<void> {
  await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
}

/** One persistent message, resolved when the broker confirms it. */
function publishConfirmed(ch: ConfirmChannel, queue: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ch.sendToQueue(queue, body, { persistent: true }, (err: unknown) => {
      if (err === null || err === undefined) resolve();
      else reject(err instanceof Error ? err : new Error('the broker nacked a publish'));
    });
  });
}

async function prefill(ch: ConfirmChannel, queue: string, total: number): Promise<void> {
  const body = Buffer.from(payload());
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(PREFILL_IN_FLIGHT, total) }, async () => {
    while (next < total) {
      next++;
      await publishConfirmed(ch, queue, body);
    }
  }));
}

/** `consumers` channels, each with a prefetch of CONSUME_BATCH; a "batch" is every
 * CONSUME_BATCH messages one consumer acked, timed from the previous one. */
async function drain(conn: ChannelModel, queue: string, total: number, consumers: number,
  done: (n: number, ns: bigint) => void): Promise<void> {
  let acked = 0;
  const channels = await Promise.all(Array.from({ length: consumers }, () =>
    conn.createChannel()));
  const batches = channels.map(() => ({ n: 0, startNs: process.hrtime.bigint() }));
  const report = (b: { n: number; startNs: bigint }): void => {
    if (b.n === 0) return;
    const now = process.hrtime.bigint();
    done(b.n, now - b.startNs);
    b.n = 0;
    b.startNs = now;
  };
  await new Promise<void>((resolve, reject) => {
    channels.forEach((ch, i) => {
      const b = batches[i] ?? { n: 0, startNs: 0n };
      void ch.prefetch(CONSUME_BATCH).then(() => ch.consume(queue, (m) => {
        if (m === null) { reject(new Error(`consumer ${i} was cancelled by the broker`)); return; }
        ch.ack(m);
        acked++;
        if (++b.n === CONSUME_BATCH) report(b);
        if (acked === total) {
          batches.forEach(report);
          resolve();
        }
      }, { noAck: false })).catch(reject);
    });
  });
  await Promise.all(channels.map((ch) => ch.close()));
}

/** Publish rows at each in-flight count, then the consume row. */
export async function benchRabbitQueue(node: RabbitMqNode, o: QueueBenchOptions):
  Promise<Row[]> {
  const system = `RabbitMQ ${node.version} quorum queue, 1 node`;
  const conn = await connect(node.url);
  try {
    const ch = await conn.createConfirmChannel();
    const body = Buffer.from(payload());
    const rows: Row[] = [];
    for (const inFlight of o.publishInFlight) {
      const queue = `bench-publish-${inFlight}`;
      await quorumQueue(ch, queue);
      process.stderr.write(`queue: ${system}, ${publishSetting(inFlight)}\n`);
      rows.push(await publishRow(system, publishSetting(inFlight), inFlight, o,
        () => publishConfirmed(ch, queue, body)));
    }
    const queue = 'bench-consume';
    await quorumQueue(ch, queue);
    process.stderr.write(`queue: ${system}, filling ${o.consumeMessages} messages to consume\n`);
    await prefill(ch, queue, o.consumeMessages);
    process.stderr.write(`queue: ${system}, ${consumeSetting(o.consumers)}\n`);
    rows.push(await consumeRow(system, consumeSetting(o.consumers), o.consumeMessages,
      (done) => drain(conn, queue, o.consumeMessages, o.consumers, done)));
    await ch.close();
    return rows;
  } finally {
    await conn.close();
  }
}
