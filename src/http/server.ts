// A Node http server for the Koa app, with timeouts that keep pooled keep-alive connections
// (SDK, forwarding, load balancers) alive across requests while still bounding slow or idle
// clients, and a graceful close: stop accepting, let in-flight requests finish within a
// deadline, then cut whatever is left.
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { assert } from '../assert.js';
import { InvalidArgumentError } from '../errors.js';
import type { AppKoa } from './app.js';
import { errorResponse } from './envelope.js';

/** Idle keep-alive sockets are closed after this. Longer than the 4 s undici keeps an idle
 * socket by default, so the client (which reuses it) closes first and never races our close. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 30_000;
/** Time to receive a request's headers; Node wants it above keepAliveTimeout. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 35_000;
/** Time to receive a whole request (headers and body). Long polls wait on the response side
 * and are not affected. */
export const DEFAULT_REQUEST_RECEIVE_TIMEOUT_MS = 60_000;
/** Most concurrent connections; past it new ones are dropped by Node. */
export const DEFAULT_CONNECTIONS_MAX = 4096;
/** Connections the kernel queues for accept() at most (listen(2)'s backlog; Linux also caps it
 * at net.core.somaxconn). Node's default of 511 made a burst of 10,000 simultaneous connects
 * (a crowd of blocking acquires, a load test's ramp) see resets while one long event-loop
 * phase kept the node from accepting. */
export const DEFAULT_ACCEPT_BACKLOG_MAX = 4096;
/** How long a graceful close waits for in-flight requests. */
export const DEFAULT_CLOSE_DEADLINE_MS = 10_000;
const IDLE_SWEEP_INTERVAL_MS = 50;

export interface ServerOptions {
  readonly host: string;
  /** 0 = any free port (tests). */
  readonly port: number;
  readonly keepAliveTimeoutMs?: number;
  readonly headersTimeoutMs?: number;
  readonly requestReceiveTimeoutMs?: number;
  readonly connectionsMax?: number;
  /** listen(2) backlog; default DEFAULT_ACCEPT_BACKLOG_MAX, 1..65,535. */
  readonly acceptBacklogMax?: number;
}

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  /** `http://host:port`, with 127.0.0.1 when listening on every interface. */
  readonly url: string;
  /** Graceful close; resolves once every connection is gone (cut at the deadline). */
  close(deadlineMs?: number): Promise<void>;
}

export async function startServer(app: AppKoa, opts: ServerOptions): Promise<RunningServer> {
  const keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
  const headersTimeoutMs = opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  assert(headersTimeoutMs > keepAliveTimeoutMs, 'headersTimeoutMs must exceed keepAliveTimeoutMs');
  const backlog = opts.acceptBacklogMax ?? DEFAULT_ACCEPT_BACKLOG_MAX;
  if (!Number.isSafeInteger(backlog) || backlog < 1 || backlog > 65_535) {
    throw new InvalidArgumentError('acceptBacklogMax', 'acceptBacklogMax must be an integer in ' +
      '[1, 65535]');
  }
  const server = createServer(
    {
      keepAliveTimeout: keepAliveTimeoutMs,
      headersTimeout: headersTimeoutMs,
      requestTimeout: opts.requestReceiveTimeoutMs ?? DEFAULT_REQUEST_RECEIVE_TIMEOUT_MS,
    },
    app.callback(),
  );
  server.maxConnections = opts.connectionsMax ?? DEFAULT_CONNECTIONS_MAX;
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.port, host: opts.host, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { server, port, url: `http://${urlHost}:${port}`, close: (ms) => closeServer(server, ms) };
}

/** Node's default answer to a request it cannot parse (an unknown method, a malformed header,
 * bytes that are not HTTP) is a bare 400 without a body; API.md wants the error envelope on
 * every error, so write it ourselves. As Node does, a socket that already carries a response
 * (pipelining) or is gone is only destroyed, and a request that was too slow gets a 408. */
function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  const s = socket as Partial<Socket> & Duplex;
  if (err.code === 'ECONNRESET' || !socket.writable || (s.bytesWritten ?? 0) > 0) {
    socket.destroy();
    return;
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n');
    return;
  }
  const what = err.code === 'HPE_HEADER_OVERFLOW' ? 'its headers are too large'
    : `it is not valid HTTP/1.1 (${err.code ?? 'parse error'})`;
  const res = errorResponse(new InvalidArgumentError('request', `the node could not read the ` +
    `request: ${what}; send a well-formed request with a standard method (GET, PUT, POST, ` +
    'DELETE) and headers under 16 KiB'));
  const body = JSON.stringify(res.body);
  socket.end(`HTTP/1.1 ${res.status} Bad Request\r\nContent-Type: application/json; ` +
    `charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close` +
    `\r\n\r\n${body}`);
}

export async function closeServer(
  server: Server,
  deadlineMs: number = DEFAULT_CLOSE_DEADLINE_MS,
): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Sockets that finish their request become idle and are closed by the sweep; a request that
  // is still running at the deadline is cut.
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_INTERVAL_MS);
  const deadline = setTimeout(() => server.closeAllConnections(), deadlineMs);
  server.closeIdleConnections();
  try {
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(deadline);
  }
}
