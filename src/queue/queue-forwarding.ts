// How a queue pod reaches the leader of a partition it does not lead. Every request that
// leaves a pod for another goes through the two functions of QueueForwarding, over the peer
// transport (or a second HTTP request with --forward-via http; http/peer-forward.ts):
// `forwardTo` relays a client's request and its answer, `getFrom` asks another pod a GET of
// its own (the topic listing's fan-out).
import { DsyncError, NotLeaderError, UnavailableError } from '../errors.js';
import type { NodeConfig } from '../config.js';
import { electionTimeoutMs } from '../config.js';
import type { AppContext } from '../http/app.js';
import { errorFromEnvelope } from '../http/envelope.js';
import { isForwarded } from '../http/forward.js';
import type { Forwarding } from '../http/peer-forward.js';
import type { NodeId } from '../raft/types.js';
import type { LeaderDirectory } from './queue-directory.js';
import type { OnLeader } from './queue-routes.js';
import type { HostedPartition } from './queue-service.js';

export interface QueueForwarding {
  /** Serves `ctx` by relaying it to `nodeId` (marked as forwarded) and its answer back. */
  forwardTo(ctx: AppContext, nodeId: NodeId, timeoutMs: number): Promise<void>;
  /** GET `path` on `nodeId` (marked as forwarded): its JSON answer, or the error it
   * answered (a DsyncError). */
  getFrom(nodeId: NodeId, path: string, reqId: string, timeoutMs: number): Promise<unknown>;
}

export function queueForwarding(forwarding: Forwarding): QueueForwarding {
  return {
    forwardTo: forwarding.forwardTo,
    getFrom: async (nodeId, path, reqId, timeoutMs) => {
      const res = await forwarding.request(nodeId, { method: 'GET', path, reqId }, timeoutMs);
      let body: unknown;
      try {
        body = JSON.parse(res.body.toString('utf8')) as unknown;
      } catch {
        throw new UnavailableError(`${nodeId} answered ${path} with something that is not JSON`);
      }
      if (res.status !== 200) {
        throw errorFromEnvelope(body) ?? new UnavailableError(`${nodeId} answered ${res.status}`);
      }
      return body;
    },
  };
}

/** Time a request may spend waiting for its partition's leadership to settle (an election,
 * a transfer to the preferred leader) before it is answered 503. */
export const LEADER_SETTLE_MS_MAX = 3_000;
/** How often a request waiting for a leader looks again. */
const LEADER_POLL_MS = 25;

export interface RouterDeps {
  readonly cfg: NodeConfig;
  readonly hosted: ReadonlyMap<number, HostedPartition>;
  readonly desired: (p: number) => readonly NodeId[];
  readonly directory: LeaderDirectory;
  readonly forwarding: QueueForwarding;
}

/** Whether an error says the command never entered the log because leadership moved: then
 * any command, publish included, may be tried again on the new leader. */
function movedAway(err: unknown): boolean {
  return err instanceof DsyncError && err.code === 'NOT_LEADER';
}

/** Whether a relayed answer is the 503 of a pod that was no longer the leader. */
function relayedNotLeader(ctx: AppContext): boolean {
  if (ctx.status !== 503 || !Buffer.isBuffer(ctx.body)) return false;
  try {
    const e = (JSON.parse(ctx.body.toString('utf8')) as { error?: { reason?: unknown } }).error;
    return e?.reason === 'not_leader';
  } catch {
    return false;
  }
}

/** Serves a request on its partition's leader: here when this pod leads, else forwarded. While
 * leadership moves (no leader known, a leader that just handed over), the request waits up
 * to LEADER_SETTLE_MS_MAX (and two election timeouts) for the new leader and goes there: a
 * command refused as NOT_LEADER never entered the log, so trying it again is safe. */
export function leaderRouter(d: RouterDeps): OnLeader {
  const { cfg, hosted, directory } = d;
  const settleMs = Math.min(LEADER_SETTLE_MS_MAX, 2 * electionTimeoutMs(cfg),
    cfg.requestTimeoutMs);
  return async (ctx, p, local, opts = {}) => {
    const settleBy = Date.now() + settleMs;
    let forwarded = false;
    const settling = async (): Promise<boolean> => {
      if (Date.now() >= settleBy) return false;
      await new Promise((r) => setTimeout(r, LEADER_POLL_MS));
      return true;
    };
    for (;;) {
      const h = hosted.get(p);
      if (h?.group.isLeader() === true) {
        try {
          if (forwarded) {
            // The answer relayed by a pod that was no longer the leader is not ours.
            ctx.status = 200;
            ctx.remove('Retry-After');
          }
          await local(h);
          return;
        } catch (err) {
          if (movedAway(err) && await settling()) continue;
          throw err;
        }
      }
      const leader = h !== undefined ? h.group.leaderId()
        : (await directory.leaderOf(p, d.desired(p)))?.leader ?? null;
      if (leader === null || leader === cfg.nodeId) {
        if (h === undefined) directory.forget(p);
        if (await settling()) continue;
        throw new UnavailableError(`partition ${p} has no leader yet (election in progress ` +
          'or no quorum); retry in a second', { partition: p, leader: null });
      }
      // Forwarded here by a pod that took this one for the leader: it tries the new one.
      if (isForwarded(ctx)) throw new NotLeaderError(leader, p);
      // A long poll may wait up to its (validated) waitMs at the leader.
      await d.forwarding.forwardTo(ctx, leader, cfg.requestTimeoutMs + (opts.waitMs ?? 0));
      forwarded = true;
      if (ctx.status !== 503) return;
      if (h === undefined) directory.forget(p);
      if (!relayedNotLeader(ctx) || !await settling()) return;
    }
  };
}
