// GET /health of any node of any service, for tools that watch a cluster (`dsync status`).
import { HttpCaller } from './http.js';

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

/** One node's health, one attempt: a node that does not answer within `timeoutMs` is down as
 * far as a liveness check goes. Throws DsyncApiError (NETWORK when unreachable). */
export function nodeHealth(url: string, timeoutMs = 2000): Promise<NodeHealth> {
  return new HttpCaller({ urls: [url], attemptTimeoutMs: timeoutMs })
    .callOn<NodeHealth>(url, 'GET', '/health');
}
