// The vocabulary of a queue partition's replicated state machine: the commands the leader
// proposes, the result each one yields, the events it causes for OTHER requests, and the
// names' rules. Commands travel in Raft entries as msgpack, so they are plain data with an
// encoding that is validated on the way back in (a corrupt or foreign entry must never reach
// the partition), and canonical (parseQueueCommand fixes the fields and drops unknown ones).
import { utf8Bytes } from '../cache/coherence-config.js';
import { InvalidArgumentError } from '../errors.js';
import { DLQ_SUFFIX } from '../ring/placement.js';
import { decode, encode } from '../runtime/envelope.js';
import {
  DELAY_MS_MAX, EXTEND_LEASES_MS_MAX, MAX_DELIVERIES_MAX, MAX_DELIVERIES_MIN,
  PUBLISH_BATCH_MAX, RECEIPTS_PER_COMMAND_MAX, RECEIVE_MAX, REDRIVE_MAX, RETENTION_MS_MAX,
  RETENTION_MS_MIN, VISIBILITY_MS_MAX, VISIBILITY_MS_MIN, type QueueLimitName,
} from './partition-limits.js';

/** A message body: JSON text (what the HTTP API carries) or raw bytes. Opaque to the queue. */
export type MessageBody = string | Uint8Array;

export interface PublishMessage {
  readonly body: MessageBody;
  /** FIFO sequence of first deliveries; absent = the topic's one keyless sequence. */
  readonly key?: string;
  /** A re-publish with the same dedupId within DEDUP_WINDOW_MS is a no-op that returns the
   * first id. */
  readonly dedupId?: string;
  /** Delay before the message enters the topic (and its key's FIFO sequence), 0..12 h. */
  readonly delayMs?: number;
}

export type QueueCommand =
  | { readonly type: 'publish'; readonly topic: string;
      readonly messages: readonly PublishMessage[] }
  /** Starts a lease on up to `max` messages; `visibilityMs` defaults to the topic's. */
  | { readonly type: 'receive'; readonly topic: string; readonly group: string;
      readonly max: number; readonly visibilityMs?: number }
  | { readonly type: 'ack'; readonly topic: string; readonly group: string;
      readonly receipts: readonly string[] }
  | { readonly type: 'nack'; readonly topic: string; readonly group: string;
      readonly receipts: readonly string[]; readonly delayMs: number }
  | { readonly type: 'extend'; readonly topic: string; readonly group: string;
      readonly receipts: readonly string[]; readonly visibilityMs: number }
  /** Moves up to `max` dead letters of `{topic}.dlq` back to `topic`. */
  | { readonly type: 'redrive'; readonly topic: string; readonly max: number }
  | { readonly type: 'putConfig'; readonly topic: string; readonly maxDeliveries?: number;
      readonly visibilityMs?: number; readonly retentionMs?: number }
  /** The leader's periodic command: performs what is due at its clock (lease expiries and
   * the dead-letters they cause, delayed messages, retention trims). Every other command
   * does the same first, so this one is needed only when nothing else is proposed. */
  | { readonly type: 'expire' }
  /** A new leader's first command: pushes every in-flight deadline out by `byMs`, so that a
   * leader change does not expire leases whose holders keep extending them. */
  | { readonly type: 'extendLeases'; readonly byMs: number };

export type QueueCommandType = QueueCommand['type'];

export interface DeliveredMessage {
  readonly id: string;
  readonly body: MessageBody;
  readonly key?: string;
  /** Valid for this delivery only (see partition-receipt.ts). */
  readonly receipt: string;
  /** 1 for the first delivery to the group, +1 for each redelivery. */
  readonly deliveries: number;
  readonly publishedAt: number;
}

export interface TopicConfigView {
  readonly topic: string;
  readonly maxDeliveries: number;
  readonly visibilityMs: number;
  readonly retentionMs: number;
}

