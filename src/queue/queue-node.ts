// One pod of the queue service: the partitions the placement gives it (each a Raft group with
// its own data directory, all on one RaftHost over one peer transport), the HTTP API with
// forwarding to each partition's leader, the leaders' duties (expiry, preferred leaders,
// following the placement), and a graceful shutdown that hands every leadership over first.
import type { Logger } from 'pino';
import { InvalidArgumentError, UnavailableError } from '../errors.js';
import type { NodeConfig } from '../config.js';
import {
  electionTimeoutMs, leaderLeaseExtensionMs, statefulSetOf, systemUrlsOf,
} from '../config.js';
import { kubernetesApiOf, REREAD_REPLICAS_MS } from '../discovery/group-membership.js';
import { ordinalOf } from '../discovery/membership.js';
import {
  decideNodeStart, identityHealth, type NodeDiscovery,
} from '../discovery/node-discovery.js';
import { DISCOVERY_REFRESH_MS, StaticPeers } from '../discovery/peer-source.js';
import { WantedReplicas } from '../discovery/replicas.js';
import { createApp } from '../http/app.js';
import { createForwarding } from '../http/peer-forward.js';
import { closeServer, startServer, type RunningServer } from '../http/server.js';
import type { Metrics } from '../observability/metrics.js';
import { runShutdownSteps, type ShutdownStep } from '../observability/shutdown.js';
import { registerWalMetrics } from '../observability/wal-metrics.js';
import type { ClusterConfig, NodeId } from '../raft/types.js';
import { partitionOf } from '../ring/placement.js';
import { registerMembersRoute } from '../runtime/cluster-routes.js';
import { handOverLeadership } from '../runtime/hand-over.js';
import { nodePeerTransport } from '../runtime/node-transport.js';
import { RaftHost } from '../runtime/raft-host.js';
import type { RaftGroupObserver } from '../runtime/raft-group.js';
import { raftObserver } from '../runtime/raft-observer.js';
import {
  checkShutdownBudget, closeAfterFailedStart, raftNodeClosingSteps, SHUTDOWN_HANDOVER_MS_MAX,
  SHUTDOWN_LABEL_MS, SHUTDOWN_LEAVE_MS, SHUTDOWN_REFUSE_MS, shutdownStep,
} from '../runtime/shutdown-budget.js';
import { FsSync } from '../storage/fs-sync.js';
import { PodWal } from '../storage/pod-wal.js';
import { EXTEND_LEASES_MS_MAX } from './partition-limits.js';
import { QueuePartitionMachine } from './partition-state-machine.js';
import { LeaderDirectory, type PartitionHealth } from './queue-directory.js';
import { PartitionDuties } from './queue-duties.js';
import {
  openClusterRecord, partitionBootstrap, partitionDir, partitionsOnDisk, podWalDir, receiptSaltOf,
  retirePartition, writeClusterRecord,
} from './queue-layout.js';
import { DEFAULT_LONG_POLLS_MAX, LongPolls } from './queue-long-polls.js';
import { createQueueMetrics } from './queue-metrics.js';
import { leaderRouter, queueForwarding } from './queue-forwarding.js';
import { listTopics, type ListingDeps } from './queue-listing.js';
import {
  PodFollower, QueueLayout, readPodsRecord, wantedPods, writePodsRecord,
} from './queue-pods.js';
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
const STARTING_MESSAGE = 'this pod is starting (opening its partitions); retry in a few ' +
  'seconds or on another pod';
const DRAINING_MESSAGE = 'this pod is shutting down; retry on another pod';

export interface RunningQueueNode {
  readonly server: RunningServer;
  /** The partitions this pod hosts, by number. */
  readonly hosted: ReadonlyMap<number, HostedPartition>;
  /** The graceful shutdown, in order, each step bounded (what SIGTERM runs). */
  shutdownSteps(): readonly ShutdownStep[];
  stop(): Promise<void>;
}

/** The pods of the cluster from the static peer list. */
function staticPods(cfg: NodeConfig): NodeId[] {
  const pods = cfg.peers.length > 0 ? cfg.peers.map((p) => p.id) : [cfg.nodeId];
  if (!pods.includes(cfg.nodeId)) {
    throw new InvalidArgumentError('peers', `--peers must name this node (${cfg.nodeId}) too: ` +
      'every pod of a queue cluster starts with the same list');
  }
  return pods;
}

