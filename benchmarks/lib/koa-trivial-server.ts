// The ceiling of our HTTP stack: Koa and @koa/router with one JSON route and nothing else
// (no validation, no forwarding, no Raft). Started as a child process by koa-ceiling.ts so
// that the server has its own event loop, like a dsync node. It listens on a free loopback
// port and prints `{"port": N}` on one stdout line once it accepts connections.
import Koa from 'koa';
import { Router } from '@koa/router';

const app = new Koa();
const router = new Router();
let served = 0;
router.get('/v1/ping', (ctx) => {
  served++;
  ctx.body = { ok: true, served };
});
app.use(router.routes()).use(router.allowedMethods());

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no listening address');
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
// Keep-alive longer than any pause of the load generator, so connections are reused.
server.keepAliveTimeout = 60_000;
process.once('SIGTERM', () => server.close(() => process.exit(0)));
