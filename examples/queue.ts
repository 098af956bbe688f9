// The queue with the dsync SDK: publish one message and a batch, receive and ack by hand,
// then a consume() loop that acks what its handler finishes, retries what fails (nack with
// backoff) and stops on an AbortSignal; a message that keeps failing lands in the topic's
// DLQ and is redriven.
// Run: DSYNC_ENDPOINTS=http://127.0.0.1:8100 npx tsx examples/queue.ts
import { batch, DsyncClient } from '../src/client/index.js';

const endpoints = (process.env.DSYNC_ENDPOINTS ?? 'http://127.0.0.1:8100').split(',');
const client = new DsyncClient({ endpoints });
const queues = client.queues;
const topic = `examples.orders.${process.pid}`;

// A topic gets its config on first use; set it explicitly to make the DLQ rule visible.
await queues.put(topic, { maxDeliveries: 2, visibilityMs: 10_000 });

// 201 = durable on a majority of the partition's replicas.
const one = await queues.publish(topic, { order: 1 }, { key: 'customer-7' });
const many = await queues.publish(topic, batch([
  { body: { order: 2 }, key: 'customer-7' }, { body: { order: 3 }, key: 'customer-9' },
]));
console.log('published', one.ids.length + many.ids.length, 'messages');

// By hand: take one message (its lease lasts visibilityMs), then ack it.
const [first] = await queues.receive<{ order: number }>(topic, { max: 1, waitMs: 5_000 });
console.log('received order', first?.body.order, 'delivery', first?.deliveries);
console.log('acked', await queues.ack(topic, [first!]));

// A consumer loop: order 3 fails every time, so after maxDeliveries (2) it is dead-lettered.
const stop = new AbortController();
const done: number[] = [];
const stats = queues.consume<{ order: number }>(topic, (m) => {
  if (m.body.order === 3) throw new Error('payment service says no');
  done.push(m.body.order);
  return Promise.resolve();
}, { concurrency: 4, pollWaitMs: 1_000, backoffBaseMs: 50, signal: stop.signal,
  onError: () => { /* the loop nacks and retries; logged by the caller if wanted */ } });

for (let i = 0; i < 200; i++) {
  const view = await queues.get(topic);
  if (done.length === 1 && (view?.dlq ?? 0) === 1) break;
  await new Promise((r) => setTimeout(r, 100));
}
stop.abort();
const s = await stats;
console.log('consumed orders', done.join(', '), '- acked', s.acked, 'nacked', s.nacked);
console.log('dead letters', (await queues.get(topic))?.dlq);

// Once the payment service is fixed: move the dead letters back and take them again.
console.log('redriven', await queues.redrive(topic));
const again = await queues.receive<{ order: number }>(topic, { max: 10, waitMs: 5_000 });
console.log('after redrive: order', again.map((m) => m.body.order).join(', '));
await queues.ack(topic, again);
await client.close();
