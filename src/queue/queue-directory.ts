// Who leads the partitions this pod does not host (with more pods than replicas, a pod holds
// only some of them, yet serves requests for all). Learned from `GET /health` of the
// partition's replicas, which list the partitions they host with their Raft view; a pod that
// leads a partition also reports its configuration, which tells a pod that was removed from
// a group that it may stop hosting it. Answers are cached for `freshMs`; a forwarded request
// that meets a moved leader gets a retryable 503 and the entry is dropped.
import type { Logger } from 'pino';
import type { NodeId } from '../raft/types.js';

/** One partition as /health reports it (queue-node.ts healthOf). */
export interface PartitionHealth {
  readonly partition: number;
  readonly state: string;
  readonly term: number;
  readonly leader: NodeId | null;
  readonly voters?: readonly NodeId[];
  readonly learners?: readonly NodeId[];
}

export interface LeaderView {
  readonly leader: NodeId;
  readonly term: number;
  readonly atMs: number;
  /** The configuration as the leader itself last reported it, and when. */
  readonly config: { readonly voters: readonly NodeId[]; readonly learners: readonly NodeId[];
    readonly atMs: number } | null;
}

export interface LeaderDirectoryOptions {
  /** Base HTTP URL of a pod, or undefined for one not in the peer list. */
  readonly urlOf: (id: NodeId) => string | undefined;
  /** How long an answer is trusted, ms. */
  readonly freshMs: number;
  /** Deadline of one /health request, ms. */
  readonly timeoutMs: number;
  readonly logger: Logger;
}

export class LeaderDirectory {
  private readonly views = new Map<number, LeaderView>();
  private readonly asking = new Map<string, Promise<void>>();

  constructor(private readonly o: LeaderDirectoryOptions) {}

  /** The leader of partition `p` as its replicas `among` report it, or null when none of
   * them knows one (or answers). */
  async leaderOf(p: number, among: readonly NodeId[]): Promise<LeaderView | null> {
    const known = this.views.get(p);
    if (known !== undefined && Date.now() - known.atMs < this.o.freshMs) return known;
    for (const id of among) {
      const url = this.o.urlOf(id);
      if (url === undefined) continue;
      await this.ask(url);
      const v = this.views.get(p);
      if (v !== undefined && Date.now() - v.atMs < this.o.freshMs) return v;
    }
    return null;
  }

  /** Drops what is known of `p` (its leader did not serve a forwarded request). */
  forget(p: number): void {
    this.views.delete(p);
  }

  /** Takes in the partitions of one /health answer. */
  learn(partitions: readonly PartitionHealth[], atMs = Date.now()): void {
    for (const e of partitions) {
      if (e.leader === null || !Number.isSafeInteger(e.partition)) continue;
      const old = this.views.get(e.partition);
      if (old !== undefined && e.term < old.term) continue;
      // Only the leader's own report carries its configuration; a follower's in the same
      // term keeps the last one the leader gave (with the time it was given).
      const own = e.state === 'leader';
      const keep = !own && old !== undefined && old.term === e.term && old.leader === e.leader;
      this.views.set(e.partition, {
        leader: e.leader, term: e.term, atMs,
        config: own && e.voters !== undefined && e.learners !== undefined
          ? { voters: e.voters, learners: e.learners, atMs }
          : keep ? old.config : null,
      });
    }
  }

  private ask(url: string): Promise<void> {
    let p = this.asking.get(url);
    if (p === undefined) {
      p = this.fetchHealth(url).finally(() => this.asking.delete(url));
      this.asking.set(url, p);
    }
    return p;
  }

  private async fetchHealth(url: string): Promise<void> {
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(this.o.timeoutMs) });
      if (!res.ok) return;
      const body = await res.json() as { partitions?: unknown };
      if (Array.isArray(body.partitions)) this.learn(body.partitions as PartitionHealth[]);
    } catch (err) {
      this.o.logger.debug({ err, url }, 'could not ask a queue pod for its partition leaders');
    }
  }
}
