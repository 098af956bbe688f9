// The membership reconciler's decision, pure: given the StatefulSet's spec.replicas, the Raft
// configuration (with each member's pod and whether it has caught up) and the pods that
// answer, the one next step that moves the configuration toward "the voters are the pods
// 0..replicas-1". One step at a time, and only while no configuration change is in flight
// (Raft's single-server changes, §4.1 of the Raft dissertation):
//   1. a member whose pod came back with an empty volume (it answers with a new node id) is
//      removed: its log is gone, and the new id joins in its place;
//   2. scale-down: members of removed ordinals go, learners first, then one voter at a time
//      from the highest ordinal; a leader that must go hands over leadership first;
//   3. a caught-up learner of a wanted ordinal is promoted to voter;
//   4. a new pod of a wanted ordinal joins as a learner (lowest ordinal first).
// Kubernetes deletes the pods of a scale-down right away, so scaling down by more than one
// voter at once can cost the quorum before the reconciler removes them: the decision says so.

export type MemberRole = 'voter' | 'learner';

export interface MemberView {
  readonly nodeId: string;
  readonly role: MemberRole;
  /** The pod this member was running in (known from the peers' identities), or null. */
  readonly pod: string | null;
  /** Its log is within the catch-up bound of the leader's. */
  readonly caughtUp: boolean;
}

export interface PodView {
  readonly name: string;
  readonly ordinal: number;
  /** The node id the pod reports now, or null while it does not answer. */
  readonly nodeId: string | null;
}

export interface ReconcileInput {
  /** spec.replicas of the StatefulSet. */
  readonly desiredReplicas: number;
  /** This node, the leader that reconciles. */
  readonly leaderId: string;
  readonly members: readonly MemberView[];
  readonly pods: readonly PodView[];
  /** A configuration change is proposed and not yet committed. */
  readonly configChangePending: boolean;
}

export type ReconcileAction =
  | { readonly kind: 'none' }
  | { readonly kind: 'wait'; readonly reason: string }
  | { readonly kind: 'add-learner'; readonly nodeId: string; readonly pod: string }
  | { readonly kind: 'promote'; readonly nodeId: string }
  | { readonly kind: 'remove'; readonly nodeId: string; readonly reason: string }
  | { readonly kind: 'transfer-leadership'; readonly reason: string };

export interface ReconcileDecision {
  readonly action: ReconcileAction;
  /** Something an operator should hear about (logged and counted by the shell). */
  readonly warning: string | null;
}

/** The ordinal of a StatefulSet pod name (`lock-12` → 12), or null. */
export function ordinalOf(pod: string): number | null {
  const m = /-(\d+)$/.exec(pod);
  return m === null ? null : Number(m[1]);
}

/** The pod a node id was generated in (`lock-1-3fa9c2d1` → lock-1, identity.ts), or that it
 * is (`lock-1`: data written before identities), for the pods of one StatefulSet; else null. */
export function podOfNodeId(nodeId: string, statefulSet: string): string | null {
  if (!nodeId.startsWith(`${statefulSet}-`)) return null;
  const m = /^(\d{1,9})(-[0-9a-f]{8})?$/.exec(nodeId.slice(statefulSet.length + 1));
  return m === null ? null : `${statefulSet}-${Number(m[1])}`;
}

const decision = (action: ReconcileAction, warning: string | null = null): ReconcileDecision =>
  ({ action, warning });

/** Members of ordinals that are no longer wanted, in the order they should go. */
function scaledDown(input: ReconcileInput): MemberView[] {
  const gone = input.members.filter((m) => {
    const o = m.pod === null ? null : ordinalOf(m.pod);
    return o !== null && o >= input.desiredReplicas;
  });
  const ord = (m: MemberView): number => ordinalOf(m.pod!) ?? 0;
  return gone.sort((a, b) => a.role === b.role ? ord(b) - ord(a) : a.role === 'learner' ? -1 : 1);
}

function scaleDownWarning(input: ReconcileInput): string | null {
  const extraVoters = scaledDown(input).filter((m) => m.role === 'voter').length;
  return extraVoters > 1 ? `spec.replicas dropped by ${extraVoters} voters at once: scale ` +
    'down one voter at a time (wait for each removal), or the quorum may be lost' : null;
}

export function decideMembership(input: ReconcileInput): ReconcileDecision {
  if (!input.members.some((m) => m.nodeId === input.leaderId && m.role === 'voter')) {
    return decision({ kind: 'wait', reason: 'the reconciler runs on a voter that leads' });
  }
  if (input.configChangePending) {
    return decision({ kind: 'wait', reason: 'a configuration change is still in flight' });
  }
  const podByName = new Map(input.pods.map((p) => [p.name, p]));
  const memberIds = new Set(input.members.map((m) => m.nodeId));
  const replaced = input.members.find((m) => {
    const now = m.pod === null ? undefined : podByName.get(m.pod)?.nodeId;
    return now !== undefined && now !== null && now !== m.nodeId;
  });
  if (replaced !== undefined && replaced.nodeId !== input.leaderId) {
    return decision({ kind: 'remove', nodeId: replaced.nodeId, reason: `pod ${replaced.pod} ` +
      'came back with an empty volume under a new node id' });
  }
  const down = scaledDown(input)[0];
  if (down !== undefined) {
    const warning = scaleDownWarning(input);
    if (down.nodeId === input.leaderId) {
      return decision({ kind: 'transfer-leadership',
        reason: `this leader's pod ${down.pod} is beyond spec.replicas` }, warning);
    }
    return decision({ kind: 'remove', nodeId: down.nodeId,
      reason: `pod ${down.pod} is beyond spec.replicas ${input.desiredReplicas}` }, warning);
  }
  const promotable = input.members.find((m) => m.role === 'learner' && m.caughtUp &&
    m.pod !== null && (ordinalOf(m.pod) ?? Infinity) < input.desiredReplicas);
  if (promotable !== undefined) return decision({ kind: 'promote', nodeId: promotable.nodeId });
  const newcomer = [...input.pods].sort((a, b) => a.ordinal - b.ordinal).find((p) =>
    p.ordinal < input.desiredReplicas && p.nodeId !== null && !memberIds.has(p.nodeId));
  if (newcomer !== undefined) {
    return decision({ kind: 'add-learner', nodeId: newcomer.nodeId!, pod: newcomer.name });
  }
  const learning = input.members.find((m) => m.role === 'learner');
  return learning === undefined ? decision({ kind: 'none' })
    : decision({ kind: 'wait', reason: `learner ${learning.nodeId} is catching up` });
}
