// One node of the cache service: the peer transport, the consistent-hash ring of cache pods
// (static peers), the backing store (Redis when configured, else the embedded store), the
// coherence shell and the HTTP API; a graceful shutdown hands every copy and dirty line back
// before the process exits.
//
// Incarnation and start-up grace: incarnation.ts.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { systemUrlsOf, type NodeConfig } from '../config.js';
import { createApp } from '../http/app.js';
import { closeServer, startServer, type RunningServer } from '../http/server.js';
import type { NodeDiscovery } from '../discovery/node-discovery.js';
import { StaticPeers } from '../discovery/peer-source.js';
import type { Metrics } from '../observability/metrics.js';
import { runShutdownSteps, type ShutdownStep } from '../observability/shutdown.js';
import { HashRing } from '../ring/hash-ring.js';
import { registerMembersRoute } from '../runtime/cluster-routes.js';
import { nodePeerTransport } from '../runtime/node-transport.js';
import {
  checkShutdownBudget, SHUTDOWN_DRAIN_MS, SHUTDOWN_HTTP_MS, SHUTDOWN_PEERS_MS, SHUTDOWN_REFUSE_MS,
  SHUTDOWN_STORAGE_MS, shutdownStep,
} from '../runtime/shutdown-budget.js';
import type { PeerTransport } from '../transport/peer-transport.js';
import { createCacheMetrics } from './cache-metrics.js';
import { registerCacheRoutes } from './cache-routes.js';
import { CacheShell } from './cache-shell.js';
import { DEFAULT_LEASE_MS } from './coherence-config.js';
import { EmbeddedStore } from './embedded-store.js';
import { nextIncarnation, priorCopiesOf, recordIncarnation } from './incarnation.js';
import { redactUrl, RedisStore, type BackingStore } from './store.js';

/** How long SIGTERM waits for every copy and dirty line to be handed back. */
export const CACHE_DRAIN_TIMEOUT_MS = 8000;
/** Bytes queued for one peer before messages to it are dropped (the core resends). */
export const CACHE_SEND_QUEUE_BYTES_MAX = 64 * 1024 * 1024;
/** Largest peer frame: one value (≤ body limit) plus its envelope, with room to spare. */
export const CACHE_FRAME_BYTES_MAX = 80 * 1024 * 1024;

export interface RunningCacheNode {
  readonly shell: CacheShell;
  readonly server: RunningServer;
  readonly incarnation: number;
  /** The graceful shutdown, in order, each step bounded (what SIGTERM runs). */
  shutdownSteps(): readonly ShutdownStep[];
  stop(): Promise<void>;
}

