// The dsync SDK: `new DsyncClient({ endpoints: [url] })`. docs/sdk.md is its guide.
export { DsyncClient, type DsyncClientOptions, type ServiceName } from './client.js';
export * from './errors.js';
export { Lease, type Grant, type LeaseEvents, type LeaseState, type LockMode } from './lease.js';
export {
  Locks, DEFAULT_LOCK_TTL_MS, LOCK_WAIT_MS_MAX, type AcquireOptions, type LockView,
} from './locks.js';
export {
  Election, Leadership, ELECTION_VALUE_BYTES_MAX, type CampaignOptions, type Leader,
} from './election.js';
export { Membership, type ClusterMember, type ClusterView } from './membership.js';
export {
  Cache, GET_MANY_KEYS_MAX, type CacheLineState, type CacheStats, type CacheValue,
  type PutOptions, type PutResult,
} from './cache.js';
export {
  batch, Queues, DEFAULT_GROUP, QUEUE_BATCH_MAX, type GroupCallOptions, type GroupCounts,
  type PublishBatch, type PublishMessage, type PublishOptions, type QueueMessage,
  type QueueTransport, type ReceiveOptions, type TopicConfig, type TopicConfigInput,
  type TopicView,
} from './queues.js';
export {
  backoffDelayMs, DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_MS_MAX, DEFAULT_CONCURRENCY,
  DEFAULT_CONSUME_VISIBILITY_MS, DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_POLL_WAIT_MS,
  type ConsumeOptions, type ConsumeStats, type MessageContext, type MessageHandler,
} from './queue-consumer.js';
export { nodeHealth, type NodeHealth } from './health.js';
export {
  HttpCaller, CLIENT_ID_HEADER, DEFAULT_ATTEMPT_TIMEOUT_MS, DEFAULT_TIMEOUT_MS,
  type CallOptions, type Request,
} from './http.js';
export type { RetryOptions } from './retry.js';
export { ERROR_CODES, CLIENT_ERROR_CODES, type ErrorCode } from '../error-codes.js';
