// A real NATS JetStream cluster on loopback, the first reference for the queue: 3
// `nats-server -js` processes with file storage, each with its own temp dir and free ports,
// stopped by pid at the end (also on Ctrl-C). JetStream's own defaults stay as they are: it
// acknowledges a publish once a majority of the stream's replicas has it in memory and
// fsyncs on its own schedule (sync_interval, 2 minutes by default), which is what the
// comparison is about.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert } from '../../src/assert.js';
import { freePorts, removeDirAtExit, spawnLogged, stopProcess, waitFor } from './proc.js';
import type { Spawned } from './proc.js';

export const DEFAULT_NATS_SERVERS = 3;
export const NATS_SERVERS_MAX = 5;
/** How long the servers get to form the cluster and elect a JetStream meta leader. */
export const DEFAULT_NATS_START_TIMEOUT_MS = 30_000;
const HEALTH_PROBE_TIMEOUT_MS = 2000;
const STOP_GRACE_MS = 3000;

export interface NatsServer {
  readonly name: string;
  /** nats://127.0.0.1:port for clients. */
  readonly url: string;
  readonly pid: number;
}

export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** `nats-server --version`, e.g. `v2.9.10`. */
  readonly version: string;
  stop(): Promise<void>;
}

/** The installed nats-server's version, or an error that says how to install it. */
function natsVersion(binary: string): string {
  try {
    const out = execFileSync(binary, ['--version'], { encoding: 'utf8' });
    return /v\d+\.\d+\.\d+/.exec(out)?.[0] ?? out.trim();
  } catch (err) {
    throw new Error(`${binary} is not runnable: install it (apt-get install nats-server)`,
      { cause: err });
  }
}

/** GET /healthz on the monitoring port: 200 once JetStream is up and current. */
async function natsHealthy(monitorPort: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`,
    { signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
  return res.ok;
}

export async function startNatsCluster(
  opts: { servers?: number; binary?: string; startTimeoutMs?: number } = {},
): Promise<NatsCluster> {
  const size = opts.servers ?? DEFAULT_NATS_SERVERS;
  assert(Number.isSafeInteger(size) && size >= 1 && size <= NATS_SERVERS_MAX,
    `servers must be an integer in [1, ${NATS_SERVERS_MAX}], got ${size}`);
  const binary = opts.binary ?? 'nats-server';
  const version = natsVersion(binary);
  const root = mkdtempSync(join(tmpdir(), 'dsync-nats-'));
  const removeRoot = removeDirAtExit(root);
  const ports = await freePorts(size * 3);
  const planned = Array.from({ length: size }, (_, i) => ({
    name: `nats-${i}`, port: ports[3 * i] ?? 0, clusterPort: ports[3 * i + 1] ?? 0,
    monitorPort: ports[3 * i + 2] ?? 0, dir: join(root, `nats-${i}`),
  }));
  const routes = planned.map((s) => `nats://127.0.0.1:${s.clusterPort}`).join(',');
  const procs: Spawned[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => stopProcess(p, STOP_GRACE_MS)));
    removeRoot();
  };
  try {
    for (const s of planned) {
      mkdirSync(s.dir, { recursive: true });
      procs.push(spawnLogged(binary, [
        '-a', '127.0.0.1', '-p', String(s.port), '-m', String(s.monitorPort), '-n', s.name,
        '--js', '--sd', s.dir, ...(size > 1 ? ['--cluster_name', 'dsync-bench',
          '--cluster', `nats://127.0.0.1:${s.clusterPort}`, '--routes', routes] : []),
      ], { cwd: s.dir, logFile: join(root, `${s.name}.log`) }));
    }
    const exits = new Map<number, number | string>();
    procs.forEach((p, i) => { void p.exited.then((code) => exits.set(i, code)); });
    await waitFor('every nats-server to report healthy', async () =>
      (await Promise.all(planned.map((s) => natsHealthy(s.monitorPort).catch(() => false))))
        .every(Boolean), {
      timeoutMs: opts.startTimeoutMs ?? DEFAULT_NATS_START_TIMEOUT_MS, pollMs: 200,
      abortIf: () => {
        for (const [i, code] of exits) return `nats-${i} exited (${code}): ${procs[i]?.tail()}`;
        return null;
      },
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    servers: planned.map((s, i) => ({ name: s.name, url: `nats://127.0.0.1:${s.port}`,
      pid: procs[i]?.pid ?? -1 })),
    version,
    stop,
  };
}
