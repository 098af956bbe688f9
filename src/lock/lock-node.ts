// One node of the lock service: peer transport, one Raft group holding the lock table, the
// HTTP API, and a graceful shutdown that hands leadership over first.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { UnavailableError } from '../errors.js';
import type { NodeConfig } from '../config.js';
import { electionTimeoutMs, leaderLeaseExtensionMs, peerHttpUrl, systemUrlsOf } from '../config.js';
import { createApp } from '../http/app.js';
import { Forwarder, isForwarded, type LeaderOnly } from '../http/forward.js';
import { closeServer, startServer, type RunningServer } from '../http/server.js';
import type { Metrics } from '../observability/metrics.js';
import { handOverLeadership } from '../runtime/hand-over.js';
import { nodePeerTransport } from '../runtime/node-transport.js';
import { RaftHost } from '../runtime/raft-host.js';
import type { RaftGroup } from '../runtime/raft-group.js';
import { registerClusterRoutes } from '../runtime/cluster-routes.js';
import { raftObserver } from '../runtime/raft-observer.js';
import { LOCK_EXTEND_MS_MAX } from './commands.js';
import { DEFAULT_LOCK_LIMITS } from './lock-table-limits.js';
import { createLockMetrics } from './lock-metrics.js';
import { registerLockRoutes } from './lock-routes.js';
import { LockService } from './lock-service.js';
import { LockStateMachine } from './lock-state-machine.js';

/** Blocking acquires one node keeps open at most. */
export const WAITING_REQUESTS_MAX = 10_000;
/** Leader checks for due leases and wait deadlines this often. */
export const LOCK_DUTY_INTERVAL_MS = 25;

/** What a new leader extends every lease by (config.ts leaderLeaseExtensionMs). */
export function leaseExtensionMs(cfg: NodeConfig): number {
  return leaderLeaseExtensionMs(cfg, LOCK_EXTEND_MS_MAX);
}

export interface RunningLockNode {
  readonly group: RaftGroup;
  readonly server: RunningServer;
  stop(): Promise<void>;
}

export async function startLockNode(cfg: NodeConfig, logger: Logger, metrics: Metrics):
  Promise<RunningLockNode> {
  const transport = nodePeerTransport(cfg, logger,
    { sendQueueBytesMax: 64 * 1024 * 1024, frameBytesMax: 32 * 1024 * 1024 });
  const host = new RaftHost(cfg.nodeId, transport, logger, cfg.tickMs);
  const sm = new LockStateMachine(DEFAULT_LOCK_LIMITS,
    { leaseExtensionMs: leaseExtensionMs(cfg) });
  // A joining node starts outside the configuration of the existing voters: it never
  // campaigns, and the leader's log (or snapshot) adds it once an operator does.
  const initial = cfg.voters.length > 0 ? [...cfg.voters]
    : cfg.peers.length > 0 ? cfg.peers.map((p) => p.id) : [cfg.nodeId];
  const voters = cfg.join ? initial.filter((id) => id !== cfg.nodeId) : initial;
  const learners: string[] = [];
  const group = await host.openGroup({
    group: 0, dataDir: join(cfg.dataDir, 'raft'), bootstrap: { voters, learners },
    raft: { electionTicks: cfg.electionTicks, heartbeatTicks: cfg.heartbeatTicks },
    fsync: !cfg.unsafeNoFsync, snapshotEntries: cfg.snapshotEntries, stateMachine: sm,
    observer: raftObserver(metrics.raft),
  });
  await transport.start();
  host.start();
  const lockMetrics = createLockMetrics(metrics.registry, () => sm);
  const service = new LockService({
    group, sm, logger, metrics: lockMetrics,
    requestTimeoutMs: cfg.requestTimeoutMs,
    waitingRequestsMax: WAITING_REQUESTS_MAX, dutyIntervalMs: LOCK_DUTY_INTERVAL_MS,
  });
  service.start();
  const forwarder = new Forwarder({ nodeId: cfg.nodeId, timeoutMs: cfg.requestTimeoutMs,
    metrics: metrics.http });
  const urlOf = new Map(cfg.peers.map((p) => [p.id, peerHttpUrl(p)] as const));

  const leaderOnly: LeaderOnly = async (ctx, local, opts = {}) => {
    if (group.isLeader()) {
      ctx.body = await local();
      return;
    }
    const leader = group.leaderId();
    const url = leader === null ? undefined : urlOf.get(leader);
    if (url === undefined || isForwarded(ctx)) {
      throw new UnavailableError(leader === null
        ? 'no lock leader is elected yet (election in progress or no quorum); retry in a second'
        : `the leader ${leader} is changing; retry in a second`, { leader });
    }
    // A blocking acquire may wait up to its (validated) waitMs at the leader.
    await forwarder.forward(ctx, url, cfg.requestTimeoutMs + (opts.waitMs ?? 0));
  };

  const { app, close: closeApp } = createApp({
    service: 'lock', nodeId: cfg.nodeId, logger, metrics, bodyBytesMax: cfg.bodyBytesMax,
    systemUrls: systemUrlsOf(cfg),
    health: () => {
      const s = group.status();
      return { raft: { state: s.role, term: s.term, leader: s.leader, commitIndex: s.commit,
        appliedIndex: group.appliedIndex() } };
    },
    ready: () => {
      const s = group.status();
      if (!s.config.voters.includes(cfg.nodeId) && !s.config.learners.includes(cfg.nodeId)) {
        return { ok: false, reason: 'not a member yet: add it with POST /v1/cluster/learners/{id}' };
      }
      if (s.leader === null) return { ok: false, reason: 'no leader known yet' };
      if (group.appliedIndex() < s.commit) return { ok: false, reason: 'catching up with the log' };
      return { ok: true };
    },
    routes: (router) => {
      registerLockRoutes(router, { service, leaderOnly });
      registerClusterRoutes(router, { group, leaderOnly, requestTimeoutMs: cfg.requestTimeoutMs,
        knownPeers: () => new Set(cfg.peers.map((p) => p.id)),
        memberUrl: (id) => urlOf.get(id) ?? null });
    },
  });
  const server = await startServer(app, { host: cfg.httpHost, port: cfg.httpPort });
  logger.info({ http: server.url, peer: `${cfg.peerHost}:${cfg.peerPort}`, voters },
    'lock node started');

  return {
    group, server,
    stop: async () => {
      await handOverLeadership([group], logger, electionTimeoutMs(cfg) * 2);
      service.stop();
      await closeServer(server.server);
      await closeApp();
      await forwarder.close();
      await host.close();
      await transport.close();
    },
  };
}
