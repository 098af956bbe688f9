// The Raft membership of a service's group (`/v1/cluster`): who votes, who is catching up as
// a learner, who leads. The leader promotes a learner to voter once it has caught up.
import { enc, type CallOptions, type HttpCaller } from './http.js';

export interface ClusterMember {
  readonly id: string;
  readonly role: 'voter' | 'learner';
  /** Its HTTP URL, from the node's peer list; null when the node does not know it. */
  readonly url: string | null;
  /** The highest log index the leader knows it has (null when not known). */
  readonly match: number | null;
}

export interface ClusterView {
  readonly leader: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  readonly members: readonly ClusterMember[];
}

export class Membership {
  constructor(private readonly http: HttpCaller) {}

  list(o: CallOptions = {}): Promise<ClusterView> {
    return this.http.call({ method: 'GET', path: '/v1/cluster' }, o);
  }

  /** Adds `id` (a node of the peer list, started with --join) as a learner; adding a member
   * twice changes nothing, so retries are safe. */
  addLearner(id: string, o: CallOptions = {}): Promise<ClusterView> {
    return this.http.call({ method: 'POST', path: `/v1/cluster/learners/${enc(id)}`,
      idempotent: true }, o);
  }

  /** Removes a voter or learner. Not idempotent: a retry after success is NOT_FOUND. */
  remove(id: string, o: CallOptions = {}): Promise<ClusterView> {
    return this.http.call({ method: 'DELETE', path: `/v1/cluster/members/${enc(id)}` }, o);
  }
}
