// A crowd of blocking acquires on one held lock, for the crowd process test and the
// lock-waiters benchmark: N owners each send one acquire with waitMs through one node, at
// once, over their own connections; once every one of them is either answered or queued, the
// holder releases, and each owner that is granted releases at once, so the lock is passed
// down the queue. Meanwhile every node's /health is polled and its term recorded.
// The result says what each owner was answered and when; checkCrowd() says what is wrong
// with it (FIFO order, answers that are not granted / LOCK_TIMEOUT / 429).
import { Client, Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { waitFor } from './wait.js';

export interface CrowdOptions {
  /** Node the crowd goes through (leader or follower). */
  readonly url: string;
  /** Every node, for the /health watch. */
  readonly nodeUrls: readonly string[];
  readonly name: string;
  readonly count: number;
  readonly waitMs: number;
  readonly ttlMs: number;
  /** How long the crowd may take to be answered or queued (default 120 s). */
  readonly enqueueTimeoutMs?: number;
}

export interface CrowdAnswer {
  readonly owner: string;
  readonly status: number;
  /** The error envelope's code, or 'GRANTED', or 'NETWORK' when there was no answer. */
  readonly code: string;
  readonly token: number | null;
  /** The error envelope's message, for reports. */
  readonly message: string;
  /** From the crowd's start, ms. */
  readonly sentMs: number;
  readonly answeredMs: number;
}

export interface CrowdResult {
  readonly answers: readonly CrowdAnswer[];
  /** Owners in the queue, front first, as GET showed it once the crowd was in. */
  readonly queue: readonly string[];
  /** From the start until every owner was answered or queued. */
  readonly enqueueMs: number;
  /** From the holder's release until the last answer. */
  readonly drainMs: number;
  /** Slowest /health answer seen on any node during the run, ms (a failed poll counts as
   * its timeout). */
  readonly healthMaxMs: number;
  readonly healthFailures: number;
  /** Terms seen on every node at the start and at the end (a node that had not yet heard
   * of the first leader shows 0). */
  readonly termsBefore: readonly number[];
  readonly termsAfter: readonly number[];
}

/** Elections during the crowd: how far the highest term moved. */
export function electionsDuring(r: CrowdResult): number {
  return Math.max(...r.termsAfter) - Math.max(...r.termsBefore);
}

const HEALTH_POLL_MS = 250;
const HEALTH_TIMEOUT_MS = 3000;
/** Beyond waitMs, how long one acquire may take to be answered before the client gives up. */
const ANSWER_GRACE_MS = 30_000;

interface Json { [k: string]: unknown }

async function requestJson(pool: Dispatcher, method: 'GET' | 'POST', path: string, body: unknown,
  timeoutMs: number): Promise<{ status: number; body: Json }> {
  const res = await pool.request({
    method, path, headersTimeout: timeoutMs, bodyTimeout: timeoutMs,
    ...(body === undefined ? {} : {
      body: JSON.stringify(body), headers: { 'content-type': 'application/json' },
    }),
  });
  return { status: res.statusCode, body: await res.body.json() as Json };
}

function errorOf(body: Json): { code: string; message: string } {
  const e = body.error as { code?: unknown; message?: unknown } | undefined;
  return { code: typeof e?.code === 'string' ? e.code : 'UNKNOWN',
    message: typeof e?.message === 'string' ? e.message : '' };
}

async function term(url: string): Promise<number> {
  const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
  const body = await r.json() as { raft?: { term?: number } };
  return body.raft?.term ?? -1;
}

/** Polls every node's /health until stopped; returns the slowest answer and failures. */
function watchHealth(urls: readonly string[]): { stop(): Promise<{ maxMs: number;
  failures: number }> } {
  let stopped = false;
  let maxMs = 0;
  let failures = 0;
  const loops = urls.map(async (url) => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
        await r.arrayBuffer();
        if (!r.ok) failures++;
      } catch {
        failures++;
      }
      maxMs = Math.max(maxMs, performance.now() - t0);
      await new Promise((r) => setTimeout(r, HEALTH_POLL_MS));
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return { maxMs, failures };
    },
  };
}

