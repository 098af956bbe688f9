// The data behind the cluster page: `GET /v1/overview` gathers, on the node that serves it,
// what every node of every service says about itself (`/health`, a cache pod's `/v1/cache`)
// and what the services hold (the lock table from the lock leader, the queue topics), and
// `GET /v1/overview/cache/{key}` asks every cache pod for its line of one key.
//
// A node knows the HTTP URLs of its own service's static peers; the other services' come
// from config systemUrls. Everything it fetches is bounded: one deadline per request, a cap
// on requests in flight, a cap on the bytes of an answer, a cap on the locks and topics
// passed on. The overview is cached for OVERVIEW_CACHE_MS and shared by concurrent callers,
// so a hundred open pages cost the cluster what one does. A node that does not answer is
// shown down with the reason, never an error of the overview itself.
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { Counter, type Registry } from 'prom-client';
import { SERVICES, type ServiceName, type SystemUrls } from '../config.js';
import { DsyncError } from '../errors.js';
import type { AppContext, AppRouter } from './app.js';
import { errorFromEnvelope } from './envelope.js';
import { parseName } from './validate.js';

/** Deadline of one request to another node (connect, headers and body). */
export const OVERVIEW_FETCH_TIMEOUT_MS = 1000;
/** An overview younger than this is served again instead of asking the cluster anew. */
export const OVERVIEW_CACHE_MS = 1000;
/** Requests in flight at once while gathering one overview or inspecting one key. */
export const OVERVIEW_FANOUT_MAX = 16;
/** Largest answer read from another node; a bigger one counts as that request failing. */
export const OVERVIEW_BODY_BYTES_MAX = 4 * 1024 * 1024;
/** Locks passed on (held or waited on, by name); `locksTotal` tells how many there were. */
export const OVERVIEW_LOCKS_MAX = 500;
/** Queue topics passed on; `topicsTotal` tells how many there were. */
export const OVERVIEW_TOPICS_MAX = 500;
/** Key inspections running at once on one node; past it a 429. */
export const KEY_INSPECTIONS_MAX = 8;
/** Nodes of one service the overview asks at most (systemUrls and peers are bounded too). */
export const OVERVIEW_NODES_PER_SERVICE_MAX = 64;

/** What the overview says of one node. */
export interface NodeView {
  readonly url: string;
  /** Its id from /health; for a node that does not answer, the id it had last time, if any. */
  readonly node: string | null;
  readonly up: boolean;
  /** Why it is shown down (or why `stats` is missing). */
  readonly error?: string;
  /** Round trip of its /health, ms. */
  readonly latencyMs?: number;
  /** Its GET /health body as it answered it. */
  readonly health?: Record<string, unknown>;
  /** A cache pod's GET /v1/cache body. */
  readonly stats?: Record<string, unknown>;
}

export interface LockHolderView {
  readonly owner: string; readonly mode: string; readonly token: number;
  readonly expiresAt: number;
  /** expiresAt less this node's clock when the overview was gathered. */
  readonly leaseMsRemaining: number;
}

export interface LockView {
  readonly name: string;
  readonly mode: string | null;
  readonly holders: readonly LockHolderView[];
  readonly waiters: ReadonlyArray<{ readonly owner: string; readonly mode: string }>;
}

export interface Overview {
  readonly generatedAt: number;
  readonly servedBy: { readonly service: ServiceName; readonly node: string };
  /** How often the page asks again, ms. */
  readonly refreshMs: number;
  readonly services: {
    readonly lock: {
      readonly nodes: readonly NodeView[];
      /** Held or waited-on locks (GET /v1/locks via the leader); null when unknown. */
      readonly locks: readonly LockView[] | null;
      readonly locksTotal?: number;
      readonly locksError?: string;
    };
    readonly queue: {
      readonly nodes: readonly NodeView[];
      /** GET /v1/queues `topics` as the queue nodes answer it; null when unknown. */
      readonly topics: readonly unknown[] | null;
      readonly topicsTotal?: number;
      readonly topicsError?: string;
    };
    readonly cache: { readonly nodes: readonly NodeView[] };
  };
}

