// HTTP routes of the queue service (API.md, "Queues"). Every input is validated on the node
// that received the request, before anything is forwarded; the partition's leader serves it
// (`onLeader` forwards when this pod is not that leader).
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import type { AppContext, AppRouter } from '../http/app.js';
import { clientAbortSignal, objectBody } from '../http/app.js';
import {
  clientIdOf, durationMs, intInRange, ownerSchema, parseWith, textSchema,
} from '../http/validate.js';
import { ANONYMOUS_CLIENT_ID } from '../runtime/dedup.js';
import {
  DEDUP_ID_BYTES_MAX, KEY_BYTES_MAX, parseTopicName, RECEIPT_BYTES_MAX, type DeliveredMessage,
  type MessageBody, type PublishMessage,
} from './partition-commands.js';
import {
  DELAY_MS_MAX, MAX_DELIVERIES_MAX, MAX_DELIVERIES_MIN, PUBLISH_BATCH_MAX, RECEIPTS_PER_COMMAND_MAX,
  RECEIVE_MAX, RETENTION_MS_MAX, RETENTION_MS_MIN, VISIBILITY_MS_MAX, VISIBILITY_MS_MIN,
} from './partition-limits.js';
import { LIST_TOPICS_MAX, type TopicListing } from './queue-listing.js';
import { REDRIVE_REQUEST_MAX, type HostedPartition, type QueueService } from './queue-service.js';

/** API.md: a long poll waits at most 20 s. */
export const QUEUE_WAIT_MS_MAX = 20_000;
/** The consumer group of a request that names none (API.md). */
export const DEFAULT_GROUP = 'default';
/** Request ids of a publish: like the lock service's. */
export const QUEUE_REQUEST_ID_BYTES_MAX = 128;

const requestId = textSchema(QUEUE_REQUEST_ID_BYTES_MAX).optional();
const group = ownerSchema.default(DEFAULT_GROUP);
const visibilityMs = durationMs(VISIBILITY_MS_MIN, VISIBILITY_MS_MAX);
const receipts = z.array(textSchema(RECEIPT_BYTES_MAX)).min(1).max(RECEIPTS_PER_COMMAND_MAX);

const messageSchema = z.object({
  body: z.unknown(),
  key: textSchema(KEY_BYTES_MAX).optional(),
  dedupId: textSchema(DEDUP_ID_BYTES_MAX).optional(),
  delayMs: durationMs(0, DELAY_MS_MAX).optional(),
});
const singleSchema = messageSchema.extend({ requestId });
const batchSchema = z.object({
  messages: z.array(messageSchema).min(1).max(PUBLISH_BATCH_MAX), requestId,
});
const receiveSchema = z.object({
  group, max: intInRange(1, RECEIVE_MAX).default(1), visibilityMs: visibilityMs.optional(),
  waitMs: durationMs(0, QUEUE_WAIT_MS_MAX).default(0),
});
const ackSchema = z.object({ group, receipts });
const nackSchema = z.object({ group, receipts, delayMs: durationMs(0, DELAY_MS_MAX).default(0) });
const extendSchema = z.object({ group, receipts, visibilityMs });
const redriveSchema = z.object({ max: intInRange(1, REDRIVE_REQUEST_MAX).optional() });
const configSchema = z.object({
  maxDeliveries: intInRange(MAX_DELIVERIES_MIN, MAX_DELIVERIES_MAX).optional(),
  visibilityMs: visibilityMs.optional(),
  retentionMs: durationMs(RETENTION_MS_MIN, RETENTION_MS_MAX).optional(),
});

/** Serves `local` on the leader of `partition`, else forwards the request there. */
export type OnLeader = (ctx: AppContext, partition: number,
  local: (h: HostedPartition) => Promise<void>, opts?: { waitMs?: number }) => Promise<void>;

export interface QueueRouteDeps {
  readonly service: QueueService;
  readonly onLeader: OnLeader;
  /** P, and the partition of a topic. */
  readonly partitions: number;
  partitionOf(topic: string): number;
  /** GET /v1/queues without a partition: every partition's topics. */
  listAll(reqId: string): Promise<TopicListing>;
}

function topicOf(ctx: AppContext): string {
  return parseTopicName(ctx.params.topic, 'topic');
}

type Message = z.output<typeof messageSchema>;

/** A validated message of the API as the partition stores it: the body as JSON text. */
function toPublish(m: Message, field: string): PublishMessage {
  if (m.body === undefined) {
    throw new InvalidArgumentError(field, `${field} is required: any JSON value`);
  }
  const out: { body: MessageBody; key?: string; dedupId?: string; delayMs?: number } =
    { body: JSON.stringify(m.body) };
  if (m.key !== undefined) out.key = m.key;
  if (m.dedupId !== undefined) out.dedupId = m.dedupId;
  if (m.delayMs !== undefined && m.delayMs > 0) out.delayMs = m.delayMs;
  return out;
}

/** One message or a batch (API.md); `requestId` makes a retry of the same request safe. */
function parsePublish(body: Record<string, unknown>):
  { messages: PublishMessage[]; requestId: string | undefined } {
  if (body.messages !== undefined) {
    if (body.body !== undefined) {
      throw new InvalidArgumentError('body', 'give either one message (body) or a batch ' +
        '(messages), not both');
    }
    const b = parseWith(batchSchema, body);
    return { messages: b.messages.map((m, i) => toPublish(m, `messages.${i}.body`)),
      requestId: b.requestId };
  }
  const b = parseWith(singleSchema, body);
  return { messages: [toPublish(b, 'body')], requestId: b.requestId };
}

