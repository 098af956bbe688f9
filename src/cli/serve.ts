// `dsync serve`: run one node (what a container runs). Every flag also reads from DSYNC_* env.
// The server modules are loaded only when a node really starts, so that the client commands
// of the same CLI (`dsync lock …`) start fast.
import type { Command } from 'commander';
import type { Logger } from 'pino';
import type { NodeConfig } from '../config.js';
import { addNodeConfigOptions, loadNodeConfig, usesDefaultClusterToken } from '../config.js';
import type { NodeDiscovery } from '../discovery/node-discovery.js';
import { DsyncError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { ShutdownStep } from '../observability/shutdown.js';

/** Exit when the parent process goes away (set by test harnesses and supervisors that want
 * no orphaned nodes if they are killed). Checked once a second. */
export const EXIT_WITH_PARENT_ENV = 'DSYNC_EXIT_WITH_PARENT';

function exitWithParent(): void {
  if (process.env[EXIT_WITH_PARENT_ENV] !== '1') return;
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, 1000).unref();
}

export function addServeCommand(program: Command): void {
  const serve = program.command('serve')
    .description('run one node of a service (flags also read from DSYNC_* env)');
  addNodeConfigOptions(serve);
  serve.action(async (opts: Record<string, unknown>) => {
    let cfg;
    try {
      cfg = loadNodeConfig(opts, process.env);
    } catch (err) {
      // A configuration that can never start is a usage error: exit code 2.
      if (err instanceof DsyncError) program.error(`dsync serve: ${err.message}`, { exitCode: 2 });
      throw err;
    }
    const { withIdentity, openNodeDiscovery } = await import('../discovery/node-discovery.js');
    let identity;
    try {
      ({ cfg, identity } = await withIdentity(cfg));
    } catch (err) {
      // Another cluster's volume, or an identity file that is not ours: a person must look.
      if (err instanceof DsyncError) program.error(`dsync serve: ${err.message}`, { exitCode: 2 });
      throw err;
    }
    const { createLogger } = await import('../observability/logger.js');
    const { createMetrics } = await import('../observability/metrics.js');
    const { DEFAULT_SHUTDOWN_SIGNALS, onShutdown } = await import('../observability/shutdown.js');
    const logger = createLogger({ level: cfg.logLevel, node: cfg.nodeId, service: cfg.service });
    if (identity !== null) {
      logger.info({ pod: cfg.podName, clusterId: cfg.clusterId, created: identity.created,
        adopted: identity.adopted }, identity.created ? 'first boot: node id generated'
        : 'node id read from the volume');
    }
    warnAboutToken(cfg, logger);
    const metrics = createMetrics(cfg.nodeId, cfg.service);
    const { installFaultPolicy } = await import('../observability/process-faults.js');
    installFaultPolicy(logger, metrics.registry);
    exitWithParent();
    const discovery = openNodeDiscovery(cfg, identity, logger);
    if (cfg.dnsServers.length > 0 && discovery.peers.lookup !== undefined) {
      // Pod names that only the configured DNS servers know: every HTTP client of this
      // process (fetch, undici) resolves through them too.
      const { Agent, setGlobalDispatcher } = await import('undici');
      setGlobalDispatcher(new Agent({ connect: { lookup: discovery.peers.lookup } }));
    }
    let node: { shutdownSteps(): readonly ShutdownStep[] };
    try {
      node = await startNode(cfg, logger, metrics, discovery);
    } catch (err) {
      const exitCode = err instanceof DsyncError ? START_EXIT_CODES[err.code] : undefined;
      if (exitCode !== undefined) {
        logger.fatal({ err }, 'cannot start');
        program.error(`dsync serve: ${(err as Error).message}`, { exitCode });
      }
      throw err;
    }
    onShutdown(DEFAULT_SHUTDOWN_SIGNALS, node.shutdownSteps(), { logger });
  });
}

/** How a start-up that cannot go on ends: a configuration that can never start is a usage
 * error (2); something the node needs is not there yet (Redis) is worth a restart later (1).
 * Any other error is a bug, and is thrown. */
const START_EXIT_CODES: Readonly<Record<string, number>> = { INVALID_ARGUMENT: 2, UNAVAILABLE: 1 };

async function startNode(cfg: NodeConfig, logger: Logger, metrics: Metrics,
  discovery: NodeDiscovery): Promise<{ shutdownSteps(): readonly ShutdownStep[] }> {
  if (cfg.service === 'cache') {
    const { startCacheNode } = await import('../cache/cache-node.js');
    return startCacheNode(cfg, logger, metrics, discovery);
  }
  if (cfg.service === 'queue') {
    const { startQueueNode } = await import('../queue/queue-node.js');
    return startQueueNode(cfg, logger, metrics, discovery);
  }
  const { startLockNode } = await import('../lock/lock-node.js');
  return startLockNode(cfg, logger, metrics, discovery);
}

function warnAboutToken(cfg: NodeConfig, logger: Logger): void {
  if (!usesDefaultClusterToken(cfg)) return;
  // Config validation refused it on a non-loopback address unless the operator insisted.
  logger.warn(cfg.insecureAllowDefaultToken
    ? 'INSECURE: the built-in cluster token on a reachable address lets anyone who reaches ' +
      'the peer port join; set DSYNC_CLUSTER_TOKEN to a secret'
    : 'using the built-in cluster token (loopback only): set DSYNC_CLUSTER_TOKEN before ' +
      'listening on any other address');
}
