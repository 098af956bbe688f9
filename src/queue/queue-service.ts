// The queue service on the leader of a partition: turns API calls into partition commands
// proposed through that partition's Raft group, answers publish only once the batch has
// committed (a proposal resolves when its entry applies here, after a majority persisted it),
// parks long-poll receives until the partition says messages became receivable, and refuses
// what the leader can already tell would hit a bound, so refused work stays out of the log.
import type { Logger } from 'pino';
import { DsyncError, UnavailableError } from '../errors.js';
import type { RaftGroup } from '../runtime/raft-group.js';
import {
  dlqTopicOf, type DeliveredMessage, type PublishMessage, type QueueCommand, type QueueResult,
  type TopicConfigView,
} from './partition-commands.js';
import { REDRIVE_MAX } from './partition-limits.js';
import { QueuePartitionMachine } from './partition-state-machine.js';
import type { LongPolls } from './queue-long-polls.js';

/** A partition this pod hosts: its Raft group and state machine. */
export interface HostedPartition {
  readonly partition: number;
  readonly group: RaftGroup;
  readonly sm: QueuePartitionMachine;
}

/** A receive as the routes validated it. */
export interface ReceiveRequest {
  readonly topic: string;
  readonly group: string;
  readonly max: number;
  readonly visibilityMs?: number;
  readonly waitMs: number;
}

/** GET /v1/queues/{topic} (API.md), with a few fields more. */
export interface TopicAnswer {
  readonly topic: string;
  readonly partition: number;
  readonly leader: string;
  readonly groups: Record<string, { ready: number; inflight: number; delayed: number;
    parked: number }>;
  readonly dlq: number;
  readonly messages: number;
  readonly delayed: number;
  readonly config: Omit<TopicConfigView, 'topic'>;
}

/** One topic of GET /v1/queues: the topic view, and the age of the oldest message a group
 * has not finished. */
export interface TopicSummary extends TopicAnswer {
  readonly oldestAgeMs?: number;
}

export interface QueueServiceOptions {
  readonly nodeId: string;
  readonly logger: Logger;
  /** Deadline of one proposal or read, ms. */
  readonly requestTimeoutMs: number;
  readonly longPolls: LongPolls;
  /** Counts a request refused by a bound, by limit name. */
  readonly onRefused?: (limit: string) => void;
}

/** Messages one redrive request moves at most (in commands of REDRIVE_MAX each). */
export const REDRIVE_REQUEST_MAX = 1_000_000;

/** What to do next, per bound. */
const LIMIT_ADVICE: Readonly<Record<string, string>> = {
  topics: 'use fewer topics on this partition',
  groupsPerTopic: 'use fewer consumer groups on this topic',
  inflightPerGroup: 'ack or nack what the group holds before receiving more',
  messageBytes: 'send a smaller message (body plus key)',
  topicRetainedBytes: 'consume and ack (or shorten retentionMs) before publishing more',
  partitionRetainedBytes: 'consume and ack (or shorten retentionMs) before publishing more',
  dedupEntries: 'publish fewer messages with a dedupId within 5 minutes, or retry later',
};

export class QueueService {
  private stopped = false;

  constructor(private readonly o: QueueServiceOptions) {}

  /** Ends every long poll (they answer what they have: nothing) and parks no more. */
  stop(): void {
    this.stopped = true;
    this.o.longPolls.wakeAll();
  }

  async publish(h: HostedPartition, topic: string, messages: readonly PublishMessage[],
    clientId: string, requestId?: string): Promise<readonly string[]> {
    const refused = h.sm.partition.publishRefusal(topic, messages);
    if (refused !== null) throw this.toError(refused);
    const r = await this.propose(h, { type: 'publish', topic, messages },
      requestId === undefined ? undefined : { clientId, requestId });
    if (r.type !== 'published') throw this.toError(r);
    return r.ids;
  }

