// The IO shell around the coherence core: it owns the clock (a tick timer on a monotonic
// clock), delivers peer messages, and carries out every effect the core hands back: sends
// over the peer transport, replies that settle waiting HTTP requests, and loads and writes
// against the backing store whose answers it feeds back. Store writes of one key go out one
// at a time in the order the core emitted them (a later version simply replaces a queued
// one); failed store calls are retried with backoff for as long as the node runs, because
// the core waits for every answer.
//
// The store's availability is tracked here: it is down while its connection is (ioredis'
// state) or after STORE_FAILURES_DOWN calls in a row failed, and up again on the next call or
// probe that succeeds. While it is down the core refuses at once what would wait for it, and a
// write-through write through a shared store is refused before it is applied: 503 UNAVAILABLE
// with reason store_unavailable, not a request timeout that blames a home.
import type { Logger } from 'pino';
import { assert } from '../assert.js';
import { UnavailableError } from '../errors.js';
import type { CacheMetrics } from './cache-metrics.js';
import { countMessage } from './cache-metrics.js';
import { isCoherenceMsg } from './cache-wire.js';
import { CoherenceNode, type CacheStats } from './coherence.js';
import type { CoherenceOptions } from './coherence-config.js';
import type {
  CacheValue, CoherenceEffect, CoherenceMsg, LineState, NodeId, OpResult,
} from './coherence-messages.js';
import type { BackingStore } from './store.js';
import { withExpiry } from './coherence-value.js';

/** The core's clock advances this often (lease checks, retries, periodic flush). */
export const CACHE_TICK_MS = 20;
/** Backoff bounds of a failing store call. */
export const STORE_RETRY_MS_MIN = 25;
export const STORE_RETRY_MS_MAX = 1000;
/** Remote coherence requests timed at once, at most (a latency sample is skipped beyond). */
export const TIMED_REQUESTS_MAX = 10_000;
/** Unanswered timed requests are forgotten this often (in ticks). */
const SWEEP_EVERY_TICKS = 50;
/** Store calls failing in a row that mark the store down (one may be a passing fault). */
export const STORE_FAILURES_DOWN = 2;
/** While the store is marked down by failed calls, it is pinged this often. */
export const STORE_PROBE_MS = 500;

export interface MessageSender {
  send(to: NodeId, msg: CoherenceMsg): void;
}

export interface CacheShellOptions {
  readonly core: Omit<CoherenceOptions, 'nowMs'>;
  readonly store: BackingStore;
  readonly sender: MessageSender;
  readonly metrics: CacheMetrics;
  readonly logger: Logger;
  /** A request the core has not answered this long after its own deadline fails anyway, so
   * an HTTP caller can never hang on a bug. */
  readonly replyGraceMs: number;
}

type OpKind = 'read' | 'write' | 'delete';

interface Waiter {
  readonly op: OpKind;
  readonly resolve: (r: OpResult) => void;
  readonly timer: NodeJS.Timeout;
  readonly startMs: number;
}

type OpOutcome = 'hit' | 'miss' | 'ok' | 'error';

interface WriteSlot {
  next: { value: CacheValue; version: number } | null;
  attempt: number;
}

const monotonicMs = (): number => Math.floor(performance.now());

export class CacheShell {
  readonly core: CoherenceNode;
  private readonly waiters = new Map<string, Waiter>();
  private readonly loading = new Set<string>();
  private readonly writing = new Map<string, WriteSlot>();
  /** key → the remote getS/getM in flight for it, for the latency histogram. */
  private readonly timedRequests = new Map<string, { txn: number; type: string; atMs: number }>();
  private reqCounter = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly log: Logger;
  private storeUp = true;
  private storeFailures = 0;
  private probing = false;
  private lastProbeMs = 0;
  /** The request being started: a reply to it inside start() is caught here, not waited. */
  private syncReqId: string | null = null;
  private syncResult: OpResult | null = null;
  /** opLatency children by op and outcome, bound once: labels are not hashed per request. */
  private readonly latencyBy = new Map<string, { observe(seconds: number): void }>();

