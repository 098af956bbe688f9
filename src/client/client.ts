// DsyncClient: one object for every service. Each service gets its own transport (http.ts)
// over its own nodes (endpoints.ts), built by service(); the service modules (locks.ts,
// cache.ts, …) are thin layers of typed calls on top. close() releases every lease the client
// still holds and then ends every call in flight.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Cache } from './cache.js';
import { Election } from './election.js';
import { Endpoints } from './endpoints.js';
import { BadResponseError, ClientClosedError } from './errors.js';
import { nodeHealth } from './health.js';
import {
  checkNodeUrl, clusterDiscovery, DEFAULT_ATTEMPT_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, HttpCaller,
} from './http.js';
import { Locks } from './locks.js';
import { Queues } from './queues.js';
import { intIn, parseRetryOptions, type RetryOptions, type RetryPolicy } from './retry.js';

/** The services a client can talk to; the name is the `service` of their /health. */
export type ServiceName = 'lock' | 'cache' | 'queue';

export interface DsyncClientOptions {
  /** Nodes of any services, in any mix: on first use the client asks each for its service
   * (GET /health) and then learns the rest of each service from GET /v1/cluster. */
  readonly endpoints?: readonly string[];
  /** Nodes of the lock service (one is enough: the others are discovered). */
  readonly locks?: readonly string[];
  /** Nodes of the queue service (any pod serves any topic). */
  readonly queue?: readonly string[];
  /** Nodes of the cache service. */
  readonly cache?: readonly string[];
  /** Time for one call, retries included, ms (default DEFAULT_TIMEOUT_MS; 1..3600000); any
   * server-side wait (waitMs) is added. Each call may pass its own. */
  readonly timeoutMs?: number;
  /** @deprecated The old name of timeoutMs. */
  readonly deadlineMs?: number;
  /** Time for one attempt at one node, ms (default DEFAULT_ATTEMPT_TIMEOUT_MS; 1..600000). */
  readonly attemptTimeoutMs?: number;
  /** Learn the other nodes of a service from GET /v1/cluster (default true). */
  readonly discover?: boolean;
  readonly retry?: RetryOptions;
  /** Scopes requestIds on the servers (x-dsync-client); default: a random UUID. */
  readonly clientId?: string;
  /** Default lock owner: 1–128 bytes; default `<host>/<pid>/<8 chars of clientId>`. */
  readonly owner?: string;
}

/** At most one membership lookup per service per this long, ms. */
const REFRESH_MS_MIN = 1000;
const DOWN_MS_MIN = 500;
const DOWN_MS_MAX = 30_000;
/** How long close() gives the releases of held leases, ms. */
const CLOSE_RELEASE_TIMEOUT_MS = 2000;

interface Releasable { release(o?: { timeoutMs?: number }): Promise<void> }

export class DsyncClient implements AsyncDisposable {
  readonly clientId: string;
  readonly owner: string;
  private readonly closing = new AbortController();
  private readonly callers = new Map<ServiceName, HttpCaller>();
  private readonly held = new Set<Releasable>();
  private readonly timeoutMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private sorted: Promise<Map<string, string>> | null = null;
  private lockApi: Locks | null = null;
  private cacheApi: Cache | null = null;
  private queueApi: Queues | null = null;

  constructor(private readonly o: DsyncClientOptions) {
    for (const u of [...(o.endpoints ?? []), ...(o.locks ?? []), ...(o.queue ?? []),
      ...(o.cache ?? [])]) {
      checkNodeUrl(u);
    }
    this.timeoutMs = intIn(o.timeoutMs ?? o.deadlineMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs', 1,
      3_600_000);
    this.attemptTimeoutMs = intIn(o.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS,
      'attemptTimeoutMs', 1, 600_000);
    this.retry = parseRetryOptions(o.retry);
    this.clientId = o.clientId ?? randomUUID();
    this.owner = o.owner ?? `${hostname().slice(0, 64)}/${process.pid}/${this.clientId.slice(0, 8)}`;
  }

