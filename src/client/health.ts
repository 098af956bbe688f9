// GET /health of any node of any service, for tools that watch a cluster (`dsync status`).
import { HttpCaller } from './http.js';
import { parseRetryOptions } from './retry.js';

/** What `GET /health` answers (API.md); service fields beyond these are kept as they are. */
export interface NodeHealth {
  readonly status: string;
  readonly service: string;
  readonly node: string;
  readonly raft?: {
    readonly state: string; readonly term: number; readonly leader: string | null;
    readonly commitIndex: number; readonly appliedIndex: number;
  };
  readonly partitions?: ReadonlyArray<{
    readonly partition: number; readonly state: string; readonly term: number;
    readonly leader: string | null;
  }>;
  readonly [field: string]: unknown;
}

/** A transport for calls on named nodes only (callOn), outside any DsyncClient. */
export function nodeCaller(service: string, clientId = 'dsync-health'): HttpCaller {
  return new HttpCaller({
    service, clientId, timeoutMs: 2000, attemptTimeoutMs: 2000, retry: parseRetryOptions(),
    closed: new AbortController().signal, endpoints: null,
  });
}

/** One node's health, one attempt: a node that does not answer within `timeoutMs` is down as
 * far as a liveness check goes. Throws a DsyncError (NETWORK when unreachable). */
export function nodeHealth(url: string, timeoutMs = 2000,
  caller: HttpCaller = nodeCaller('any')): Promise<NodeHealth> {
  return caller.callOn<NodeHealth>(url, { method: 'GET', path: '/health' }, { timeoutMs });
}
