// GET /v1/queues: every topic of every partition, from each partition's leader (the cluster
// page shows them). A pod asks the leader of each partition it does not lead for that
// partition's topics (`GET /v1/queues?partition=p`, which only that leader answers), at most
// LIST_FANOUT_MAX at once, and merges them by name. A partition whose leader does not answer
// is named in `unavailable` instead of failing the whole listing.
import { DsyncError } from '../errors.js';
import type { NodeId } from '../raft/types.js';
import type { QueueForwarding } from './queue-forwarding.js';
import type { HostedPartition, QueueService, TopicSummary } from './queue-service.js';

/** Topics one listing answers at most (by name); `truncated` says when there were more. */
export const LIST_TOPICS_MAX = 10_000;
/** Partitions asked at once. */
const LIST_FANOUT_MAX = 16;

export interface TopicListing {
  readonly topics: TopicSummary[];
  readonly truncated?: true;
  /** Partitions whose leader could not be asked. */
  readonly unavailable?: number[];
}

export interface ListingDeps {
  readonly partitions: number;
  readonly hosted: ReadonlyMap<number, HostedPartition>;
  readonly service: QueueService;
  readonly forwarding: QueueForwarding;
  /** The leader of a partition as this pod knows it, or null. */
  leaderOf(p: number): Promise<NodeId | null>;
  readonly requestTimeoutMs: number;
}

export async function listTopics(d: ListingDeps, reqId: string): Promise<TopicListing> {
  const all: TopicSummary[] = [];
  const unavailable: number[] = [];
  const one = async (p: number): Promise<void> => {
    try {
      all.push(...await partitionTopics(d, p, reqId));
    } catch (err) {
      if (!(err instanceof DsyncError)) throw err;
      unavailable.push(p);
    }
  };
  for (let p = 0; p < d.partitions; p += LIST_FANOUT_MAX) {
    const batch = Array.from({ length: Math.min(LIST_FANOUT_MAX, d.partitions - p) },
      (_, i) => p + i);
    await Promise.all(batch.map(one));
  }
  all.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
  unavailable.sort((a, b) => a - b);
  return { topics: all.slice(0, LIST_TOPICS_MAX),
    ...(all.length > LIST_TOPICS_MAX ? { truncated: true as const } : {}),
    ...(unavailable.length > 0 ? { unavailable } : {}) };
}

async function partitionTopics(d: ListingDeps, p: number, reqId: string):
  Promise<TopicSummary[]> {
  const h = d.hosted.get(p);
  if (h?.group.isLeader() === true) return d.service.topicList(h, LIST_TOPICS_MAX);
  const leader = await d.leaderOf(p);
  if (leader === null) throw new DsyncError('UNAVAILABLE', `partition ${p} has no leader`);
  const body = await d.forwarding.getFrom(leader, `/v1/queues?partition=${p}`, reqId,
    d.requestTimeoutMs) as { topics?: unknown };
  return Array.isArray(body.topics) ? body.topics as TopicSummary[] : [];
}
