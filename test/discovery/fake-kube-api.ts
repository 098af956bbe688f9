// A FAKE Kubernetes API server (the one part that cannot run here): plain HTTP on loopback,
// just the endpoints dsync calls, with one StatefulSet and its pods in memory. It records each
// request as the RBAC verb Kubernetes would check, so that tests can hold the calls against
// the chart's Role.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedCall {
  readonly verb: 'get' | 'watch' | 'patch' | 'list';
  readonly group: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name: string;
  readonly contentType: string | undefined;
  readonly authorization: string | undefined;
}

interface Pod { labels: Record<string, string> }

export class FakeKubeApi {
  readonly calls: RecordedCall[] = [];
  readonly pods = new Map<string, Pod>();
  replicas: number;
  private readonly watchers = new Set<ServerResponse>();
  private server: Server | null = null;
  url = '';

  constructor(readonly namespace: string, readonly statefulSet: string, replicas: number) {
    this.replicas = replicas;
    for (let i = 0; i < replicas; i++) this.pods.set(`${statefulSet}-${i}`, { labels: {} });
  }

  private stsObject(): Record<string, unknown> {
    return { apiVersion: 'apps/v1', kind: 'StatefulSet',
      metadata: { name: this.statefulSet, namespace: this.namespace, resourceVersion: '1' },
      spec: { replicas: this.replicas, serviceName: `${this.statefulSet}-headless`,
        selector: { matchLabels: {} }, template: {} } };
  }

  /** Scales the StatefulSet: every open watch gets a MODIFIED event. */
  scale(replicas: number): void {
    this.replicas = replicas;
    for (let i = 0; i < replicas; i++) {
      if (!this.pods.has(`${this.statefulSet}-${i}`)) {
        this.pods.set(`${this.statefulSet}-${i}`, { labels: {} });
      }
    }
    const line = `${JSON.stringify({ type: 'MODIFIED', object: this.stsObject() })}\n`;
    for (const w of this.watchers) w.write(line);
  }

  /** Ends every open watch, as an API server does after its timeout. */
  endWatches(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => this.handle(req, res, body));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.endWatches();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private record(req: IncomingMessage, verb: RecordedCall['verb'], group: string,
    resource: string, name: string): void {
    this.calls.push({ verb, group, resource, namespace: this.namespace, name,
      contentType: req.headers['content-type'], authorization: req.headers.authorization });
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const ns = this.namespace;
    const json = (status: number, obj: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    const sts = `/apis/apps/v1/namespaces/${ns}/statefulsets`;
    if (req.method === 'GET' && url.pathname === `${sts}/${this.statefulSet}`) {
      this.record(req, 'get', 'apps', 'statefulsets', this.statefulSet);
      return json(200, this.stsObject());
    }
    if (req.method === 'GET' && url.pathname === sts && url.searchParams.get('watch') === 'true') {
      const selected = url.searchParams.get('fieldSelector')?.replace(/^metadata\.name=/, '');
      this.record(req, 'watch', 'apps', 'statefulsets', selected ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`${JSON.stringify({ type: 'ADDED', object: this.stsObject() })}\n`);
      this.watchers.add(res);
      res.on('close', () => this.watchers.delete(res));
      return;
    }
    const podMatch = new RegExp(`^/api/v1/namespaces/${ns}/pods/([^/]+)$`).exec(url.pathname);
    const pod = podMatch === null ? undefined : this.pods.get(podMatch[1]!);
    if (podMatch !== null && pod !== undefined && (req.method === 'PATCH' || req.method === 'GET')) {
      const name = podMatch[1]!;
      this.record(req, req.method === 'PATCH' ? 'patch' : 'get', '', 'pods', name);
      if (req.method === 'PATCH') {
        const patch = JSON.parse(body) as { metadata?: { labels?: Record<string, string | null> } };
        for (const [k, v] of Object.entries(patch.metadata?.labels ?? {})) {
          if (v === null) delete pod.labels[k];
          else pod.labels[k] = v;
        }
      }
      return json(200, { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns,
        labels: pod.labels } });
    }
    json(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
  }
}