  /** Up to `max` messages; with waitMs, waits on this leader until a command makes messages
   * receivable (or the deadline, the client leaving, leadership moving: then none). */
  async receive(h: HostedPartition, r: ReceiveRequest, signal?: AbortSignal):
    Promise<readonly DeliveredMessage[]> {
    if (r.waitMs === 0 || this.stopped) {
      return this.nothingToReceive(h, r.topic, r.group) ? [] : this.receiveOnce(h, r);
    }
    const deadline = Date.now() + r.waitMs;
    const parked = this.o.longPolls.park(r.topic, r.group, r.max);
    try {
      for (;;) {
        parked.rearm();
        if (!this.nothingToReceive(h, r.topic, r.group)) {
          const got = await this.receiveOnce(h, r);
          if (got.length > 0) {
            // More may be ready than this receive took: let the next parked one try.
            this.o.longPolls.notify(r.topic);
            return got;
          }
        }
        const left = deadline - Date.now();
        if (left <= 0 || this.stopped || !h.group.isLeader()) return [];
        if (!await parked.wait(left, signal) || this.stopped || !h.group.isLeader()) return [];
      }
    } finally {
      this.o.longPolls.unpark(parked);
    }
  }

  async ack(h: HostedPartition, topic: string, group: string, receipts: readonly string[]):
    Promise<number> {
    const r = await this.propose(h, { type: 'ack', topic, group, receipts });
    if (r.type !== 'acked') throw this.toError(r);
    return r.acked;
  }

  async nack(h: HostedPartition, topic: string, group: string, receipts: readonly string[],
    delayMs: number): Promise<number> {
    const r = await this.propose(h, { type: 'nack', topic, group, receipts, delayMs });
    if (r.type !== 'nacked') throw this.toError(r);
    return r.nacked;
  }

  async extend(h: HostedPartition, topic: string, group: string, receipts: readonly string[],
    visibilityMs: number): Promise<number> {
    const r = await this.propose(h, { type: 'extend', topic, group, receipts, visibilityMs });
    if (r.type !== 'extended') throw this.toError(r);
    return r.extended;
  }

  /** Moves up to `max` dead letters back, in commands of at most REDRIVE_MAX. */
  async redrive(h: HostedPartition, topic: string, max: number): Promise<number> {
    let moved = 0;
    while (moved < max) {
      const chunk = Math.min(REDRIVE_MAX, max - moved);
      const r = await this.propose(h, { type: 'redrive', topic, max: chunk });
      if (r.type !== 'redriven') {
        if (moved > 0) break;
        throw this.toError(r);
      }
      moved += r.moved;
      if (r.moved < chunk) break;
    }
    return moved;
  }

  async putConfig(h: HostedPartition, topic: string, config: { maxDeliveries?: number;
    visibilityMs?: number; retentionMs?: number }): Promise<TopicConfigView> {
    const refused = h.sm.partition.topicRefusal(topic);
    if (refused !== null) throw this.toError(refused);
    const r = await this.propose(h, { type: 'putConfig', topic, ...config });
    if (r.type !== 'config') throw this.toError(r);
    return { topic: r.topic, maxDeliveries: r.maxDeliveries, visibilityMs: r.visibilityMs,
      retentionMs: r.retentionMs };
  }

  /** A linearizable view of a topic; 404 for one that never existed. */
  async topic(h: HostedPartition, topic: string): Promise<TopicAnswer> {
    await h.group.linearizableRead(this.o.requestTimeoutMs);
    const v = h.sm.partition.topicView(topic);
    if (v === null) {
      throw new DsyncError('NOT_FOUND', `topic ${topic} does not exist: a topic exists from its ` +
        'first publish or PUT');
    }
    const groups: TopicAnswer['groups'] = {};
    for (const g of v.groups) {
      groups[g.group] = { ready: g.ready, inflight: g.inflight, delayed: g.delayed,
        parked: g.parked };
    }
    const { topic: _name, ...config } = v.config;
    return { topic, partition: h.partition, leader: this.o.nodeId, groups, dlq: v.dlq,
      messages: v.messages, delayed: v.delayed, config };
  }