/** One cache pod's line of a key (GET /v1/cache/{key}/state), or why it is missing. */
export interface KeyLineView {
  readonly url: string;
  readonly node: string | null;
  readonly up: boolean;
  readonly state?: string;
  readonly home?: string;
  readonly absent?: boolean;
  readonly error?: string;
}

export interface SystemOverviewOptions {
  readonly service: ServiceName;
  readonly nodeId: string;
  /** HTTP URLs of the nodes of each service (this service's peers included). */
  readonly urls: SystemUrls;
  readonly registry?: Registry;
  readonly fetchTimeoutMs?: number;
  readonly cacheMs?: number;
}

type Json = Record<string, unknown>;

class FetchError extends Error {
  constructor(message: string, readonly code: string | null = null) { super(message); }
}

export class SystemOverview {
  private readonly agent = new Agent({ connections: KEY_INSPECTIONS_MAX, keepAliveTimeout: 10_000,
    connect: { timeout: OVERVIEW_FETCH_TIMEOUT_MS } });
  private readonly fetchTimeoutMs: number;
  private readonly cacheMs: number;
  /** Last id each URL answered with, so that a node that went down keeps its name. */
  private readonly idOfUrl = new Map<string, string>();
  private last: { at: number; value: Overview } | null = null;
  private pending: Promise<Overview> | null = null;
  private inspections = 0;
  private readonly probes: Counter<'target' | 'outcome'> | null;

  constructor(private readonly opts: SystemOverviewOptions) {
    this.fetchTimeoutMs = opts.fetchTimeoutMs ?? OVERVIEW_FETCH_TIMEOUT_MS;
    this.cacheMs = opts.cacheMs ?? OVERVIEW_CACHE_MS;
    this.probes = opts.registry === undefined ? null : new Counter({
      name: 'dsync_overview_probes_total', registers: [opts.registry],
      help: 'Requests to other nodes made for GET /v1/overview, by target service and outcome',
      labelNames: ['target', 'outcome'] as const,
    });
  }

