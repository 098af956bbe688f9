// The queue in the SDK: publish (one message or a batch), receive, ack, nack, extend,
// redrive, a topic's view and config, and consume(), a loop that runs a handler per message
// (queue-consumer.ts). Every call goes through a QueueTransport, the SDK's HttpCaller: any
// node of the queue service (each forwards to the partition's leader), its retries and typed
// errors.
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, NotFoundError } from './errors.js';
import { enc, type CallOptions, type Request } from './http.js';
import { DEFAULT_GROUP, QUEUE_BATCH_MAX, type QueueMessage } from './queue-api.js';
import { consumeLoop, type ConsumeOptions, type ConsumeStats, type MessageHandler } from
  './queue-consumer.js';

/** What the queue client needs of a transport (HttpCaller): one JSON call, retried within
 * its timeout where `idempotent` allows; the same body (so the same requestId) every time. */
export interface QueueTransport {
  call<T>(req: Request, opts?: CallOptions): Promise<T>;
}

export { DEFAULT_GROUP, QUEUE_BATCH_MAX } from './queue-api.js';
export type { QueueMessage } from './queue-api.js';
export type { CallOptions } from './http.js';

/** One message to publish, in the API's shape. */
export interface PublishMessage {
  /** Any JSON value. */
  readonly body: unknown;
  /** FIFO is kept per (topic, key) for first deliveries; keyless messages are one sequence. */
  readonly key?: string;
  /** A re-publish with the same dedupId within 5 minutes returns the first id. */
  readonly dedupId?: string;
  /** The message becomes visible this many ms after the publish. */
  readonly delayMs?: number;
}

const BATCH = Symbol('dsync.queue.batch');

/** Several messages for one publish request, made by `batch()`, so that an array body is
 * never mistaken for a batch. */
export interface PublishBatch {
  readonly [BATCH]: true;
  readonly messages: readonly PublishMessage[];
}

/** Marks `messages` (1..QUEUE_BATCH_MAX) as one batch for `queues.publish(topic, batch(…))`. */
export function batch(messages: readonly PublishMessage[]): PublishBatch {
  return { [BATCH]: true, messages };
}

function isBatch(v: unknown): v is PublishBatch {
  return typeof v === 'object' && v !== null && (v as Partial<PublishBatch>)[BATCH] === true;
}

export interface PublishOptions extends CallOptions {
  /** For a single body: its key, dedupId and delay (see PublishMessage). */
  readonly key?: string;
  readonly dedupId?: string;
  readonly delayMs?: number;
  /** Makes a retry of this publish safe; the default, a fresh UUID per call, is reused on
   * every retry of that call, so a publish that committed but whose answer was lost is not
   * published twice by the retry. */
  readonly requestId?: string;
}

export interface ReceiveOptions extends CallOptions {
  readonly group?: string;
  /** 1..1000, default 1. */
  readonly max?: number;
  /** The lease, ≥ 100 ms (default: the topic's, 30000). */
  readonly visibilityMs?: number;
  /** Long poll: wait up to this long (≤ 20000 ms) for a message; default 0. */
  readonly waitMs?: number;
}

export interface GroupCallOptions extends CallOptions {
  readonly group?: string;
}

/** One consumer group's messages, as GET /v1/queues/{topic} counts them. */
export interface GroupCounts {
  readonly ready: number;
  readonly inflight: number;
  /** Nacked with a delay that has not ended. */
  readonly delayed?: number;
  /** In a DLQ: past maxDeliveries for this group, kept but no longer delivered. */
  readonly parked?: number;
}

/** GET /v1/queues/{topic}. */
export interface TopicView {
  readonly topic: string;
  readonly partition: number;
  readonly leader: string | null;
  readonly groups: Readonly<Record<string, GroupCounts>>;
  /** Messages now in `{topic}.dlq`. */
  readonly dlq: number;
}

/** A topic's config, as PUT answers it. */
export interface TopicConfig {
  readonly topic: string;
  readonly maxDeliveries: number;
  readonly visibilityMs: number;
  readonly retentionMs: number;
}

export type TopicConfigInput = Partial<Omit<TopicConfig, 'topic'>>;

const path = (topic: string, route = ''): string =>
  `/v1/queues/${enc(topic)}${route === '' ? '' : `/${route}`}`;

function callOpts(o: CallOptions): CallOptions {
  return {
    ...(o.signal === undefined ? {} : { signal: o.signal }),
    ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
  };
}

function invalid(field: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { status: 0, details: { field } });
}

function messageOf(body: unknown, o: PublishOptions): PublishMessage {
  return {
    body,
    ...(o.key === undefined ? {} : { key: o.key }),
    ...(o.dedupId === undefined ? {} : { dedupId: o.dedupId }),
    ...(o.delayMs === undefined ? {} : { delayMs: o.delayMs }),
  };
}

/** The receipts of `messages` (or receipts as given). */
function receiptsOf(xs: ReadonlyArray<string | QueueMessage>): string[] {
  return xs.map((x) => (typeof x === 'string' ? x : x.receipt));
}

export class Queues {
  constructor(private readonly http: QueueTransport) {}

