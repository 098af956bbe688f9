// `dsync dev`: a complete local system on loopback (3 lock, 3 queue and 3 cache nodes by
// default, on the ports of API.md). Starts every node as its own process
// (`dsync serve`), writes DIR/cluster.json so tools can kill and restart any node, prints the
// endpoints and the cluster page's URL, and stops everything on Ctrl-C. It never restarts a
// node that dies. Every node gets the URLs of all the others (DSYNC_SYSTEM_URLS), so the page
// of any of them shows the whole system.
// With the cache it also starts the backing store: a redis-server (no persistence, its own
// directory under DIR, a free port) when one is on PATH, else the cache nodes use their
// embedded store. Redis is listed in cluster.json as a node of service "redis", started
// before the cache nodes and stopped after them (their shutdown writes dirty lines to it).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import Table from 'cli-table3';

export interface DevOptions {
  readonly dir: string;
  readonly services: ReadonlyArray<'lock' | 'queue' | 'cache'>;
  readonly binPath: string;
  /** Added to every default port (HTTP and peer), so that two systems can run side by side
   * (tests use it to stay off the default ports). Default 0. */
  readonly portOffset?: number;
  readonly extraEnv?: Record<string, string>;
  readonly out?: NodeJS.WritableStream;
}

export interface DevNode {
  readonly service: 'lock' | 'queue' | 'cache' | 'redis';
  readonly id: string;
  readonly httpPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly command: string[];
  readonly env: Record<string, string>;
  proc?: ChildProcess;
}

/** HTTP base ports from API.md; peer ports are ours: HTTP + 1000. */
const BASE_HTTP_PORT = { lock: 8000, queue: 8100, cache: 8200 } as const;
const PEER_PORT_OFFSET = 1000;
const NODES_PER_SERVICE = 3;
const PLAIN = { head: [], border: [] };
/** How long redis-server gets to answer PING. */
const REDIS_START_TIMEOUT_MS = 10_000;

async function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** Every node is told the HTTP URLs of all nodes of every service, so that the cluster page
 * of any of them shows the whole system. */
function addSystemUrls(nodes: DevNode[]): void {
  const byService = new Map<string, string[]>();
  for (const n of nodes) byService.set(n.service, [...byService.get(n.service) ?? [], nodeUrl(n)]);
  const value = [...byService].map(([s, urls]) => `${s}=${urls.join(',')}`).join(';');
  for (const n of nodes) n.env.DSYNC_SYSTEM_URLS = value;
}

/** The nodes `dsync dev` starts (the backing store aside), with their environment. */
export function planDevNodes(o: DevOptions, dir: string, cacheEnv: Record<string, string>):
  DevNode[] {
  const nodes = plan(o, dir, cacheEnv);
  addSystemUrls(nodes);
  return nodes;
}

function plan(o: DevOptions, dir: string, cacheEnv: Record<string, string>): DevNode[] {
  const nodes: DevNode[] = [];
  for (const service of o.services) {
    const base = BASE_HTTP_PORT[service] + (o.portOffset ?? 0);
    const specs = Array.from({ length: NODES_PER_SERVICE }, (_, i) => ({
      id: `${service}-${i}`, httpPort: base + i, peerPort: base + i + PEER_PORT_OFFSET,
    }));
    const peers = specs.map((s) => `${s.id}=127.0.0.1:${s.httpPort}:${s.peerPort}`).join(',');
    for (const s of specs) {
      const dataDir = join(dir, 'data', s.id);
      const env: Record<string, string> = {
        DSYNC_SERVICE: service, DSYNC_NODE_ID: s.id, DSYNC_HTTP_HOST: '127.0.0.1',
        DSYNC_HTTP_PORT: String(s.httpPort), DSYNC_PEER_HOST: '127.0.0.1',
        DSYNC_PEER_PORT: String(s.peerPort), DSYNC_PEERS: peers, DSYNC_DATA_DIR: dataDir,
        DSYNC_CLUSTER_TOKEN: 'dsync-dev', ...(service === 'cache' ? cacheEnv : {}),
        ...(o.extraEnv ?? {}),
      };
      nodes.push({ service, ...s, dataDir, env, command: [process.execPath, o.binPath, 'serve'] });
    }
  }
  return nodes;
}

