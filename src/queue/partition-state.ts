// The replicated state of a queue partition in one place, so that the partition's commands
// (partition.ts), its views, snapshots and invariant checks are functions of one record.
// Replicated: the clock, the counters, the topics with their logs, delayed messages and
// groups, the dedup window. Derived (rebuilt on restore): pending counts, fresh counts, the
// timer heap, retry queues' lazy items, the byte totals, the free-DLQ count.
import type { DedupWindow } from './partition-dedup.js';
import { isDlqTopic, topicOfDlq } from './partition-commands.js';
import type { PartitionLimits } from './partition-limits.js';
import {
  TIMER_DELAYED, TIMER_LEASE, TIMER_RETENTION, TIMER_SCHEDULED, type Timer, type TimerIndex,
} from './partition-timers.js';
import type { ByteAccount, Topic } from './partition-topic.js';

export interface PartitionState {
  readonly limits: PartitionLimits;
  readonly receiptSalt: number;
  /** The leader's clock as of the last command, made monotonic here as well. */
  nowMs: number;
  /** The next message id's number. */
  nextSeq: number;
  /** Deliveries made so far: the counter behind receipt tags. */
  deliveryCount: number;
  /** By name; every decision iterates them sorted or not at all. */
  readonly topics: Map<string, Topic>;
  readonly acct: ByteAccount;
  readonly dedup: DedupWindow;
  readonly timers: TimerIndex;
  /** DLQs whose topic exists: they do not count against topicsMax. */
  freeDlqs: number;
}

/** Topics that count against topicsMax. */
export function countedTopics(s: PartitionState): number {
  return s.topics.size - s.freeDlqs;
}

/** Whether creating `name` adds to countedTopics: not when it is the DLQ of an existing
 * topic, nor when it is the topic of an existing DLQ (that DLQ stops counting instead). */
export function creationCounts(s: PartitionState, name: string): boolean {
  const base = topicOfDlq(name);
  if (base !== null && s.topics.has(base)) return false;
  return !s.topics.has(`${name}.dlq`);
}

/** Recomputes freeDlqs from the topics (on restore). */
export function countFreeDlqs(topics: ReadonlyMap<string, Topic>): number {
  let n = 0;
  for (const name of topics.keys()) {
    const base = isDlqTopic(name) ? topicOfDlq(name) : null;
    if (base !== null && topics.has(base)) n++;
  }
  return n;
}

/** Whether a timer still describes the state (see partition-timers.ts). */
export function isTimerLive(s: PartitionState, t: Timer): boolean {
  const topic = s.topics.get(t.topic);
  if (topic === undefined) return false;
  switch (t.kind) {
    case TIMER_LEASE:
    case TIMER_DELAYED: {
      const d = topic.groups.get(t.group)?.states.get(t.pos);
      return d !== undefined && d.atMs === t.atMs &&
        d.kind === (t.kind === TIMER_LEASE ? 'inflight' : 'delayed');
    }
    case TIMER_SCHEDULED:
      return topic.scheduled[0]?.availableAt === t.atMs;
    case TIMER_RETENTION: {
      const first = topic.first();
      return first !== undefined && first.atMs + topic.config.retentionMs === t.atMs;
    }
  }
}