export type QueueResult =
  /** One id per message, in order; a dedup hit returns the first publish's id. */
  | { readonly type: 'published'; readonly ids: readonly string[]; readonly dedupHits: number }
  | { readonly type: 'received'; readonly messages: readonly DeliveredMessage[] }
  | { readonly type: 'acked'; readonly acked: number }
  /** `deadLettered` of the nacked were at maxDeliveries and moved to the DLQ. */
  | { readonly type: 'nacked'; readonly nacked: number; readonly deadLettered: number }
  | { readonly type: 'extended'; readonly extended: number }
  | { readonly type: 'redriven'; readonly moved: number }
  | ({ readonly type: 'config' } & TopicConfigView)
  /** `due` timed transitions were performed (by this command; others may have done more). */
  | { readonly type: 'expired'; readonly due: number }
  | { readonly type: 'ok' }
  | { readonly type: 'exhausted'; readonly limit: QueueLimitName; readonly max: number };

/** For OTHER requests: `available` = the topic has messages a receive could take that it
 * did not have before this command (long-polls on it should retry). One per topic, sorted. */
export type QueueEvent = { readonly type: 'available'; readonly topic: string };

/** Whether a result may be remembered by request de-duplication: an `exhausted` answer must
 * not be, since the same request can succeed once there is room. */
export function isFinalQueueResult(result: QueueResult): boolean {
  return result.type !== 'exhausted';
}

// ---- names ----------------------------------------------------------------------------------

/** API.md: topics and keys 1–256 bytes of UTF-8; consumer groups 1–128; no control chars. */
export const TOPIC_NAME_BYTES_MAX = 256;
export const GROUP_NAME_BYTES_MAX = 128;
export const KEY_BYTES_MAX = 256;
export const DEDUP_ID_BYTES_MAX = 128;
/** Receipts are short ASCII (partition-receipt.ts); anything longer is not one of ours. */
export const RECEIPT_BYTES_MAX = 64;

// Cc = C0, DEL and C1 controls; Cs = a lone surrogate (the HTTP edge's rule, validate.ts).
const FORBIDDEN_RE = /[\p{Cc}\p{Cs}]/u;

function textProblem(v: unknown, bytesMax: number): string | null {
  if (typeof v !== 'string') return 'must be a string';
  if (v.length === 0) return 'must not be empty';
  if (FORBIDDEN_RE.test(v)) return 'must not contain control characters or lone surrogates';
  if (utf8Bytes(v) > bytesMax) return `must be at most ${bytesMax} bytes of UTF-8`;
  return null;
}

function parseText(v: unknown, field: string, bytesMax: number): string {
  const problem = textProblem(v, bytesMax);
  if (problem !== null) throw new InvalidArgumentError(field, `${field} ${problem}`);
  return v as string;
}

/** Whether a topic's messages go to a DLQ after maxDeliveries; a DLQ's own do not (they stay,
 * parked, so nothing is lost and names do not grow without end). */
export function isDlqTopic(topic: string): boolean {
  return topic.endsWith(DLQ_SUFFIX) && topic.length > DLQ_SUFFIX.length;
}

/** The DLQ of a topic. A DLQ's own DLQ exists only if someone publishes to it. */
export function dlqTopicOf(topic: string): string {
  return topic + DLQ_SUFFIX;
}

/** The topic a DLQ belongs to, or null when `topic` is not a DLQ name. */
export function topicOfDlq(topic: string): string | null {
  return isDlqTopic(topic) ? topic.slice(0, -DLQ_SUFFIX.length) : null;
}

/** A topic name: 1–256 bytes, or a valid topic's DLQ (`{topic}.dlq`, up to 260 bytes). */
export function topicNameProblem(v: unknown): string | null {
  const problem = textProblem(v, TOPIC_NAME_BYTES_MAX);
  if (problem === null || typeof v !== 'string' || !isDlqTopic(v)) return problem;
  return textProblem(v.slice(0, -DLQ_SUFFIX.length), TOPIC_NAME_BYTES_MAX);
}

export function parseTopicName(v: unknown, field = 'topic'): string {
  const problem = topicNameProblem(v);
  if (problem !== null) throw new InvalidArgumentError(field, `${field} ${problem}`);
  return v as string;
}

export function parseGroupName(v: unknown, field = 'group'): string {
  return parseText(v, field, GROUP_NAME_BYTES_MAX);
}

// ---- parsing ------------------------------------------------------------------------------

