// One node of the lock service: peer transport, one Raft group holding the lock table, the
// HTTP API, membership kept in line with the StatefulSet (discovery dns), and a graceful
// shutdown in named, bounded steps that hands leadership over first (shutdown-budget.ts).
import { join } from 'node:path';
import type { Logger } from 'pino';
import { UnavailableError } from '../errors.js';
import type { NodeConfig } from '../config.js';
import {
  electionTimeoutMs, leaderLeaseExtensionMs, leaseReadMs, systemUrlsOf,
} from '../config.js';
import { GroupMembership } from '../discovery/group-membership.js';
import {
  groupConfigAtStart, identityHealth, type NodeDiscovery,
} from '../discovery/node-discovery.js';
import { StaticPeers } from '../discovery/peer-source.js';
import { createApp, type ReadyStatus } from '../http/app.js';
import { isForwarded, type LeaderOnly } from '../http/forward.js';
import { createForwarding, type ForwardTo } from '../http/peer-forward.js';
import {
  closeServer, DEFAULT_CONNECTIONS_MAX, startServer, type RunningServer,
} from '../http/server.js';
import type { Metrics } from '../observability/metrics.js';
import { runShutdownSteps, type ShutdownStep } from '../observability/shutdown.js';
import type { ClusterConfig } from '../raft/types.js';
import { handOverLeadership } from '../runtime/hand-over.js';
import { nodePeerTransport } from '../runtime/node-transport.js';
import { RaftHost } from '../runtime/raft-host.js';
import type { RaftGroup } from '../runtime/raft-group.js';
import { registerClusterRoutes } from '../runtime/cluster-routes.js';
import { raftObserver } from '../runtime/raft-observer.js';
import {
  checkShutdownBudget, closeAfterFailedStart, raftNodeClosingSteps, SHUTDOWN_HANDOVER_MS_MAX,
  SHUTDOWN_LABEL_MS, SHUTDOWN_LEAVE_MS, SHUTDOWN_REFUSE_MS, shutdownStep,
} from '../runtime/shutdown-budget.js';
import { LOCK_EXTEND_MS_MAX } from './commands.js';
import { DEFAULT_LOCK_LIMITS } from './lock-table-limits.js';
import { createLockMetrics } from './lock-metrics.js';
import { registerLockRoutes } from './lock-routes.js';
import { LockService } from './lock-service.js';
import { LockStateMachine } from './lock-state-machine.js';

/** Blocking acquires one node keeps open at most. */
export const WAITING_REQUESTS_MAX = 10_000;
/** HTTP connections a lock node accepts: every blocking acquire holds one (HTTP/1.1), and
 * the other calls (releases, renewals, /health) must still get in beside a full crowd. */
export const LOCK_CONNECTIONS_MAX = WAITING_REQUESTS_MAX + DEFAULT_CONNECTIONS_MAX;
/** Connections a follower opens to the leader to forward requests with --forward-via http.
 * A forwarded blocking acquire holds one until it is answered, and requests beyond the
 * pool's connections wait in it: with the default 128 a crowd sent through a follower
 * reached the leader 128 at a time. Two followers at this bound fit in the leader's
 * LOCK_CONNECTIONS_MAX. (Over the peer transport, the default, a request holds no
 * connection; requestsInFlightPerPeerMax bounds them, as many as WAITING_REQUESTS_MAX.) */
export const LOCK_FORWARD_CONNECTIONS_PER_PEER = 4_096;
/** Leader checks for due leases and wait deadlines this often. */
export const LOCK_DUTY_INTERVAL_MS = 25;

/** What a new leader extends every lease by (config.ts leaderLeaseExtensionMs). */
export function leaseExtensionMs(cfg: NodeConfig): number {
  return leaderLeaseExtensionMs(cfg, LOCK_EXTEND_MS_MAX);
}

export interface RunningLockNode {
  readonly group: RaftGroup;
  readonly server: RunningServer;
  /** The graceful shutdown, in order, each step bounded (what SIGTERM runs). */
  shutdownSteps(): readonly ShutdownStep[];
  /** Runs the shutdown steps. */
  stop(): Promise<void>;
}

/** What exists once the log has been read back. */
interface Started {
  readonly group: RaftGroup;
  readonly service: LockService;
  /** The commit index the node knew when its log was read back: until it has applied that
   * far it is recovering. */
  readonly commitAtOpen: number;
}

const STARTING_MESSAGE = 'this node is starting (reading its log back from disk); retry in ' +
  'a few seconds or on another node';
const DRAINING_MESSAGE = 'this node is shutting down; retry on another node';

function mustBeStarted(s: Started | null): Started {
  if (s === null) throw new UnavailableError(STARTING_MESSAGE);
  return s;
}

