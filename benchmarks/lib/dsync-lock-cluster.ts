// A 3-node dsync lock cluster for benchmarks (real `dsync serve` processes on loopback, fsync
// on), and a lean HTTP client for its lock routes. The launcher is the integration tests'
// (test/support/cluster.ts), so the benchmark measures exactly what the tests start; this file
// adds what a benchmark needs on top: cleanup on Ctrl-C, quiet logs, finding the leader and a
// follower, and an optional CPU profile of every node.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { assert } from '../../src/assert.js';
import { BIN, Cluster, ROOT } from '../../test/support/cluster.js';
import type { ClusterNode } from '../../test/support/cluster.js';
import { onCleanup } from './proc.js';

const PROFILE_HOOK = join(import.meta.dirname, 'dsync-cpu-profile-hook.ts');

/** Nodes in the lock group: the smallest cluster that tolerates a failure, like etcd's. */
export const DSYNC_LOCK_NODES = 3;
/** How long the cluster gets to elect a leader that every node agrees on. */
export const LEADER_TIMEOUT_MS = 30_000;
/** How long every node gets to answer /health after its start (a busy machine is slow). */
export const START_TIMEOUT_MS = 60_000;
/** Bytes of a node's log shown when it fails to start. */
const LOG_TAIL_BYTES = 2000;
/** Most connections one client Pool opens to one node. */
export const POOL_CONNECTIONS_MAX = 1024;
/** Time an answer may take beyond the request's own waitMs before the call fails. */
export const REQUEST_GRACE_MS = 15_000;

export interface DsyncLockClusterOptions {
  /** The service the nodes run (default lock; benchmarks/queue.ts starts queue nodes). */
  service?: 'lock' | 'queue';
  /** Load dsync-cpu-profile-hook.ts into every node, writing profiles into this directory
   * (see DsyncLockCluster.toggleCpuProfiles). */
  cpuProfDir?: string;
  /** More `dsync serve` flags for every node, for experiments (`--unsafe-no-fsync`, say). */
  extraServeArgs?: readonly string[];
}

export interface DsyncLockCluster {
  readonly nodes: readonly ClusterNode[];
  /** The node every running node agrees leads (waits up to LEADER_TIMEOUT_MS). */
  leader(): Promise<ClusterNode>;
  /** Some node that is not the leader. */
  follower(): Promise<ClusterNode>;
  /** With cpuProfDir: starts, or stops and writes, a CPU profile in every node. Returns
   * what the files are called (`<pid>-<n>.cpuprofile`, node by node) when it stopped. */
  toggleCpuProfiles(): string | null;
  /** Stops every node by pid and deletes the data dirs. */
  stop(): Promise<void>;
}

/** Starts DSYNC_LOCK_NODES `dsync serve --service lock` (or `opts.service`) nodes from the
 * compiled dist/. */
export async function startDsyncLockCluster(
  opts: DsyncLockClusterOptions = {},
): Promise<DsyncLockCluster> {
  if (!existsSync(`${ROOT}/dist/src/cli/main.js`)) {
    throw new Error(`dsync is not built: run \`npm run build\` in ${ROOT} first (${BIN} needs dist/)`);
  }
  const env = opts.cpuProfDir === undefined ? {} : cpuProfileEnv(opts.cpuProfDir);
  // `--log-level warn` comes after the launcher's `info` and wins: a log line per request
  // would be part of what we measure. startNodes 0: we start them ourselves, after the
  // cleanup is registered, so that a start that times out leaves no server behind.
  const cluster = await Cluster.start({
    service: opts.service ?? 'lock', size: DSYNC_LOCK_NODES, env,
    extraArgs: ['--log-level', 'warn', ...(opts.extraServeArgs ?? [])],
    startNodes: 0,
  });
  // Ctrl-C or a crash of this script must not leave servers behind (the launcher's own
  // stop() is async and would not run from a signal handler).
  const drop = onCleanup(() => {
    for (const node of cluster.nodes) {
      const pid = node.pid;
      if (node.running && pid !== undefined) process.kill(pid, 'SIGKILL');
    }
    rmSync(cluster.dir, { recursive: true, force: true });
  });
  try {
    for (const node of cluster.nodes) node.start();
    await Promise.all(cluster.nodes.map((n) => n.waitHealthy(START_TIMEOUT_MS)));
  } catch (err) {
    const tails = cluster.nodes.map((n) => `${n.id}: ${logTail(n.logFile)}`).join('\n');
    await cluster.stop();
    drop();
    throw new Error(`dsync ${opts.service ?? 'lock'} nodes did not start: ${String(err)}\n` +
      tails, { cause: err });
  }
  const leader = (): Promise<ClusterNode> => cluster.leader(LEADER_TIMEOUT_MS);
  let profiling = false;
  let profiles = 0;
  return {
    nodes: cluster.nodes,
    leader,
    follower: async () => {
      const l = await leader();
      const f = cluster.nodes.find((n) => n.id !== l.id && n.running);
      assert(f !== undefined, 'a 3-node cluster with a leader has a running follower');
      return f;
    },
    toggleCpuProfiles: () => {
      assert(opts.cpuProfDir !== undefined, 'toggleCpuProfiles needs cpuProfDir');
      signalCpuProfiles(cluster.nodes);
      profiling = !profiling;
      if (profiling) return null;
      profiles++;
      return cluster.nodes.map((n) => `${n.id}: ${n.pid}-${profiles}.cpuprofile`).join(', ');
    },
    stop: async () => {
      await cluster.stop();
      drop();
    },
  };
}

