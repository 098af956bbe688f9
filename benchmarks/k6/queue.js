// @ts-check
// The queue under load: producers publish batches, consumers receive with a long poll and ack
// what they got, each scenario on its own topics so that the figures stay apart.
//   kubectl -n dsync port-forward svc/queue 8100:8080
//   k6 run benchmarks/k6/queue.js        (-e DSYNC_QUEUE_URLS=... -e VUS=16 -e BATCH=10)
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { call, envNumber, json, serviceUrls } from './lib/dsync.js';

const URLS = serviceUrls('queue', 'http://127.0.0.1:8100');
const VUS = envNumber('VUS', 16);
const BATCH = envNumber('BATCH', 10);
const TOPICS = envNumber('TOPICS', 8);
const DURATION = __ENV.DURATION || '30s';
const GROUP = 'k6';

const published = new Counter('queue_published');
const acked = new Counter('queue_acked');
const endToEnd = new Trend('queue_publish_to_receive', true);

export const options = {
  scenarios: {
    produce: { executor: 'constant-vus', vus: VUS, duration: DURATION, exec: 'produce' },
    consume: { executor: 'constant-vus', vus: VUS, duration: DURATION, exec: 'consume' },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    queue_published: ['count>0'],
    queue_acked: ['count>0'],
    'http_req_duration{op:publish}': ['p(99)<250'],
    'http_req_duration{op:ack}': ['p(99)<250'],
  },
};

const base = () => URLS[exec.vu.idInTest % URLS.length];
const topic = () => `k6-topic-${exec.vu.idInTest % TOPICS}`;

export async function produce() {
  const messages = Array.from({ length: BATCH }, (_, i) => ({
    body: { at: Date.now(), vu: exec.vu.idInTest, i }, key: `k${i % 4}` }));
  const res = await call('POST', `${base()}/v1/queues/${topic()}/messages`, { messages },
    'publish', [201]);
  const ok = check(res, { 'publish: 201 with one id per message': (r) => r.status === 201 &&
    json(r)?.ids?.length === BATCH });
  if (ok) published.add(BATCH);
}

export async function consume() {
  const res = await call('POST', `${base()}/v1/queues/${topic()}/receive`,
    { group: GROUP, max: BATCH, visibilityMs: 30000, waitMs: 1000 }, 'receive');
  const messages = json(res)?.messages;
  check(res, { 'receive: 200 with a list': (r) => r.status === 200 && Array.isArray(messages) });
  if (!Array.isArray(messages) || messages.length === 0) return;
  for (const m of messages) {
    if (typeof m.body?.at === 'number') endToEnd.add(Date.now() - m.body.at);
  }
  const ack = await call('POST', `${base()}/v1/queues/${topic()}/ack`,
    { group: GROUP, receipts: messages.map((m) => m.receipt) }, 'ack');
  const n = json(ack)?.acked;
  check(ack, { 'ack: 200, every receipt counted': (r) => r.status === 200 &&
    n === messages.length });
  if (typeof n === 'number') acked.add(n);
}