  /**
   * Publishes one message (`body`, with opts.key/dedupId/delayMs) or a `batch([...])` of up
   * to 1000 in one request. Resolves with one id per message once they are durable on a
   * majority of the partition's replicas.
   */
  async publish(topic: string, bodyOrBatch: unknown, o: PublishOptions = {}):
    Promise<{ ids: string[] }> {
    const requestId = o.requestId ?? randomUUID();
    let body: object;
    if (isBatch(bodyOrBatch)) {
      if (o.key !== undefined || o.dedupId !== undefined || o.delayMs !== undefined) {
        throw invalid('options', 'publish of a batch: put key, dedupId and delayMs on each ' +
          'message, not in the options');
      }
      const n = bodyOrBatch.messages.length;
      if (n < 1 || n > QUEUE_BATCH_MAX) {
        throw invalid('messages', `a batch holds 1..${QUEUE_BATCH_MAX} messages, this one ` +
          `${n}: split it`);
      }
      body = { messages: bodyOrBatch.messages, requestId };
    } else {
      body = { ...messageOf(bodyOrBatch, o), requestId };
    }
    // The requestId makes a resend safe: a retry of a publish that committed is answered
    // with its first ids.
    return this.http.call({ method: 'POST', path: path(topic, 'messages'), body,
      idempotent: true }, callOpts(o));
  }

  /** Publishes up to 1000 messages in one request: `publish(topic, batch(messages), o)`. */
  publishBatch(topic: string, messages: readonly PublishMessage[], o: PublishOptions = {}):
    Promise<{ ids: string[] }> {
    return this.publish(topic, batch(messages), o);
  }

  /** Up to `max` messages for the group (none when the topic never existed), each leased
   * for visibilityMs. With waitMs, waits that long for a first message. */
  async receive<T = unknown>(topic: string, o: ReceiveOptions = {}): Promise<QueueMessage<T>[]> {
    const body = {
      group: o.group ?? DEFAULT_GROUP, max: o.max ?? 1,
      ...(o.visibilityMs === undefined ? {} : { visibilityMs: o.visibilityMs }),
      waitMs: o.waitMs ?? 0,
    };
    // Resent after a lost answer: the leases that answer took run out and those messages are
    // delivered again (deliveries + 1); nothing is skipped or lost.
    const r = await this.http.call<{ messages: QueueMessage<T>[] }>({ method: 'POST',
      path: path(topic, 'receive'), body, waitMs: body.waitMs, idempotent: true }, callOpts(o));
    return r.messages;
  }

  /** Acks deliveries; resolves with how many receipts still named the current delivery. */
  async ack(topic: string, receipts: ReadonlyArray<string | QueueMessage>,
    o: GroupCallOptions = {}): Promise<number> {
    // Twice is once: a second ack of a receipt counts 0 and changes nothing.
    const r = await this.http.call<{ acked: number }>({ method: 'POST', path: path(topic, 'ack'),
      body: { group: o.group ?? DEFAULT_GROUP, receipts: receiptsOf(receipts) },
      idempotent: true }, callOpts(o));
    return r.acked;
  }

  /** Gives deliveries back: delivered again after delayMs (at once without it), or
   * dead-lettered once they reached the topic's maxDeliveries. */
  async nack(topic: string, receipts: ReadonlyArray<string | QueueMessage>,
    o: GroupCallOptions & { delayMs?: number } = {}): Promise<number> {
    // Twice is once: the lease is no longer held, so a second nack counts 0.
    const r = await this.http.call<{ nacked: number }>({ method: 'POST',
      path: path(topic, 'nack'), idempotent: true, body: {
        group: o.group ?? DEFAULT_GROUP, receipts: receiptsOf(receipts),
        ...(o.delayMs === undefined ? {} : { delayMs: o.delayMs }),
      } }, callOpts(o));
    return r.nacked;
  }

  /** Extends the lease of deliveries to visibilityMs from now; resolves with how many were
   * still held. */
  async extend(topic: string, receipts: ReadonlyArray<string | QueueMessage>,
    visibilityMs: number, o: GroupCallOptions = {}): Promise<number> {
    // Twice is about once: the lease ends visibilityMs after the last one applied.
    const r = await this.http.call<{ extended: number }>({ method: 'POST',
      path: path(topic, 'extend'), idempotent: true,
      body: { group: o.group ?? DEFAULT_GROUP, receipts: receiptsOf(receipts), visibilityMs } },
    callOpts(o));
    return r.extended;
  }

  /** Moves up to `max` (default all) dead letters of `{topic}.dlq` back to `topic`. */
  async redrive(topic: string, o: CallOptions & { max?: number } = {}): Promise<number> {
    // Not resent after an answer or a timeout: a second redrive would move more.
    const r = await this.http.call<{ moved: number }>({ method: 'POST',
      path: path(topic, 'redrive'), body: o.max === undefined ? {} : { max: o.max } },
    callOpts(o));
    return r.moved;
  }

  /** The topic's partition, leader, per-group counts and dead letters; undefined when the
   * topic never existed. */
  async get(topic: string, o: CallOptions = {}): Promise<TopicView | undefined> {
    try {
      return await this.http.call<TopicView>({ method: 'GET', path: path(topic) }, callOpts(o));
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** Creates the topic or changes its config; fields left out keep their value. */
  put(topic: string, config: TopicConfigInput, o: CallOptions = {}): Promise<TopicConfig> {
    return this.http.call({ method: 'PUT', path: path(topic), body: config, idempotent: true },
      callOpts(o));
  }

  /**
   * Runs `handler` for every message of the topic's group until `opts.signal` aborts:
   * long-polls, runs at most `concurrency` handlers at once, extends each lease while its
   * handler runs, acks on success and nacks with exponential backoff on failure. On abort it
   * stops receiving, lets running handlers finish (up to drainTimeoutMs), acks or nacks
   * them, and resolves with what it did. Rejects only on an error no retry can fix (a bad
   * topic name or option).
   */
  consume<T = unknown>(topic: string, handler: MessageHandler<T>,
    opts: ConsumeOptions = {}): Promise<ConsumeStats> {
    return consumeLoop(this, topic, handler, opts);
  }
}
