// @ts-check
// The coherent cache under load, the scenarios of benchmarks/cache.ts: 90% GET / 10% PUT over
// many keys (mixed), and reads of a small hot set that every pod keeps in its own lines (hot).
//   kubectl -n dsync port-forward svc/cache 8200:8080
//   k6 run benchmarks/k6/cache.js        (-e DSYNC_CACHE_URLS=a,b,c -e KEYS=10000 -e VUS=50)
import exec from 'k6/execution';
import { check } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { call, envNumber, json, serviceUrls } from './lib/dsync.js';

const URLS = serviceUrls('cache', 'http://127.0.0.1:8200');
const VUS = envNumber('VUS', 50);
const KEYS = envNumber('KEYS', 10000);
const HOT_KEYS = envNumber('HOT_KEYS', 100);
const READ_FRACTION = envNumber('READ_FRACTION', 0.9);
const DURATION = __ENV.DURATION || '30s';
const VALUE = 'v'.repeat(98);

const hits = new Rate('cache_hits');
const opTime = new Trend('cache_op_duration', true);

export const options = {
  scenarios: {
    mixed: { executor: 'constant-vus', vus: VUS, duration: DURATION, exec: 'mixed' },
    hot: { executor: 'constant-vus', vus: VUS, duration: DURATION, exec: 'hot',
      startTime: DURATION },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    'cache_hits{scenario:hot}': ['rate>0.5'],
    'http_req_duration{op:get}': ['p(99)<100'],
    'http_req_duration{op:put}': ['p(99)<250'],
  },
};

/** @param {string} key */
const keyUrl = (key) =>
  `${URLS[exec.vu.idInTest % URLS.length]}/v1/cache/${encodeURIComponent(key)}`;

/** The hot keys exist before the hot scenario starts. */
export async function setup() {
  for (let i = 0; i < HOT_KEYS; i++) {
    await call('PUT', `${URLS[i % URLS.length]}/v1/cache/k6-hot-${i}`, { value: VALUE }, 'put');
  }
}

/** @param {string} key */
async function read(key) {
  const started = Date.now();
  const res = await call('GET', keyUrl(key), undefined, 'get', [200, 404]);
  opTime.add(Date.now() - started, { op: 'get' });
  const body = json(res);
  check(res, { 'get: 200 with the value, or 404': (r) => (r.status === 200 &&
    body?.value === VALUE) || (r.status === 404 && body?.error?.code === 'NOT_FOUND') });
  if (res.status === 200) hits.add(body?.hit === true);
}

export async function mixed() {
  const key = `k6-key-${Math.floor(Math.random() * KEYS)}`;
  if (Math.random() < READ_FRACTION) {
    await read(key);
    return;
  }
  const started = Date.now();
  const res = await call('PUT', keyUrl(key), { value: VALUE }, 'put');
  opTime.add(Date.now() - started, { op: 'put' });
  check(res, { 'put: 200 in state M': (r) => r.status === 200 && json(r)?.state === 'M' });
}

export async function hot() {
  await read(`k6-hot-${Math.floor(Math.random() * HOT_KEYS)}`);
}