  register(router: AppRouter): void {
    router.get('/v1/overview', async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = await this.overview(selfUrlOf(ctx));
    });
    router.get('/v1/overview/cache/:key', async (ctx) => {
      const key = parseName(ctx.params.key, 'key');
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { key, lines: await this.inspectKey(key, selfUrlOf(ctx)) };
    });
  }

  /** The cached overview while it is fresh; else one gathering, shared by all who ask. */
  async overview(selfUrl: string): Promise<Overview> {
    const last = this.last;
    if (last !== null && Date.now() - last.at < this.cacheMs) return last.value;
    this.pending ??= this.gather(selfUrl).then((value) => {
      this.last = { at: Date.now(), value };
      return value;
    }).finally(() => { this.pending = null; });
    return this.pending;
  }

  async inspectKey(key: string, selfUrl: string): Promise<KeyLineView[]> {
    if (this.inspections >= KEY_INSPECTIONS_MAX) {
      throw new DsyncError('RESOURCE_EXHAUSTED', `${KEY_INSPECTIONS_MAX} key inspections are ` +
        'already running on this node; retry in a second', { details: { limit: 'keyInspectionsMax' } });
    }
    this.inspections++;
    try {
      const urls = this.targets('cache', selfUrl);
      const lines = await mapLimit(urls, OVERVIEW_FANOUT_MAX, (url) => this.lineOf(url, key));
      return dedupeByNode(lines);
    } finally {
      this.inspections--;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** The URLs to ask for one service: the configured ones, then this node's own (as the
   * request reached it) when it is of that service. */
  private targets(service: ServiceName, selfUrl: string): string[] {
    const urls = [...(this.opts.urls[service] ?? [])];
    if (service === this.opts.service) {
      this.idOfUrl.set(selfUrl, this.opts.nodeId);
      if (!urls.includes(selfUrl)) urls.push(selfUrl);
    }
    return urls.slice(0, OVERVIEW_NODES_PER_SERVICE_MAX);
  }

  private async gather(selfUrl: string): Promise<Overview> {
    const jobs = SERVICES.flatMap((s) => this.targets(s, selfUrl).map((url) => ({ s, url })));
    const views = await mapLimit(jobs, OVERVIEW_FANOUT_MAX, (j) => this.probe(j.s, j.url));
    const nodesOf = (s: ServiceName): NodeView[] =>
      dedupeByNode(views.filter((_, i) => jobs[i]?.s === s));
    const lockNodes = nodesOf('lock');
    const queueNodes = nodesOf('queue');
    const [locks, topics] = await Promise.all([this.locks(lockNodes), this.topics(queueNodes)]);
    return {
      generatedAt: Date.now(),
      servedBy: { service: this.opts.service, node: this.opts.nodeId },
      refreshMs: this.cacheMs,
      services: {
        lock: { nodes: lockNodes, ...locks },
        queue: { nodes: queueNodes, ...topics },
        cache: { nodes: nodesOf('cache') },
      },
    };
  }

  private async probe(service: ServiceName, url: string): Promise<NodeView> {
    const started = performance.now();
    let health: Json;
    try {
      health = await this.getJson(url, '/health', service);
    } catch (err) {
      return { url, node: this.idOfUrl.get(url) ?? null, up: false, error: reasonOf(err) };
    }
    const latencyMs = Math.round(performance.now() - started);
    const node = typeof health.node === 'string' ? health.node : null;
    if (node !== null) this.idOfUrl.set(url, node);
    const view: NodeView = { url, node, up: true, latencyMs, health };
    if (health.service !== service) {
      return { ...view, error: `this URL is listed for ${service} but answers as ` +
        `${String(health.service)}: fix --system-urls` };
    }
    if (service !== 'cache') return view;
    try {
      return { ...view, stats: await this.getJson(url, '/v1/cache', service) };
    } catch (err) {
      return { ...view, error: `GET /v1/cache: ${reasonOf(err)}` };
    }
  }

  /** The lock table from the leader (any lock node would forward; asking the leader saves
   * the hop), or the reason it is unknown. */
  private async locks(nodes: readonly NodeView[]):
    Promise<{ locks: LockView[] | null; locksTotal?: number; locksError?: string }> {
    const from = pickSource(nodes, (n) => raftOf(n)?.state === 'leader');
    if (from === null) return { locks: null, locksError: 'no lock node answers' };
    try {
      const body = await this.getJson(from.url, '/v1/locks', 'lock');
      const all = Array.isArray(body.locks) ? body.locks as Json[] : [];
      const now = Date.now();
      return { locks: all.slice(0, OVERVIEW_LOCKS_MAX).map((l) => lockView(l, now)),
        locksTotal: all.length };
    } catch (err) {
      return { locks: null, locksError: `GET /v1/locks on ${from.node ?? from.url}: ` +
        reasonOf(err) };
    }
  }

  private async topics(nodes: readonly NodeView[]):
    Promise<{ topics: unknown[] | null; topicsTotal?: number; topicsError?: string }> {
    if (nodes.length === 0) return { topics: null };
    const from = pickSource(nodes, () => true);
    if (from === null) return { topics: null, topicsError: 'no queue node answers' };
    try {
      const body = await this.getJson(from.url, '/v1/queues', 'queue');
      const all = Array.isArray(body.topics) ? body.topics as unknown[] : [];
      return { topics: all.slice(0, OVERVIEW_TOPICS_MAX), topicsTotal: all.length };
    } catch (err) {
      const missing = err instanceof FetchError && err.code === 'NOT_FOUND';
      return { topics: null, topicsError: missing
        ? 'these queue nodes do not list topics (GET /v1/queues) yet'
        : `GET /v1/queues on ${from.node ?? from.url}: ${reasonOf(err)}` };
    }
  }

  private async lineOf(url: string, key: string): Promise<KeyLineView> {
    let node = this.idOfUrl.get(url) ?? null;
    try {
      if (node === null) {
        const h = await this.getJson(url, '/health', 'cache');
        node = typeof h.node === 'string' ? h.node : null;
        if (node !== null) this.idOfUrl.set(url, node);
      }
      const b = await this.getJson(url, `/v1/cache/${encodeURIComponent(key)}/state`, 'cache');
      return { url, node, up: true, state: String(b.state), home: String(b.home),
        ...(b.absent === true ? { absent: true } : {}) };
    } catch (err) {
      return { url, node, up: false, error: reasonOf(err) };
    }
  }

  /** GET a JSON object from another node, within the deadline and the byte bound. */
  private async getJson(url: string, path: string, target: ServiceName): Promise<Json> {
    const signal = AbortSignal.timeout(this.fetchTimeoutMs);
    try {
      const res = await request(`${url}${path}`, { method: 'GET', dispatcher: this.agent,
        signal, headersTimeout: this.fetchTimeoutMs, bodyTimeout: this.fetchTimeoutMs,
        headers: { accept: 'application/json' } });
      const body = await readBounded(res, OVERVIEW_BODY_BYTES_MAX);
      const parsed = JSON.parse(body.toString('utf8')) as unknown;
      if (res.statusCode !== 200) {
        const e = errorFromEnvelope(parsed);
        throw new FetchError(e === null ? `HTTP ${res.statusCode}`
          : `${e.code}: ${e.message}`, e?.code ?? null);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new FetchError('the answer is not a JSON object');
      }
      this.probes?.inc({ target, outcome: 'ok' });
      return parsed as Json;
    } catch (err) {
      this.probes?.inc({ target, outcome: 'error' });
      if (signal.aborted) throw new FetchError(`no answer within ${this.fetchTimeoutMs} ms`);
      throw err;
    }
  }
}

