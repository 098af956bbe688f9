// One pod of the queue service: the partitions the placement gives it (each a Raft group with
// its own data directory, all on one RaftHost over one peer transport), the HTTP API with
// forwarding to each partition's leader, the leaders' duties (expiry, preferred leaders,
// following the placement), and a graceful shutdown that hands every leadership over first.
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../errors.js';
import type { NodeConfig } from '../config.js';
import { electionTimeoutMs, leaderLeaseExtensionMs, peerHttpUrl, systemUrlsOf } from '../config.js';
import { createApp } from '../http/app.js';
import { createForwarding } from '../http/peer-forward.js';
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
import { leaderRouter, queueForwarding } from './queue-forwarding.js';
import { listTopics, type ListingDeps } from './queue-listing.js';
import { registerQueueRoutes } from './queue-routes.js';
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
  const host = new RaftHost(cfg.nodeId, transport, logger, cfg.tickMs, metrics.peer);
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
  const urlOf = new Map(cfg.peers.map((p) => [p.id, peerHttpUrl(p)] as const));
  const nodeForwarding = createForwarding({ nodeId: cfg.nodeId, via: cfg.forwardVia,
    transport, peerUrl: (id) => urlOf.get(id), timeoutMs: cfg.requestTimeoutMs,
    metrics: metrics.http });
  const forwarding = queueForwarding(nodeForwarding);
  const directory = new LeaderDirectory({ urlOf: (id) => urlOf.get(id),
    freshMs: LEADER_VIEW_FRESH_MS, timeoutMs: 1000, logger });

  const onLeader = leaderRouter({ cfg, hosted, desired, directory, forwarding });
  const listing: ListingDeps = { partitions: cfg.partitions, hosted, service, forwarding,
    requestTimeoutMs: cfg.requestTimeoutMs,
    leaderOf: async (p) => hosted.get(p)?.group.leaderId() ??
      (await directory.leaderOf(p, desired(p)))?.leader ?? null };

  const { app, close: closeApp } = createApp({
    service: 'queue', nodeId: cfg.nodeId, logger, metrics, bodyBytesMax: cfg.bodyBytesMax,
    systemUrls: systemUrlsOf(cfg),
    health: () => ({ partitionCount: cfg.partitions, partitions: healthOf(hosted) }),
    ready: () => readiness(cfg.nodeId, hosted),
    routes: (router) => registerQueueRoutes(router, { service, onLeader,
      partitions: cfg.partitions, partitionOf: (topic) => partitionOf(topic, cfg.partitions),
      listAll: (reqId) => listTopics(listing, reqId) }),
  });
  nodeForwarding.serveWith(app.callback());
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
      await closeApp();
      await nodeForwarding.close();
      await host.close();
      await transport.close();
    },
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