/** The pods at start-up and whether this pod joins an existing cluster. With discovery dns:
 * a new cluster's pods are the initial ordinals' ids, a joiner takes the members' view plus
 * itself, and a restart the list it kept. */
async function podsAtStart(cfg: NodeConfig, d: NodeDiscovery, logger: Logger):
  Promise<{ pods: NodeId[]; joining: boolean }> {
  if (d.dns === null) return { pods: staticPods(cfg), joining: cfg.join };
  const decision = await decideNodeStart(cfg, d.dns, logger);
  logger.info({ decision }, 'discovery: start-up decided');
  if (decision.kind === 'bootstrap') return { pods: [...decision.voters], joining: false };
  if (decision.kind === 'join') {
    const current = decision.voters.filter((id) => id !== cfg.nodeId);
    const pods = wantedPods({ wanted: cfg.replicas ?? 1, self: cfg.nodeId, selfPod: cfg.podName,
      statefulSet: d.dns.statefulSet, directory: d.dns.directory, current });
    return { pods: pods ?? [...current, cfg.nodeId], joining: true };
  }
  // Data written before identities has no list: its pods were the ordinals under their names.
  const kept = await readPodsRecord(cfg.dataDir);
  return { pods: kept ?? Array.from({ length: d.dns.replicas },
    (_, i) => `${d.dns!.statefulSet}-${i}`), joining: false };
}

interface Phase {
  started: boolean;
  draining: boolean;
}