  get locks(): Locks {
    this.lockApi ??= new Locks({ http: this.service('lock', this.o.locks), owner: this.owner,
      track: (lease) => this.track(lease) });
    return this.lockApi;
  }

  /** Topics of the queue service: publish, receive, ack, consume() and the rest. */
  get queues(): Queues {
    this.queueApi ??= new Queues(this.service('queue', this.o.queue));
    return this.queueApi;
  }

  get cache(): Cache {
    this.cacheApi ??= new Cache(this.service('cache', this.o.cache));
    return this.cacheApi;
  }

  /** Leader election `name`, on the lock service. */
  election(name: string): Election {
    return new Election(this.locks, name);
  }

  /**
   * The transport of one service, made on first use: its nodes are `urls` when given, else
   * those of `endpoints` that say they serve it. A service module (locks, cache, queues) is
   * built on this.
   */
  service(name: ServiceName, urls?: readonly string[]): HttpCaller {
    const known = this.callers.get(name);
    if (known) return known;
    const seeds = urls !== undefined && urls.length > 0 ? urls
      : this.o.endpoints !== undefined && this.o.endpoints.length > 0
        ? () => this.urlsOf(name) : null;
    if (seeds === null) {
      throw new TypeError(`DsyncClient: no ${name} node given: pass \`endpoints\` or ` +
        `\`${name === 'lock' ? 'locks' : name}: [urls]\``);
    }
    let caller: HttpCaller | null = null;
    const endpoints = new Endpoints({ seeds,
      discover: this.o.discover === false ? null
        : clusterDiscovery(() => caller!, Math.min(2000, this.attemptTimeoutMs)),
      refreshMsMin: REFRESH_MS_MIN, downMsMin: DOWN_MS_MIN, downMsMax: DOWN_MS_MAX });
    caller = new HttpCaller({ service: name, endpoints, clientId: this.clientId,
      timeoutMs: this.timeoutMs, attemptTimeoutMs: this.attemptTimeoutMs, retry: this.retry,
      closed: this.closing.signal });
    this.callers.set(name, caller);
    return caller;
  }

  /** Registers something close() must release; returns the function that unregisters it. */
  track(r: Releasable): () => void {
    if (this.closing.signal.aborted) throw new ClientClosedError();
    this.held.add(r);
    return () => { this.held.delete(r); };
  }

  /** Releases every lease this client holds (each within a short timeout), then ends every
   * call still in flight with ClientClosedError; later calls fail with it too. */
  async close(): Promise<void> {
    if (this.closing.signal.aborted) return;
    const all = [...this.held];
    await Promise.allSettled(all.map((r) => r.release({ timeoutMs: CLOSE_RELEASE_TIMEOUT_MS })));
    this.closing.abort(new ClientClosedError());
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.close(); }

  /** The `endpoints` that serve `service`, asking each node once: those that say so, and
   * those that did not answer (they may be ours; a call finds out), in the order given. */
  private async urlsOf(service: ServiceName): Promise<string[]> {
    this.sorted ??= this.sortEndpoints();
    const by = await this.sorted;
    const got = (this.o.endpoints ?? []).filter((u) =>
      by.get(u) === service || by.get(u) === '?');
    if (got.length > 0) return got;
    this.sorted = null;
    const seen = [...by.entries()].map(([u, s]) => `${u} is a ${s} node`).join(', ');
    throw new BadResponseError(`none of the endpoints is a ${service} node (${seen}); add ` +
      `a ${service} node to them`);
  }

  /** The service of each endpoint ('?' when it did not answer). */
  private async sortEndpoints(): Promise<Map<string, string>> {
    const urls = this.o.endpoints ?? [];
    const services = await Promise.all(urls.map((u) =>
      nodeHealth(u, Math.min(2000, this.attemptTimeoutMs)).then((h) => h.service, () => '?')));
    const by = new Map(urls.map((u, i) => [u, services[i]!] as const));
    // Ask again next time for nodes that did not answer.
    if (services.includes('?')) this.sorted = null;
    return by;
  }
}
