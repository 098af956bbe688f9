// Membership administration of a Raft group over HTTP: see the configuration, add a learner
// (the leader promotes it to voter once it has caught up), remove a member.
import { DsyncError, InvalidArgumentError } from '../errors.js';
import type { AppRouter } from '../http/app.js';
import type { LeaderOnly } from '../http/forward.js';
import { parseName } from '../http/validate.js';
import type { RaftGroup } from './raft-group.js';

export interface ClusterRouteDeps {
  readonly group: RaftGroup;
  /** Node ids the transport can reach: only those can become members. */
  knownPeers(): ReadonlySet<string>;
  /** Path parameters are validated before this is called (see LockRouteDeps.leaderOnly). */
  readonly leaderOnly: LeaderOnly;
  readonly requestTimeoutMs: number;
  /** The HTTP URL of a member, from the static peer list; null when this node does not know
   * it. Clients learn the other nodes from it (`members[].url`). */
  memberUrl?(id: string): string | null;
}

function view(d: ClusterRouteDeps): Record<string, unknown> {
  const s = d.group.status();
  const member = (id: string, role: 'voter' | 'learner'): Record<string, unknown> => ({
    id, role, url: d.memberUrl?.(id) ?? null, match: s.progress?.[id]?.match ?? null });
  return { leader: s.leader, term: s.term, commitIndex: s.commit, voters: s.config.voters,
    learners: s.config.learners, progress: s.progress ?? null,
    members: [...s.config.voters.map((id) => member(id, 'voter')),
      ...s.config.learners.map((id) => member(id, 'learner'))] };
}

export function registerClusterRoutes(router: AppRouter, d: ClusterRouteDeps): void {
  router.get('/v1/cluster', (ctx) => d.leaderOnly(ctx, async () => view(d)));
  router.post('/v1/cluster/learners/:id', (ctx) => {
    const id = parseName(ctx.params.id, 'id');
    return d.leaderOnly(ctx, () => addLearner(d, id));
  });
  router.delete('/v1/cluster/members/:id', (ctx) => {
    const id = parseName(ctx.params.id, 'id');
    return d.leaderOnly(ctx, () => removeMember(d, id));
  });
}

async function addLearner(d: ClusterRouteDeps, id: string): Promise<unknown> {
  if (!d.knownPeers().has(id)) {
    throw new InvalidArgumentError('id', `${id} is not in this node's peer list: start every ` +
      'node with --peers naming it (and the new node with --join), then retry');
  }
  const s = d.group.status();
  if (s.config.voters.includes(id) || s.config.learners.includes(id)) return view(d);
  const { index } = changeOrThrow(() => d.group.proposeConfChange({ type: 'addLearner', node: id }));
  await d.group.waitApplied(index, d.requestTimeoutMs);
  return view(d);
}

async function removeMember(d: ClusterRouteDeps, id: string): Promise<unknown> {
  const s = d.group.status();
  if (!s.config.voters.includes(id) && !s.config.learners.includes(id)) {
    throw new DsyncError('NOT_FOUND', `${id} is not a member; GET /v1/cluster lists them`);
  }
  const { index } = changeOrThrow(() => d.group.proposeConfChange({ type: 'remove', node: id }));
  await d.group.waitApplied(index, d.requestTimeoutMs);
  return view(d);
}

/** The core refuses a second change while one is pending: a retryable 503, not a 500. */
function changeOrThrow(f: () => { index: number }): { index: number } {
  try {
    return f();
  } catch (err) {
    if (err instanceof DsyncError) throw err;
    throw new DsyncError('UNAVAILABLE', `membership change refused: ${(err as Error).message}; ` +
      'retry once the pending change has committed', { retryable: true });
  }
}

/** A member of a service without one Raft group (the queue's pods, the cache's ring). */
export interface ServiceMember {
  readonly id: string;
  readonly url: string | null;
}

/** GET /v1/cluster of a service without one leader: the pods it knows, so that the SDK and
 * `dsync status` find every pod from one URL (`leader` is null: any pod serves). */
export function registerMembersRoute(router: AppRouter, members: () => readonly ServiceMember[]):
  void {
  router.get('/v1/cluster', (ctx) => {
    ctx.body = { leader: null, members: members().map((m) => ({ ...m, role: 'member' })) };
  });
}