/** The node's state beside what exists once started: whether it is shutting down. */
interface Phase {
  started: Started | null;
  draining: boolean;
}

export async function startLockNode(cfg: NodeConfig, logger: Logger, metrics: Metrics,
  discovery: NodeDiscovery = { peers: new StaticPeers(cfg), dns: null }):
  Promise<RunningLockNode> {
  const { peers } = discovery;
  const transport = nodePeerTransport(cfg, logger,
    { sendQueueBytesMax: 64 * 1024 * 1024, frameBytesMax: 32 * 1024 * 1024 }, peers);
  const host = new RaftHost(cfg.nodeId, transport, logger, cfg.tickMs, metrics.peer);
  const sm = new LockStateMachine(DEFAULT_LOCK_LIMITS,
    { leaseExtensionMs: leaseExtensionMs(cfg) });
  const lockMetrics = createLockMetrics(metrics.registry, () => sm);
  const phase: Phase = { started: null, draining: false };
  const urlOf = (id: string): string | undefined => peers.urlOf(id);
  const forwarding = createForwarding({ nodeId: cfg.nodeId, via: cfg.forwardVia, transport,
    peerUrl: urlOf, timeoutMs: cfg.requestTimeoutMs, metrics: metrics.http,
    httpConnectionsPerPeer: LOCK_FORWARD_CONNECTIONS_PER_PEER,
    ...(peers.lookup === undefined ? {} : { lookup: peers.lookup }) });
  const leaderOnly = leaderOnlyRoute(cfg, phase, host, forwarding.forwardTo);
  const { app, close: closeApp } = createApp({
    service: 'lock', nodeId: cfg.nodeId, logger, metrics, bodyBytesMax: cfg.bodyBytesMax,
    systemUrls: systemUrlsOf(cfg),
    health: () => ({ ...lockHealth(phase.started), ...identityHealth(discovery.dns,
      phase.started !== null, phase.started?.group.status().config.voters ?? []) }),
    ready: () => lockReady(cfg.nodeId, phase),
    routes: (router) => {
      // The routes read the service and the group only once leaderOnly let them through.
      registerLockRoutes(router, { get service() { return mustBeStarted(phase.started).service; },
        leaderOnly });
      registerClusterRoutes(router, { get group() { return mustBeStarted(phase.started).group; },
        leaderOnly, requestTimeoutMs: cfg.requestTimeoutMs,
        knownPeers: () => new Set(peers.addresses().keys()),
        memberUrl: (id) => urlOf(id) ?? null });
    },
  });
  // Requests other nodes forward here run through the same app (503 until started).
  forwarding.serveWith(app.callback());
  // Listen before the log is read back, which can take seconds: a liveness probe gets its
  // answer meanwhile (/health says `recovering`; /ready and the API answer 503), and so do
  // peers that ask who this node is (discovery dns) while it decides how to start.
  const server = await startServer(app, { host: cfg.httpHost, port: cfg.httpPort,
    connectionsMax: LOCK_CONNECTIONS_MAX });
  logger.info({ http: server.url }, 'lock node listening; reading its log back');
  let group: RaftGroup;
  try {
    const bootstrap = discovery.dns === null ? staticBootstrap(cfg)
      : await groupConfigAtStart(cfg, discovery.dns, cfg.dataDir, logger);
    group = await openLockGroup(cfg, host, sm, metrics, bootstrap);
    await transport.start();
  } catch (err) {
    await closeAfterFailedStart([() => closeServer(server.server), closeApp,
      () => forwarding.close(), () => host.close(), () => transport.close(),
      () => peers.close()]);
    throw err;
  }
  host.start();
  peers.start();
  const service = new LockService({
    group, sm, logger, metrics: lockMetrics,
    requestTimeoutMs: cfg.requestTimeoutMs,
    waitingRequestsMax: WAITING_REQUESTS_MAX, dutyIntervalMs: LOCK_DUTY_INTERVAL_MS,
  });
  service.start();
  const membership = new GroupMembership(cfg, group, discovery.dns, logger, metrics.registry);
  membership.start();
  phase.started = { group, service, commitAtOpen: group.status().commit };
  logger.info({ http: server.url, peer: `${cfg.peerHost}:${cfg.peerPort}`,
    voters: group.status().config.voters }, 'lock node started');

  const steps = checkShutdownBudget([
    shutdownStep('refuse new requests, fail readiness', SHUTDOWN_REFUSE_MS, () => {
      phase.draining = true;
    }),
    shutdownStep('stop reconciling, clear the leader label', SHUTDOWN_LABEL_MS,
      () => membership.stopFollowing()),
    shutdownStep('hand leadership over', SHUTDOWN_HANDOVER_MS_MAX, () => handOverLeadership(
      [group], logger, Math.min(electionTimeoutMs(cfg) * 2, SHUTDOWN_HANDOVER_MS_MAX - 100),
      (id) => membership.staying(id))),
    shutdownStep('leave the configuration (scaled away)', SHUTDOWN_LEAVE_MS, async () => {
      if (!membership.scaledAway()) return;
      const left = await membership.waitRemoved(urlOf, SHUTDOWN_LEAVE_MS - 200);
      logger.info({ left }, left ? 'removed from the configuration before exiting'
        : 'not removed from the configuration in time; the leader will remove this member');
    }),
    ...raftNodeClosingSteps({ host, transport, peers, http: async (timeoutMs) => {
      service.stop();
      await closeServer(server.server, timeoutMs);
      await closeApp();
      await forwarding.close();
    } }),
  ]);
  return {
    group, server,
    shutdownSteps: () => steps,
    stop: async () => { await runShutdownSteps(steps, logger); },
  };
}

