// One pod of the queue service: the partitions the placement gives it (each a Raft group with
// its own data directory, all on one RaftHost over one peer transport), the HTTP API with
// forwarding to each partition's leader, the leaders' duties (expiry, preferred leaders,
// following the placement), and a graceful shutdown that hands every leadership over first.
import type { Logger } from 'pino';
import { DsyncError, InvalidArgumentError, NotLeaderError, UnavailableError } from '../errors.js';
import type { NodeConfig } from '../config.js';
import { electionTimeoutMs, leaderLeaseExtensionMs, peerHttpUrl } from '../config.js';
import { createApp, type AppContext } from '../http/app.js';
import { Forwarder, isForwarded } from '../http/forward.js';
import { closeServer, startServer, type RunningServer } from '../http/server.js';
import type { Metrics } from '../observability/metrics.js';
import type { ClusterConfig, NodeId } from '../raft/types.js';
import { partitionOf, planPlacement } from '../ring/placement.js';
import { handOverLeadership } from '../runtime/hand-over.js';
import { nodePeerTransport } from '../runtime/node-transport.js';
import { RaftHost } from '../runtime/raft-host.js';
import { raftObserver } from '../runtime/raft-observer.js';
import { FsSync } from '../storage/fs-sync.js';
import { EXTEND_LEASES_MS_MAX } from './partition-limits.js';
import { QueuePartitionMachine } from './partition-state-machine.js';
import { LeaderDirectory, type PartitionHealth } from './queue-directory.js';
import { PartitionDuties } from './queue-duties.js';
import {
  openClusterRecord, partitionBootstrap, partitionDir, partitionsOnDisk, receiptSaltOf,
  retirePartition, writeClusterRecord,
} from './queue-layout.js';
import { DEFAULT_LONG_POLLS_MAX, LongPolls } from './queue-long-polls.js';
import { createQueueMetrics } from './queue-metrics.js';
import { registerQueueRoutes, type OnLeader } from './queue-routes.js';
import { QueueService, type HostedPartition } from './queue-service.js';

/** Leaders check for due deadlines, preferred leaders and the placement this often. */
export const QUEUE_DUTY_INTERVAL_MS = 25;
/** Least time between two leadership transfers of one partition. */
export const TRANSFER_INTERVAL_MS = 10_000;
/** Least time between two membership changes of one partition. */
export const CHANGE_INTERVAL_MS = 2_000;
/** A pod outside a partition's replica set checks this often whether it was removed. */
export const RETIRE_CHECK_INTERVAL_MS = 2_000;
/** How long what a replica says about a partition's leader is trusted. */
export const LEADER_VIEW_FRESH_MS = 2_000;
/** Peer frames and send queues: a publish batch of up to 1000 messages fits one entry. */
const SEND_QUEUE_BYTES_MAX = 64 * 1024 * 1024;
const FRAME_BYTES_MAX = 32 * 1024 * 1024;

export interface RunningQueueNode {
  readonly server: RunningServer;
  /** The partitions this pod hosts, by number. */
  readonly hosted: ReadonlyMap<number, HostedPartition>;
  stop(): Promise<void>;
}

/** The pods of the cluster (the static peer list) and the placement of partitions on them. */
function layoutOf(cfg: NodeConfig): { pods: NodeId[]; sets: NodeId[][] } {
  const pods = cfg.peers.length > 0 ? cfg.peers.map((p) => p.id) : [cfg.nodeId];
  if (!pods.includes(cfg.nodeId)) {
    throw new InvalidArgumentError('peers', `--peers must name this node (${cfg.nodeId}) too: ` +
      'every pod of a queue cluster starts with the same list');
  }
  const replicas = Math.min(cfg.replicationFactor, pods.length);
  return { pods, sets: planPlacement(pods, cfg.partitions, replicas).sets };
}

/** The requests that leave this pod for another go through here, and only here. */
export type ForwardTo = (ctx: AppContext, nodeId: NodeId, timeoutMs: number) => Promise<void>;

