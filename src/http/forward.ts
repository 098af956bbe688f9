// Forwarding a request to the node that must serve it (Raft leader, partition leader, key's
// home), so that callers never have to find it themselves (API.md). One undici Pool per peer
// keeps connections warm. A forwarded request is marked, and a node never forwards a marked
// request again: when two nodes disagree about who leads (an election in progress), the
// request fails fast with a retryable 503 instead of bouncing between them until it times out.
import type { LookupFunction } from 'node:net';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { Context } from 'koa';
import { assert } from '../assert.js';
import { DsyncError, TimeoutError, UnavailableError } from '../errors.js';
import type { HttpMetrics } from '../observability/metrics.js';
import type { AppContext, AppState } from './app.js';
import { REQUEST_ID_HEADER } from './app.js';
import { CLIENT_ID_HEADER } from './validate.js';

export const FORWARDED_HEADER = 'x-dsync-forwarded';
/** Node id of the forwarding node, for logs on the receiving side. */
export const FORWARDED_BY_HEADER = 'x-dsync-forwarded-by';
/** Connections to one peer; requests beyond this queue inside the pool. */
export const DEFAULT_FORWARD_CONNECTIONS_PER_PEER = 128;
/** Largest response relayed; a bigger one is dropped rather than buffered without bound. */
export const DEFAULT_FORWARD_RESPONSE_BYTES_MAX = 64 * 1024 * 1024;
/** Distinct peers with a pool; the least recently created is closed past it. */
export const DEFAULT_FORWARD_PEERS_MAX = 256;
/** TCP connect deadline, capped by the request deadline. */
export const DEFAULT_FORWARD_CONNECT_TIMEOUT_MS = 2000;

/** Response headers relayed from the peer; hop-by-hop headers are not. */
const RELAYED_HEADERS = ['content-type', 'retry-after', 'allow'] as const;

export interface ForwarderOptions {
  /** This node's id, sent in x-dsync-forwarded-by. */
  readonly nodeId: string;
  /** Default deadline of one forwarded request (config requestTimeoutMs). */
  readonly timeoutMs: number;
  readonly connectionsPerPeer?: number;
  readonly responseBytesMax?: number;
  readonly peersMax?: number;
  readonly metrics?: HttpMetrics;
  /** Resolves peers' host names on every connect (discovery dns); default: the OS. */
  readonly lookup?: LookupFunction;
}

export interface ForwardRequest {
  readonly method: string;
  /** Path with query string, still percent-encoded as received. */
  readonly path: string;
  readonly body?: Buffer;
  readonly reqId: string;
  /** The caller's x-dsync-client header: requestIds are scoped to it (API.md). */
  readonly clientId?: string;
  readonly timeoutMs?: number;
  /** Aborts the forwarded request, e.g. when the original client went away. */
  readonly signal?: AbortSignal;
}

export interface ForwardResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** How a route that only the leader (of a group) can serve gets there: runs `local` when this
 * node can serve it, else forwards the request. Routes validate their input before they call
 * it, so a node never reads an unchecked body to forward one (a fractional waitMs read here
 * once became a 500) and bad input costs no forwarding hop. */
export type LeaderOnly = (ctx: AppContext, local: () => Promise<unknown>,
  opts?: LeaderOnlyOptions) => Promise<void>;

export interface LeaderOnlyOptions {
  /** The validated waitMs of a blocking request: the leader may take that much longer. */
  readonly waitMs?: number;
}

/** True when this request already came from another node. */
export function isForwarded(ctx: Context): boolean {
  return ctx.get(FORWARDED_HEADER) === '1';
}

/** Throws the retryable 503 a node answers instead of forwarding a second time. */
export function refuseDoubleForward(ctx: Context, nodeId: string): void {
  if (!isForwarded(ctx)) return;
  const by = ctx.get(FORWARDED_BY_HEADER) || 'another node';
  throw new UnavailableError(
    `${by} forwarded this request to ${nodeId}, which cannot serve it either: leadership or ` +
    'ownership is changing; retry shortly (with the same requestId for writes)',
    { forwardedBy: by, node: nodeId });
}

export class Forwarder {
  private readonly pools = new Map<string, Pool>();
  private readonly connectionsPerPeer: number;
  private readonly responseBytesMax: number;
  private readonly peersMax: number;
  private closed = false;

  constructor(private readonly opts: ForwarderOptions) {
    this.connectionsPerPeer = opts.connectionsPerPeer ?? DEFAULT_FORWARD_CONNECTIONS_PER_PEER;
    this.responseBytesMax = opts.responseBytesMax ?? DEFAULT_FORWARD_RESPONSE_BYTES_MAX;
    this.peersMax = opts.peersMax ?? DEFAULT_FORWARD_PEERS_MAX;
    assert(opts.timeoutMs > 0, 'forward timeoutMs must be positive');
    assert(this.connectionsPerPeer >= 1, 'connectionsPerPeer must be at least 1');
    assert(this.responseBytesMax >= 1024, 'responseBytesMax must be at least 1 KiB');
    assert(this.peersMax >= 1, 'peersMax must be at least 1');
  }