async function waitHealthy(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
      if (r.ok) return true;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

let stopping = false;

export async function runDev(o: DevOptions): Promise<void> {
  const out = o.out ?? process.stdout;
  const dir = resolve(o.dir);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const redis = o.services.includes('cache') ? await planRedis(dir) : null;
  const nodes = planDevNodes(o, dir, redis === null ? {} : { DSYNC_REDIS_URL: redisUrl(redis) });
  for (const n of nodes) {
    for (const port of [n.httpPort, n.peerPort]) {
      if (!(await portFree(port))) {
        throw new Error(`port ${port} (for ${n.id}) is in use on 127.0.0.1: stop whatever holds it ` +
          '(another `dsync dev`?) and run again');
      }
    }
  }
  if (redis === null && o.services.includes('cache')) {
    out.write('dsync dev: no redis-server on PATH: the cache nodes use their embedded store\n');
  }
  out.write(`dsync dev: starting ${nodes.length} nodes in ${dir}\n`);
  if (redis !== null) {
    launch(redis, dir, out);
    if (!(await waitRedis(redis.httpPort, REDIS_START_TIMEOUT_MS))) {
      out.write(`dsync dev: redis-server did not answer; see ${join(dir, 'logs', 'redis.log')}\n`);
    }
  }
  for (const n of nodes) launch(n, dir, out);
  const all = redis === null ? nodes : [redis, ...nodes];
  writeClusterJson(dir, all);
  const healthy = await Promise.all(all.map((n) => n.service === 'redis'
    ? waitRedis(n.httpPort, 1000) : waitHealthy(`http://127.0.0.1:${n.httpPort}`, 20_000)));
  printTable(out, all, healthy, dir);
  await new Promise<void>((res) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      stopping = true;
      out.write('\ndsync dev: stopping every node…\n');
      // Redis last: the cache nodes write their dirty lines to it as they stop.
      void stopAll(nodes).then(() => stopAll(redis === null ? [] : [redis]))
        .then(() => { out.write('dsync dev: stopped\n'); res(); });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function launch(n: DevNode, dir: string, out: NodeJS.WritableStream): void {
  mkdirSync(n.dataDir, { recursive: true });
  const log = createWriteStream(join(dir, 'logs', `${n.id}.log`), { flags: 'a' });
  const [cmd, ...args] = n.command;
  // Own process group: Ctrl-C reaches only the launcher, which stops the nodes in order.
  const p = spawn(cmd!, args, { cwd: process.cwd(), env: { ...process.env, ...n.env },
    stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  p.stdout?.pipe(log, { end: false });
  p.stderr?.pipe(log, { end: false });
  p.on('exit', (code, sig) => {
    if (stopping) return;
    out.write(`dsync dev: ${n.id} (pid ${p.pid}) exited (${sig ?? `code ${code}`}); ` +
      `see ${join(dir, 'logs', `${n.id}.log`)}; restart it with the command in cluster.json\n`);
  });
  n.proc = p;
}

/** The redis-server on PATH, or null. */
function findRedisServer(): string | null {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (d === '') continue;
    const candidate = join(d, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch { /* not here */ }
  }
  return null;
}

/** A port that was free a moment ago (the OS picks it). */
async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** The redis-server node (its port in httpPort), or null when none is installed. */
async function planRedis(dir: string): Promise<DevNode | null> {
  const bin = findRedisServer();
  if (bin === null) return null;
  const port = await freePort();
  const dataDir = join(dir, 'data', 'redis');
  return { service: 'redis', id: 'redis', httpPort: port, peerPort: 0, dataDir, env: {},
    command: [bin, '--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir,
      '--save', '', '--appendonly', 'no', '--daemonize', 'no'] };
}

function redisUrl(n: DevNode): string {
  return `redis://127.0.0.1:${n.httpPort}`;
}

function nodeUrl(n: DevNode): string {
  return n.service === 'redis' ? redisUrl(n) : `http://127.0.0.1:${n.httpPort}`;
}

/** True once redis-server on `port` answers PING, false at the deadline. */
async function waitRedis(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pong = await new Promise<boolean>((res) => {
      const sock = connect({ host: '127.0.0.1', port });
      let got = '';
      const done = (v: boolean): void => { sock.destroy(); res(v); };
      sock.setTimeout(500, () => done(false));
      sock.once('error', () => done(false));
      sock.once('connect', () => sock.write('PING\r\n'));
      sock.on('data', (b) => {
        got += b.toString('latin1');
        if (got.includes('\r\n')) done(got.startsWith('+PONG'));
      });
    });
    if (pong) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function writeClusterJson(dir: string, nodes: DevNode[]): void {
  const doc = {
    nodes: nodes.map((n) => ({
      service: n.service, id: n.id, pid: n.proc?.pid ?? null,
      url: nodeUrl(n), dataDir: n.dataDir, cwd: process.cwd(),
      command: n.command, env: n.env,
    })),
  };
  writeFileSync(join(dir, 'cluster.json'), `${JSON.stringify(doc, null, 2)}\n`);
}

function printTable(out: NodeJS.WritableStream, nodes: DevNode[], healthy: boolean[],
  dir: string): void {
  const t = new Table({ head: ['service', 'node', 'url', 'pid', 'status'], style: PLAIN });
  nodes.forEach((n, i) => t.push([n.service, n.id, nodeUrl(n),
    String(n.proc?.pid ?? '-'), healthy[i] ? 'up' : 'NOT UP (see its log)']));
  out.write(`${t.toString()}\n`);
  const first = nodes.find((n) => n.service !== 'redis');
  if (first !== undefined) {
    out.write(`Cluster page: ${nodeUrl(first)}/   API reference: ${nodeUrl(first)}/docs` +
      '   (every node serves both)\n');
  }
  out.write(`cluster.json: ${join(dir, 'cluster.json')}   logs: ${join(dir, 'logs')}\n`);
  out.write('Try: npx dsync status   ·   Ctrl-C stops everything\n');
}

async function stopAll(nodes: DevNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => new Promise<void>((res) => {
    const p = n.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) { res(); return; }
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.once('exit', () => { clearTimeout(t); res(); });
    p.kill('SIGTERM');
  })));
}
