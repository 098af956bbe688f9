// A server for benchmarks/http-path.ts: one of three request paths in a process of its own,
// on a free loopback port, printing `{"port": N}` once it listens.
//   koa      Koa + @koa/router with one JSON route and nothing else (the ceiling)
//   get      dsync's app (createApp: every middleware, metrics, error envelope) and one route
//   acquire  dsync's app with the lock routes, whose service grants at once (no Raft): the
//            HTTP, validation and routing share of a lock acquire
import Koa from 'koa';
import { Router } from '@koa/router';
import { createApp } from '../../src/http/app.js';
import type { AppKoa } from '../../src/http/app.js';
import { startServer } from '../../src/http/server.js';
import { registerLockRoutes } from '../../src/lock/lock-routes.js';
import type { LockService } from '../../src/lock/lock-service.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';

const mode = process.argv[2] ?? 'koa';
let served = 0;

function dsyncApp(): AppKoa {
  const logger = createLogger({ level: 'warn', node: 'bench-0', service: 'lock' });
  const stub = {
    acquire: async (req: { name: string; owner: string; mode: string }) => {
      served++;
      return { name: req.name, owner: req.owner, mode: req.mode, token: served,
        expiresAt: Date.now() + 30_000 };
    },
    release: async () => { served++; },
  } as unknown as LockService;
  return createApp({
    service: 'lock', nodeId: 'bench-0', logger, metrics: createMetrics('bench-0', 'lock'),
    bodyBytesMax: 1024 * 1024, health: () => ({}), ready: () => ({ ok: true }),
    routes: (router) => {
      router.get('/v1/ping', (ctx) => {
        served++;
        ctx.body = { ok: true, served };
      });
      registerLockRoutes(router, { service: stub,
        leaderOnly: async (ctx, local) => { ctx.body = await local(); } });
    },
  }).app;
}

function koaApp(): Koa {
  const app = new Koa();
  const router = new Router();
  router.get('/v1/ping', (ctx) => {
    served++;
    ctx.body = { ok: true, served };
  });
  app.use(router.routes()).use(router.allowedMethods());
  return app;
}

const app = mode === 'koa' ? koaApp() : dsyncApp();
const running = await startServer(app, { host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ port: running.port })}\n`);
process.once('SIGTERM', () => { void running.close(1000).then(() => process.exit(0)); });