  /** Every topic of a partition (at most `max`, by name), as GET /v1/queues lists them. */
  async topicList(h: HostedPartition, max: number): Promise<TopicSummary[]> {
    await h.group.linearizableRead(this.o.requestTimeoutMs);
    const p = h.sm.partition;
    const m = p.metrics();
    const now = h.group.now();
    const live = new Map(m.topics.map((t) => [t.topic, t.messages] as const));
    return m.topics.slice(0, max).map((t): TopicSummary => {
      const groups: TopicAnswer['groups'] = {};
      let oldest: number | null = null;
      for (const g of t.groups) {
        groups[g.group] = { ready: g.ready, inflight: g.inflight, delayed: g.delayed,
          parked: g.parked };
        if (g.oldestPublishedAt !== null && (oldest === null || g.oldestPublishedAt < oldest)) {
          oldest = g.oldestPublishedAt;
        }
      }
      const c = p.config(t.topic);
      return { topic: t.topic, partition: h.partition, leader: this.o.nodeId, groups,
        dlq: live.get(dlqTopicOf(t.topic)) ?? 0, messages: t.messages, delayed: t.delayed,
        config: { maxDeliveries: c?.maxDeliveries ?? 0, visibilityMs: c?.visibilityMs ?? 0,
          retentionMs: c?.retentionMs ?? 0 },
        ...(oldest === null ? {} : { oldestAgeMs: Math.max(0, now - oldest) }) };
    });
  }

  // ---- internals ----------------------------------------------------------------------

  /** True when a receive would certainly get nothing now, so it need not enter the log: the
   * topic does not exist (a receive creates nothing then), or the group exists, has nothing
   * ready and nothing of the partition is due. A group that does not exist yet must be
   * created by its first receive. */
  private nothingToReceive(h: HostedPartition, topic: string, group: string): boolean {
    const p = h.sm.partition;
    const view = p.topicView(topic);
    if (view === null) return true;
    const g = view.groups.find((x) => x.group === group);
    if (g === undefined || g.ready > 0) return false;
    const due = p.nextDeadline();
    return due === null || due > h.group.now();
  }

  private async receiveOnce(h: HostedPartition, r: ReceiveRequest):
    Promise<readonly DeliveredMessage[]> {
    // Never de-duplicated: the result carries bodies, and a retry is a new receive.
    const res = await this.propose(h, { type: 'receive', topic: r.topic, group: r.group,
      max: r.max, ...(r.visibilityMs === undefined ? {} : { visibilityMs: r.visibilityMs }) });
    if (res.type !== 'received') throw this.toError(res);
    return res.messages;
  }

  private async propose(h: HostedPartition, cmd: QueueCommand,
    idem?: { clientId: string; requestId: string }): Promise<QueueResult> {
    const r = await h.group.propose(QueuePartitionMachine.encode(cmd), {
      timeoutMs: this.o.requestTimeoutMs, ...(idem ?? {}),
    });
    return r as QueueResult;
  }

  private toError(r: QueueResult): DsyncError {
    if (r.type !== 'exhausted') {
      return new UnavailableError(`unexpected queue result ${r.type}; retry`);
    }
    this.o.onRefused?.(r.limit);
    const advice = LIMIT_ADVICE[r.limit] ?? 'retry later';
    const details = { limit: r.limit, max: r.max };
    // A message that is too large never fits, however long the caller waits.
    if (r.limit === 'messageBytes') {
      return new DsyncError('PAYLOAD_TOO_LARGE', `a message is larger than ${r.max} bytes ` +
        `(messageBytes): ${advice}`, { details });
    }
    return new DsyncError('RESOURCE_EXHAUSTED', `limit ${r.limit} (${r.max}) reached: ${advice}`,
      { retryable: true, details });
  }
}
