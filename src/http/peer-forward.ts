// Forwarding over the peer transport (ARCHITECTURE.md, "Forwarding"): a node that cannot
// serve a request itself sends it as one frame to the node that can (PeerRequests), which
// serves it through its own Koa app, the same middleware and handlers as a request from a
// client, and sends the answer back the same way. The client sees one request. Compared with
// a second HTTP request, the serving node parses no HTTP and writes no socket per request:
// the frames of one event-loop turn leave in one write (docs/benchmarks.md has the figures).
//
// The serving side builds a minimal IncomingMessage and ServerResponse for Koa. They carry
// what Koa and our middleware read: method, url, headers, the body (already whole), a
// socket whose `destroyed` says the caller gave up, and a response that collects status,
// headers and body. A forwarded request is marked as such (x-dsync-forwarded, with the
// sending node's id from the transport handshake), so it is never forwarded again.
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { LookupFunction } from 'node:net';
import type { Context } from 'koa';
import { assert } from '../assert.js';
import type { ForwardVia } from '../config.js';
import { UnavailableError } from '../errors.js';
import type { HttpMetrics } from '../observability/metrics.js';
import { PeerRequests } from '../transport/peer-requests.js';
import type {
  PeerRequest, PeerRequestHandler, PeerResponse, Served,
} from '../transport/peer-requests.js';
import type { PeerTransport } from '../transport/peer-transport.js';
import type { AppState } from './app.js';
import { REQUEST_ID_HEADER } from './app.js';
import { FORWARDED_BODY } from './body.js';
import {
  FORWARDED_BY_HEADER, FORWARDED_HEADER, Forwarder, refuseDoubleForward,
} from './forward.js';
import { CLIENT_ID_HEADER } from './validate.js';

/** Response headers relayed to the client; the rest are the serving node's own. */
const RELAYED_HEADERS = ['content-type', 'retry-after', 'allow'] as const;

/** How a node forwards a request it cannot serve: to `nodeId`, waiting at most `timeoutMs`.
 * The answer (or an error envelope of the serving node) becomes ctx's response; a request
 * that was itself forwarded is refused with a retryable 503, as is one that cannot reach the
 * node; past the deadline the answer is a retryable 503 (reason timeout). */
export type ForwardTo = (ctx: Context, nodeId: string, timeoutMs: number) => Promise<void>;

/** A request a node makes of another on its own account (a fan-out), marked forwarded. */
export interface NodeRequest {
  readonly method: string;
  readonly path: string;
  readonly reqId: string;
  readonly body?: Buffer;
}

/** A node's forwarding, both ways. */
export interface Forwarding {
  readonly forwardTo: ForwardTo;
  /** Sends `req` to `nodeId` and resolves with its answer, whatever its status; rejects with
   * a retryable DsyncError when the node cannot be reached or does not answer in time. */
  request(nodeId: string, req: NodeRequest, timeoutMs: number): Promise<PeerResponse>;
  /** Serves what other nodes forward here through this app callback (`app.callback()`); call
   * it once the app is built. Until then forwarded requests are refused (retryable). */
  serveWith(handle: (req: IncomingMessage, res: ServerResponse) => unknown): void;
  /** Fails forwarded requests in flight both ways; call before closing the transport. */
  close(): Promise<void>;
}

export interface ForwardingOptions {
  readonly nodeId: string;
  /** `peer`: over `transport`; `http`: a second HTTP request to `peerUrl(nodeId)`. A node
   * serves peer-forwarded requests either way, so nodes of both settings work together. */
  readonly via: ForwardVia;
  readonly transport: PeerTransport;
  readonly peerUrl: (nodeId: string) => string | undefined;
  /** The default deadline of the HTTP forwarder (config requestTimeoutMs). */
  readonly timeoutMs: number;
  /** Connections of the HTTP forwarder to one peer (`via: 'http'`); its default otherwise. */
  readonly httpConnectionsPerPeer?: number;
  readonly metrics?: HttpMetrics;
  /** Resolves peers' host names on every connect of the HTTP forwarder (discovery dns). */
  readonly lookup?: LookupFunction;
}