  constructor(private readonly o: CacheShellOptions) {
    this.core = new CoherenceNode({ ...o.core, nowMs: monotonicMs() });
    this.log = o.logger;
    o.metrics.storeUp.set(1);
  }

  start(): void {
    assert(this.timer === null && !this.closed, 'the shell starts once');
    let ticks = 0;
    this.timer = setInterval(() => {
      this.core.tick(monotonicMs());
      this.checkStore();
      this.carryOut();
      if (++ticks % SWEEP_EVERY_TICKS === 0) this.sweepTimedRequests();
    }, CACHE_TICK_MS);
  }

  /** False while the backing store is known to be down (see the header). */
  storeAvailable(): boolean {
    return this.storeUp;
  }

  /** Stops the clock; later store answers and messages are ignored. */
  stop(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const [reqId, w] of this.waiters) {
      clearTimeout(w.timer);
      w.resolve({ type: 'error', key: '', error: new UnavailableError(
        'the cache node is shutting down; retry on another node') });
      this.waiters.delete(reqId);
    }
  }

  /** A payload from the peer transport. */
  onPeerMessage(from: NodeId, payload: unknown): void {
    if (this.closed) return;
    if (!isCoherenceMsg(payload)) {
      this.o.metrics.peerMessagesDropped.inc();
      return;
    }
    countMessage(this.o.metrics, 'received', payload.type);
    if (payload.type === 'data' || payload.type === 'nack') this.noteAnswer(payload);
    this.core.receive(from, payload);
    this.carryOut();
  }

  // Expiry is judged against this pod's wall clock when the operation arrives
  // (coherence-value.ts; docs/cache.md says what clock skew does to it).

  read(key: string): Promise<OpResult> {
    return this.op('read', key, (id) => this.core.read(id, key, Date.now()));
  }

  /** `json` is the JSON text of the user's value. `expiresAt` (epoch ms): when it expires;
   * `ifVersion`: only if the key is at that version (0: has no value). */
  write(key: string, json: string, o: { expiresAt?: number; ifVersion?: number } = {}):
    Promise<OpResult> {
    const wallMs = Date.now();
    const text = withExpiry(json, o.expiresAt ?? null);
    return this.refuseWithoutStore(key) ??
      this.op('write', key, (id) => this.core.write(id, key, text, wallMs, o.ifVersion));
  }

  delete(key: string): Promise<OpResult> {
    return this.refuseWithoutStore(key) ??
      this.op('delete', key, (id) => this.core.delete(id, key, Date.now()));
  }

  /** Write-through with the shared store down: the write could not become durable, so it
   * is refused before anything is applied. */
  private refuseWithoutStore(key: string): Promise<OpResult> | null {
    if (this.storeUp || !this.o.store.shared || this.core.cfg.writePolicy !== 'write-through') {
      return null;
    }
    return Promise.resolve({ type: 'error', key, error: storeDownError() });
  }

  lineStatus(key: string): { state: LineState; absent: boolean } {
    return this.core.lineStatus(key, Date.now());
  }
  homeOf(key: string): NodeId { return this.core.homeOf(key); }
  stats(): CacheStats { return this.core.stats(); }

  /** Starts writing every dirty line back; resolves with how many once the store has all
   * of them (pendingWritebacks() reached 0), or rejects UNAVAILABLE at the deadline. */
  async flush(timeoutMs: number): Promise<number> {
    const n = this.core.flush();
    this.carryOut();
    await this.until(() => this.core.pendingWritebacks() === 0, timeoutMs,
      'the flushed lines were not all acknowledged by their homes in time; flush again');
    return n;
  }

  /** Graceful shutdown: hand every copy and dirty line back, wait until nothing is left that
   * only this node holds (or the deadline), keep serving peers meanwhile. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.core.beginDrain();
    this.carryOut();
    try {
      await this.until(() => this.core.drained(), timeoutMs, 'drain did not finish');
      return true;
    } catch {
      return false;
    }
  }

  private async until(cond: () => boolean, timeoutMs: number, why: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() >= deadline || this.closed) throw new UnavailableError(why);
      await new Promise((r) => setTimeout(r, CACHE_TICK_MS));
    }
  }

  private op(op: OpKind, key: string, start: (reqId: string) => void): Promise<OpResult> {
    if (this.closed) {
      return Promise.resolve({ type: 'error', key, error: new UnavailableError(
        'the cache node is shutting down; retry on another node') });
    }
    const reqId = `r${++this.reqCounter}`;
    const startMs = performance.now();
    // A hit is answered inside start(): then there is nothing to wait for, and no timer or
    // waiter is made (the hit path's share of a request's CPU).
    this.syncReqId = reqId;
    start(reqId);
    this.carryOut();
    this.syncReqId = null;
    const done = this.syncResult;
    if (done !== null) {
      this.syncResult = null;
      this.observeOp(op, done, startMs);
      return Promise.resolve(done);
    }
    return new Promise<OpResult>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(reqId);
        this.log.error({ reqId, key, op }, 'the coherence core never answered a request');
        resolve({ type: 'error', key, error: new UnavailableError(
          'the cache did not answer in time; retry') });
      }, this.core.cfg.requestTimeoutMs + this.o.replyGraceMs);
      this.waiters.set(reqId, { op, resolve, timer, startMs });
    });
  }

  private observeOp(op: OpKind, r: OpResult, startMs: number): void {
    const outcome: OpOutcome = r.type === 'error' ? 'error'
      : r.type === 'read' ? (r.hit ? 'hit' : 'miss') : 'ok';
    const id = `${op} ${outcome}`;
    let child = this.latencyBy.get(id);
    if (child === undefined) {
      child = this.o.metrics.opLatency.labels({ op, result: outcome });
      this.latencyBy.set(id, child);
    }
    child.observe((performance.now() - startMs) / 1000);
  }

  /** Carries out everything the core asked for since the last call. */
  private carryOut(): void {
    for (const e of this.core.drain()) this.effect(e);
  }

  private effect(e: CoherenceEffect): void {
    switch (e.type) {
      case 'send':
        countMessage(this.o.metrics, 'sent', e.msg.type);
        if (e.msg.type === 'getS' || e.msg.type === 'getM') this.noteRequest(e.msg);
        this.o.sender.send(e.to, e.msg);
        return;
      case 'reply': {
        if (e.reqId === this.syncReqId) {
          this.syncResult = e.result;
          return;
        }
        const w = this.waiters.get(e.reqId);
        if (w === undefined) return; // timed out in the shell already
        this.waiters.delete(e.reqId);
        clearTimeout(w.timer);
        this.observeOp(w.op, e.result, w.startMs);
        w.resolve(e.result);
        return;
      }
      case 'storeLoad':
        this.load(e.key, 0);
        return;
      case 'storeWrite':
        this.queueWrite(e.key, e.value, e.version);
        return;
    }
  }

  /** Marks the store down or up when its connection or recent calls say so. */
  private checkStore(): void {
    const store = this.o.store;
    const up = store.healthy() && this.storeFailures < STORE_FAILURES_DOWN;
    if (up !== this.storeUp) {
      this.storeUp = up;
      this.o.metrics.storeUp.set(up ? 1 : 0);
      if (up) this.log.info('the backing store is back; serving from it again');
      else {
        this.log.warn({ failures: this.storeFailures, connected: store.healthy() },
          'the backing store is down: requests that need it answer 503 store_unavailable');
      }
      this.core.setStoreAvailable(up);
      this.carryOut();
    }
    // Connected but failing: only a call that succeeds can tell that it works again.
    const now = monotonicMs();
    if (!up && store.healthy() && !this.probing && now - this.lastProbeMs >= STORE_PROBE_MS) {
      this.probing = true;
      this.lastProbeMs = now;
      store.ping().then(() => this.storeCallDone(true), () => this.storeCallDone(false))
        .finally(() => { this.probing = false; });
    }
  }

  private storeCallDone(ok: boolean): void {
    const wasFailing = this.storeFailures >= STORE_FAILURES_DOWN;
    this.storeFailures = ok ? 0 : this.storeFailures + 1;
    if (!this.closed && wasFailing !== this.storeFailures >= STORE_FAILURES_DOWN) {
      this.checkStore();
    }
  }

  private load(key: string, attempt: number): void {
    if (attempt === 0 && this.loading.has(key)) return;
    this.loading.add(key);
    this.o.store.load(key).then((rec) => {
      this.loading.delete(key);
      if (this.closed) return;
      this.storeCallDone(true);
      this.core.storeLoaded(key, rec?.value ?? null, rec?.version ?? 0);
      this.carryOut();
    }, (err: unknown) => {
      if (this.closed) return;
      this.storeCallDone(false);
      this.log.warn({ err, key, attempt }, 'backing store load failed; retrying');
      setTimeout(() => this.load(key, attempt + 1), backoffMs(attempt));
    });
  }

  private queueWrite(key: string, value: CacheValue, version: number): void {
    const slot = this.writing.get(key);
    if (slot !== undefined) {
      assert(slot.next === null || slot.next.version < version, 'store writes move forward');
      slot.next = { value, version };
      return;
    }
    this.writing.set(key, { next: null, attempt: 0 });
    this.storeWrite(key, value, version);
  }

  private storeWrite(key: string, value: CacheValue, version: number): void {
    this.o.store.write(key, value, version).then((wrote) => {
      this.o.metrics.storeWrites.inc({ outcome: wrote ? 'written' : 'superseded' });
      const slot = this.writing.get(key);
      assert(slot !== undefined, 'a write in flight has its slot');
      if (this.closed) return;
      this.storeCallDone(true);
      // "Superseded" means the store holds this version or a newer one: durable either way.
      this.core.storeWritten(key, version);
      this.carryOut();
      const next = slot.next;
      slot.next = null;
      slot.attempt = 0;
      if (next === null) this.writing.delete(key);
      else this.storeWrite(key, next.value, next.version);
    }, (err: unknown) => {
      this.o.metrics.storeWrites.inc({ outcome: 'failed' });
      const slot = this.writing.get(key);
      assert(slot !== undefined, 'a write in flight has its slot');
      if (this.closed) return;
      this.storeCallDone(false);
      this.log.warn({ err, key, version, attempt: slot.attempt },
        'backing store write failed; retrying');
      // Retry with the newest version queued: it carries everything the older one did.
      const retry = slot.next ?? { value, version };
      slot.next = null;
      setTimeout(() => this.storeWrite(key, retry.value, retry.version),
        backoffMs(slot.attempt++));
    });
  }

  private noteRequest(msg: Extract<CoherenceMsg, { type: 'getS' | 'getM' }>): void {
    const prior = this.timedRequests.get(msg.key);
    if (prior !== undefined && prior.txn === msg.txn) return; // a resend: keep the first send
    if (prior === undefined && this.timedRequests.size >= TIMED_REQUESTS_MAX) return;
    this.timedRequests.set(msg.key, { txn: msg.txn, type: msg.type, atMs: performance.now() });
  }

  /** Requests the core gave up on never get an answer: forget them after its deadline. */
  private sweepTimedRequests(): void {
    const oldestMs = performance.now() - this.core.cfg.requestTimeoutMs;
    for (const [key, t] of this.timedRequests) {
      if (t.atMs < oldestMs) this.timedRequests.delete(key);
    }
  }

  private noteAnswer(msg: Extract<CoherenceMsg, { type: 'data' | 'nack' }>): void {
    const t = this.timedRequests.get(msg.key);
    if (t === undefined || t.txn !== msg.txn) return;
    this.timedRequests.delete(msg.key);
    this.o.metrics.coherenceLatency.observe({ type: t.type },
      (performance.now() - t.atMs) / 1000);
  }
}

function storeDownError(): UnavailableError {
  return new UnavailableError('the backing store is unavailable; retry once it is back ' +
    '(GET /ready says when)', { reason: 'store_unavailable' });
}

function backoffMs(attempt: number): number {
  return Math.min(STORE_RETRY_MS_MAX, STORE_RETRY_MS_MIN * 2 ** Math.min(attempt, 10));
}
