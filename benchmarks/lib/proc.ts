// Child processes for benchmarks and integration tests: free ports, spawning with logs kept
// for post-mortems, stopping by pid with a deadline, waiting for a condition with a deadline
// (never a bare sleep), and cleanup that still runs on Ctrl-C so no server is left behind.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { assert } from '../../src/assert.js';

/** How long a child gets to exit on SIGTERM before SIGKILL. */
export const DEFAULT_STOP_GRACE_MS = 5000;
/** Default polling period of waitFor. */
export const DEFAULT_POLL_MS = 50;
/** Lines of a child's output kept in memory for error messages. */
const OUTPUT_TAIL_LINES_MAX = 40;

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      assert(address !== null && typeof address === 'object', 'listening server has an address');
      server.close(() => resolve(address.port));
    });
  });
}

/** Several distinct free ports (all held open together, so they cannot repeat). */
export async function freePorts(count: number): Promise<number[]> {
  assert(Number.isSafeInteger(count) && count >= 1 && count <= 64, 'port count in [1, 64]');
  const servers = Array.from({ length: count }, () => createServer());
  const ports = await Promise.all(servers.map((server) => new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      assert(address !== null && typeof address === 'object', 'listening server has an address');
      resolve(address.port);
    });
  })));
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

// Cleanups run synchronously so they also work from 'exit' and signal handlers.
const cleanups = new Set<() => void>();
let handlersInstalled = false;

function runCleanups(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // Best effort at exit: the next cleanup (another server) must still run.
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', runCleanups);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      runCleanups();
      // Exit as the default handler would, unless the program handles the signal itself
      // (a launcher with its own graceful shutdown).
      if (process.listenerCount(signal) === 0) process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Registers a synchronous cleanup (kill a pid, remove a dir); call the result to drop it. */
export function onCleanup(fn: () => void): () => void {
  installHandlers();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** The last lines the child wrote (stdout and stderr), for error messages. */
  tail(): string;
  /** Resolves with the exit code (or signal) once the child has exited. */
  exited: Promise<number | string>;
}

/**
 * Spawns `command` with its output appended to `logFile` and a short tail kept in memory.
 * The child is killed (SIGKILL) if this process exits without stopping it.
 */
export function spawnLogged(
  command: string, args: readonly string[],
  opts: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv },
): Spawned {
  const child = spawn(command, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env === undefined ? {} : { env: opts.env }) });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${command}: is it installed?`);
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    log.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.length === 0) continue;
      lines.push(line);
      if (lines.length > OUTPUT_TAIL_LINES_MAX) lines.shift();
    }
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      log.end();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const drop = onCleanup(() => { if (child.exitCode === null) process.kill(pid, 'SIGKILL'); });
  void exited.then(drop);
  return { child, pid, tail: () => lines.join('\n'), exited };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopProcess(
  proc: Spawned, graceMs = DEFAULT_STOP_GRACE_MS,
): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  try {
    await proc.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Removes a directory now and, should this process die first, at exit. */
export function removeDirAtExit(dir: string): () => void {
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  const drop = onCleanup(remove);
  return () => {
    drop();
    remove();
  };
}

/**
 * Polls `check` until it returns true or the deadline passes; `check` may throw (treated
 * as not yet). Rejects naming `what` and the last error.
 */
export async function waitFor(
  what: string, check: () => Promise<boolean> | boolean,
  opts: { timeoutMs: number; pollMs?: number; abortIf?: () => string | null },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    const why = opts.abortIf?.() ?? null;
    if (why !== null) throw new Error(`gave up waiting for ${what}: ${why}`);
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? DEFAULT_POLL_MS));
  }
}
