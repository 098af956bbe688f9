// A real etcd cluster on loopback, the reference for Raft commits and locks. Each member has
// its own temporary data dir on the machine's disk with etcd's defaults (fsync on every
// commit), so etcd and dsync pay for the same disk in the same run.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { assert } from '../../src/assert.js';
import { freePorts, removeDirAtExit, spawnLogged, stopProcess, waitFor } from './proc.js';
import type { Spawned } from './proc.js';

/** Members by default: the smallest cluster that tolerates a failure, like dsync's lock group. */
export const DEFAULT_ETCD_MEMBERS = 3;
/** Largest cluster this helper starts (Raft groups beyond 7 voters are not a real setup). */
export const ETCD_MEMBERS_MAX = 7;
/** How long the cluster gets to elect a leader and report healthy. */
export const DEFAULT_ETCD_START_TIMEOUT_MS = 30_000;
/** A health probe slower than this counts as unhealthy. */
const HEALTH_PROBE_TIMEOUT_MS = 2000;
/** A member stopping with its peers spends seconds trying to hand leadership over; its data
 * is deleted right after, so it gets little grace before SIGKILL. */
const STOP_GRACE_MS = 1000;

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  pid: number;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** Client URLs of every member, for `new Etcd3({ hosts })`. */
  endpoints: string[];
  /** etcd's version as reported by its /version endpoint (`3.4.23`). */
  version: string;
  /** A client connected to every member; closed by stop(). */
  client(): Etcd3;
  /** Stops every member (by pid) and deletes their data dirs. */
  stop(): Promise<void>;
}

export interface EtcdClusterOptions {
  /** Members, 1..ETCD_MEMBERS_MAX (default DEFAULT_ETCD_MEMBERS). */
  members?: number;
  /** ms to wait for every member to report healthy (default DEFAULT_ETCD_START_TIMEOUT_MS). */
  startTimeoutMs?: number;
  /** etcd binary (default `etcd` on PATH). */
  binary?: string;
}

/** GET /health on a member's client URL: healthy once it has a leader and a quorum. */
export async function etcdHealthy(clientUrl: string): Promise<boolean> {
  const res = await fetch(`${clientUrl}/health`,
    { signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
  if (!res.ok) return false;
  const body = (await res.json()) as { health?: unknown };
  return body.health === 'true' || body.health === true;
}

function memberArgs(
  member: Omit<EtcdMember, 'pid'>, initialCluster: string, token: string,
): string[] {
  return [
    '--name', member.name,
    '--data-dir', member.dataDir,
    '--listen-client-urls', member.clientUrl,
    '--advertise-client-urls', member.clientUrl,
    '--listen-peer-urls', member.peerUrl,
    '--initial-advertise-peer-urls', member.peerUrl,
    '--initial-cluster', initialCluster,
    '--initial-cluster-token', token,
    '--initial-cluster-state', 'new',
    '--logger', 'zap',
    '--log-level', 'warn',
  ];
}

/** Starts the members, waits until every one is healthy, and returns the cluster. */
export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const size = opts.members ?? DEFAULT_ETCD_MEMBERS;
  assert(Number.isSafeInteger(size) && size >= 1 && size <= ETCD_MEMBERS_MAX,
    `members must be an integer in [1, ${ETCD_MEMBERS_MAX}], got ${size}`);
  const root = mkdtempSync(join(tmpdir(), 'dsync-etcd-'));
  const removeRoot = removeDirAtExit(root);
  const ports = await freePorts(size * 2);
  const planned = Array.from({ length: size }, (_, i) => ({
    name: `etcd-${i}`,
    clientUrl: `http://127.0.0.1:${ports[2 * i] ?? 0}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1] ?? 0}`,
    dataDir: join(root, `etcd-${i}`),
  }));
  const initialCluster = planned.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = `dsync-bench-${process.pid}-${ports[0] ?? 0}`;
  const procs: Spawned[] = [];
  let clientInstance: Etcd3 | null = null;

  const stop = async (): Promise<void> => {
    clientInstance?.close();
    clientInstance = null;
    await Promise.all(procs.map((proc) => stopProcess(proc, STOP_GRACE_MS)));
    removeRoot();
  };

  try {
    for (const member of planned) {
      procs.push(spawnLogged(opts.binary ?? 'etcd', memberArgs(member, initialCluster, token),
        { cwd: root, logFile: join(root, `${member.name}.log`) }));
    }
    await waitHealthy(planned.map((m) => m.clientUrl), procs, opts);
  } catch (err) {
    await stop();
    throw err;
  }
  const version = await etcdVersion(planned[0]?.clientUrl ?? '');
  const members = planned.map((m, i) => ({ ...m, pid: procs[i]?.pid ?? -1 }));
  return {
    members,
    endpoints: members.map((m) => m.clientUrl),
    version,
    client: () => {
      clientInstance ??= new Etcd3({ hosts: members.map((m) => m.clientUrl) });
      return clientInstance;
    },
    stop,
  };
}

async function waitHealthy(
  clientUrls: string[], procs: Spawned[], opts: EtcdClusterOptions,
): Promise<void> {
  const exits = new Map<number, number | string>();
  procs.forEach((proc, i) => { void proc.exited.then((code) => exits.set(i, code)); });
  await waitFor('every etcd member to report healthy', async () => {
    const health = await Promise.all(clientUrls.map((url) => etcdHealthy(url).catch(() => false)));
    return health.every(Boolean);
  }, {
    timeoutMs: opts.startTimeoutMs ?? DEFAULT_ETCD_START_TIMEOUT_MS,
    pollMs: 200,
    abortIf: () => {
      for (const [i, code] of exits) {
        return `member etcd-${i} exited (${code}): ${procs[i]?.tail() ?? ''}`;
      }
      return null;
    },
  });
}

async function etcdVersion(clientUrl: string): Promise<string> {
  const res = await fetch(`${clientUrl}/version`,
    { signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
  const body = (await res.json()) as { etcdserver?: unknown };
  return typeof body.etcdserver === 'string' ? body.etcdserver : 'unknown';
}
