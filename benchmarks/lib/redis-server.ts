// A real redis-server on a free loopback port with its own temporary directory, for the
// cache benchmark and for integration tests (re-exported by test/support/redis-server.ts).
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, removeDirAtExit, spawnLogged, stopProcess, waitFor } from './proc.js';

/** How long redis-server gets to answer PING after it is spawned. */
export const DEFAULT_REDIS_START_TIMEOUT_MS = 10_000;
/** Attempts with a fresh port (another process may grab the free port first). */
const START_ATTEMPTS_MAX = 3;
/** A PING probe that takes longer than this counts as not ready. */
const PING_TIMEOUT_MS = 1000;

export interface RedisServer {
  port: number;
  /** `redis://127.0.0.1:PORT` */
  url: string;
  pid: number;
  /** Its working directory (logs; no persistence is configured). */
  dir: string;
  /** Stops the server (SIGTERM, then SIGKILL) and deletes its directory. */
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** ms to wait for PONG (default DEFAULT_REDIS_START_TIMEOUT_MS). */
  startTimeoutMs?: number;
  /** More redis-server arguments, e.g. ['--maxmemory', '64mb']. */
  extraArgs?: readonly string[];
  /** Listen on this port (e.g. to restart a killed server where its clients reconnect)
   * instead of a free one; not retried on another port. */
  port?: number;
}

/** Sends PING on a fresh connection; true on +PONG. A loading server answers -LOADING. */
export async function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PING_TIMEOUT_MS, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** Starts redis-server (no RDB, no AOF: a cache's memory) and waits until it answers. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  let lastError: unknown = null;
  const attempts = opts.port === undefined ? START_ATTEMPTS_MAX : 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`redis-server did not start after ${attempts} attempts`,
    { cause: lastError });
}

async function startOnce(opts: RedisOptions): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dsync-redis-'));
  const removeDir = removeDirAtExit(dir);
  const port = opts.port ?? await freePort();
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning',
    ...(opts.extraArgs ?? []),
  ];
  const proc = spawnLogged('redis-server', args, { cwd: dir, logFile: join(dir, 'redis.log') });
  const stop = async (): Promise<void> => {
    await stopProcess(proc);
    removeDir();
  };
  try {
    let exitedWith: number | string | null = null;
    void proc.exited.then((code) => { exitedWith = code; });
    await waitFor(`redis-server on port ${port}`, () => pingRedis(port), {
      timeoutMs: opts.startTimeoutMs ?? DEFAULT_REDIS_START_TIMEOUT_MS,
      abortIf: () => exitedWith === null ? null : `exited (${exitedWith}): ${proc.tail()}`,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, url: `redis://127.0.0.1:${port}`, pid: proc.pid, dir, stop };
}
