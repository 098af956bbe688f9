// `queues.consume()`: a consumer loop. It long-polls for as many messages as it has free
// handler slots, runs the handler for each, extends a delivery's lease while its handler runs
// (DeliveryLease), acks successes in batches (AckBatcher) and nacks failures with an
// exponentially growing delay, so a message that keeps failing is retried less and less
// often until the topic's maxDeliveries sends it to the DLQ. On abort it stops receiving,
// lets running handlers finish for up to drainTimeoutMs, then nacks the ones still running
// (no delay, so another consumer takes them at once) and resolves.
import {
  BadResponseError, ClientClosedError, DsyncError, InvalidArgumentError, NotFoundError,
  PayloadTooLargeError,
} from './errors.js';
import { DEFAULT_GROUP, QUEUE_BATCH_MAX, type QueueMessage } from './queue-api.js';
import type { Queues } from './queues.js';

/** Default handlers at once. */
export const DEFAULT_CONCURRENCY = 1;
/** Most handlers at once: one receive asks for the free slots, at most a receive's max. */
export const CONCURRENCY_MAX = QUEUE_BATCH_MAX;
/** Default lease of each delivery; extended while its handler runs. */
export const DEFAULT_CONSUME_VISIBILITY_MS = 30_000;
/** Default long-poll wait of each receive (the API's maximum). */
export const DEFAULT_POLL_WAIT_MS = 20_000;
/** Default time running handlers get to finish once the signal aborts. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** Default nack delay after a first failed delivery; doubles with every further delivery. */
export const DEFAULT_BACKOFF_BASE_MS = 1000;
/** Default longest nack delay. */
export const DEFAULT_BACKOFF_MS_MAX = 60_000;
/** The API's longest nack delay (12 h). */
const DELAY_MS_MAX = 12 * 3600_000;
/** Pause after a failed receive: doubles per failure in a row, up to this. */
const RECEIVE_RETRY_MS_MAX = 5000;
const RECEIVE_RETRY_MS_BASE = 100;
/** Pause between failed extends of one delivery (each extend retries inside as well). */
const EXTEND_RETRY_PAUSE_MS = 50;

export interface ConsumeOptions {
  /** Consumer group (default "default"). */
  readonly group?: string;
  /** Handlers running at once, 1..CONCURRENCY_MAX (default 1). */
  readonly concurrency?: number;
  /** Lease of each delivery, ≥ 100 ms (default 30000); extended at half of it while the
   * handler runs. */
  readonly visibilityMs?: number;
  /** Long-poll wait of each receive, 0..20000 ms (default 20000). */
  readonly pollWaitMs?: number;
  /** Aborting it stops the loop gracefully. */
  readonly signal?: AbortSignal;
  /** How long running handlers get to finish after the abort (default 30000 ms). */
  readonly drainTimeoutMs?: number;
  /** Nack delay after a failed first delivery (default 1000 ms), doubled for each further
   * delivery, up to backoffMsMax (default 60000 ms), with jitter (half to all of it). */
  readonly backoffBaseMs?: number;
  readonly backoffMsMax?: number;
  /** Errors the loop retries past (receive, ack, nack, extend): for logging. */
  readonly onError?: (err: unknown) => void;
}

/** What a handler gets beside its message. */
export interface MessageContext {
  /** Aborted when the lease is lost (an extend found it taken, or could not be sent in
   * time: another consumer may get the message) or when the drain time ran out. */
  readonly signal: AbortSignal;
}

/** Resolving acks the message; throwing (or rejecting) nacks it with backoff. */
export type MessageHandler<T> = (message: QueueMessage<T>, ctx: MessageContext) =>
  Promise<void> | void;

export interface ConsumeStats {
  readonly received: number;
  /** Acks the service counted (a receipt whose lease ran out and that was delivered again
   * counts 0). */
  readonly acked: number;
  readonly nacked: number;
  /** Handlers that threw. */
  readonly failed: number;
  readonly extended: number;
  /** Leases lost while their handler ran. */
  readonly leasesLost: number;
  /** Handlers still running when the drain time ran out (their messages were nacked). */
  readonly abandoned: number;
}

interface Settings {
  readonly group: string;
  readonly concurrency: number;
  readonly visibilityMs: number;
  readonly pollWaitMs: number;
  readonly drainTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMsMax: number;
  readonly onError: (err: unknown) => void;
}

function invalid(field: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(`consume: ${field} ${message}`,
    { status: 0, details: { field } });
}