  /**
   * Serves `ctx` by relaying it to `peerUrl` (e.g. `http://10.0.0.5:8080`): same method, path,
   * query, body and request id; the peer's status, JSON body and Retry-After come back as they
   * are. A request that was itself forwarded is refused with 503 UNAVAILABLE.
   */
  async forward(ctx: Context, peerUrl: string, timeoutMs?: number): Promise<void> {
    refuseDoubleForward(ctx, this.opts.nodeId);
    const state = ctx.state as AppState;
    const gone = new AbortController();
    // The response closing before it finished means the client went away: stop waiting.
    const onClose = () => { if (!ctx.res.writableFinished) gone.abort(); };
    ctx.res.once('close', onClose);
    try {
      const res = await this.request(peerUrl, {
        method: ctx.method, path: ctx.url, body: state.rawBody, reqId: state.reqId,
        clientId: ctx.get(CLIENT_ID_HEADER), signal: gone.signal,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });
      ctx.status = res.status;
      ctx.body = res.body;
      for (const [name, value] of Object.entries(res.headers)) ctx.set(name, value);
    } finally {
      ctx.res.off('close', onClose);
    }
  }

  /** One request to a peer with a deadline; network failures become retryable 503 errors. */
  async request(peerUrl: string, req: ForwardRequest): Promise<ForwardResponse> {
    const timeoutMs = req.timeoutMs ?? this.opts.timeoutMs;
    assert(Number.isSafeInteger(timeoutMs) && timeoutMs > 0,
      'forward deadline must be a positive integer of ms (validate what it is computed from)');
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = req.signal === undefined ? deadline : AbortSignal.any([deadline, req.signal]);
    const hasBody = req.body !== undefined && req.body.length > 0;
    try {
      const res = await this.pool(peerUrl).request({
        method: req.method,
        path: req.path,
        headers: {
          [REQUEST_ID_HEADER]: req.reqId,
          [FORWARDED_HEADER]: '1',
          [FORWARDED_BY_HEADER]: this.opts.nodeId,
          ...(req.clientId === undefined || req.clientId === '' ? {}
            : { [CLIENT_ID_HEADER]: req.clientId }),
          ...(hasBody ? { 'content-type': 'application/json' } : {}),
        },
        ...(hasBody ? { body: req.body } : {}),
        signal,
      });
      const body = await readBounded(res.body, this.responseBytesMax, peerUrl);
      this.opts.metrics?.forwarded.inc({ outcome: 'ok', via: 'http' });
      return { status: res.statusCode, headers: relayedHeaders(res.headers), body };
    } catch (err) {
      this.opts.metrics?.forwarded.inc({ outcome: 'error', via: 'http' });
      if (req.signal?.aborted === true && !deadline.aborted) {
        throw new UnavailableError('the client went away before the forwarded request ended');
      }
      throw mapForwardError(err, peerUrl, timeoutMs, deadline.aborted);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close()));
  }

  private pool(peerUrl: string): Pool {
    if (this.closed) throw new UnavailableError('this node is shutting down; retry on another');
    const origin = new URL(peerUrl).origin;
    let pool = this.pools.get(origin);
    if (pool === undefined) {
      if (this.pools.size >= this.peersMax) this.evictOldest();
      pool = new Pool(origin, {
        connections: this.connectionsPerPeer,
        connect: { timeout: Math.min(this.opts.timeoutMs, DEFAULT_FORWARD_CONNECT_TIMEOUT_MS),
          ...(this.opts.lookup === undefined ? {} : { lookup: this.opts.lookup }) },
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  private evictOldest(): void {
    const [origin, pool] = this.pools.entries().next().value ?? [];
    if (origin === undefined || pool === undefined) return;
    this.pools.delete(origin);
    // In-flight requests on it finish; close() only refuses new ones.
    pool.close().catch(() => undefined);
  }
}

async function readBounded(
  body: Dispatcher.ResponseData['body'],
  bytesMax: number,
  peerUrl: string,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > bytesMax) {
      body.destroy();
      throw new DsyncError('INTERNAL', `the response of ${peerUrl} exceeds ${bytesMax} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}

function relayedHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of RELAYED_HEADERS) {
    const v = headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  return out;
}

function mapForwardError(
  err: unknown,
  peerUrl: string,
  timeoutMs: number,
  timedOut: boolean,
): DsyncError {
  if (err instanceof DsyncError) return err;
  if (timedOut) {
    return new TimeoutError(`${peerUrl} did not answer within ${timeoutMs} ms; the outcome is ` +
      'unknown: retry (writes with the same requestId, which makes the retry safe)');
  }
  const code = (err as { code?: unknown }).code;
  const why = typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
  return new UnavailableError(
    `cannot reach ${peerUrl} (${why}): the node may be down or restarting; retry shortly ` +
    '(writes with the same requestId)', { peer: peerUrl }, err);
}
