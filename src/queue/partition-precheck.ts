// What a leader can refuse before it proposes: the bound a publish would certainly hit on the
// state it has applied, so that refused work stays out of the log. Pure and read-only; the
// state machine checks every bound again when the command applies (the leader's state may be
// a little behind its log), so this check only needs to be right when it refuses.
import type { PublishMessage, QueueResult } from './partition-commands.js';
import { exhausted, messageBytes } from './partition-core.js';
import { MESSAGE_OVERHEAD_BYTES } from './partition-limits.js';
import { countedTopics, creationCounts, type PartitionState } from './partition-state.js';

/** The `exhausted` result a publish of `messages` to `topic` would get, or null. Messages
 * whose dedupId is in the window add no bytes, as when they apply. */
export function publishRefusalOf(s: PartitionState, topic: string,
  messages: readonly PublishMessage[]): QueueResult | null {
  const limits = s.limits;
  let bytes = 0;
  for (const m of messages) {
    const size = messageBytes(m);
    if (size > limits.messageBytesMax) return exhausted('messageBytes', limits.messageBytesMax);
    if (m.dedupId !== undefined && s.dedup.lookup(topic, m.dedupId, s.nowMs) !== undefined) {
      continue;
    }
    bytes += size + MESSAGE_OVERHEAD_BYTES;
  }
  const t = s.topics.get(topic);
  if (t === undefined && creationCounts(s, topic) && countedTopics(s) >= limits.topicsMax) {
    return exhausted('topics', limits.topicsMax);
  }
  if ((t?.bytes ?? 0) + bytes > limits.topicRetainedBytesMax) {
    return exhausted('topicRetainedBytes', limits.topicRetainedBytesMax);
  }
  if (s.acct.bytes + bytes > limits.partitionRetainedBytesMax) {
    return exhausted('partitionRetainedBytes', limits.partitionRetainedBytesMax);
  }
  return null;
}

/** The `exhausted` result creating `topic` (PUT of a new topic) would get, or null. */
export function topicRefusalOf(s: PartitionState, topic: string): QueueResult | null {
  if (s.topics.has(topic) || !creationCounts(s, topic)) return null;
  return countedTopics(s) >= s.limits.topicsMax ? exhausted('topics', s.limits.topicsMax) : null;
}
