// One prom-client Registry per node, so that several nodes in one process (tests, `dsync dev`
// in-process) never share or double-register series. Names carry their unit. Every series has
// the default labels {node, service}; routes are labelled by pattern (`/v1/locks/:name`), never
// by raw path, so label cardinality stays bounded.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ServiceName } from '../config.js';

/** Latency buckets in seconds: 0.5 ms .. 10 s, fine where Raft commits land (1..50 ms). */
export const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** fsync is disk-bound: 50 µs (page cache, unsafeNoFsync) .. 2.5 s (a stalled volume). */
export const FSYNC_BUCKETS_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5,
];

/** Raft series shared by the lock and queue services. `group` is the Raft group id as a
 * string: "0" for the lock service, the partition number for the queue. */
export interface RaftMetrics {
  readonly term: Gauge<'group'>;
  readonly commitIndex: Gauge<'group'>;
  readonly appliedIndex: Gauge<'group'>;
  /** 1 while this node leads the group, else 0. */
  readonly isLeader: Gauge<'group'>;
  readonly leaderChanges: Counter<'group'>;
  /** From propose() to the entry being applied locally. */
  readonly commitLatency: Histogram<'group'>;
  /** Proposals by outcome: ok | not_leader | dropped | timeout | error. */
  readonly proposals: Counter<'group' | 'outcome'>;
  /** One fsync of the WAL (a group commit of one or more batches). */
  readonly fsyncDuration: Histogram;
  readonly snapshots: Counter<'group'>;
  /** Commands per proposed entry: how much one Raft entry (and its fsync) carries. */
  readonly entryCommands: Histogram<'group'>;
  /** Reads a leader confirmed, by kind: lease (from the leader lease), read_index (a quorum
   * round), lease_fallback (a quorum round because the lease did not hold). */
  readonly reads: Counter<'group' | 'kind'>;
}

export interface HttpMetrics {
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly duration: Histogram<'route' | 'method'>;
  /** Requests this node passed on to another node, by outcome (ok | error) and how (peer:
   * the peer transport, http: a second HTTP request). */
  readonly forwarded: Counter<'outcome' | 'via'>;
  /** Requests whose client closed the connection before the answer (mid-body, or while a
   * blocking call waited). Also in `requests` with status 499, never as a 5xx. */
  readonly clientAborts: Counter<'route' | 'method'>;
}

/** The Raft host's traffic between pods (src/runtime/raft-host.ts): messages per frame is
 * what coalescing across the groups of a pod buys. */
export interface PeerMetrics {
  /** Raft frames handed to the peer transport, by lane (control: heartbeats, votes and
   * answers; bulk: appends and snapshots). Requests between nodes are not counted here. */
  readonly framesSent: Counter<'lane'>;
  /** Raft messages inside those frames, every group's, by lane. */
  readonly raftMessagesSent: Counter<'lane'>;
  /** Frames received and refused whole, by reason (a shape or version this node does not
   * know: a peer on another version; malformed or misaddressed messages). */
  readonly framesRefused: Counter<'reason'>;
}

export interface Metrics {
  /** Services register their own series here (`new Counter({registers: [m.registry]})`). */
  readonly registry: Registry;
  readonly http: HttpMetrics;
  readonly raft: RaftMetrics;
  readonly peer: PeerMetrics;
  /** Prometheus text exposition of every series of this node. */
  text(): Promise<string>;
  readonly contentType: string;
}

export function createMetrics(node: string, service: ServiceName): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node, service });
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const http: HttpMetrics = {
    requests: new Counter({
      name: 'dsync_http_requests_total', help: 'HTTP requests answered, by route pattern',
      labelNames: ['route', 'method', 'status'], registers,
    }),
    duration: new Histogram({
      name: 'dsync_http_request_duration_seconds', help: 'HTTP request latency',
      labelNames: ['route', 'method'], buckets: LATENCY_BUCKETS_SECONDS, registers,
    }),
    forwarded: new Counter({
      name: 'dsync_http_forwarded_total', help: 'Requests forwarded to another node',
      labelNames: ['outcome', 'via'], registers,
    }),
    clientAborts: new Counter({
      name: 'dsync_http_client_aborts_total',
      help: 'Requests whose client closed the connection before the answer',
      labelNames: ['route', 'method'], registers,
    }),
  };
  return {
    registry, http, raft: createRaftMetrics(registry), peer: createPeerMetrics(registry),
    text: () => registry.metrics(),
    contentType: registry.contentType,
  };
}

function createPeerMetrics(registry: Registry): PeerMetrics {
  const registers = [registry];
  return {
    framesSent: new Counter({
      name: 'dsync_peer_frames_sent_total', help: 'Raft frames sent to peers, by lane',
      labelNames: ['lane'], registers,
    }),
    raftMessagesSent: new Counter({
      name: 'dsync_peer_raft_messages_sent_total',
      help: 'Raft messages sent to peers (inside dsync_peer_frames_sent_total), by lane',
      labelNames: ['lane'], registers,
    }),
    framesRefused: new Counter({
      name: 'dsync_peer_frames_refused_total',
      help: 'Raft frames received and refused whole, by reason', labelNames: ['reason'],
      registers,
    }),
  };
}

function createRaftMetrics(registry: Registry): RaftMetrics {
  const registers = [registry];
  const g = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: ['group'] as const, registers });
  return {
    term: g('dsync_raft_term', 'Current Raft term'),
    commitIndex: g('dsync_raft_commit_index', 'Highest log index known committed'),
    appliedIndex: g('dsync_raft_applied_index', 'Highest log index applied to the state machine'),
    isLeader: g('dsync_raft_is_leader', '1 while this node is the group leader'),
    leaderChanges: new Counter({
      name: 'dsync_raft_leader_changes_total', help: 'Leader changes observed by this node',
      labelNames: ['group'], registers,
    }),
    commitLatency: new Histogram({
      name: 'dsync_raft_commit_latency_seconds', help: 'Proposal to local apply',
      labelNames: ['group'], buckets: LATENCY_BUCKETS_SECONDS, registers,
    }),
    proposals: new Counter({
      name: 'dsync_raft_proposals_total', help: 'Proposals by outcome',
      labelNames: ['group', 'outcome'], registers,
    }),
    fsyncDuration: new Histogram({
      name: 'dsync_wal_fsync_duration_seconds', help: 'WAL fsync latency',
      buckets: FSYNC_BUCKETS_SECONDS, registers,
    }),
    snapshots: new Counter({
      name: 'dsync_raft_snapshots_total', help: 'Snapshots taken or installed',
      labelNames: ['group'], registers,
    }),
    entryCommands: new Histogram({
      name: 'dsync_raft_entry_commands', help: 'Commands batched into one proposed entry',
      labelNames: ['group'], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers,
    }),
    reads: new Counter({
      name: 'dsync_raft_reads_total', help: 'Reads confirmed by the leader, by kind',
      labelNames: ['group', 'kind'], registers,
    }),
  };
}