const bodyText = (b: MessageBody): string =>
  (typeof b === 'string' ? b : Buffer.from(b).toString('utf8'));

/** The receive answer as JSON text: bodies are stored as JSON text and go out as they are,
 * without a parse and a second serialization per message. */
export function receiveAnswer(messages: readonly DeliveredMessage[]): string {
  const parts = messages.map((m) => `{"id":${JSON.stringify(m.id)},"body":${bodyText(m.body)}` +
    (m.key === undefined ? '' : `,"key":${JSON.stringify(m.key)}`) +
    `,"receipt":${JSON.stringify(m.receipt)},"deliveries":${m.deliveries}` +
    `,"publishedAt":${m.publishedAt}}`);
  return `{"messages":[${parts.join(',')}]}`;
}

/** `?partition=` of GET /v1/queues: an integer in 0..P-1, or null when absent. */
function partitionQuery(ctx: AppContext, partitions: number): number | null {
  const v = ctx.query.partition;
  if (v === undefined) return null;
  const n = typeof v === 'string' && /^\d{1,7}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n >= partitions) {
    throw new InvalidArgumentError('partition', `partition must be given once, as an integer ` +
      `from 0 to ${partitions - 1}`);
  }
  return n;
}

export function registerQueueRoutes(router: AppRouter, d: QueueRouteDeps): void {
  const { service: s, onLeader } = d;
  router.post('/v1/queues/:topic/messages', (ctx) => {
    const topic = topicOf(ctx);
    const { messages, requestId: rid } = parsePublish(objectBody(ctx));
    const clientId = clientIdOf(ctx) ?? ANONYMOUS_CLIENT_ID;
    return onLeader(ctx, d.partitionOf(topic), async (h) => {
      const ids = await s.publish(h, topic, messages, clientId, rid);
      ctx.status = 201;
      ctx.body = { ids };
    });
  });
  router.post('/v1/queues/:topic/receive', (ctx) => {
    const topic = topicOf(ctx);
    const b = parseWith(receiveSchema, objectBody(ctx));
    return onLeader(ctx, d.partitionOf(topic), async (h) => {
      const got = await s.receive(h, { topic, group: b.group, max: b.max, waitMs: b.waitMs,
        ...(b.visibilityMs === undefined ? {} : { visibilityMs: b.visibilityMs }) },
      clientAbortSignal(ctx));
      ctx.type = 'application/json; charset=utf-8';
      ctx.body = receiveAnswer(got);
    }, { waitMs: b.waitMs });
  });
  router.post('/v1/queues/:topic/ack', (ctx) => {
    const topic = topicOf(ctx);
    const b = parseWith(ackSchema, objectBody(ctx));
    return onLeader(ctx, d.partitionOf(topic), async (h) => {
      ctx.body = { acked: await s.ack(h, topic, b.group, b.receipts) };
    });
  });
  router.post('/v1/queues/:topic/nack', (ctx) => {
    const topic = topicOf(ctx);
    const b = parseWith(nackSchema, objectBody(ctx));
    return onLeader(ctx, d.partitionOf(topic), async (h) => {
      ctx.body = { nacked: await s.nack(h, topic, b.group, b.receipts, b.delayMs) };
    });
  });
  router.post('/v1/queues/:topic/extend', (ctx) => {
    const topic = topicOf(ctx);
    const b = parseWith(extendSchema, objectBody(ctx));
    return onLeader(ctx, d.partitionOf(topic), async (h) => {
      ctx.body = { extended: await s.extend(h, topic, b.group, b.receipts, b.visibilityMs) };
    });
  });
  router.post('/v1/queues/:topic/redrive', (ctx) => {
    const topic = topicOf(ctx);
    const b = parseWith(redriveSchema, objectBody(ctx));
    return onLeader(ctx, d.partitionOf(topic), async (h) => {
      ctx.body = { moved: await s.redrive(h, topic, b.max ?? REDRIVE_REQUEST_MAX) };
    });
  });
  router.get('/v1/queues', async (ctx) => {
    const p = partitionQuery(ctx, d.partitions);
    if (p === null) {
      ctx.body = await d.listAll(ctx.state.reqId);
      return;
    }
    await onLeader(ctx, p, async (h) => {
      ctx.body = { topics: await s.topicList(h, LIST_TOPICS_MAX) };
    });
  });
  router.get('/v1/queues/:topic', (ctx) => {
    const topic = topicOf(ctx);
    return onLeader(ctx, d.partitionOf(topic), async (h) => {
      ctx.body = await s.topic(h, topic);
    });
  });
  router.put('/v1/queues/:topic', (ctx) => {
    const topic = topicOf(ctx);
    const b = parseWith(configSchema, objectBody(ctx));
    const config = {
      ...(b.maxDeliveries === undefined ? {} : { maxDeliveries: b.maxDeliveries }),
      ...(b.visibilityMs === undefined ? {} : { visibilityMs: b.visibilityMs }),
      ...(b.retentionMs === undefined ? {} : { retentionMs: b.retentionMs }),
    };
    return onLeader(ctx, d.partitionOf(topic), async (h) => {
      ctx.body = await s.putConfig(h, topic, config);
    });
  });
}
