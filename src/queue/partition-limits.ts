// The bounds of a queue partition and the per-topic configuration. Every replica of a partition
// must run with the same limits (they decide results), so they belong to the cluster's
// configuration, not to one node's whim. Reaching a bound answers `exhausted` (the shell maps
// it to 429 with `error.limit`); the partition never grows past it, with one documented
// exception: a dead-letter is never refused (it moves a message that is already counted).
import { InvalidArgumentError } from '../errors.js';

export interface PartitionLimits {
  /** Topics created by publish, PUT or redrive on one partition. A `{topic}.dlq` created by
   * dead-lettering is exempt (there is at most one per topic). Default 10000, 1..1000000. */
  readonly topicsMax: number;
  /** Consumer groups of one topic (created by their first receive). Default 64, 1..10000. */
  readonly groupsPerTopicMax: number;
  /** Deliveries of one group that are in flight (received, neither acked, nacked nor
   * expired). Default 10000, 1..1000000. */
  readonly inflightPerGroupMax: number;
  /** Body plus key of one message, in bytes. Default 262144 (256 KiB), 1..16 MiB. */
  readonly messageBytesMax: number;
  /** Retained bytes of one topic: every retained message's body, key and
   * MESSAGE_OVERHEAD_BYTES, delayed ones included. Default 64 MiB, 1 KiB..64 GiB. */
  readonly topicRetainedBytesMax: number;
  /** Retained bytes of all topics of the partition. Default 256 MiB, 1 KiB..64 GiB. */
  readonly partitionRetainedBytesMax: number;
  /** dedupIds remembered at once (each for DEDUP_WINDOW_MS). Default 100000, 0..10000000. */
  readonly dedupEntriesMax: number;
  /** Bodies returned by one receive, in bytes; a receive always returns at least one message
   * when one is ready. Default 4 MiB, 1..256 MiB. */
  readonly receiveBytesMax: number;
  /** Timed transitions (lease expiries, delayed messages, retention trims) one command
   * performs at most; the rest wait for the next command. Default 10000, 1..1000000. */
  readonly dueItemsPerCommandMax: number;
}

export type QueueLimitName =
  | 'topics' | 'groupsPerTopic' | 'inflightPerGroup' | 'messageBytes' | 'topicRetainedBytes'
  | 'partitionRetainedBytes' | 'dedupEntries';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const DEFAULT_PARTITION_LIMITS: PartitionLimits = Object.freeze({
  topicsMax: 10_000,
  groupsPerTopicMax: 64,
  inflightPerGroupMax: 10_000,
  messageBytesMax: 256 * 1024,
  topicRetainedBytesMax: 64 * MiB,
  partitionRetainedBytesMax: 256 * MiB,
  dedupEntriesMax: 100_000,
  receiveBytesMax: 4 * MiB,
  dueItemsPerCommandMax: 10_000,
});

const LIMIT_BOUNDS: Record<keyof PartitionLimits, readonly [number, number]> = {
  topicsMax: [1, 1_000_000],
  groupsPerTopicMax: [1, 10_000],
  inflightPerGroupMax: [1, 1_000_000],
  messageBytesMax: [1, 16 * MiB],
  topicRetainedBytesMax: [1024, 64 * GiB],
  partitionRetainedBytesMax: [1024, 64 * GiB],
  dedupEntriesMax: [0, 10_000_000],
  receiveBytesMax: [1, 256 * MiB],
  dueItemsPerCommandMax: [1, 1_000_000],
};

/** What one retained message costs beyond its body and key (ids, times, per-group state):
 * counted in the retained bytes so that empty messages cannot grow memory without bound. */
export const MESSAGE_OVERHEAD_BYTES = 64;

function checkInt(v: number, field: string, min: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(field, `${field} must be an integer from ${min} to ${max}`);
  }
  return v;
}

/** Fills defaults and validates, relationships included; throws InvalidArgumentError naming
 * the field. */
export function parsePartitionLimits(input: Partial<PartitionLimits> = {}): PartitionLimits {
  const out: Record<string, number> = {};
  for (const key of Object.keys(LIMIT_BOUNDS) as (keyof PartitionLimits)[]) {
    const [min, max] = LIMIT_BOUNDS[key];
    out[key] = checkInt(input[key] ?? DEFAULT_PARTITION_LIMITS[key], key, min, max);
  }
  const l = out as unknown as PartitionLimits;
  if (l.messageBytesMax + MESSAGE_OVERHEAD_BYTES > l.topicRetainedBytesMax) {
    throw new InvalidArgumentError('messageBytesMax', 'messageBytesMax plus ' +
      `${MESSAGE_OVERHEAD_BYTES} bytes of overhead must fit in topicRetainedBytesMax`);
  }
  if (l.topicRetainedBytesMax > l.partitionRetainedBytesMax) {
    throw new InvalidArgumentError('topicRetainedBytesMax',
      'topicRetainedBytesMax must not exceed partitionRetainedBytesMax');
  }
  return Object.freeze(l);
}

// ---- per-topic configuration (PUT /v1/queues/{topic}) -------------------------------------

export interface TopicConfig {
  /** Deliveries per group before a message moves to `{topic}.dlq`. Default 5, 1..1000. */
  readonly maxDeliveries: number;
  /** Lease of a receive that names no visibilityMs. Default 30000, 100..43200000 (12 h). */
  readonly visibilityMs: number;
  /** How long a message is kept after it entered the topic, acked or not.
   * Default 345600000 (4 days), 1000..1209600000 (14 days). */
  readonly retentionMs: number;
}

export const DEFAULT_TOPIC_CONFIG: TopicConfig = Object.freeze({
  maxDeliveries: 5,
  visibilityMs: 30_000,
  retentionMs: 4 * 86_400_000,
});

export const MAX_DELIVERIES_MIN = 1;
export const MAX_DELIVERIES_MAX = 1000;
export const VISIBILITY_MS_MIN = 100;
export const VISIBILITY_MS_MAX = 43_200_000;
export const RETENTION_MS_MIN = 1000;
export const RETENTION_MS_MAX = 14 * 86_400_000;

// ---- bounds of one command ------------------------------------------------------------------

/** Messages in one publish (API.md). */
export const PUBLISH_BATCH_MAX = 1000;
/** Messages one receive asks for (API.md). */
export const RECEIVE_MAX = 1000;
/** Receipts in one ack, nack or extend. */
export const RECEIPTS_PER_COMMAND_MAX = 1000;
/** Dead letters one redrive moves; the shell loops for more. */
export const REDRIVE_MAX = 10_000;
/** delayMs of a publish or a nack: 0..12 h. */
export const DELAY_MS_MAX = 43_200_000;
/** How long a dedupId makes a re-publish a no-op (API.md: 5 minutes of the leader's clock). */
export const DEDUP_WINDOW_MS = 5 * 60_000;
/** extendLeases is one election timeout; a minute is far beyond any sane setting. */
export const EXTEND_LEASES_MS_MAX = 60_000;