/** The forwarding of a lock or queue node: `forwardTo` is what its routes call. */
export function createForwarding(o: ForwardingOptions): Forwarding {
  const requests = new PeerRequests(o.transport, { nodeId: o.nodeId });
  const peer = new PeerForwarder({ nodeId: o.nodeId, requests,
    ...(o.metrics === undefined ? {} : { metrics: o.metrics }) });
  const http = o.via === 'http' ? new Forwarder({ nodeId: o.nodeId, timeoutMs: o.timeoutMs,
    ...(o.metrics === undefined ? {} : { metrics: o.metrics }),
    ...(o.httpConnectionsPerPeer === undefined ? {}
      : { connectionsPerPeer: o.httpConnectionsPerPeer }),
    ...(o.lookup === undefined ? {} : { lookup: o.lookup }) }) : null;
  const forwardTo: ForwardTo = http === null ? peer.forwardTo : async (ctx, nodeId, timeoutMs) => {
    const url = o.peerUrl(nodeId);
    if (url === undefined) {
      refuseDoubleForward(ctx, o.nodeId);
      throw new UnavailableError(`${nodeId} has no known HTTP address on ${o.nodeId}; retry ` +
        'shortly or send the request to it directly', { node: nodeId });
    }
    await http.forward(ctx, url, timeoutMs);
  };
  const request = async (nodeId: string, req: NodeRequest, timeoutMs: number):
    Promise<PeerResponse> => {
    if (http !== null) {
      const url = o.peerUrl(nodeId);
      if (url === undefined) {
        throw new UnavailableError(`${nodeId} has no known HTTP address on ${o.nodeId}`,
          { node: nodeId });
      }
      return await http.request(url, { ...req, timeoutMs });
    }
    const headers: Record<string, string> = { [REQUEST_ID_HEADER]: req.reqId };
    const body = req.body !== undefined && req.body.length > 0 ? req.body : null;
    if (body !== null) headers['content-type'] = 'application/json';
    return await requests.request(nodeId, { method: req.method, path: req.path, headers, body },
      timeoutMs).response;
  };
  return {
    forwardTo,
    request,
    serveWith: (handle) => peer.serveWith(handle),
    close: async () => {
      requests.close();
      await http?.close();
    },
  };
}

export interface PeerForwarderOptions {
  readonly nodeId: string;
  readonly requests: PeerRequests;
  readonly metrics?: HttpMetrics;
}

export class PeerForwarder {
  private readonly ok: { inc(): void } | null;
  private readonly failed: { inc(): void } | null;

  constructor(private readonly opts: PeerForwarderOptions) {
    this.ok = opts.metrics?.forwarded.labels('ok', 'peer') ?? null;
    this.failed = opts.metrics?.forwarded.labels('error', 'peer') ?? null;
  }

  /**
   * Serves `ctx` by sending it to `nodeId` over the peer transport: same method, path, query,
   * body, request id and client id; the peer's status, body and Retry-After come back as they
   * are. A request that was itself forwarded is refused with a retryable 503, and so is one
   * that cannot be sent; past `timeoutMs` the answer is a retryable 503 (reason timeout). The
   * client going away cancels the request on the peer too.
   */
  readonly forwardTo: ForwardTo = async (ctx, nodeId, timeoutMs) => {
    refuseDoubleForward(ctx, this.opts.nodeId);
    const state = ctx.state as AppState;
    const call = this.opts.requests.request(nodeId, requestOf(ctx, state), timeoutMs);
    const res = ctx.res;
    // The response closing before it finished means the client went away: stop waiting.
    const onClose = (): void => { if (!res.writableFinished) call.cancel(); };
    res.once('close', onClose);
    let answer: PeerResponse;
    try {
      answer = await call.response;
    } catch (err) {
      this.failed?.inc();
      throw err;
    } finally {
      res.off('close', onClose);
    }
    this.ok?.inc();
    for (const name of RELAYED_HEADERS) {
      const v = answer.headers[name];
      if (v !== undefined) ctx.set(name, v);
    }
    ctx.status = answer.status;
    ctx.body = answer.body;
  };

  /** Serves the requests other nodes forward here through `app` (Koa's `app.callback()`). */
  serveWith(handle: (req: IncomingMessage, res: ServerResponse) => unknown): void {
    this.opts.requests.serve(peerRequestHandler(handle));
  }
}

