// Whether a starting node recovers, bootstraps a new cluster, joins an existing one, waits, or
// refuses: a pure decision over what the node knows of itself and what its peers answered.
// Pods of a StatefulSet start in parallel (podManagementPolicy Parallel) with generated node
// ids, so the initial voters are the ids that the initial ordinals 0..replicas-1 report; a
// new cluster is bootstrapped only when the node's data dir is empty and no peer answers with
// an existing cluster. Pods decide at slightly different moments, so a pod may hear from a
// peer that has just bootstrapped with it among the voters: it then starts as that voter
// (the same configuration), never as a newcomer waiting to be added.

/** What one peer said when asked (`null`: it has not answered yet). */
export interface PeerAnswer {
  /** Its pod name, e.g. lock-2. */
  readonly name: string;
  readonly ordinal: number;
  readonly answer: null | {
    readonly nodeId: string;
    readonly clusterId: string;
    /** It holds Raft state: a cluster exists (or existed) there. */
    readonly hasCluster: boolean;
    /** The voters of its configuration (with hasCluster). */
    readonly voters?: readonly string[];
  };
}

export interface BootstrapInput {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly ordinal: number;
  /** Replicas of the StatefulSet when the cluster was created (the chart's initial count). */
  readonly initialReplicas: number;
  /** The node's data dir holds Raft state. */
  readonly hasData: boolean;
  /** Every other pod of the service, answered or not. */
  readonly peers: readonly PeerAnswer[];
}

export type BootstrapDecision =
  | { readonly kind: 'recover' }
  | { readonly kind: 'bootstrap'; readonly voters: readonly string[] }
  /** Join as a new member: start outside `voters` (what a member reported) and wait for the
   * leader to add this node. */
  | { readonly kind: 'join'; readonly members: readonly string[];
    readonly voters: readonly string[] }
  | { readonly kind: 'wait'; readonly reason: string }
  | { readonly kind: 'refuse'; readonly reason: string };

export function decideBootstrap(input: BootstrapInput): BootstrapDecision {
  if (input.hasData) return { kind: 'recover' };
  const answered = input.peers.flatMap((p) => p.answer === null ? [] : [{ ...p, a: p.answer }]);
  const foreign = answered.find((p) => p.a.clusterId !== input.clusterId);
  if (foreign !== undefined) {
    return { kind: 'refuse', reason: `peer ${foreign.name} belongs to cluster ` +
      `"${foreign.a.clusterId}", not "${input.clusterId}": two clusters share one headless ` +
      'Service; give them different names or namespaces' };
  }
  const holders = answered.filter((p) => p.a.hasCluster);
  const mine = holders.find((p) => p.a.voters?.includes(input.nodeId) === true);
  if (mine !== undefined) return { kind: 'bootstrap', voters: [...mine.a.voters!].sort() };
  const members = holders.map((p) => p.a.nodeId);
  if (members.length > 0) {
    const reported = holders.find((p) => (p.a.voters?.length ?? 0) > 0)?.a.voters ?? members;
    return { kind: 'join', members, voters: [...reported].sort() };
  }
  if (input.ordinal >= input.initialReplicas) {
    return { kind: 'wait', reason: `ordinal ${input.ordinal} is beyond the initial ` +
      `${input.initialReplicas} and no peer holds a cluster yet to join` };
  }
  const initial = input.peers.filter((p) => p.ordinal < input.initialReplicas);
  const missing = initial.filter((p) => p.answer === null).map((p) => p.name);
  if (missing.length > 0 || initial.length !== input.initialReplicas - 1) {
    return { kind: 'wait', reason: `waiting for the initial members to answer: ` +
      `${missing.length > 0 ? missing.join(', ') : 'not all of them are known yet'}` };
  }
  const voters = [input.nodeId, ...initial.map((p) => p.answer!.nodeId)].sort();
  return { kind: 'bootstrap', voters };
}