/** The initial configuration from the static peer list (the same on every start). */
function staticBootstrap(cfg: NodeConfig): ClusterConfig {
  // A joining node starts outside the configuration of the existing voters: it never
  // campaigns, and the leader's log (or snapshot) adds it once an operator does.
  const initial = cfg.voters.length > 0 ? [...cfg.voters]
    : cfg.peers.length > 0 ? cfg.peers.map((p) => p.id) : [cfg.nodeId];
  const voters = cfg.join ? initial.filter((id) => id !== cfg.nodeId) : initial;
  return { voters, learners: [] };
}

function openLockGroup(cfg: NodeConfig, host: RaftHost, sm: LockStateMachine,
  metrics: Metrics, bootstrap: ClusterConfig): Promise<RaftGroup> {
  return host.openGroup({
    group: 0, dataDir: join(cfg.dataDir, 'raft'), bootstrap,
    raft: { electionTicks: cfg.electionTicks, heartbeatTicks: cfg.heartbeatTicks },
    fsync: !cfg.unsafeNoFsync, snapshotEntries: cfg.snapshotEntries, stateMachine: sm,
    observer: raftObserver(metrics.raft), readMode: cfg.readMode, leaseMs: leaseReadMs(cfg),
  });
}

/** Runs a route on the leader, or forwards it there. */
function leaderOnlyRoute(cfg: NodeConfig, phase: Phase, host: RaftHost,
  forwardTo: ForwardTo): LeaderOnly {
  return async (ctx, local, opts = {}) => {
    if (phase.draining) throw new UnavailableError(DRAINING_MESSAGE, { reason: 'shutting_down' });
    const group = mustBeStarted(phase.started).group;
    // A burst of requests is handled in one long event-loop phase: keep the followers hearing
    // from their leader meanwhile.
    host.beatIfLate();
    if (group.isLeader()) {
      ctx.body = await local();
      return;
    }
    const leader = group.leaderId();
    if (leader === null || leader === cfg.nodeId || isForwarded(ctx)) {
      throw new UnavailableError(leader === null
        ? 'no lock leader is elected yet (election in progress or no quorum); retry in a second'
        : `the leader ${leader} is changing; retry in a second`, { leader });
    }
    // A blocking acquire may wait up to its (validated) waitMs at the leader.
    await forwardTo(ctx, leader, cfg.requestTimeoutMs + (opts.waitMs ?? 0));
  };
}

/** GET /health: `recovering` until the log read back at start-up has been applied. */
function lockHealth(s: Started | null): Record<string, unknown> {
  if (s === null) return { recovering: true };
  const st = s.group.status();
  const appliedIndex = s.group.appliedIndex();
  return { recovering: appliedIndex < s.commitAtOpen, raft: { state: st.role, term: st.term,
    leader: st.leader, commitIndex: st.commit, appliedIndex } };
}

function lockReady(nodeId: string, phase: Phase): ReadyStatus {
  if (phase.draining) return { ok: false, reason: 'shutting down' };
  const s = phase.started;
  if (s === null) return { ok: false, reason: 'starting: reading the log back from disk' };
  const st = s.group.status();
  if (!st.config.voters.includes(nodeId) && !st.config.learners.includes(nodeId)) {
    return { ok: false, reason: 'not a member yet: add it with POST /v1/cluster/learners/{id}' };
  }
  if (st.leader === null) return { ok: false, reason: 'no leader known yet' };
  const applied = s.group.appliedIndex();
  if (applied < st.commit) {
    return { ok: false, reason: `catching up with the log (applied ${applied} of ${st.commit})` };
  }
  return { ok: true };
}