export async function startQueueNode(cfg: NodeConfig, logger: Logger, metrics: Metrics,
  discovery: NodeDiscovery = { peers: new StaticPeers(cfg), dns: null }):
  Promise<RunningQueueNode> {
  const { peers } = discovery;
  const leaseExtensionMs = leaderLeaseExtensionMs(cfg, EXTEND_LEASES_MS_MAX);
  const sync = new FsSync(!cfg.unsafeNoFsync);
  const layout = new QueueLayout(cfg.partitions, cfg.replicationFactor,
    discovery.dns === null ? staticPods(cfg) : [cfg.nodeId]);
  const desired = (p: number): readonly NodeId[] => layout.desired(p);
  const phase: Phase = { started: false, draining: false };
  const transport = nodePeerTransport(cfg, logger,
    { sendQueueBytesMax: SEND_QUEUE_BYTES_MAX, frameBytesMax: FRAME_BYTES_MAX }, peers);
  // One WAL for every partition of the pod: one fsync per ready cycle, however many groups.
  const wal = await PodWal.open({ dir: podWalDir(cfg.dataDir), fsync: !cfg.unsafeNoFsync }, true);
  const host = new RaftHost(cfg.nodeId, transport, logger, cfg.tickMs, metrics.peer, wal);
  registerWalMetrics(metrics.registry, () => wal.stats());
  // The fsync latency is the WAL's (one per write, for every group in it), not each save's.
  wal.onWrite = (seconds) => { metrics.raft.fsyncDuration.observe(seconds); };
  const observer: RaftGroupObserver = { ...raftObserver(metrics.raft), onPersist: () => undefined };
  const hosted = new Map<number, HostedPartition>();
  const longPolls = new LongPolls(DEFAULT_LONG_POLLS_MAX, (topic, group) => {
    const view = hosted.get(partitionOf(topic, cfg.partitions))?.sm.partition.topicView(topic);
    return view?.groups.find((g) => g.group === group)?.ready ?? null;
  });
  /** Opens partition `p`: from its data, as a new cluster's member, or as a joiner. */
  const open = async (p: number, mayBootstrap: boolean): Promise<void> => {
    const set = desired(p);
    const others = (set.length > 1 ? set : layout.pods).filter((id) => id !== cfg.nodeId);
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
    sm.onEvents((events) => { for (const e of events) longPolls.notify(e.topic); });
    hosted.set(p, { partition: p, group, sm });
  };

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
  const urlOf = (id: NodeId): string | undefined => peers.urlOf(id);
  const nodeForwarding = createForwarding({ nodeId: cfg.nodeId, via: cfg.forwardVia,
    transport, peerUrl: urlOf, timeoutMs: cfg.requestTimeoutMs, metrics: metrics.http,
    ...(peers.lookup === undefined ? {} : { lookup: peers.lookup }) });
  const forwarding = queueForwarding(nodeForwarding);
  const directory = new LeaderDirectory({ urlOf, freshMs: LEADER_VIEW_FRESH_MS, timeoutMs: 1000,
    logger });
  const leaderOf = leaderRouter({ cfg, hosted, desired, directory, forwarding });
  const onLeader: OnLeader = (ctx, p, local, opts) => {
    if (phase.draining) throw new UnavailableError(DRAINING_MESSAGE, { reason: 'shutting_down' });
    if (!phase.started) throw new UnavailableError(STARTING_MESSAGE);
    return leaderOf(ctx, p, local, opts);
  };
  const listing: ListingDeps = { partitions: cfg.partitions, hosted, service, forwarding,
    requestTimeoutMs: cfg.requestTimeoutMs,
    leaderOf: async (p) => hosted.get(p)?.group.leaderId() ??
      (await directory.leaderOf(p, desired(p)))?.leader ?? null };

  const { app, close: closeApp } = createApp({
    service: 'queue', nodeId: cfg.nodeId, logger, metrics, bodyBytesMax: cfg.bodyBytesMax,
    systemUrls: systemUrlsOf(cfg),
    health: () => ({ partitionCount: cfg.partitions, partitions: healthOf(hosted),
      ...identityHealth(discovery.dns, phase.started, layout.pods) }),
    ready: () => phase.draining ? { ok: false, reason: 'shutting down' }
      : !phase.started ? { ok: false, reason: 'starting' } : readiness(cfg.nodeId, hosted),
    routes: (router) => {
      registerQueueRoutes(router, { service, onLeader,
        partitions: cfg.partitions, partitionOf: (topic) => partitionOf(topic, cfg.partitions),
        listAll: (reqId) => listTopics(listing, reqId) });
      registerMembersRoute(router, () => layout.pods.map((id) => ({ id,
        url: urlOf(id) ?? null })));
    },
  });
  // Requests other pods forward here run through the same app (503 until started).
  nodeForwarding.serveWith(app.callback());
  // Listen first: peers ask this pod who it is while it decides how to start (discovery dns).
  const server = await startServer(app, { host: cfg.httpHost, port: cfg.httpPort });
  let joining: boolean;
  try {
    const start = await podsAtStart(cfg, discovery, logger);
    joining = start.joining;
    layout.set(start.pods);
    const { mayBootstrap } = await openClusterRecord(cfg.dataDir, cfg.partitions, joining);
    const onDisk = new Set(await partitionsOnDisk(cfg.dataDir, cfg.partitions));
    const mine = layout.pods.length === 0 ? [] : Array.from({ length: cfg.partitions },
      (_, p) => p).filter((p) => desired(p).includes(cfg.nodeId) || onDisk.has(p));
    await Promise.all(mine.map((p) => open(p, mayBootstrap)));
    for (const p of wal.unattached().filter((q) => !onDisk.has(q))) {
      // A partition retired (its directory moved away) before a crash let its drop record
      // be written: its records in the pod WAL are garbage.
      logger.warn({ partition: p }, 'the pod WAL holds records of a partition this pod no ' +
        'longer hosts: dropping them');
      await wal.dropGroup(p);
    }
    await writeClusterRecord(cfg.dataDir, cfg.partitions, [...layout.pods], sync);
    if (discovery.dns !== null) await writePodsRecord(cfg.dataDir, layout.pods, sync);
    await transport.start();
  } catch (err) {
    await closeAfterFailedStart([() => closeServer(server.server), closeApp,
      () => nodeForwarding.close(), () => host.close(), () => transport.close(),
      () => peers.close()]);
    throw err;
  }
  host.start();
  peers.start();
  phase.started = true;
  const dutyTimer = setInterval(() => duties.run(hosted.values()), QUEUE_DUTY_INTERVAL_MS);
  const retire = new Retirement(cfg, hosted, desired, directory, logger, wal);
  const retireTimer = setInterval(() => void retire.check(), RETIRE_CHECK_INTERVAL_MS);
  const pods = followPods(cfg, discovery, layout, sync, logger, async () => {
    // Partitions the new placement gives this pod: joined (the leader adds this pod).
    const added = Array.from({ length: cfg.partitions }, (_, p) => p)
      .filter((p) => desired(p).includes(cfg.nodeId) && !hosted.has(p));
    await Promise.all(added.map((p) => open(p, false)));
    if (added.length > 0) logger.info({ partitions: added }, 'joining partitions');
  });
  logger.info({ http: server.url, peer: `${cfg.peerHost}:${cfg.peerPort}`,
    partitions: cfg.partitions, hosted: [...hosted.keys()], pods: layout.pods, joining },
  'queue node started');

  const steps = checkShutdownBudget([
    shutdownStep('refuse new requests, fail readiness', SHUTDOWN_REFUSE_MS, () => {
      phase.draining = true;
      clearInterval(dutyTimer);
      service.stop();
    }),
    // Is this pod scaled away? Then the placement without it is what the partitions follow.
    shutdownStep('stop following the StatefulSet', SHUTDOWN_LABEL_MS, () => pods?.stop()),
    shutdownStep('hand leadership of every partition over', SHUTDOWN_HANDOVER_MS_MAX, () =>
      handOverLeadership([...hosted.values()].map((h) => h.group), logger,
        Math.min(electionTimeoutMs(cfg) * 2, SHUTDOWN_HANDOVER_MS_MAX - 100),
        (id) => layout.pods.includes(id))),
    shutdownStep('leave the partitions (scaled away)', SHUTDOWN_LEAVE_MS, async () => {
      if (pods === null || !pods.scaledAway()) return;
      const deadline = Date.now() + SHUTDOWN_LEAVE_MS - 500;
      while (hosted.size > 0 && Date.now() < deadline) {
        await retire.check();
        await new Promise((r) => setTimeout(r, 100));
      }
      logger.info({ left: hosted.size === 0, still: [...hosted.keys()] },
        'leaving the partitions before exiting');
    }),
    ...raftNodeClosingSteps({ host, transport, peers, http: async (timeoutMs) => {
      clearInterval(retireTimer);
      await closeServer(server.server, timeoutMs);
      await closeApp();
      await nodeForwarding.close();
    } }),
  ]);
  return {
    server, hosted,
    shutdownSteps: () => steps,
    stop: async () => { await runShutdownSteps(steps, logger); },
  };
}