function intIn(v: number | undefined, dflt: number, lo: number, hi: number, field: string):
  number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n < lo || n > hi) {
    throw invalid(field, `must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  }
  return n;
}

function settingsOf(o: ConsumeOptions): Settings {
  const backoffMsMax = intIn(o.backoffMsMax, DEFAULT_BACKOFF_MS_MAX, 0, DELAY_MS_MAX,
    'backoffMsMax');
  return {
    group: o.group ?? DEFAULT_GROUP,
    concurrency: intIn(o.concurrency, DEFAULT_CONCURRENCY, 1, CONCURRENCY_MAX, 'concurrency'),
    visibilityMs: intIn(o.visibilityMs, DEFAULT_CONSUME_VISIBILITY_MS, 100, DELAY_MS_MAX,
      'visibilityMs'),
    pollWaitMs: intIn(o.pollWaitMs, DEFAULT_POLL_WAIT_MS, 0, 20_000, 'pollWaitMs'),
    drainTimeoutMs: intIn(o.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS, 0, DELAY_MS_MAX,
      'drainTimeoutMs'),
    backoffBaseMs: intIn(o.backoffBaseMs, DEFAULT_BACKOFF_BASE_MS, 0, backoffMsMax,
      'backoffBaseMs'),
    backoffMsMax,
    onError: o.onError ?? (() => undefined),
  };
}

/** The nack delay after delivery number `deliveries` failed: base·2^(deliveries−1), capped,
 * with equal jitter (half of it fixed, half random) so that a burst of failures spreads. */
export function backoffDelayMs(deliveries: number, baseMs: number, msMax: number,
  random: () => number = Math.random): number {
  const d = Math.min(msMax, baseMs * 2 ** Math.min(30, Math.max(0, deliveries - 1)));
  return Math.floor(d / 2 + random() * (d / 2));
}

/** An error no retry can fix: the topic, group or options are wrong, the URL is not a queue
 * node, the client was closed, or a bug (not a DsyncError). Network trouble, 503s, 429s and
 * timeouts are waited out. */
function isFatal(err: unknown): boolean {
  return !(err instanceof DsyncError) || err instanceof InvalidArgumentError ||
    err instanceof NotFoundError || err instanceof PayloadTooLargeError ||
    err instanceof BadResponseError || err instanceof ClientClosedError;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true || ms <= 0) { resolve(); return; }
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

type MutableStats = { -readonly [K in keyof ConsumeStats]: ConsumeStats[K] };

export async function consumeLoop<T>(q: Queues, topic: string, handler: MessageHandler<T>,
  o: ConsumeOptions): Promise<ConsumeStats> {
  const s = settingsOf(o);
  const stop = o.signal ?? new AbortController().signal;
  const stats: MutableStats = { received: 0, acked: 0, nacked: 0, failed: 0, extended: 0,
    leasesLost: 0, abandoned: 0 };
  const acker = new AckBatcher(q, topic, s, stats);
  const running = new Map<Promise<void>, Delivery<T>>();
  const stopped = new Promise<void>((r) => {
    if (stop.aborted) r();
    else stop.addEventListener('abort', () => r(), { once: true });
  });
  let fatal: Error | null = null;
  let failuresInRow = 0;
  while (!stop.aborted) {
    if (running.size >= s.concurrency) {
      await Promise.race([...running.keys(), stopped]);
      continue;
    }
    const sentAt = performance.now();
    let messages: QueueMessage<T>[];
    try {
      messages = await q.receive<T>(topic, { group: s.group, max: s.concurrency - running.size,
        visibilityMs: s.visibilityMs, waitMs: s.pollWaitMs, signal: stop });
      failuresInRow = 0;
    } catch (err) {
      if (stop.aborted) break;
      if (isFatal(err)) {
        fatal = err instanceof Error ? err : new Error(`consume: ${JSON.stringify(err)}`);
        break;
      }
      s.onError(err);
      await pause(Math.min(RECEIVE_RETRY_MS_MAX, RECEIVE_RETRY_MS_BASE * 2 ** failuresInRow++) *
        (0.5 + Math.random() / 2), stop);
      continue;
    }
    stats.received += messages.length;
    for (const m of messages) {
      const d = new Delivery(q, topic, m, sentAt, s, stats);
      const p = d.run(handler, acker).finally(() => running.delete(p));
      running.set(p, d);
    }
  }
  await drain(running, s, stats);
  await acker.idle();
  if (fatal !== null) throw fatal;
  return { ...stats };
}

/** Waits for running handlers up to the drain time, then gives up on the rest: their
 * messages are nacked without delay, their signals aborted. */
async function drain<T>(running: Map<Promise<void>, Delivery<T>>, s: Settings,
  stats: MutableStats): Promise<void> {
  if (running.size === 0) return;
  const timedOut = new AbortController();
  const timer = setTimeout(() => timedOut.abort(), s.drainTimeoutMs);
  await Promise.race([Promise.all(running.keys()),
    new Promise<void>((r) => timedOut.signal.addEventListener('abort', () => r()))]);
  clearTimeout(timer);
  const left = [...running.values()];
  stats.abandoned += left.length;
  await Promise.all(left.map((d) => d.abandon()));
}

/** One delivery while its handler runs: the lease kept alive, then the ack or nack. */
class Delivery<T> {
  private readonly lease: DeliveryLease;
  private settled = false;

  constructor(private readonly q: Queues, private readonly topic: string,
    readonly message: QueueMessage<T>, receiveSentAt: number, private readonly s: Settings,
    private readonly stats: MutableStats) {
    this.lease = new DeliveryLease(receiveSentAt, s.visibilityMs,
      (deadlineMs) => this.extendOnce(deadlineMs), stats);
  }

  async run(handler: MessageHandler<T>, acker: AckBatcher): Promise<void> {
    let ok = true;
    try {
      await handler(this.message, { signal: this.lease.signal });
    } catch {
      ok = false;
    }
    this.lease.stop();
    if (this.settled) return;
    this.settled = true;
    if (!ok) this.stats.failed++;
    // After a lost lease the ack is still sent: it counts while the message has not been
    // delivered again, and saves a duplicate.
    if (ok) await acker.ack(this.message.receipt);
    else await this.nack(backoffDelayMs(this.message.deliveries, this.s.backoffBaseMs,
      this.s.backoffMsMax));
  }

  /** The drain time ran out while the handler still runs. */
  async abandon(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    this.lease.lose(new Error('consume: stopping, and the drain time ran out'));
    this.lease.stop();
    await this.nack(0);
  }

  private async nack(delayMs: number): Promise<void> {
    try {
      // Not `stats.nacked += await …`: that reads the count before the await and loses the
      // nacks that other deliveries count meanwhile.
      const n = await this.q.nack(this.topic, [this.message.receipt],
        { group: this.s.group, ...(delayMs > 0 ? { delayMs } : {}) });
      this.stats.nacked += n;
    } catch (err) {
      // The lease runs out by itself: the message is delivered again all the same.
      this.s.onError(err);
    }
  }

  private async extendOnce(deadlineMs: number): Promise<boolean> {
    const n = await this.q.extend(this.topic, [this.message.receipt], this.s.visibilityMs,
      { group: this.s.group, timeoutMs: Math.max(1, Math.floor(deadlineMs)),
        signal: this.lease.stopSignal });
    return n === 1;
  }
}

/**
 * The consumer's own view of one lease, on its monotonic clock: it ends visibilityMs after
 * the receive (or the last successful extend) was SENT, since the service started it later.
 * An extend is sent at half of that; one that finds the lease gone, or none that succeeds
 * before the bound, loses the lease and aborts the handler's signal.
 */
class DeliveryLease {
  private readonly lost = new AbortController();
  private readonly stopped = new AbortController();
  private lastSentAt: number;

  constructor(sentAt: number, private readonly visibilityMs: number,
    private readonly extendOnce: (deadlineMs: number) => Promise<boolean>,
    private readonly stats: MutableStats) {
    this.lastSentAt = sentAt;
    void this.keepAlive();
  }

  get signal(): AbortSignal { return this.lost.signal; }
  get stopSignal(): AbortSignal { return this.stopped.signal; }

  stop(): void { this.stopped.abort(); }

  lose(why: Error): void {
    if (this.lost.signal.aborted) return;
    if (!this.stopped.signal.aborted) this.stats.leasesLost++;
    this.lost.abort(why);
  }

  private remainingMs(): number {
    return this.lastSentAt + this.visibilityMs - performance.now();
  }

  private async keepAlive(): Promise<void> {
    const done = AbortSignal.any([this.stopped.signal, this.lost.signal]);
    while (!done.aborted) {
      await pause(this.lastSentAt + this.visibilityMs / 2 - performance.now(), done);
      while (!done.aborted) {
        if (this.remainingMs() <= 0) {
          this.lose(new Error('consume: the lease ran out before an extend succeeded'));
          return;
        }
        const sentAt = performance.now();
        try {
          if (!await this.extendOnce(this.remainingMs())) {
            this.lose(new Error('consume: the lease was lost (extend counted 0): the message ' +
              'may be delivered to another consumer'));
            return;
          }
          this.stats.extended++;
          this.lastSentAt = sentAt;
          break;
        } catch {
          await pause(EXTEND_RETRY_PAUSE_MS, done);
        }
      }
    }
  }
}

/** Acks of many deliveries, sent together: while one ack request is in flight, the next
 * receipts wait and go in one request when it returns (up to 1000 each). */
class AckBatcher {
  private pending: Array<{ receipt: string; done: () => void }> = [];
  private flushing: Promise<void> | null = null;

  constructor(private readonly q: Queues, private readonly topic: string,
    private readonly s: Settings, private readonly stats: MutableStats) {}

  ack(receipt: string): Promise<void> {
    const p = new Promise<void>((done) => this.pending.push({ receipt, done }));
    this.flushing ??= this.flush();
    return p;
  }

  async idle(): Promise<void> {
    while (this.flushing !== null) await this.flushing;
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const chunk = this.pending.splice(0, QUEUE_BATCH_MAX);
        try {
          const n = await this.q.ack(this.topic, chunk.map((x) => x.receipt),
            { group: this.s.group });
          this.stats.acked += n;
        } catch (err) {
          // Unacked deliveries come back after their lease: at-least-once still holds.
          this.s.onError(err);
        }
        for (const x of chunk) x.done();
      }
    } finally {
      this.flushing = null;
    }
  }
}