export async function runCrowd(o: CrowdOptions): Promise<CrowdResult> {
  const control = new Pool(o.url, { connections: 8 });
  const path = (op: string): string => `/v1/locks/${encodeURIComponent(o.name)}${op}`;
  const termsBefore = await Promise.all(o.nodeUrls.map(term));
  const health = watchHealth(o.nodeUrls);
  try {
    const held = await requestJson(control, 'POST', path('/acquire'),
      { owner: 'crowd-holder', ttlMs: 600_000 }, 10_000);
    if (held.status !== 200) throw new Error(`the holder was not granted: ${JSON.stringify(held)}`);
    const t0 = performance.now();
    const now = (): number => performance.now() - t0;
    const answers: CrowdAnswer[] = [];
    const one = async (owner: string): Promise<void> => {
      const sentMs = now();
      let r: { status: number; body: Json };
      // One connection per owner, as separate clients would have: a blocking acquire holds
      // its connection until answered. (One Pool of N connections would scan its N clients
      // for a free one on every request: O(N²) in this process, which shares the CPU.)
      const own = new Client(o.url);
      try {
        r = await requestJson(own, 'POST', path('/acquire'),
          { owner, ttlMs: o.ttlMs, waitMs: o.waitMs }, o.waitMs + ANSWER_GRACE_MS);
      } catch (err) {
        const e = err as { code?: unknown };
        const why = `${typeof e.code === 'string' ? e.code : ''} ${(err as Error).message}`;
        answers.push({ owner, status: 0, code: 'NETWORK', token: null, sentMs, message: why,
          answeredMs: now() });
        return;
      } finally {
        void own.close();
      }
      const token = r.status === 200 ? Number(r.body.token) : null;
      const e = r.status === 200 ? { code: 'GRANTED', message: '' } : errorOf(r.body);
      answers.push({ owner, status: r.status, ...e, token, sentMs, answeredMs: now() });
      // Pass the lock on at once.
      if (token !== null) {
        await requestJson(control, 'POST', path('/release'), { owner, token }, 30_000);
      }
    };
    const all = Promise.all(Array.from({ length: o.count }, (_, i) => one(`crowd-${i}`)));
    const queue = await waitFor('the crowd answered or queued', async () => {
      const v = await requestJson(control, 'GET', path(''), undefined, 10_000);
      const waiters = (v.body.waiters as Array<{ owner: string }> | undefined) ?? [];
      return waiters.length + answers.length >= o.count ? waiters.map((w) => w.owner) : null;
    }, o.enqueueTimeoutMs ?? 120_000, 200);
    const enqueueMs = now();
    const released = await requestJson(control, 'POST', path('/release'),
      { owner: 'crowd-holder' }, 10_000);
    if (released.status !== 200) throw new Error(`holder release: ${JSON.stringify(released)}`);
    await all;
    const drainMs = now() - enqueueMs;
    const h = await health.stop();
    const termsAfter = await Promise.all(o.nodeUrls.map(term));
    return { answers, queue, enqueueMs, drainMs, healthMaxMs: h.maxMs,
      healthFailures: h.failures, termsBefore, termsAfter };
  } finally {
    await health.stop();
    await control.close();
  }
}

/** How many answers had each code, e.g. { GRANTED: 1000, RESOURCE_EXHAUSTED: 9000 }. */
export function countCodes(r: CrowdResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of r.answers) out[a.code] = (out[a.code] ?? 0) + 1;
  return out;
}

/** One example message per distinct (status, code, message) with its count, for reports. */
export function distinctErrors(r: CrowdResult): string[] {
  const seen = new Map<string, number>();
  for (const a of r.answers) {
    if (a.code === 'GRANTED') continue;
    const k = `${a.status} ${a.code}: ${a.message.replace(/\d+/g, 'N')}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  return [...seen].map(([k, n]) => `${n} × ${k}`);
}

/** Problems with a crowd's answers: anything but GRANTED, LOCK_TIMEOUT and 429
 * RESOURCE_EXHAUSTED, grants out of queue order, a 429 while the queue had room, an owner
 * answered twice or not at all. Empty when all is well. */
export function checkCrowd(r: CrowdResult, count: number, waitersPerLockMax: number): string[] {
  const problems: string[] = [];
  const owners = new Set(r.answers.map((a) => a.owner));
  if (owners.size !== count || r.answers.length !== count) {
    problems.push(`${r.answers.length} answers for ${owners.size} of ${count} owners`);
  }
  for (const a of r.answers) {
    if (a.code === 'GRANTED' || a.code === 'LOCK_TIMEOUT') continue;
    if (a.status === 429 && a.code === 'RESOURCE_EXHAUSTED') continue;
    problems.push(`${a.owner} was answered ${a.status} ${a.code}`);
  }
  const refused = r.answers.filter((a) => a.status === 429).length;
  if (refused > 0 && r.queue.length < waitersPerLockMax) {
    problems.push(`${refused} answered 429 while only ${r.queue.length} of ` +
      `${waitersPerLockMax} places in the queue were taken`);
  }
  const position = new Map(r.queue.map((o, i) => [o, i]));
  const grants = r.answers.filter((a) => a.token !== null)
    .sort((a, b) => (a.token ?? 0) - (b.token ?? 0));
  for (let i = 1; i < grants.length; i++) {
    const before = position.get(grants[i - 1]?.owner ?? '') ?? -1;
    const after = position.get(grants[i]?.owner ?? '') ?? -1;
    if (before < 0 || after <= before) {
      problems.push(`grant order breaks FIFO at ${grants[i - 1]?.owner} → ${grants[i]?.owner}`);
      break;
    }
  }
  return problems;
}

/** How late LOCK_TIMEOUT answers came past waitMs, ms: the worst and the median. */
export function timeoutLateness(r: CrowdResult, waitMs: number): { maxMs: number;
  p50Ms: number } {
  const late = r.answers.filter((a) => a.code === 'LOCK_TIMEOUT')
    .map((a) => a.answeredMs - a.sentMs - waitMs).sort((a, b) => a - b);
  return { maxMs: late[late.length - 1] ?? 0, p50Ms: late[Math.floor(late.length / 2)] ?? 0 };
}
