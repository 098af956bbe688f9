// What the queue's API fixes (API.md, Queues), shared by the SDK's calls and its consumer.

/** Most messages in one publish, receive or receipt list. */
export const QUEUE_BATCH_MAX = 1000;
/** The group a call without `group` uses. */
export const DEFAULT_GROUP = 'default';

/** A delivered message, leased to the receiver for visibilityMs. */
export interface QueueMessage<T = unknown> {
  readonly id: string;
  readonly body: T;
  readonly key?: string;
  /** Names this delivery: ack, nack and extend take it. */
  readonly receipt: string;
  /** 1 for the first delivery to the group. */
  readonly deliveries: number;
  readonly publishedAt: number;
}
