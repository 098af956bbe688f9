// @ts-check
// Shared by the dsync k6 scripts: base URLs from the environment, JSON requests through
// http.asyncRequest (so that VUs run concurrently in k6's event loop and in our smoke runner),
// and a retry of 503 UNAVAILABLE (an election or a pod starting), as the SDK does.
import http from 'k6/http';

/** Node URLs of a service: `-e DSYNC_LOCK_URLS=http://127.0.0.1:8000,...`, or one port-forward. */
export function serviceUrls(name, fallback) {
  const list = __ENV[`DSYNC_${name.toUpperCase()}_URLS`] || fallback;
  return list.split(',').map((u) => u.trim().replace(/\/$/, '')).filter((u) => u.length > 0);
}

/** A number from the environment, or the default. */
export function envNumber(name, fallback) {
  const v = __ENV[name];
  return v === undefined || v === '' ? fallback : Number(v);
}

const RETRIES_503_MAX = 20;

/**
 * One JSON request; `op` tags its samples (thresholds select on it), `expected` lists the
 * statuses that count as success (others feed http_req_failed).
 * @param {string} method
 * @param {string} url
 * @param {unknown} body
 * @param {string} op
 * @param {number[]} [expected]
 */
export async function call(method, url, body, op, expected = [200]) {
  const params = {
    headers: { 'content-type': 'application/json' },
    tags: { op, name: op },
    responseCallback: http.expectedStatuses(...expected, 503),
    timeout: '30s',
  };
  const payload = body === undefined ? null : JSON.stringify(body);
  let res = await http.asyncRequest(method, url, payload, params);
  for (let i = 0; i < RETRIES_503_MAX && res.status === 503; i++) {
    res = await http.asyncRequest(method, url, payload, params);
  }
  return res;
}

/** The JSON body of a response, or null when it has none. */
export function json(res) {
  try {
    return /** @type {any} */ (res.json());
  } catch {
    return null;
  }
}
