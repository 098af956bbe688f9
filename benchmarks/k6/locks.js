// @ts-check
// Locks under load, the scenarios of benchmarks/locks.ts: an acquire + release cycle on
// distinct names (uncontended), and 16 VUs queueing on one name (contended, FIFO waiters).
//   kubectl -n dsync port-forward svc/lock 8000:8080
//   k6 run benchmarks/k6/locks.js                  (-e DSYNC_LOCK_URLS=... -e VUS=64 -e DURATION=60s)
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { call, envNumber, json, serviceUrls } from './lib/dsync.js';

const URLS = serviceUrls('lock', 'http://127.0.0.1:8000');
const VUS = envNumber('VUS', 16);
const CONTENDED_VUS = envNumber('CONTENDED_VUS', 16);
const DURATION = __ENV.DURATION || '30s';
const TTL_MS = 30000;
const WAIT_MS = 10000;

const cycle = new Trend('lock_cycle_duration', true);
const grants = new Counter('lock_grants');

export const options = {
  scenarios: {
    uncontended: { executor: 'constant-vus', vus: VUS, duration: DURATION, exec: 'uncontended' },
    contended: { executor: 'constant-vus', vus: CONTENDED_VUS, duration: DURATION,
      exec: 'contended', startTime: DURATION },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    lock_grants: ['count>0'],
    'http_req_duration{op:acquire,scenario:uncontended}': ['p(99)<250'],
    'lock_cycle_duration{scenario:uncontended}': ['p(99)<500'],
    'lock_cycle_duration{scenario:contended}': ['p(99)<5000'],
  },
};

function url() {
  return URLS[exec.vu.idInTest % URLS.length];
}

/** @param {string} name */
async function acquireRelease(name) {
  const owner = `k6-${exec.vu.idInTest}`;
  const started = Date.now();
  const path = `${url()}/v1/locks/${encodeURIComponent(name)}`;
  const got = await call('POST', `${path}/acquire`, { owner, ttlMs: TTL_MS, waitMs: WAIT_MS,
    requestId: `${owner}-${exec.scenario.iterationInTest}` }, 'acquire');
  const grant = json(got);
  const granted = check(got, {
    'acquire: 200 with a fencing token': (r) => r.status === 200 && Number.isInteger(grant?.token),
  });
  if (!granted) return;
  grants.add(1);
  const rel = await call('POST', `${path}/release`, { owner, token: grant.token }, 'release');
  check(rel, { 'release: 200 released': (r) => r.status === 200 && json(r)?.released === true });
  cycle.add(Date.now() - started);
}

export async function uncontended() {
  await acquireRelease(`k6-free-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`);
}

export async function contended() {
  await acquireRelease('k6-contended');
}