/** With discovery dns: follows the wanted pods (spec.replicas or --replicas) as they answer. */
function followPods(cfg: NodeConfig, d: NodeDiscovery, layout: QueueLayout, sync: FsSync,
  logger: Logger, changed: () => Promise<void>):
  { stop(): Promise<void>; scaledAway(): boolean } | null {
  if (d.dns === null) return null;
  const wanted = new WantedReplicas(cfg.replicas ?? 1);
  const sts = statefulSetOf(cfg) ?? d.dns.statefulSet;
  if (cfg.reconcileMembership && cfg.namespace !== null) {
    wanted.follow(kubernetesApiOf(cfg), cfg.namespace, sts, logger);
  }
  const follower = new PodFollower({ layout, wanted: () => wanted.get(), self: cfg.nodeId,
    selfPod: cfg.podName, statefulSet: sts, directory: d.dns.directory, dataDir: cfg.dataDir,
    sync, logger, changed });
  d.peers.onChange(() => void follower.check());
  wanted.onChange(() => void follower.check());
  const timer = setInterval(() => void follower.check(), DISCOVERY_REFRESH_MS);
  void follower.check();
  return {
    stop: async () => {
      clearInterval(timer);
      await wanted.reread(REREAD_REPLICAS_MS, logger);
      await follower.check();
      wanted.stop();
    },
    scaledAway: () => (ordinalOf(cfg.podName) ?? 0) >= wanted.get(),
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
    private readonly wal: PodWal,
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
    // Its entries in the pod WAL are garbage now: they must not pin segments.
    await this.wal.dropGroup(h.partition);
    this.logger.info({ partition: h.partition }, 'removed from the partition: stopped hosting ' +
      'it (its snapshots are kept beside, with the suffix .removed)');
  }
}