function httpForwardTo(forwarder: Forwarder, cfg: NodeConfig): ForwardTo {
  const urls = new Map(cfg.peers.map((p) => [p.id, peerHttpUrl(p)] as const));
  return async (ctx, nodeId, timeoutMs) => {
    const url = urls.get(nodeId);
    if (url === undefined) {
      throw new UnavailableError(`${nodeId} is not in this pod's peer list; retry shortly`);
    }
    await forwarder.forward(ctx, url, timeoutMs);
  };
}

export async function startQueueNode(cfg: NodeConfig, logger: Logger, metrics: Metrics):
  Promise<RunningQueueNode> {
  const { pods, sets } = layoutOf(cfg);
  const desired = (p: number): readonly NodeId[] => sets[p] ?? [];
  const leaseExtensionMs = leaderLeaseExtensionMs(cfg, EXTEND_LEASES_MS_MAX);
  const sync = new FsSync(!cfg.unsafeNoFsync);
  const { mayBootstrap } = await openClusterRecord(cfg.dataDir, cfg.partitions, cfg.join);
  const onDisk = new Set(await partitionsOnDisk(cfg.dataDir, cfg.partitions));
  const mine = sets.flatMap((set, p) => (set.includes(cfg.nodeId) || onDisk.has(p) ? [p] : []));

  const transport = nodePeerTransport(cfg, logger,
    { sendQueueBytesMax: SEND_QUEUE_BYTES_MAX, frameBytesMax: FRAME_BYTES_MAX });
  const host = new RaftHost(cfg.nodeId, transport, logger, cfg.tickMs);
  const observer = raftObserver(metrics.raft);
  const hosted = new Map<number, HostedPartition>();
  const opened = await Promise.all(mine.map(async (p): Promise<HostedPartition> => {
    // A new cluster's pods all start each group from the placement; a partition this pod
    // joins later starts outside the configuration and waits for the leader to add it.
    const set = desired(p);
    const others = (set.length > 1 ? set : pods).filter((id) => id !== cfg.nodeId);
    const initial: ClusterConfig = mayBootstrap && set.includes(cfg.nodeId)
      ? { voters: [...set], learners: [] }
      : { voters: others.length > 0 ? others : [cfg.nodeId], learners: [] };
    const bootstrap = await partitionBootstrap(cfg.dataDir, p, initial, sync);
    const sm = new QueuePartitionMachine({ leaseExtensionMs,
      receiptSalt: receiptSaltOf(cfg.clusterToken, p) });
    const group = await host.openGroup({
      group: p, dataDir: partitionDir(cfg.dataDir, p), bootstrap,
      raft: { electionTicks: cfg.electionTicks, heartbeatTicks: cfg.heartbeatTicks },
      fsync: !cfg.unsafeNoFsync, snapshotEntries: cfg.snapshotEntries, stateMachine: sm,
      observer,
    });
    return { partition: p, group, sm };
  }));
  for (const h of opened) hosted.set(h.partition, h);
  await writeClusterRecord(cfg.dataDir, cfg.partitions, pods, sync);

  const longPolls = new LongPolls(DEFAULT_LONG_POLLS_MAX, (topic, group) => {
    const view = hosted.get(partitionOf(topic, cfg.partitions))?.sm.partition.topicView(topic);
    return view?.groups.find((g) => g.group === group)?.ready ?? null;
  });
  for (const h of hosted.values()) {
    h.sm.onEvents((events) => { for (const e of events) longPolls.notify(e.topic); });
  }
  await transport.start();
  host.start();

  const queueMetrics = createQueueMetrics(metrics.registry, () => [...hosted.values()]
    .filter((h) => h.group.isLeader()).map((h) => h.sm.partition.metrics()),
  { longPolls: () => longPolls.size });
  const service = new QueueService({ nodeId: cfg.nodeId, logger,
    requestTimeoutMs: cfg.requestTimeoutMs, longPolls,
    onRefused: (limit) => queueMetrics.refused.inc({ limit }) });
  const duties = new PartitionDuties({ self: cfg.nodeId, desired, logger,
    requestTimeoutMs: cfg.requestTimeoutMs, transferIntervalMs: TRANSFER_INTERVAL_MS,
    changeIntervalMs: CHANGE_INTERVAL_MS, settleMs: 2 * electionTimeoutMs(cfg),
    reconcile: true });
  const forwarder = new Forwarder({ nodeId: cfg.nodeId, timeoutMs: cfg.requestTimeoutMs,
    metrics: metrics.http });
  const forwardTo = httpForwardTo(forwarder, cfg);
  const urlOf = new Map(cfg.peers.map((p) => [p.id, peerHttpUrl(p)] as const));
  const directory = new LeaderDirectory({ urlOf: (id) => urlOf.get(id),
    freshMs: LEADER_VIEW_FRESH_MS, timeoutMs: 1000, logger });

  const onLeader = leaderRouter({ cfg, hosted, desired, directory, forwardTo });

  const { app } = createApp({
    service: 'queue', nodeId: cfg.nodeId, logger, metrics, bodyBytesMax: cfg.bodyBytesMax,
    health: () => ({ partitionCount: cfg.partitions, partitions: healthOf(hosted) }),
    ready: () => readiness(cfg.nodeId, hosted),
    routes: (router) => registerQueueRoutes(router, { service, onLeader }),
  });
  const server = await startServer(app, { host: cfg.httpHost, port: cfg.httpPort });
  const dutyTimer = setInterval(() => duties.run(hosted.values()), QUEUE_DUTY_INTERVAL_MS);
  const retire = new Retirement(cfg, hosted, desired, directory, logger);
  const retireTimer = setInterval(() => void retire.check(), RETIRE_CHECK_INTERVAL_MS);
  logger.info({ http: server.url, peer: `${cfg.peerHost}:${cfg.peerPort}`,
    partitions: cfg.partitions, hosted: [...hosted.keys()], mayBootstrap },
  'queue node started');

  return {
    server, hosted,
    stop: async () => {
      clearInterval(dutyTimer);
      clearInterval(retireTimer);
      service.stop();
      await handOverLeadership([...hosted.values()].map((h) => h.group), logger,
        electionTimeoutMs(cfg) * 2);
      await closeServer(server.server);
      await forwarder.close();
      await host.close();
      await transport.close();
    },
  };
}

