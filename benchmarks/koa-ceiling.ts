// Reference for every HTTP figure: a trivial Koa JSON route in a child process, driven by an
// undici Pool with 50 requests in flight. No dsync route can beat this on this machine, so
// it tells how much of a dsync latency is HTTP itself. Run: npx tsx benchmarks/koa-ceiling.ts
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { assert } from '../src/assert.js';
import { withCpu } from './lib/dsync-proc-cpu.js';
import { runLoad } from './lib/load.js';
import { removeDirAtExit, spawnLogged, stopProcess, waitFor } from './lib/proc.js';
import { makeRow, parseBenchArgs, printRows } from './lib/stats.js';
import type { Row } from './lib/stats.js';

export const DEFAULT_KOA_DURATION_MS = 10_000;
export const DEFAULT_KOA_INFLIGHT = 50;
/** How long the child gets to print its port. */
const SERVER_START_TIMEOUT_MS = 20_000;

export interface KoaCeilingOptions {
  durationMs?: number;
  /** Requests in flight, also the Pool's connection count (default 50). */
  inflight?: number;
}

/** The setting string, shared with dsync HTTP rows that want a ratio against the ceiling. */
export function httpSetting(inflight: number): string {
  return `GET, ${inflight} in flight`;
}

/** Starts the trivial server as a child process; resolves with its URL and a stop(). */
export async function startKoaTrivialServer(): Promise<{ url: string; pid: number;
  stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'dsync-koa-'));
  const removeDir = removeDirAtExit(dir);
  const script = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'koa-trivial-server.ts');
  // tsx resolved from here, so the child starts whatever the caller's working directory.
  const proc = spawnLogged(process.execPath, ['--import', import.meta.resolve('tsx'), script],
    { cwd: dir, logFile: join(dir, 'server.log') });
  const stop = async (): Promise<void> => {
    await stopProcess(proc);
    removeDir();
  };
  let port: number | null = null;
  try {
    await waitFor('the Koa server to print its port', () => {
      const match = /\{"port":(\d+)\}/.exec(proc.tail());
      port = match?.[1] === undefined ? null : Number(match[1]);
      return port !== null;
    }, {
      timeoutMs: SERVER_START_TIMEOUT_MS,
      abortIf: () => proc.child.exitCode === null ? null : `exited: ${proc.tail()}`,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const pid = proc.child.pid;
  assert(port !== null && pid !== undefined, 'port and pid known once the wait succeeded');
  return { url: `http://127.0.0.1:${port}`, pid, stop };
}

export async function benchKoaCeiling(opts: KoaCeilingOptions = {}): Promise<Row[]> {
  const inflight = opts.inflight ?? DEFAULT_KOA_INFLIGHT;
  const server = await startKoaTrivialServer();
  const pool = new Pool(server.url, { connections: inflight, pipelining: 1 });
  try {
    const { value: result, cpuMsPerOp } = await withCpu([server.pid], () => runLoad({
      label: 'koa ceiling',
      concurrency: inflight,
      durationMs: opts.durationMs ?? DEFAULT_KOA_DURATION_MS,
      op: async () => {
        const res = await pool.request({ method: 'GET', path: '/v1/ping' });
        const body = (await res.body.json()) as { ok?: unknown };
        if (res.statusCode !== 200 || body.ok !== true) {
          throw new Error(`unexpected answer ${res.statusCode} ${JSON.stringify(body)}`);
        }
      },
    }));
    // CPU per request moves far less with the machine's load than requests/s do.
    return [makeRow('koa (trivial route)', httpSetting(inflight), result,
      { serverCpuUsPerRequest: Math.round(cpuMsPerOp * 1000) })];
  } finally {
    await pool.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const rows = await benchKoaCeiling(
    args.durationMs === undefined ? {} : { durationMs: args.durationMs });
  printRows('HTTP ceiling: trivial Koa JSON route, undici Pool', rows, rows[0]?.system ?? '', args);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