export async function startCacheNode(cfg: NodeConfig, logger: Logger, metrics: Metrics,
  discovery: NodeDiscovery = { peers: new StaticPeers(cfg), dns: null }):
  Promise<RunningCacheNode> {
  const memberIds = cfg.peers.length > 0 ? cfg.peers.map((p) => p.id) : [cfg.nodeId];
  const ring = new HashRing(memberIds);
  if (!ring.hasNode(cfg.nodeId)) ring.addNode(cfg.nodeId);
  const { incarnation, record } = nextIncarnation(cfg.dataDir);
  const transport = nodePeerTransport(cfg, logger,
    { sendQueueBytesMax: CACHE_SEND_QUEUE_BYTES_MAX, frameBytesMax: CACHE_FRAME_BYTES_MAX },
    discovery.peers);
  let shell: CacheShell | null = null;
  const cacheMetrics = createCacheMetrics(metrics.registry, () => {
    if (shell === null) throw new Error('cache metrics scraped before start');
    return shell.stats();
  });
  const store = await openStore(cfg, logger, cacheMetrics.storeLatency);
  const live: CacheShell = new CacheShell({
    core: {
      self: cfg.nodeId, incarnation,
      homeOf: (key) => ring.ownerOf(key) ?? cfg.nodeId,
      // The core wants its lease to outlast a flush period.
      leaseMs: Math.max(DEFAULT_LEASE_MS, 2 * cfg.flushIntervalMs),
      flushIntervalMs: cfg.flushIntervalMs, requestTimeoutMs: cfg.requestTimeoutMs,
      writePolicy: cfg.writePolicy, capacityBytes: cfg.capacityBytes,
      valueBytesMax: Math.min(cfg.bodyBytesMax, Math.floor(cfg.capacityBytes / 2)),
      priorCopies: priorCopiesOf(record), peers: ring.nodes().filter((id) => id !== cfg.nodeId),
    },
    store, metrics: cacheMetrics, logger,
    sender: { send: (to, msg) => { transport.send(to, msg, 'control'); } },
    replyGraceMs: 1000,
  });
  shell = live;
  transport.onMessage((from, payload) => live.onPeerMessage(from, payload));
  await transport.start();
  live.start();
  let draining = false;
  const selfUrl = discovery.peers.urlOf(cfg.nodeId) ?? `http://${cfg.httpHost}:${cfg.httpPort}`;
  const { app, close: closeApp } = createApp({
    service: 'cache', nodeId: cfg.nodeId, logger, metrics, bodyBytesMax: cfg.bodyBytesMax,
    systemUrls: systemUrlsOf(cfg),
    health: () => healthOf(live, transport, cfg, incarnation),
    ready: () => {
      if (draining) return { ok: false, reason: 'shutting down' };
      if (!live.storeAvailable()) {
        return { ok: false, reason: 'the backing store is not reachable (store_unavailable)' };
      }
      return ring.size > 0 ? { ok: true } : { ok: false, reason: 'no cache peers known' };
    },
    routes: (router) => {
      registerCacheRoutes(router, { shell: live, flushTimeoutMs: cfg.requestTimeoutMs });
      // The ring's members, so that the SDK and `dsync status` find every pod from one URL.
      registerMembersRoute(router, () => ring.nodes().map((id) => ({ id,
        url: id === cfg.nodeId ? selfUrl : discovery.peers.urlOf(id) ?? null })));
    },
  });
  const server = await startServer(app, { host: cfg.httpHost, port: cfg.httpPort });
  logger.info({ http: server.url, peer: `${cfg.peerHost}:${cfg.peerPort}`, incarnation,
    incarnationRecord: record,
    store: cfg.redisUrl === null ? 'embedded' : 'redis', writePolicy: cfg.writePolicy },
  'cache node started');
  const steps = checkShutdownBudget([
    shutdownStep('refuse new requests, fail readiness', SHUTDOWN_REFUSE_MS, () => {
      draining = true;
    }),
    shutdownStep('close the HTTP server', SHUTDOWN_HTTP_MS, async () => {
      await closeServer(server.server, SHUTDOWN_HTTP_MS - 500);
      await closeApp();
    }),
    // Every copy and dirty line handed back: the homes write dirty values to the store.
    shutdownStep('flush dirty lines and hand copies back', SHUTDOWN_DRAIN_MS, async () => {
      const drained = await live.drain(CACHE_DRAIN_TIMEOUT_MS);
      logger.info({ drained, stats: live.stats() }, drained ? 'cache drained'
        : 'cache drain timed out: some copies or dirty lines were not handed back');
      live.stop();
      if (drained) recordIncarnation(cfg.dataDir, incarnation, true);
    }),
    shutdownStep('close the backing store', SHUTDOWN_STORAGE_MS, () => store.close()),
    shutdownStep('close peer connections', SHUTDOWN_PEERS_MS, async () => {
      await transport.close();
      await discovery.peers.close();
    }),
  ]);
  return {
    shell: live, server, incarnation,
    shutdownSteps: () => steps,
    stop: async () => { await runShutdownSteps(steps, logger); },
  };
}

async function openStore(cfg: NodeConfig, logger: Logger,
  latency: ReturnType<typeof createCacheMetrics>['storeLatency']): Promise<BackingStore> {
  if (cfg.redisUrl === null) {
    return EmbeddedStore.open({ dir: join(cfg.dataDir, 'cache-store'), fsync: !cfg.unsafeNoFsync,
      latency, logger: logger.child({ component: 'embedded-store' }) });
  }
  const redis = new RedisStore(cfg.redisUrl, latency);
  const url = redactUrl(cfg.redisUrl);
  await redis.connect(cfg.redisUrl, cfg.redisConnectWaitMs, (attempt, err) => {
    // One line a few seconds apart while Redis is not up yet (it may start after us).
    if (attempt === 1 || attempt % 10 === 0) {
      logger.warn({ redis: url, attempt, err: err.message, waitMs: cfg.redisConnectWaitMs },
        'waiting for Redis to answer before serving');
    }
  });
  return redis;
}

function healthOf(shell: CacheShell, transport: PeerTransport, cfg: NodeConfig,
  incarnation: number): Record<string, unknown> {
  const s = shell.stats();
  const peers: Record<string, boolean> = {};
  for (const [id, p] of Object.entries(transport.stats())) peers[id] = p.connected;
  return {
    incarnation, store: cfg.redisUrl === null ? 'embedded' : 'redis',
    storeUp: shell.storeAvailable(), startupGrace: shell.core.inStartupGrace(),
    writePolicy: cfg.writePolicy, peers,
    cache: { entries: s.entries, bytes: s.bytes, capacityBytes: s.capacityBytes, hits: s.hits,
      misses: s.misses, evictions: s.evictions, states: s.states, pendingOps: s.pendingOps,
      pendingWritebacks: s.pendingWritebacks, directoryEntries: s.directoryEntries },
  };
}
