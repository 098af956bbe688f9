// A real app on a real port for the HTTP tests, with a logger whose lines the test can read.
import { Writable } from 'node:stream';
import { DEFAULT_BODY_BYTES_MAX } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Logger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { Metrics } from '../../src/observability/metrics.js';
import { createApp } from '../../src/http/app.js';
import type { App, CreateAppOptions, ReadyStatus } from '../../src/http/app.js';
import { startServer } from '../../src/http/server.js';
import type { RunningServer } from '../../src/http/server.js';

export interface TestNode extends App {
  readonly metrics: Metrics;
  readonly server: RunningServer;
  readonly url: string;
  readonly logger: Logger;
  /** Parsed JSON log lines written so far. */
  readonly lines: Array<Record<string, unknown>>;
  readyState: ReadyStatus;
}

export async function startTestApp(
  nodeId: string,
  extra: Partial<Pick<CreateAppOptions,
    'routes' | 'bodyBytesMax' | 'service' | 'health' | 'systemUrls'>> = {},
): Promise<TestNode> {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) {
        if (l.length > 0) lines.push(JSON.parse(l) as Record<string, unknown>);
      }
      cb();
    },
  });
  const service = extra.service ?? 'lock';
  const logger = createLogger({ level: 'debug', node: nodeId, service, destination: sink });
  const holder: { readyState: ReadyStatus } = { readyState: { ok: true } };
  const metrics = createMetrics(nodeId, service);
  const built = createApp({
    service, nodeId, logger, metrics,
    bodyBytesMax: extra.bodyBytesMax ?? DEFAULT_BODY_BYTES_MAX,
    health: extra.health ?? (() => ({ raft: { state: 'follower', term: 3 } })),
    ready: () => holder.readyState,
    ...(extra.routes === undefined ? {} : { routes: extra.routes }),
    ...(extra.systemUrls === undefined ? {} : { systemUrls: extra.systemUrls }),
  });
  const server = await startServer(built.app, { host: '127.0.0.1', port: 0 });
  const node: TestNode = {
    ...built, server, url: server.url, logger, lines, metrics,
    get readyState() { return holder.readyState; },
    set readyState(r: ReadyStatus) { holder.readyState = r; },
  };
  return node;
}

/** Closes the server (in-flight requests get a second) and what the app holds. */
export async function stopTestApp(n: TestNode): Promise<void> {
  await n.server.close(1000);
  await n.close();
}
