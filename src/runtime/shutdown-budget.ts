// The graceful shutdown of a node, step by step, each with its own named bound; together they
// stay under the overall deadline (observability/shutdown.ts, 25 s), which the chart's
// terminationGracePeriodSeconds must exceed (helm/dsync/templates/validate.yaml):
//
//   refuse            fail /ready and answer new requests 503 (retry on another pod)
//   label             the lock leader clears its pod's leader label
//   hand over         transfer the leadership of every group this pod leads
//   leave             a pod the StatefulSet scales away waits to be removed from the
//                     configuration (one voter at a time, while the others still run)
//   drain             the cache hands back every copy and dirty line (the flush to the store)
//   http              close the HTTP server (in-flight requests finish or are cut)
//   storage           close the Raft logs (fsync) / the backing store
//   peers             close the peer connections
import { assert } from '../assert.js';
import { DEFAULT_SHUTDOWN_DEADLINE_MS, type ShutdownStep } from '../observability/shutdown.js';

export const SHUTDOWN_REFUSE_MS = 500;
/** Read spec.replicas once more (group-membership.ts, 800 ms), clear the leader label
 * (leader-label.ts, 2 s). */
export const SHUTDOWN_LABEL_MS = 3000;
/** Longest wait for leadership transfers (two election timeouts, capped at this). */
export const SHUTDOWN_HANDOVER_MS_MAX = 5000;
export const SHUTDOWN_LEAVE_MS = 6000;
/** The cache's drain (cache-node.ts CACHE_DRAIN_TIMEOUT_MS) plus a margin. */
export const SHUTDOWN_DRAIN_MS = 9000;
export const SHUTDOWN_HTTP_MS = 3000;
export const SHUTDOWN_STORAGE_MS = 4000;
export const SHUTDOWN_PEERS_MS = 2000;

export function shutdownStep(name: string, timeoutMs: number, run: () => Promise<void> | void):
  ShutdownStep {
  return { name, timeoutMs, run: async () => { await run(); } };
}

/** What a Raft node (lock, queue) closes last, in this order. */
export interface RaftNodeClosers {
  /** Closes the HTTP server and what serves it (app, forwarding); bounded by SHUTDOWN_HTTP_MS
   * less a margin, which it is handed. */
  readonly http: (timeoutMs: number) => Promise<void>;
  readonly host: { close(): Promise<void> };
  readonly transport: { close(): Promise<void> };
  readonly peers: { close(): Promise<void> };
}

/** The last three steps of a Raft node's shutdown: HTTP, the Raft logs (fsync), peers. */
export function raftNodeClosingSteps(c: RaftNodeClosers): ShutdownStep[] {
  return [
    shutdownStep('close the HTTP server', SHUTDOWN_HTTP_MS, () => c.http(SHUTDOWN_HTTP_MS - 500)),
    shutdownStep('close the Raft logs (fsync)', SHUTDOWN_STORAGE_MS, () => c.host.close()),
    shutdownStep('close peer connections', SHUTDOWN_PEERS_MS, async () => {
      await c.transport.close();
      await c.peers.close();
    }),
  ];
}

/** Checks that a node's steps fit in the overall deadline (a bug otherwise). */
export function checkShutdownBudget(steps: readonly ShutdownStep[]): readonly ShutdownStep[] {
  const total = steps.reduce((sum, s) => sum + s.timeoutMs, 0);
  assert(total <= DEFAULT_SHUTDOWN_DEADLINE_MS, `shutdown steps take up to ${total} ms, more ` +
    `than the ${DEFAULT_SHUTDOWN_DEADLINE_MS} ms deadline`);
  return steps;
}

/** Closes, in order, what a start-up that failed half-way had opened; a close that fails does
 * not stop the others (the start-up error is what the operator must see, and is rethrown). */
export async function closeAfterFailedStart(
  closers: ReadonlyArray<() => Promise<void> | void>): Promise<void> {
  for (const close of closers) {
    try {
      await close();
    } catch {
      // the start-up error matters, not this one
    }
  }
}
