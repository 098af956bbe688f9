// `dsync serve`: run one node (what a container runs). Every flag also reads from DSYNC_* env.
import type { Command } from 'commander';
import { addNodeConfigOptions, loadNodeConfig, usesDefaultClusterToken } from '../config.js';
import { DsyncError } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { DEFAULT_SHUTDOWN_SIGNALS, onShutdown } from '../observability/shutdown.js';
import { startLockNode } from '../lock/lock-node.js';
import { startCacheNode } from '../cache/cache-node.js';

export function addServeCommand(program: Command): void {
  const serve = program.command('serve')
    .description('run one node of a service (flags also read from DSYNC_* env)');
  addNodeConfigOptions(serve);
  serve.action(async (opts: Record<string, unknown>) => {
    let cfg;
    try {
      cfg = loadNodeConfig(opts, process.env);
    } catch (err) {
      if (err instanceof DsyncError) program.error(`dsync serve: ${err.message}`);
      throw err;
    }
    const logger = createLogger({ level: cfg.logLevel, node: cfg.nodeId, service: cfg.service });
    if (usesDefaultClusterToken(cfg)) {
      logger.warn('using the built-in cluster token: set DSYNC_CLUSTER_TOKEN in any real deployment');
    }
    const metrics = createMetrics(cfg.nodeId, cfg.service);
    if (cfg.service === 'cache') {
      const node = await startCacheNode(cfg, logger, metrics);
      // Draining hands every copy and dirty line back; it has its own deadline inside.
      onShutdown(DEFAULT_SHUTDOWN_SIGNALS,
        [{ name: 'drain and stop cache node', run: () => node.stop(), timeoutMs: 20_000 }],
        { logger });
      return;
    }
    if (cfg.service !== 'lock') {
      program.error(`dsync serve: the ${cfg.service} service is not available in this build yet`);
    }
    const node = await startLockNode(cfg, logger, metrics);
    onShutdown(DEFAULT_SHUTDOWN_SIGNALS,
      [{ name: 'stop lock node', run: () => node.stop(), timeoutMs: 15_000 }], { logger });
  });
}
