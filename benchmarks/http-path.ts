// What one request costs the server, path by path: the bare Koa route (the ceiling), a
// trivial route in dsync's app (every middleware, metrics, the error envelope), and a lock
// acquire without Raft (routing, body, validation). Each server runs alone in a child
// process; an undici Pool keeps 50 requests in flight. Besides ops/s it reports the server's
// CPU µs per request from /proc, which moves far less with the machine's load than ops/s do
// and is what "as short as a bare route" is judged by.
// Run: npx tsx benchmarks/http-path.ts [--duration-ms N] [--only 'koa;get;acquire'] [--json]
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool } from 'undici';
import { assert } from '../src/assert.js';
import { processCpuSeconds } from './lib/dsync-proc-cpu.js';
import { runLoad } from './lib/load.js';
import { removeDirAtExit, spawnLogged, stopProcess, waitFor } from './lib/proc.js';
import { makeRow, parseBenchArgs, printRows, selected } from './lib/stats.js';
import type { Row } from './lib/stats.js';

export const DEFAULT_HTTP_PATH_DURATION_MS = 5_000;
export const DEFAULT_HTTP_PATH_INFLIGHT = 50;
const SERVER_START_TIMEOUT_MS = 20_000;
const WARMUP_MS = 2_000;

/** `perf stat` on the server, when the machine has it (not in a VM without hardware
 * counters): instruction counts per request are repeatable on a busy machine where time and
 * CPU shares are not. */
function startPerfStat(pid: number): { stop(): Promise<{ user: number; kernel: number } | null> } {
  let child;
  try {
    child = spawn('perf', ['stat', '-x', ',', '-e', 'instructions:u,instructions:k', '-p',
      String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    return { stop: async () => null };
  }
  let err = '';
  child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  return {
    stop: async () => {
      child.kill('SIGINT');
      if (await exited === null) return null;
      const count = (event: string): number => {
        const line = err.split('\n').find((l) => l.includes(event));
        return Number(line?.split(',')[0]);
      };
      const user = count('instructions:u');
      const kernel = count('instructions:k');
      return Number.isFinite(user) && Number.isFinite(kernel) ? { user, kernel } : null;
    },
  };
}

interface PathSpec {
  readonly mode: 'koa' | 'get' | 'acquire';
  readonly system: string;
  readonly method: 'GET' | 'POST';
  readonly path: (i: number) => string;
  readonly body?: string;
}

const PATHS: readonly PathSpec[] = [
  { mode: 'koa', system: 'koa (trivial route)', method: 'GET', path: () => '/v1/ping' },
  { mode: 'get', system: 'dsync app, trivial route', method: 'GET', path: () => '/v1/ping' },
  { mode: 'acquire', system: 'dsync app, lock acquire without Raft', method: 'POST',
    path: (i) => `/v1/locks/bench-${i % 64}/acquire`,
    body: JSON.stringify({ owner: 'w1', ttlMs: 30_000, waitMs: 0 }) },
];

async function startPathServer(mode: string): Promise<{ url: string; pid: number;
  stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'dsync-http-path-'));
  const removeDir = removeDirAtExit(dir);
  const script = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'http-path-server.ts');
  const proc = spawnLogged(process.execPath, ['--import', import.meta.resolve('tsx'), script,
    mode], { cwd: dir, logFile: join(dir, 'server.log') });
  const stop = async (): Promise<void> => {
    await stopProcess(proc);
    removeDir();
  };
  let port: number | null = null;
  try {
    await waitFor(`the ${mode} server to print its port`, () => {
      const match = /\{"port":(\d+)\}/.exec(proc.tail());
      port = match?.[1] === undefined ? null : Number(match[1]);
      return port !== null;
    }, { timeoutMs: SERVER_START_TIMEOUT_MS,
      abortIf: () => proc.child.exitCode === null ? null : `exited: ${proc.tail()}` });
  } catch (err) {
    await stop();
    throw err;
  }
  const pid = proc.child.pid;
  assert(port !== null && pid !== undefined, 'a started server has a port and a pid');
  return { url: `http://127.0.0.1:${port}`, pid, stop };
}

export async function benchHttpPath(spec: PathSpec, durationMs: number, inflight: number):
  Promise<Row> {
  const server = await startPathServer(spec.mode);
  const pool = new Pool(server.url, { connections: inflight, pipelining: 1 });
  const op = async (_w: number, i: number): Promise<void> => {
    const res = await pool.request({ method: spec.method, path: spec.path(i),
      ...(spec.body === undefined ? {}
        : { body: spec.body, headers: { 'content-type': 'application/json' } }) });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`${spec.system} answered ${res.statusCode}`);
  };
  try {
    // Warm-up of its own, so that the CPU and instruction counts cover the measured phase.
    await runLoad({ label: `${spec.system} warm-up`, concurrency: inflight, warmupMs: 0,
      durationMs: WARMUP_MS, op });
    const perf = startPerfStat(server.pid);
    const cpuBefore = processCpuSeconds(server.pid);
    const result = await runLoad({ label: spec.system, concurrency: inflight, warmupMs: 0,
      durationMs, op });
    const cpuS = processCpuSeconds(server.pid) - cpuBefore;
    const counted = await perf.stop();
    const perRequest = (n: number): number => Number((n / Math.max(1, result.ops)).toFixed(0));
    return makeRow(spec.system, `${spec.method}, ${inflight} in flight`, result, {
      serverCpuUsPerRequest: Number((1e6 * cpuS / Math.max(1, result.ops)).toFixed(1)),
      ...(counted === null ? {} : { userInstructionsPerRequest: perRequest(counted.user),
        kernelInstructionsPerRequest: perRequest(counted.kernel) }),
    });
  } finally {
    await pool.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const rows: Row[] = [];
  for (const spec of PATHS) {
    if (!selected(args, spec.mode)) continue;
    rows.push(await benchHttpPath(spec, args.durationMs ?? DEFAULT_HTTP_PATH_DURATION_MS,
      DEFAULT_HTTP_PATH_INFLIGHT));
  }
  printRows('HTTP path: one request, server CPU per request', rows, 'koa (trivial route)', args);
  if (!args.json) {
    for (const r of rows) {
      const x = r.extra ?? {};
      const instructions = x.userInstructionsPerRequest === undefined ? ''
        : `; instructions per request ${x.userInstructionsPerRequest} user, ` +
          `${x.kernelInstructionsPerRequest} kernel`;
      process.stdout.write(`- ${r.system}: ${x.serverCpuUsPerRequest} µs CPU per request on ` +
        `the server${instructions}\n`);
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
