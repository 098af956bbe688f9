// Real-process cluster harness: spawns `dsync serve` nodes on loopback, each with its own data
// dir, optionally with a fault proxy on every one-way peer link, and lets a test kill -9,
// pause (SIGSTOP/SIGCONT), restart and partition them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, createWriteStream, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FaultProxy } from './fault-proxy.js';
import { freePorts } from './ports.js';
import { waitFor } from './wait.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'dsync.js');

export interface NodeSpec {
  readonly id: string;
  readonly httpPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** The loopback address the node listens on (default 127.0.0.1); pods of a headless
   * Service share their ports, so each gets an address of its own (127.0.0.0/8). */
  readonly host?: string;
}

export interface HealthBody {
  status: string;
  node: string;
  raft?: {
    state: string; term: number; leader: string | null; commitIndex: number; appliedIndex: number;
  };
  [k: string]: unknown;
}

export class ClusterNode {
  proc: ChildProcess | null = null;
  private logStream: WriteStream | null = null;

  constructor(
    readonly spec: NodeSpec,
    private readonly args: () => string[],
    private readonly env: NodeJS.ProcessEnv,
    readonly logFile: string,
  ) {}

  get id(): string { return this.spec.id; }
  get url(): string { return `http://${this.spec.host ?? '127.0.0.1'}:${this.spec.httpPort}`; }
  get pid(): number | undefined { return this.proc?.pid; }
  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.id} is already running`);
    this.logStream = createWriteStream(this.logFile, { flags: 'a' });
    const p = spawn(process.execPath, [BIN, 'serve', ...this.args()], {
      // A killed test runner must not leave nodes behind: they exit when we go away.
      cwd: ROOT, env: { ...process.env, DSYNC_EXIT_WITH_PARENT: '1', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout?.pipe(this.logStream, { end: false });
    p.stderr?.pipe(this.logStream, { end: false });
    this.proc = p;
  }

  /** kill -9: no shutdown hooks run. */
  async crash(): Promise<void> {
    await this.signalAndWait('SIGKILL');
  }

  /** SIGTERM: graceful shutdown. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    const exited = this.exitPromise();
    this.proc?.kill('SIGTERM');
    const t = setTimeout(() => this.proc?.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(t);
  }

  pause(): void { this.proc?.kill('SIGSTOP'); }
  resume(): void { this.proc?.kill('SIGCONT'); }

  async health(timeoutMs = 1000): Promise<HealthBody | null> {
    try {
      const r = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
      return r.ok ? (await r.json()) as HealthBody : null;
    } catch {
      return null;
    }
  }

  async waitHealthy(timeoutMs = 15_000): Promise<HealthBody> {
    return waitFor(`${this.id} /health`, () => this.health(), timeoutMs);
  }

  private exitPromise(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((r) => p.once('exit', () => r()));
  }

  private async signalAndWait(sig: NodeJS.Signals): Promise<void> {
    if (!this.running) return;
    this.proc?.kill('SIGCONT');
    const exited = this.exitPromise();
    this.proc?.kill(sig);
    await exited;
  }
}

export interface ClusterOptions {
  readonly service: 'lock' | 'queue' | 'cache';
  readonly size?: number;
  /** Put a FaultProxy on every one-way peer link so links can be cut. */
  readonly proxies?: boolean;
  /** Extra `dsync serve` flags for every node. */
  readonly extraArgs?: string[];
  /** Extra flags for node i (e.g. `--join` for a node that is added later). */
  readonly nodeArgs?: (i: number) => string[];
  /** Start only the first N nodes now (the rest with node.start() later). Default: all. */
  readonly startNodes?: number;
  /** How many of the nodes, from the first, the `--peers` list names (default: all). A node
   * started later (or restarted) gets the list as it is then: see Cluster.setPeerCount. */
  readonly peerCount?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** How long each started node may take to answer /health (default 15 s; a loaded machine
   * can take longer just to load the node's code). */
  readonly startTimeoutMs?: number;
  /** HTTP and peer port of each node, in pairs (2 × size), when the caller must know them
   * before the nodes start (to tell other services about them); default: free ports. */
  readonly ports?: readonly number[];
}

export class Cluster {
  readonly nodes: ClusterNode[] = [];
  /** proxies.get(`${from}->${to}`): carries what `from` sends to `to`. */
  readonly proxies = new Map<string, FaultProxy>();

  /** Nodes named by the `--peers` list of the next start of any node. */
  private peerCount: number;

  private constructor(readonly dir: string, readonly opts: ClusterOptions) {
    this.peerCount = opts.peerCount ?? opts.size ?? 3;
  }

  /** Changes how many nodes the `--peers` list names from now on (growing a ring: restart
   * the nodes that run, start the new ones). */
  setPeerCount(n: number): void {
    this.peerCount = n;
  }

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const size = opts.size ?? 3;
    const dir = mkdtempSync(join(tmpdir(), `dsync-${opts.service}-`));
    const c = new Cluster(dir, opts);
    const ports = opts.ports ?? await freePorts(size * 2);
    if (ports.length !== size * 2) throw new Error(`ports: want ${size * 2}, got ${ports.length}`);
    const specs: NodeSpec[] = Array.from({ length: size }, (_, i) => ({
      id: `${opts.service}-${i}`, httpPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!,
      dataDir: join(dir, `${opts.service}-${i}`),
    }));
    if (opts.proxies) {
      for (const a of specs) for (const b of specs) {
        if (a.id === b.id) continue;
        c.proxies.set(`${a.id}->${b.id}`,
          await FaultProxy.start({ target: { host: '127.0.0.1', port: b.peerPort } }));
      }
    }
    for (const s of specs) {
      const peersOf = (): string => specs.slice(0, c.peerCount).map((p) => {
        const peerPort = p.id === s.id || !opts.proxies ? p.peerPort
          : c.proxies.get(`${s.id}->${p.id}`)!.port;
        return `${p.id}=127.0.0.1:${p.httpPort}:${peerPort}`;
      }).join(',');
      const args = (): string[] => [
        '--service', opts.service, '--node-id', s.id,
        '--http-host', '127.0.0.1', '--http-port', String(s.httpPort),
        '--peer-host', '127.0.0.1', '--peer-port', String(s.peerPort),
        '--peers', peersOf(), '--data-dir', s.dataDir, '--cluster-token', 'test-token',
        '--log-level', 'info', ...(opts.extraArgs ?? []),
        ...(opts.nodeArgs?.(specs.indexOf(s)) ?? []),
      ];
      c.nodes.push(new ClusterNode(s, args, opts.env ?? {}, join(dir, `${s.id}.log`)));
    }
    const first = c.nodes.slice(0, opts.startNodes ?? size);
    for (const n of first) n.start();
    try {
      await Promise.all(first.map((n) => n.waitHealthy(opts.startTimeoutMs)));
    } catch (err) {
      // The caller gets no Cluster to stop: do not leave its nodes running.
      await c.stop(true);
      throw err;
    }
    return c;
  }

  node(id: string): ClusterNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** The node that every reachable node agrees is leader (lock service / single group). */
  async leader(timeoutMs = 10_000, among: ClusterNode[] = this.nodes): Promise<ClusterNode> {
    return waitFor('a leader', async () => {
      const hs = await Promise.all(among.filter((n) => n.running)
        .map(async (n) => [n, await n.health()] as const));
      const leaders = hs.filter(([, h]) => h?.raft?.state === 'leader');
      if (leaders.length !== 1) return null;
      const [ln, lh] = leaders[0]!;
      const term = lh?.raft?.term ?? 0;
      const agree = hs.every(([, h]) =>
        h === null || h.raft?.leader === ln.id || (h.raft?.term ?? 0) < term);
      return agree ? ln : null;
    }, timeoutMs);
  }

  /** Cut (or heal) both directions between a and b. */
  partition(a: string, b: string, mode: 'drop' | 'blackhole' | 'pass' = 'drop'): void {
    this.link(a, b, mode);
    this.link(b, a, mode);
  }

  /** Isolate one node from all others (both directions). */
  isolate(id: string, mode: 'drop' | 'blackhole' | 'pass' = 'drop'): void {
    for (const n of this.nodes) if (n.id !== id) this.partition(id, n.id, mode);
  }

  healAll(): void {
    for (const p of this.proxies.values()) p.setMode('pass');
  }

  link(from: string, to: string, mode: 'drop' | 'blackhole' | 'pass'): void {
    const p = this.proxies.get(`${from}->${to}`);
    if (!p) throw new Error(`no proxy ${from}->${to}: start the cluster with proxies: true`);
    p.setMode(mode);
  }

  async stop(keepDir = false): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.crash()));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
