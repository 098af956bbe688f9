// A real RabbitMQ node on loopback, the second reference for the queue: `rabbitmq-server` of
// our own (its own node name, epmd, ports, Mnesia and log dirs under a temp dir, no plugins),
// so it never meets a system RabbitMQ. Quorum queues are Raft logs that RabbitMQ fsyncs
// before it confirms a publish. Stopped by pid at the end (also on Ctrl-C).
import {
  existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { freePorts, onCleanup, removeDirAtExit, spawnLogged, stopProcess, waitFor } from
  './proc.js';
import type { Spawned } from './proc.js';

/** The Debian package's script that runs the broker in the foreground. */
export const RABBITMQ_SERVER_SCRIPT = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const RABBITMQ_LIB_DIR = '/usr/lib/rabbitmq/lib';
/** A broker boots in 5-20 s; a busy machine takes longer. */
export const DEFAULT_RABBITMQ_START_TIMEOUT_MS = 90_000;
/** A broker flushes its queues on SIGTERM; their data is deleted right after. */
const STOP_GRACE_MS = 15_000;

export interface RabbitMqNode {
  /** amqp://guest:guest@127.0.0.1:port (guest may log in over loopback). */
  readonly url: string;
  /** The broker's own process (beam.smp), read from its pid file. */
  readonly pid: number;
  /** `3.10.8`, from the package's path. */
  readonly version: string;
  stop(): Promise<void>;
}

/** The broker's version, from the directory the package installed it in. */
function installedVersion(): string {
  try {
    const dir = readdirSync(RABBITMQ_LIB_DIR).find((d) => d.startsWith('rabbitmq_server-'));
    return dir?.slice('rabbitmq_server-'.length) ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function pidOf(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try { process.kill(pid, signal); } catch { /* already gone */ }
}

/** Starts a broker and resolves once it takes an AMQP connection. */
export async function startRabbitMq(
  opts: { startTimeoutMs?: number } = {},
): Promise<RabbitMqNode> {
  if (!existsSync(RABBITMQ_SERVER_SCRIPT)) {
    throw new Error(`${RABBITMQ_SERVER_SCRIPT} is missing: apt-get install rabbitmq-server`);
  }
  const root = mkdtempSync(join(tmpdir(), 'dsync-rabbitmq-'));
  const removeRoot = removeDirAtExit(root);
  const [amqpPort = 0, distPort = 0, epmdPort = 0] = await freePorts(3);
  for (const d of ['mnesia', 'log']) mkdirSync(join(root, d));
  writeFileSync(join(root, 'rabbitmq.conf'), `listeners.tcp.default = 127.0.0.1:${amqpPort}\n`);
  writeFileSync(join(root, 'enabled_plugins'), '[].\n');
  const pidFile = join(root, 'rabbitmq.pid');
  const env = {
    ...process.env, HOME: root, ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_CONF_ENV_FILE: join(root, 'no-env.conf'),
    RABBITMQ_NODENAME: `dsync-bench-${process.pid}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1', RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort), RABBITMQ_MNESIA_BASE: join(root, 'mnesia'),
    RABBITMQ_LOG_BASE: join(root, 'log'), RABBITMQ_CONFIG_FILE: join(root, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(root, 'enabled_plugins'), RABBITMQ_PID_FILE: pidFile,
  };
  // Our own epmd on its own port, in the foreground so that we hold its pid.
  const epmd = spawnLogged('epmd', ['-port', String(epmdPort)],
    { cwd: root, logFile: join(root, 'epmd.log') });
  const script = spawnLogged(RABBITMQ_SERVER_SCRIPT, [], { cwd: root,
    logFile: join(root, 'rabbitmq.log'), env });
  // The script's child, beam.smp, outlives a SIGKILL of the script: kill it by its pid too.
  const dropBeam = onCleanup(() => {
    const pid = pidOf(pidFile);
    if (pid !== null) killQuietly(pid, 'SIGKILL');
  });
  const stop = async (): Promise<void> => {
    const pid = pidOf(pidFile);
    if (pid !== null) killQuietly(pid, 'SIGTERM');
    await stopProcess(script, STOP_GRACE_MS);
    const left = pidOf(pidFile);
    if (left !== null) killQuietly(left, 'SIGKILL');
    dropBeam();
    await stopProcess(epmd);
    removeRoot();
  };
  const url = `amqp://guest:guest@127.0.0.1:${amqpPort}`;
  try {
    await waitFor('RabbitMQ to accept an AMQP connection', async () => {
      const c = await connect(url);
      await c.close();
      return true;
    }, { timeoutMs: opts.startTimeoutMs ?? DEFAULT_RABBITMQ_START_TIMEOUT_MS, pollMs: 500,
      abortIf: () => exitedWhy(script) ?? exitedWhy(epmd) });
  } catch (err) {
    await stop();
    throw err;
  }
  const pid = pidOf(pidFile) ?? script.pid;
  return { url, pid, version: installedVersion(), stop };
}

function exitedWhy(p: Spawned): string | null {
  return p.child.exitCode === null && p.child.signalCode === null ? null
    : `exited (${p.child.exitCode ?? p.child.signalCode}): ${p.tail()}`;
}
