// Requests between nodes over the peer transport they already hold: one msgpack frame there
// on the bulk lane, one frame back, matched by id. Forwarding uses it so that a follower
// relays a client's request to its leader without a second HTTP request (ARCHITECTURE.md,
// "Forwarding"): the frames of one event-loop turn leave in one write, and the leader parses
// no HTTP for them.
//
// Frames (msgpack arrays tagged by their first element; isPeerRequestFrame tells them apart
// from the Raft host's):
//   ['rq', epoch, id, method, path, headers, body | null, timeoutMs]   a request
//   ['rs', epoch, id, status, headers, body]                          its answer
//   ['re', epoch, id, code, message, retryable]                       refused before serving
//   ['rc', epoch, id]                                                 the caller gave up
// `epoch` is random per process, so an answer queued for a sender that restarted meanwhile
// (the transport keeps frames across a reconnect) never completes a new request's id.
//
// Every request has a deadline on both sides; in-flight requests are bounded per peer on both
// sides; a caller that gives up (its client went away, its deadline passed) sends `rc` so
// that the serving side stops waiting for the work too.
import { randomInt } from 'node:crypto';
import { assert } from '../assert.js';
import { DsyncError, InvalidArgumentError, TimeoutError, UnavailableError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { PeerTransport } from './peer-transport.js';

/** Requests this node has sent to one peer and not had answered, by default. */
export const DEFAULT_REQUESTS_IN_FLIGHT_PER_PEER_MAX = 10_000;
/** Requests from one peer this node serves at once, by default. */
export const DEFAULT_SERVED_IN_FLIGHT_PER_PEER_MAX = 10_000;
/** Largest answer body relayed, by default; a larger one is answered with an error. It must
 * stay below the transport's frameBytesMax (headers and framing take the rest). */
export const DEFAULT_PEER_RESPONSE_BYTES_MAX = 16 * 1024 * 1024;
const IN_FLIGHT_MAX_LIMIT = 1_000_000;

export interface PeerRequest {
  readonly method: string;
  /** Path and query string, percent-encoded as the client sent them. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | null;
}

export interface PeerResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** A request being served: its answer, and how to stop waiting for it. */
export interface Served {
  readonly response: Promise<PeerResponse>;
  /** The caller gave up or the deadline passed; the answer will be dropped. */
  cancel(): void;
}

/** Serves a request from `from`; `timeoutMs` is what the caller still waits. */
export type PeerRequestHandler = (from: string, req: PeerRequest, timeoutMs: number) => Served;

export interface PeerRequestsOptions {
  readonly nodeId: string;
  /** Default DEFAULT_REQUESTS_IN_FLIGHT_PER_PEER_MAX, 1..1,000,000; beyond it a request is
   * refused at once with a retryable RESOURCE_EXHAUSTED naming the limit. */
  readonly requestsInFlightPerPeerMax?: number;
  /** Default DEFAULT_SERVED_IN_FLIGHT_PER_PEER_MAX, 1..1,000,000; beyond it the peer's
   * request is refused the same way. */
  readonly servedInFlightPerPeerMax?: number;
  /** Default DEFAULT_PEER_RESPONSE_BYTES_MAX, 1 KiB..1 GiB. */
  readonly responseBytesMax?: number;
}

/** A request sent: its answer, and how to give up on it. */
export interface PeerCall {
  readonly response: Promise<PeerResponse>;
  cancel(): void;
}

function failedCall(err: Error): PeerCall {
  return { response: Promise.reject(err), cancel: () => undefined };
}

interface Pending {
  readonly to: string;
  readonly resolve: (r: PeerResponse) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Serving {
  readonly from: string;
  readonly served: Served;
  readonly timer: NodeJS.Timeout;
}

type Frame = readonly unknown[];

const FRAME_KINDS: ReadonlySet<unknown> = new Set(['rq', 'rs', 're', 'rc']);

/** True for a frame of this protocol: other users of the transport (the Raft host) skip
 * them. */
export function isPeerRequestFrame(payload: unknown): payload is Frame {
  return Array.isArray(payload) && FRAME_KINDS.has(payload[0]);
}

function checkLimit(field: string, v: number | undefined, dflt: number, lo: number,
  hi: number): number {
  const value = v ?? dflt;
  if (!Number.isSafeInteger(value) || value < lo || value > hi) {
    throw new InvalidArgumentError(field, `${field} must be an integer in [${lo}, ${hi}]`);
  }
  return value;
}

export class PeerRequests {
  private readonly epoch = randomInt(1, 2 ** 31);
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly sentTo = new Map<string, number>();
  private readonly serving = new Map<string, Serving>();
  private readonly servedFrom = new Map<string, number>();
  private readonly requestsMax: number;
  private readonly servedMax: number;
  private readonly responseBytesMax: number;
  private handler: PeerRequestHandler | null = null;
  private closed = false;

  constructor(private readonly transport: PeerTransport,
    private readonly opts: PeerRequestsOptions) {
    this.requestsMax = checkLimit('requestsInFlightPerPeerMax', opts.requestsInFlightPerPeerMax,
      DEFAULT_REQUESTS_IN_FLIGHT_PER_PEER_MAX, 1, IN_FLIGHT_MAX_LIMIT);
    this.servedMax = checkLimit('servedInFlightPerPeerMax', opts.servedInFlightPerPeerMax,
      DEFAULT_SERVED_IN_FLIGHT_PER_PEER_MAX, 1, IN_FLIGHT_MAX_LIMIT);
    this.responseBytesMax = checkLimit('responseBytesMax', opts.responseBytesMax,
      DEFAULT_PEER_RESPONSE_BYTES_MAX, 1024, 2 ** 30);
    transport.onMessage((from, payload) => {
      if (isPeerRequestFrame(payload)) this.onFrame(from, payload);
    });
    transport.onLink((peer, lane, open) => {
      if (lane === 'bulk' && !open) this.failPendingTo(peer);
    });
  }

  /** Installs what serves requests from peers; until then they are refused (retryable). */
  serve(handler: PeerRequestHandler): void {
    this.handler = handler;
  }

  /** Requests from and to peers that are not answered yet (for /health and tests). */
  stats(): { sent: number; served: number } {
    return { sent: this.pending.size, served: this.serving.size };
  }

  /**
   * Sends `req` to `to`; the call's response resolves with the answer. It rejects with a
   * retryable DsyncError: RESOURCE_EXHAUSTED past the in-flight bound, UNAVAILABLE when the
   * frame cannot be queued or the call is cancelled (the caller's client went away), TIMEOUT
   * past `timeoutMs` (the outcome is then unknown), or the code the peer refused it with.
   * Cancelling tells the peer to stop serving it.
   */
  request(to: string, req: PeerRequest, timeoutMs: number): PeerCall {
    assert(Number.isSafeInteger(timeoutMs) && timeoutMs > 0,
      'a peer request needs a positive integer deadline (validate what it is computed from)');
    const refused = this.refusal(to);
    if (refused !== null) return failedCall(refused);
    if (!this.transport.isConnected(to, 'bulk')) {
      // A request queued for a peer that is down would wait out its whole deadline.
      return failedCall(new UnavailableError(`${this.opts.nodeId} has no connection to ${to} ` +
        '(down, restarting or unreachable): retry shortly', { peer: to }));
    }
    const id = this.nextId++;
    const frame = ['rq', this.epoch, id, req.method, req.path, req.headers, req.body, timeoutMs];
    if (!this.transport.send(to, frame, 'bulk')) {
      return failedCall(new UnavailableError(`cannot send to ${to} (not connected and its ` +
        'queue is full, or the request is too large): retry shortly', { peer: to }));
    }
    this.sentTo.set(to, (this.sentTo.get(to) ?? 0) + 1);
    let pending!: Pending;
    const response = new Promise<PeerResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.settle(id, true) === undefined) return;
        reject(new TimeoutError(`${to} did not answer within ${timeoutMs} ms; the outcome is ` +
          'unknown: retry (writes with the same requestId, which makes the retry safe)'));
      }, timeoutMs);
      pending = { to, resolve, reject, timer };
    });
    this.pending.set(id, pending);
    return {
      response,
      cancel: () => {
        if (this.settle(id, true) === undefined) return;
        pending.reject(new UnavailableError('the client went away before the forwarded ' +
          'request ended'));
      },
    };
  }

  private refusal(to: string): DsyncError | null {
    if (this.closed) return new UnavailableError('this node is shutting down');
    const inFlight = this.sentTo.get(to) ?? 0;
    if (inFlight < this.requestsMax) return null;
    return new DsyncError('RESOURCE_EXHAUSTED', `${inFlight} requests to ${to} are already ` +
      'in flight; retry after the Retry-After delay', { retryable: true,
      details: { limit: 'requestsInFlightPerPeerMax', max: this.requestsMax } });
  }

  /** The connection that carried requests to `peer` closed: they may or may not have
   * arrived, and their answers would come only if they did. */
  private failPendingTo(peer: string): void {
    for (const [id, p] of [...this.pending]) {
      if (p.to !== peer) continue;
      this.settle(id, false);
      p.reject(new UnavailableError(`the connection to ${peer} closed before it answered; ` +
        'the outcome is unknown: retry (writes with the same requestId, which makes the retry ' +
        'safe)', { peer }));
    }
  }

  /** Fails what is in flight (both ways) and refuses new requests. */
  close(): void {
    this.closed = true;
    const err = new UnavailableError('this node is shutting down; retry on another node');
    for (const [id, p] of [...this.pending]) {
      this.settle(id, false);
      p.reject(err);
    }
    for (const [key, s] of [...this.serving]) this.stopServing(key, s);
  }

  /** Forgets a pending request; tells the peer to stop when `cancel`. */
  private settle(id: number, cancel: boolean): Pending | undefined {
    const p = this.pending.get(id);
    if (p === undefined) return undefined;
    this.pending.delete(id);
    clearTimeout(p.timer);
    countDown(this.sentTo, p.to);
    if (cancel) this.transport.send(p.to, ['rc', this.epoch, id], 'bulk');
    return p;
  }

  private onFrame(from: string, f: Frame): void {
    const [kind, epoch, id] = f;
    if (typeof epoch !== 'number' || typeof id !== 'number') return;
    switch (kind) {
      case 'rq': this.onRequest(from, epoch, id, f); return;
      case 'rc': {
        const key = `${from}/${epoch}/${id}`;
        const s = this.serving.get(key);
        if (s !== undefined) this.stopServing(key, s);
        return;
      }
      case 'rs':
      case 're':
        if (epoch === this.epoch) this.onAnswer(from, id, f);
        return;
      default:
        return;
    }
  }

  private onAnswer(from: string, id: number, f: Frame): void {
    const p = this.pending.get(id);
    if (p === undefined || p.to !== from) return; // late: the caller already gave up
    this.settle(id, false);
    if (f[0] === 'rs') {
      const [, , , status, headers, body] = f;
      if (typeof status !== 'number' || !isStringRecord(headers) || !Buffer.isBuffer(body)) {
        p.reject(new DsyncError('INTERNAL', `${from} sent a malformed answer`));
        return;
      }
      p.resolve({ status, headers, body });
      return;
    }
    const [, , , code, message, retryable] = f;
    p.reject(isRefusalCode(code)
      ? new DsyncError(code, String(message), { retryable: retryable === true })
      : new DsyncError('INTERNAL', `${from} refused the request with an unknown code ` +
        `${String(code)}: ${String(message)}`));
  }

  private onRequest(from: string, epoch: number, id: number, f: Frame): void {
    const [, , , method, path, headers, body, timeoutMs] = f;
    if (typeof method !== 'string' || typeof path !== 'string' || !isStringRecord(headers) ||
      !(body === null || Buffer.isBuffer(body)) || typeof timeoutMs !== 'number' ||
      !Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
      this.refuse(from, epoch, id, new DsyncError('INVALID_ARGUMENT',
        'malformed peer request (a node of another version?)'));
      return;
    }
    const handler = this.handler;
    if (handler === null || this.closed) {
      this.refuse(from, epoch, id, new UnavailableError(`${this.opts.nodeId} is starting or ` +
        'stopping and serves no forwarded requests; retry shortly'));
      return;
    }
    const count = this.servedFrom.get(from) ?? 0;
    if (count >= this.servedMax) {
      this.refuse(from, epoch, id, new DsyncError('RESOURCE_EXHAUSTED', `${this.opts.nodeId} ` +
        `already serves ${count} requests forwarded by ${from}; retry shortly`,
      { retryable: true }));
      return;
    }
    const key = `${from}/${epoch}/${id}`;
    const served = handler(from, { method, path, headers, body }, timeoutMs);
    const timer = setTimeout(() => this.stopServing(key, served), timeoutMs);
    this.serving.set(key, { from, served, timer });
    this.servedFrom.set(from, count + 1);
    served.response.then((res) => {
      if (!this.forget(key)) return;
      this.reply(from, epoch, id, res);
    }, (err: unknown) => {
      // A handler answers errors as responses; a rejection is a fault of the serving node.
      if (!this.forget(key)) return;
      this.refuse(from, epoch, id, new DsyncError('INTERNAL', `${this.opts.nodeId} failed to ` +
        `serve the forwarded request: ${err instanceof Error ? err.message : String(err)}`));
    });
  }

  private reply(from: string, epoch: number, id: number, res: PeerResponse): void {
    if (res.body.length > this.responseBytesMax) {
      this.refuse(from, epoch, id, new DsyncError('INTERNAL', `the answer (${res.body.length} ` +
        `bytes) is larger than ${this.responseBytesMax} bytes and cannot be relayed; send the ` +
        `request to ${this.opts.nodeId} directly or ask for less`));
      return;
    }
    this.transport.send(from, ['rs', epoch, id, res.status, res.headers, res.body], 'bulk');
  }

  private refuse(from: string, epoch: number, id: number, err: DsyncError): void {
    this.transport.send(from, ['re', epoch, id, err.code, err.message, err.retryable], 'bulk');
  }

  /** True when `key` was still being served (and is now forgotten). */
  private forget(key: string): boolean {
    const s = this.serving.get(key);
    if (s === undefined) return false;
    this.serving.delete(key);
    clearTimeout(s.timer);
    countDown(this.servedFrom, s.from);
    return true;
  }

  private stopServing(key: string, served: Served | Serving): void {
    if (!this.forget(key)) return;
    ('served' in served ? served.served : served).cancel();
  }
}

/** The codes this layer refuses a request with itself; whatever the handler answers,
 * errors included, travels as a response. */
const REFUSAL_CODES: ReadonlySet<string> = new Set<ErrorCode>(
  ['INVALID_ARGUMENT', 'RESOURCE_EXHAUSTED', 'UNAVAILABLE', 'INTERNAL']);

function isRefusalCode(v: unknown): v is ErrorCode {
  return typeof v === 'string' && REFUSAL_CODES.has(v);
}

/** One less in flight for `peer`; the entry goes when none is left (peers come and go). */
function countDown(counts: Map<string, number>, peer: string): void {
  const left = (counts.get(peer) ?? 1) - 1;
  if (left === 0) counts.delete(peer);
  else counts.set(peer, left);
}

function isStringRecord(v: unknown): v is Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  for (const x of Object.values(v as Record<string, unknown>)) {
    if (typeof x !== 'string') return false;
  }
  return true;
}