async function readBounded(res: Dispatcher.ResponseData, bytesMax: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    bytes += b.length;
    if (bytes > bytesMax) {
      res.body.destroy();
      throw new FetchError(`the answer is over ${bytesMax} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Runs `fn` on every item with at most `limit` running at once; results keep the order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number,
  fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** One entry per node id (the first answer wins: a configured URL before this node's own
 * address), nodes of unknown id kept as they are; ordered by id, then URL. */
function dedupeByNode<T extends { node: string | null; url: string; up: boolean }>(
  views: readonly T[]): T[] {
  const byId = new Map<string, T>();
  const unknown: T[] = [];
  for (const v of views) {
    if (v.node === null) unknown.push(v);
    else if (!byId.has(v.node) || (!byId.get(v.node)?.up && v.up)) byId.set(v.node, v);
  }
  return [...byId.values(), ...unknown].sort((a, b) =>
    (a.node ?? '\uffff').localeCompare(b.node ?? '\uffff') || a.url.localeCompare(b.url));
}

function raftOf(n: NodeView): { state?: unknown } | null {
  const r = n.health?.raft;
  return typeof r === 'object' && r !== null ? r : null;
}

/** The node that `prefer` picks among those up, else any node up, else null. */
function pickSource(nodes: readonly NodeView[], prefer: (n: NodeView) => boolean):
  NodeView | null {
  const up = nodes.filter((n) => n.up);
  return up.find(prefer) ?? up[0] ?? null;
}

function lockView(l: Json, now: number): LockView {
  const holders = Array.isArray(l.holders) ? l.holders as Json[] : [];
  const waiters = Array.isArray(l.waiters) ? l.waiters as Json[] : [];
  return {
    name: String(l.name), mode: typeof l.mode === 'string' ? l.mode : null,
    holders: holders.map((h) => ({ owner: String(h.owner), mode: String(h.mode),
      token: Number(h.token), expiresAt: Number(h.expiresAt),
      leaseMsRemaining: Math.max(0, Number(h.expiresAt) - now) })),
    waiters: waiters.map((w) => ({ owner: String(w.owner), mode: String(w.mode) })),
  };
}

function reasonOf(err: unknown): string {
  if (err instanceof FetchError) return err.message;
  const code = (err as { code?: unknown; cause?: { code?: unknown } } | null);
  const c = code?.cause?.code ?? code?.code;
  if (c === 'ECONNREFUSED') return 'connection refused (the node is not running)';
  if (err instanceof SyntaxError) return 'the answer is not JSON';
  return typeof c === 'string' ? c : err instanceof Error ? err.message : String(err);
}

/** This node as the request reached it (the address and port of the connection), IPv6 in
 * brackets: the overview asks itself over HTTP like any other node. */
function selfUrlOf(ctx: AppContext): string {
  const { localAddress, localPort } = ctx.req.socket;
  const addr = (localAddress ?? '127.0.0.1').replace(/^::ffff:(?=\d+\.)/, '');
  return `http://${addr.includes(':') ? `[${addr}]` : addr}:${localPort ?? 0}`;
}