/** Time a request may spend waiting for its partition's leadership to settle (an election,
 * a transfer to the preferred leader) before it is answered 503. */
export const LEADER_SETTLE_MS_MAX = 3_000;
/** How often a request waiting for a leader looks again. */
const LEADER_POLL_MS = 25;

interface RouterDeps {
  readonly cfg: NodeConfig;
  readonly hosted: ReadonlyMap<number, HostedPartition>;
  readonly desired: (p: number) => readonly NodeId[];
  readonly directory: LeaderDirectory;
  readonly forwardTo: ForwardTo;
}

/** Whether an error says the command never entered the log because leadership moved: then
 * any command, publish included, may be tried again on the new leader. */
function movedAway(err: unknown): boolean {
  return err instanceof DsyncError && err.code === 'NOT_LEADER';
}

/** Whether a relayed answer is the 503 of a pod that was no longer the leader. */
function relayedNotLeader(ctx: AppContext): boolean {
  if (ctx.status !== 503 || !Buffer.isBuffer(ctx.body)) return false;
  try {
    const e = (JSON.parse(ctx.body.toString('utf8')) as { error?: { reason?: unknown } }).error;
    return e?.reason === 'not_leader';
  } catch {
    return false;
  }
}

/** Serves a request on its partition's leader: here when this pod leads, else forwarded. While
 * leadership moves (no leader known, a leader that just handed over), the request waits up
 * to LEADER_SETTLE_MS_MAX (and two election timeouts) for the new leader and goes there: a
 * command refused as NOT_LEADER never entered the log, so trying it again is safe. */