/** The environment that loads dsync-cpu-profile-hook.ts into a node, writing into `dir`. */
export function cpuProfileEnv(dir: string): NodeJS.ProcessEnv {
  mkdirSync(dir, { recursive: true });
  return { NODE_OPTIONS: `--import tsx --import ${PROFILE_HOOK}`, DSYNC_CPU_PROF_DIR: dir };
}

/** Starts, or stops and writes, the CPU profile of every running node (see the hook). */
export function signalCpuProfiles(nodes: readonly ClusterNode[]): void {
  for (const n of nodes) if (n.running && n.pid !== undefined) process.kill(n.pid, 'SIGUSR2');
}

function logTail(file: string): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-LOG_TAIL_BYTES);
  } catch {
    return '(no log)';
  }
}

/** A granted lock as the acquire route answers it. */
export interface DsyncGrant {
  name: string;
  owner: string;
  token: number;
  expiresAt: number;
}

/** An error answer of a dsync node: `code` is the envelope's stable code. */
export class DsyncHttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(`${status} ${code}: ${message}`);
    this.name = 'DsyncHttpError';
  }
}

/**
 * JSON requests over one keep-alive undici Pool to one node, for the benchmarks' clients.
 * Deliberately not the SDK: the benchmark measures the server, so the client does the least
 * work a client can (no retries, no leader discovery; the caller picks the node).
 */
export class DsyncPoolHttp {
  private readonly pool: Pool;

  constructor(readonly url: string, connections: number) {
    assert(Number.isSafeInteger(connections) && connections >= 1 &&
      connections <= POOL_CONNECTIONS_MAX,
    `connections must be an integer in [1, ${POOL_CONNECTIONS_MAX}], got ${connections}`);
    // pipelining 1: one request per connection at a time, as a browser or the SDK does;
    // a blocking acquire must not hold up a release queued behind it on the same socket.
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** The parsed answer when its status is `expected`, else a DsyncHttpError. */
  protected async request(method: 'GET' | 'POST' | 'PUT', path: string,
    body: object | undefined, o: { expected?: number; timeoutMs: number;
      signal?: AbortSignal }): Promise<unknown> {
    const res = await this.pool.request({
      path, method, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs,
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body) }),
    });
    const parsed = await res.body.json() as { error?: { code?: unknown; message?: unknown } };
    if (res.statusCode !== (o.expected ?? 200)) {
      const { code, message } = parsed.error ?? {};
      throw new DsyncHttpError(res.statusCode, typeof code === 'string' ? code : 'UNKNOWN',
        typeof message === 'string' ? message : JSON.stringify(parsed));
    }
    return parsed;
  }
}

/** The lock routes (see DsyncPoolHttp). */
export class DsyncLockHttp extends DsyncPoolHttp {
  async acquire(name: string, body: { owner: string; ttlMs: number; waitMs: number }):
    Promise<DsyncGrant> {
    return await this.request('POST', `/v1/locks/${encodeURIComponent(name)}/acquire`, body,
      { timeoutMs: body.waitMs + REQUEST_GRACE_MS }) as DsyncGrant;
  }

  async release(name: string, owner: string, token: number): Promise<void> {
    const r = await this.request('POST', `/v1/locks/${encodeURIComponent(name)}/release`,
      { owner, token }, { timeoutMs: REQUEST_GRACE_MS }) as { released?: unknown };
    if (r.released !== true) throw new Error(`release of ${name} answered ${JSON.stringify(r)}`);
  }

  /** GET of a lock (a linearizable or lease read on the leader). */
  async view(name: string): Promise<{ holders: unknown[] }> {
    return await this.request('GET', `/v1/locks/${encodeURIComponent(name)}`, undefined,
      { timeoutMs: REQUEST_GRACE_MS }) as { holders: unknown[] };
  }
}
