// `dsync serve`: run one node (what a container runs). Every flag also reads from DSYNC_* env.
// The server modules are loaded only when a node really starts, so that the client commands
// of the same CLI (`dsync lock …`) start fast.
import type { Command } from 'commander';
import { addNodeConfigOptions, loadNodeConfig, usesDefaultClusterToken } from '../config.js';
import { DsyncError } from '../errors.js';

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
    const { createLogger } = await import('../observability/logger.js');
    const { createMetrics } = await import('../observability/metrics.js');
    const { DEFAULT_SHUTDOWN_SIGNALS, onShutdown } = await import('../observability/shutdown.js');
    const logger = createLogger({ level: cfg.logLevel, node: cfg.nodeId, service: cfg.service });
    if (usesDefaultClusterToken(cfg)) {
      // Config validation refused it on a non-loopback address unless the operator insisted.
      logger.warn(cfg.insecureAllowDefaultToken
        ? 'INSECURE: the built-in cluster token on a reachable address lets anyone who reaches ' +
          'the peer port join; set DSYNC_CLUSTER_TOKEN to a secret'
        : 'using the built-in cluster token (loopback only): set DSYNC_CLUSTER_TOKEN before ' +
          'listening on any other address');
    }
    const metrics = createMetrics(cfg.nodeId, cfg.service);
    const { installFaultPolicy } = await import('../observability/process-faults.js');
    installFaultPolicy(logger, metrics.registry);
    exitWithParent();
    if (cfg.service === 'cache') {
      const { startCacheNode } = await import('../cache/cache-node.js');
      const node = await startCacheNode(cfg, logger, metrics);
      // Draining hands every copy and dirty line back; it has its own deadline inside.
      onShutdown(DEFAULT_SHUTDOWN_SIGNALS,
        [{ name: 'drain and stop cache node', run: () => node.stop(), timeoutMs: 20_000 }],
        { logger });
      return;
    }
    if (cfg.service === 'queue') {
      const { startQueueNode } = await import('../queue/queue-node.js');
      const node = await startQueueNode(cfg, logger, metrics);
      onShutdown(DEFAULT_SHUTDOWN_SIGNALS,
        [{ name: 'stop queue node', run: () => node.stop(), timeoutMs: 15_000 }], { logger });
      return;
    }
    const { startLockNode } = await import('../lock/lock-node.js');
    const node = await startLockNode(cfg, logger, metrics);
    onShutdown(DEFAULT_SHUTDOWN_SIGNALS,
      [{ name: 'stop lock node', run: () => node.stop(), timeoutMs: 15_000 }], { logger });
  });
}
