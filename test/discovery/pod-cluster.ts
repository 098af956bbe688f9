// Real `dsync serve` processes that find each other the way pods of a StatefulSet do: by the
// DNS of a headless Service, served by a real DNS server on loopback (headless-dns-server.ts).
// Pods share their ports, as in Kubernetes, and each listens on a loopback address of its own
// (127.0.0.0/8); a pod's records are published when the test says (records that appear late).
// Optionally the Kubernetes API features run against a FAKE API server (fake-kube-api.ts).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ClusterNode, ROOT, type HealthBody } from '../support/cluster.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import type { FakeKubeApi } from './fake-kube-api.js';
import { HeadlessDnsServer } from './headless-dns-server.js';

export const NAMESPACE = 'dsync-test';
export const CLUSTER_ID = 'test';

export interface PodClusterOptions {
  readonly service: 'lock' | 'queue' | 'cache';
  /** --replicas of every pod (the initial members). */
  readonly replicas: number;
  /** A fake Kubernetes API: the pods follow spec.replicas (and the lock leader labels). */
  readonly kube?: FakeKubeApi;
  readonly extraArgs?: readonly string[];
}

/** The loopback address of ordinal i. */
export const podIp = (i: number): string => `127.0.0.${20 + i}`;

export class PodCluster {
  readonly pods = new Map<number, ClusterNode>();
  private readonly argsOf = new Map<number, () => string[]>();

  private constructor(readonly dir: string, readonly dns: HeadlessDnsServer,
    readonly httpPort: number, readonly peerPort: number,
    private readonly opts: PodClusterOptions) {}

  static async create(opts: PodClusterOptions): Promise<PodCluster> {
    const [httpPort, peerPort] = await freePorts(2) as [number, number];
    const dns = new HeadlessDnsServer(`${opts.service}-headless`, NAMESPACE,
      { peer: peerPort, http: httpPort });
    await dns.start();
    const dir = mkdtempSync(join(tmpdir(), `dsync-pods-${opts.service}-`));
    return new PodCluster(dir, dns, httpPort, peerPort, opts);
  }

  name(i: number): string {
    return `${this.opts.service}-${i}`;
  }

  /** The process of ordinal i (made on first use; not started). */
  pod(i: number): ClusterNode {
    let n = this.pods.get(i);
    if (n !== undefined) return n;
    const name = this.name(i);
    const spec = { id: name, httpPort: this.httpPort, peerPort: this.peerPort,
      dataDir: join(this.dir, name), host: podIp(i) };
    const kube = this.opts.kube;
    const args = (): string[] => [
      '--service', this.opts.service, '--node-id', name, '--pod-name', name,
      '--discovery', 'dns', '--dns-name', this.dns.serviceName, '--dns-servers', this.dns.address,
      '--replicas', String(this.opts.replicas), '--cluster-id', CLUSTER_ID,
      '--http-host', spec.host, '--http-port', String(spec.httpPort),
      '--peer-host', spec.host, '--peer-port', String(spec.peerPort),
      '--data-dir', spec.dataDir, '--cluster-token', 'test-token', '--log-level', 'info',
      '--bootstrap-timeout-ms', '120000',
      ...(kube === undefined ? [] : ['--reconcile-membership', '--namespace', NAMESPACE,
        '--kubernetes-api-url', kube.url, ...(this.opts.service === 'lock'
          ? ['--label-leader'] : [])]),
      ...(this.opts.extraArgs ?? []),
    ];
    n = new ClusterNode(spec, args, {}, join(this.dir, `${name}.log`));
    this.pods.set(i, n);
    this.argsOf.set(i, args);
    return n;
  }

  /** Runs `dsync serve` for ordinal i with extra flags (later flags win) until it exits on its
   * own; for configurations a node must refuse. */
  async serveUntilExit(i: number, extra: readonly string[], timeoutMs = 60_000):
    Promise<{ code: number | null; stderr: string }> {
    this.pod(i);
    const args = [BIN, 'serve', ...this.argsOf.get(i)!(), ...extra];
    return new Promise((resolve) => {
      execFile(process.execPath, args, { cwd: ROOT, timeout: timeoutMs,
        env: { ...process.env, DSYNC_EXIT_WITH_PARENT: '1' } }, (err, _stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stderr });
      });
    });
  }

  /** Publishes the pod's A and SRV records (the pod is scheduled). */
  publish(i: number): void {
    this.dns.setPod(this.name(i), podIp(i));
  }

  /** Publishes ordinal i and starts its process. */
  start(i: number): ClusterNode {
    this.publish(i);
    const n = this.pod(i);
    n.start();
    return n;
  }

  /** Empties the pod's volume (the pod must be stopped). */
  wipe(i: number): void {
    rmSync(this.pod(i).spec.dataDir, { recursive: true, force: true });
  }

  running(): ClusterNode[] {
    return [...this.pods.values()].filter((n) => n.running);
  }

  /** The log lines of a pod, parsed. */
  logLines(i: number): Array<Record<string, unknown>> {
    return readFileSync(this.pod(i).logFile, 'utf8').split('\n').flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  /** Kills every pod; DSYNC_KEEP_PODS=1 keeps their logs and data for a look. */
  async stop(keepDir = process.env.DSYNC_KEEP_PODS === '1'): Promise<void> {
    await Promise.all([...this.pods.values()].map((n) => n.crash()));
    await this.dns.stop();
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface RaftView {
  readonly node: ClusterNode;
  readonly health: HealthBody & { raft: NonNullable<HealthBody['raft']> };
}

/** The Raft configuration a node reports on GET /v1/cluster. */
export async function clusterOf(n: ClusterNode):
  Promise<{ leader: string | null; voters: string[]; learners: string[] } | null> {
  try {
    const r = await fetch(`${n.url}/v1/cluster`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? await r.json() as { leader: string | null; voters: string[];
      learners: string[] } : null;
  } catch {
    return null;
  }
}

/** The one lock leader every running pod agrees on (node ids are generated: by /health). */
export async function podLeader(nodes: readonly ClusterNode[], timeoutMs = 30_000):
  Promise<RaftView> {
  return waitFor('one lock leader every running pod agrees on', async () => {
    const hs = await Promise.all(nodes.filter((n) => n.running)
      .map(async (node) => ({ node, health: await node.health() })));
    const leaders = hs.filter((h) => h.health?.raft?.state === 'leader');
    if (leaders.length !== 1) return null;
    const l = leaders[0]!;
    const term = l.health!.raft!.term;
    const agree = hs.every((h) => h.health?.raft?.leader === l.health!.node ||
      (h.health?.raft?.term ?? 0) < term);
    return agree ? l as RaftView : null;
  }, timeoutMs, 100);
}