function leaderRouter(d: RouterDeps): OnLeader {
  const { cfg, hosted, directory } = d;
  const settleMs = Math.min(LEADER_SETTLE_MS_MAX, 2 * electionTimeoutMs(cfg),
    cfg.requestTimeoutMs);
  return async (ctx, topic, local, opts = {}) => {
    const p = partitionOf(topic, cfg.partitions);
    const settleBy = Date.now() + settleMs;
    let forwarded = false;
    const settling = async (): Promise<boolean> => {
      if (Date.now() >= settleBy) return false;
      await new Promise((r) => setTimeout(r, LEADER_POLL_MS));
      return true;
    };
    for (;;) {
      const h = hosted.get(p);
      if (h?.group.isLeader() === true) {
        try {
          if (forwarded) {
            // The answer relayed by a pod that was no longer the leader is not ours.
            ctx.status = 200;
            ctx.remove('Retry-After');
          }
          await local(h);
          return;
        } catch (err) {
          if (movedAway(err) && await settling()) continue;
          throw err;
        }
      }
      const leader = h !== undefined ? h.group.leaderId()
        : (await directory.leaderOf(p, d.desired(p)))?.leader ?? null;
      if (leader === null || leader === cfg.nodeId) {
        if (h === undefined) directory.forget(p);
        if (await settling()) continue;
        throw new UnavailableError(`partition ${p} has no leader yet (election in progress ` +
          'or no quorum); retry in a second', { partition: p, leader: null });
      }
      // Forwarded here by a pod that took this one for the leader: it tries the new one.
      if (isForwarded(ctx)) throw new NotLeaderError(leader, p);
      // A long poll may wait up to its (validated) waitMs at the leader.
      await d.forwardTo(ctx, leader, cfg.requestTimeoutMs + (opts.waitMs ?? 0));
      forwarded = true;
      if (ctx.status !== 503) return;
      if (h === undefined) directory.forget(p);
      if (!relayedNotLeader(ctx) || !await settling()) return;
    }
  };
}

function healthOf(hosted: ReadonlyMap<number, HostedPartition>): PartitionHealth[] {
  return [...hosted.values()].sort((a, b) => a.partition - b.partition).map((h) => {
    const s = h.group.status();
    return { partition: h.partition, state: s.role, term: s.term, leader: s.leader,
      commitIndex: s.commit, appliedIndex: h.group.appliedIndex(), voters: s.config.voters,
      learners: s.config.learners };
  });
}

function readiness(self: NodeId, hosted: ReadonlyMap<number, HostedPartition>):
  { ok: boolean; reason?: string } {
  for (const h of hosted.values()) {
    const s = h.group.status();
    if (!s.config.voters.includes(self) && !s.config.learners.includes(self)) {
      return { ok: false, reason: `not a member of partition ${h.partition} yet (its leader ` +
        'adds this pod once the placement names it)' };
    }
    if (s.leader === null) return { ok: false, reason: `partition ${h.partition}: no leader yet` };
    if (h.group.appliedIndex() < s.commit) {
      return { ok: false, reason: `partition ${h.partition}: catching up with the log` };
    }
  }
  return { ok: true };
}

/** Stops hosting a partition this pod was removed from. A removed member never hears of its
 * removal (the leader stops replicating to it), so it asks the leader: once the leader's
 * configuration leaves this pod out, the group is closed and its directory set aside. */
class Retirement {
  private running = false;

  constructor(
    private readonly cfg: NodeConfig,
    private readonly hosted: Map<number, HostedPartition>,
    private readonly desired: (p: number) => readonly NodeId[],
    private readonly directory: LeaderDirectory,
    private readonly logger: Logger,
  ) {}

  async check(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const h of [...this.hosted.values()]) {
        const set = this.desired(h.partition);
        if (set.includes(this.cfg.nodeId) || h.group.isLeader()) continue;
        if (await this.removed(h, set)) await this.retire(h);
      }
    } catch (err) {
      this.logger.warn({ err }, 'could not check for partitions this pod was removed from');
    } finally {
      this.running = false;
    }
  }

  private async removed(h: HostedPartition, set: readonly NodeId[]): Promise<boolean> {
    const self = this.cfg.nodeId;
    const local = h.group.status().config;
    if (!local.voters.includes(self) && !local.learners.includes(self)) return true;
    this.directory.forget(h.partition);
    const view = await this.directory.leaderOf(h.partition, set);
    const c = view?.config;
    return c !== null && c !== undefined && view?.leader !== self &&
      !c.voters.includes(self) && !c.learners.includes(self);
  }

  private async retire(h: HostedPartition): Promise<void> {
    this.hosted.delete(h.partition);
    await h.group.close();
    await retirePartition(this.cfg.dataDir, h.partition);
    this.logger.info({ partition: h.partition }, 'removed from the partition: stopped hosting ' +
      'it (its data is kept beside, with the suffix .removed)');
  }
}