function parseInt(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(field, `${field} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function fieldsOf(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new InvalidArgumentError(what, `${what} must be an object`);
  }
  return v as Record<string, unknown>;
}

function arrayOf(v: unknown, field: string, min: number, max: number): readonly unknown[] {
  if (!Array.isArray(v) || v.length < min || v.length > max) {
    throw new InvalidArgumentError(field, `${field} must be an array of ${min} to ${max} items`);
  }
  return v;
}

function parseBody(v: unknown, field: string): MessageBody {
  if (typeof v === 'string') return v;
  // Copied: a decoded body may be a view into the whole entry, which it must not keep alive.
  if (v instanceof Uint8Array) return new Uint8Array(v);
  throw new InvalidArgumentError(field, `${field} must be JSON text or bytes`);
}

function parseMessage(v: unknown, field: string): PublishMessage {
  const f = fieldsOf(v, field);
  const out: { body: MessageBody; key?: string; dedupId?: string; delayMs?: number } =
    { body: parseBody(f.body, `${field}.body`) };
  if (f.key !== undefined) out.key = parseText(f.key, `${field}.key`, KEY_BYTES_MAX);
  if (f.dedupId !== undefined) {
    out.dedupId = parseText(f.dedupId, `${field}.dedupId`, DEDUP_ID_BYTES_MAX);
  }
  if (f.delayMs !== undefined && f.delayMs !== 0) {
    out.delayMs = parseInt(f.delayMs, `${field}.delayMs`, 0, DELAY_MS_MAX);
  }
  return out;
}

function parseReceipts(v: unknown): string[] {
  return arrayOf(v, 'receipts', 1, RECEIPTS_PER_COMMAND_MAX)
    .map((r, i) => parseText(r, `receipts.${i}`, RECEIPT_BYTES_MAX));
}

function parsePutConfig(f: Record<string, unknown>): QueueCommand {
  const out: { type: 'putConfig'; topic: string; maxDeliveries?: number; visibilityMs?: number;
    retentionMs?: number } = { type: 'putConfig', topic: parseTopicName(f.topic) };
  if (f.maxDeliveries !== undefined) {
    out.maxDeliveries = parseInt(f.maxDeliveries, 'maxDeliveries', MAX_DELIVERIES_MIN,
      MAX_DELIVERIES_MAX);
  }
  if (f.visibilityMs !== undefined) {
    out.visibilityMs = parseInt(f.visibilityMs, 'visibilityMs', VISIBILITY_MS_MIN,
      VISIBILITY_MS_MAX);
  }
  if (f.retentionMs !== undefined) {
    out.retentionMs = parseInt(f.retentionMs, 'retentionMs', RETENTION_MS_MIN,
      RETENTION_MS_MAX);
  }
  return out;
}

function parseReceive(f: Record<string, unknown>): QueueCommand {
  const cmd = { type: 'receive' as const, topic: parseTopicName(f.topic),
    group: parseGroupName(f.group), max: parseInt(f.max, 'max', 1, RECEIVE_MAX) };
  if (f.visibilityMs === undefined) return cmd;
  return { ...cmd, visibilityMs: parseInt(f.visibilityMs, 'visibilityMs', VISIBILITY_MS_MIN,
    VISIBILITY_MS_MAX) };
}

/** Validates an untrusted value as a QueueCommand; throws InvalidArgumentError naming the
 * field. Unknown fields are dropped and a zero delayMs of a message is omitted, so the
 * encoded form is canonical. */
export function parseQueueCommand(value: unknown): QueueCommand {
  const f = fieldsOf(value, 'command');
  switch (f.type) {
    case 'publish':
      return { type: 'publish', topic: parseTopicName(f.topic),
        messages: arrayOf(f.messages, 'messages', 1, PUBLISH_BATCH_MAX)
          .map((m, i) => parseMessage(m, `messages.${i}`)) };
    case 'receive':
      return parseReceive(f);
    case 'ack':
      return { type: 'ack', topic: parseTopicName(f.topic), group: parseGroupName(f.group),
        receipts: parseReceipts(f.receipts) };
    case 'nack':
      return { type: 'nack', topic: parseTopicName(f.topic), group: parseGroupName(f.group),
        receipts: parseReceipts(f.receipts), delayMs: parseInt(f.delayMs, 'delayMs', 0,
          DELAY_MS_MAX) };
    case 'extend':
      return { type: 'extend', topic: parseTopicName(f.topic), group: parseGroupName(f.group),
        receipts: parseReceipts(f.receipts), visibilityMs: parseInt(f.visibilityMs,
          'visibilityMs', VISIBILITY_MS_MIN, VISIBILITY_MS_MAX) };
    case 'redrive':
      return { type: 'redrive', topic: parseTopicName(f.topic),
        max: parseInt(f.max, 'max', 1, REDRIVE_MAX) };
    case 'putConfig':
      return parsePutConfig(f);
    case 'expire':
      return { type: 'expire' };
    case 'extendLeases':
      return { type: 'extendLeases', byMs: parseInt(f.byMs, 'byMs', 0, EXTEND_LEASES_MS_MAX) };
    default:
      throw new InvalidArgumentError('type', `unknown queue command type ${String(f.type)}`);
  }
}

/** msgpack (runtime/envelope.ts): bodies stay binary or text without base64 or escaping. */
export function encodeQueueCommand(cmd: QueueCommand): Uint8Array {
  return encode(parseQueueCommand(cmd));
}

export function decodeQueueCommand(data: Uint8Array): QueueCommand {
  let value: unknown;
  try {
    value = decode<unknown>(data);
  } catch (err) {
    throw new InvalidArgumentError('command', `not an encoded queue command: ${String(err)}`);
  }
  return parseQueueCommand(value);
}

/** Validated constructors, one per command: what the shell builds from an HTTP request. Each
 * throws InvalidArgumentError naming the field. */
export const QueueCmd = {
  publish: (topic: string, messages: readonly PublishMessage[]): QueueCommand =>
    parseQueueCommand({ type: 'publish', topic, messages }),
  receive: (topic: string, group: string, max: number, visibilityMs?: number): QueueCommand =>
    parseQueueCommand({ type: 'receive', topic, group, max, visibilityMs }),
  ack: (topic: string, group: string, receipts: readonly string[]): QueueCommand =>
    parseQueueCommand({ type: 'ack', topic, group, receipts }),
  nack: (topic: string, group: string, receipts: readonly string[], delayMs = 0):
    QueueCommand => parseQueueCommand({ type: 'nack', topic, group, receipts, delayMs }),
  extend: (topic: string, group: string, receipts: readonly string[], visibilityMs: number):
    QueueCommand => parseQueueCommand({ type: 'extend', topic, group, receipts, visibilityMs }),
  redrive: (topic: string, max: number): QueueCommand =>
    parseQueueCommand({ type: 'redrive', topic, max }),
  putConfig: (topic: string, config: { maxDeliveries?: number; visibilityMs?: number;
    retentionMs?: number }): QueueCommand =>
    parseQueueCommand({ ...config, type: 'putConfig', topic }),
  expire: (): QueueCommand => ({ type: 'expire' }),
  extendLeases: (byMs: number): QueueCommand => parseQueueCommand({ type: 'extendLeases', byMs }),
} as const;

/** One readable line for logs and golden tests (bodies are not shown). */
export function describeQueueCommand(cmd: QueueCommand): string {
  switch (cmd.type) {
    case 'publish':
      return `publish ${cmd.topic} ×${cmd.messages.length}`;
    case 'receive':
      return `receive ${cmd.topic}/${cmd.group} max=${cmd.max}` +
        (cmd.visibilityMs === undefined ? '' : ` vis=${cmd.visibilityMs}ms`);
    case 'ack':
    case 'nack':
    case 'extend':
      return `${cmd.type} ${cmd.topic}/${cmd.group} ×${cmd.receipts.length}` +
        (cmd.type === 'nack' ? ` delay=${cmd.delayMs}ms` : '') +
        (cmd.type === 'extend' ? ` vis=${cmd.visibilityMs}ms` : '');
    case 'redrive':
      return `redrive ${cmd.topic} max=${cmd.max}`;
    case 'putConfig':
      return `putConfig ${cmd.topic} maxDeliveries=${cmd.maxDeliveries ?? '-'} ` +
        `vis=${cmd.visibilityMs ?? '-'} retention=${cmd.retentionMs ?? '-'}`;
    case 'expire':
      return 'expire';
    case 'extendLeases':
      return `extendLeases by ${cmd.byMs}ms`;
  }
}