function requestOf(ctx: Context, state: AppState): PeerRequest {
  const headers: Record<string, string> = { [REQUEST_ID_HEADER]: state.reqId };
  const client = ctx.get(CLIENT_ID_HEADER);
  if (client !== '') headers[CLIENT_ID_HEADER] = client;
  const body = state.rawBody.length > 0 ? state.rawBody : null;
  if (body !== null) headers['content-type'] = 'application/json';
  return { method: ctx.method, path: ctx.url, headers, body };
}

/** A PeerRequestHandler that runs each request through a Koa app's request callback. */
export function peerRequestHandler(
  handle: (req: IncomingMessage, res: ServerResponse) => unknown,
): PeerRequestHandler {
  return (from, r): Served => {
    const socket = new PeerSocket(from);
    const headers: IncomingHttpHeaders = { ...r.headers,
      // Set here from the transport's authenticated peer, whatever the frame said.
      [FORWARDED_HEADER]: '1', [FORWARDED_BY_HEADER]: from };
    if (r.body !== null) headers['content-length'] = String(r.body.length);
    const req = new ForwardedRequest(r.method, r.path, headers, socket, r.body);
    let resolve!: (res: PeerResponse) => void;
    const response = new Promise<PeerResponse>((res) => { resolve = res; });
    const res = new ForwardedResponse(socket, resolve);
    void handle(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    return { response, cancel: () => res.cancel() };
  };
}

/** Stands in for the TCP socket of a request: `destroyed` once the caller gave up. */
class PeerSocket extends EventEmitter {
  destroyed = false;
  writable = true;
  readable = true;
  readonly encrypted = false;

  constructor(readonly remoteAddress: string) {
    super();
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writable = false;
    this.readable = false;
    this.emit('close');
    return this;
  }
}

/** What Koa and our middleware read of an IncomingMessage. */
class ForwardedRequest extends EventEmitter {
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  readonly httpVersion = '1.1';
  readonly complete = true;
  readonly [FORWARDED_BODY]: Buffer | null;

  constructor(readonly method: string, readonly url: string,
    readonly headers: IncomingHttpHeaders, readonly socket: PeerSocket, body: Buffer | null) {
    super();
    this[FORWARDED_BODY] = body;
  }

  get connection(): PeerSocket {
    return this.socket;
  }
}

/** What Koa writes to a ServerResponse, collected into a PeerResponse. */
class ForwardedResponse extends EventEmitter {
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  private readonly fields = new Map<string, number | string | readonly string[]>();
  private readonly chunks: Buffer[] = [];

  constructor(readonly socket: PeerSocket, private readonly done: (r: PeerResponse) => void) {
    super();
  }

  get finished(): boolean {
    return this.writableEnded;
  }

  setHeader(name: string, value: number | string | readonly string[]): this {
    this.fields.set(name.toLowerCase(), value);
    return this;
  }

  getHeader(name: string): number | string | readonly string[] | undefined {
    return this.fields.get(name.toLowerCase());
  }

  getHeaders(): Record<string, number | string | readonly string[]> {
    return Object.fromEntries(this.fields);
  }

  getHeaderNames(): string[] {
    return [...this.fields.keys()];
  }

  hasHeader(name: string): boolean {
    return this.fields.has(name.toLowerCase());
  }

  removeHeader(name: string): void {
    this.fields.delete(name.toLowerCase());
  }

  write(chunk: string | Buffer): boolean {
    this.headersSent = true;
    this.chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return true;
  }

  end(chunk?: string | Buffer | (() => void)): this {
    if (this.writableEnded) return this;
    if (chunk !== undefined && typeof chunk !== 'function') this.write(chunk);
    this.headersSent = true;
    this.writableEnded = true;
    this.writableFinished = true;
    if (!this.destroyed) this.done({ status: this.statusCode, headers: this.relayed(),
      body: Buffer.concat(this.chunks) });
    this.emit('finish');
    this.emit('close');
    return this;
  }

  /** The caller gave up: as when a client's connection closes before the answer. */
  cancel(): void {
    if (this.writableEnded || this.destroyed) return;
    this.destroyed = true;
    this.socket.destroy();
    this.emit('close');
  }

  private relayed(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of RELAYED_HEADERS) {
      const v = this.fields.get(name);
      if (v === undefined) continue;
      assert(!Array.isArray(v), `${name} is a single header`);
      out[name] = String(v);
    }
    return out;
  }
}
