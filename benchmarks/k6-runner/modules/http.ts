// The `k6/http` module: http.asyncRequest (our scripts use it, so VUs run concurrently) with
// the samples k6 records for every request: http_reqs, http_req_duration, http_req_failed,
// tagged with method, status, name, expected_response, scenario and the request's own tags.
// The blocking calls (http.get, http.post …) cannot be had in Node and say so.
import { runtime } from '../runtime.js';

type StatusCallback = (status: number) => boolean;

interface Params {
  headers?: Record<string, string>;
  tags?: Record<string, string>;
  timeout?: string | number;
  responseCallback?: StatusCallback;
}

export interface Response {
  status: number;
  body: string | null;
  headers: Record<string, string>;
  error: string;
  error_code: number;
  url: string;
  timings: { duration: number; waiting: number };
  json(selector?: string): unknown;
}

let defaultCallback: StatusCallback = (s) => s >= 200 && s < 400;

export function expectedStatuses(...list: Array<number | { min: number; max: number }>):
  StatusCallback {
  return (s) => list.some((e) => typeof e === 'number' ? e === s : s >= e.min && s <= e.max);
}

export function setResponseCallback(cb: StatusCallback): void {
  defaultCallback = cb;
}

function timeoutMs(t: string | number | undefined): number {
  if (t === undefined) return 60_000;
  if (typeof t === 'number') return t;
  const m = /^(\d+)(ms|s|m)$/.exec(t);
  if (m === null) throw new Error(`timeout ${t}: use e.g. 500ms, 30s or 2m`);
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 } as const)[m[2] as 'ms' | 's' | 'm'];
}

export async function asyncRequest(method: string, url: string, body?: string | null,
  params: Params = {}): Promise<Response> {
  const started = performance.now();
  let status = 0;
  let text: string | null = null;
  let error = '';
  const headers: Record<string, string> = {};
  try {
    const r = await fetch(url, { method, headers: params.headers ?? {},
      ...(body === undefined || body === null ? {} : { body }),
      signal: AbortSignal.timeout(timeoutMs(params.timeout)) });
    status = r.status;
    r.headers.forEach((v, k) => { headers[k] = v; });
    text = await r.text();
  } catch (err) {
    error = (err as Error).message;
  }
  const duration = performance.now() - started;
  const expected = status !== 0 && (params.responseCallback ?? defaultCallback)(status);
  const tags = { method, status: String(status), name: url, expected_response: String(expected),
    ...params.tags };
  const rt = runtime();
  rt.add('http_reqs', 'counter', 1, tags);
  rt.add('http_req_duration', 'trend', duration, tags, true);
  rt.add('http_req_failed', 'rate', expected ? 0 : 1, tags);
  return {
    status, body: text, headers, error, error_code: error === '' ? 0 : 1000, url,
    timings: { duration, waiting: duration },
    json: (selector?: string) => {
      if (selector !== undefined) throw new Error('json(selector) is not supported here');
      return JSON.parse(text ?? '');
    },
  };
}

function blocking(name: string): () => never {
  return () => {
    throw new Error(`http.${name} blocks, which the smoke runner cannot do: use ` +
      `await http.asyncRequest('${name.toUpperCase()}', …)`);
  };
}

const http = {
  asyncRequest, expectedStatuses, setResponseCallback,
  get: blocking('get'), post: blocking('post'), put: blocking('put'), del: blocking('del'),
  request: blocking('request'), batch: blocking('batch'),
};
export default http;
