// A real DNS server on loopback (dns2, UDP) that answers the way cluster DNS answers for a
// Kubernetes headless Service: SRV records `_peer._tcp.<svc>.<ns>.svc.<domain>` with one
// target per pod (`<pod>.<svc>.<ns>.svc.<domain>`) and an A record per pod. Pods can be added,
// moved to another IP and removed while it runs (records that appear late, IPs that change).
import dns2 from 'dns2';
import type { AddressInfo } from 'node:net';

const { Packet } = dns2;
const TTL_S = 1;
const NXDOMAIN = 3;

export interface PodRecord { readonly pod: string; ip: string }

/** A resource record as dns2 encodes it (its type declarations lack the SRV fields). */
interface Answer {
  name: string; type: number; class: number; ttl: number; address?: string;
  priority?: number; weight?: number; port?: number; target?: string;
}
type Response = ReturnType<typeof Packet.createResponseFromRequest> & {
  header: { rcode: number };
};

export class HeadlessDnsServer {
  private readonly pods = new Map<string, PodRecord>();
  /** Queries answered, by name (tests check that lookups really went out). */
  readonly queries: string[] = [];
  private server: ReturnType<typeof dns2.createServer> | null = null;
  port = 0;

  constructor(readonly headless: string, readonly namespace: string,
    readonly ports: Readonly<Record<string, number>> = { peer: 7000, http: 8080 },
    readonly domain = 'cluster.local') {}

  get serviceName(): string {
    return `${this.headless}.${this.namespace}.svc.${this.domain}`;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  setPod(pod: string, ip: string): void {
    this.pods.set(pod, { pod, ip });
  }

  removePod(pod: string): void {
    this.pods.delete(pod);
  }

  async start(): Promise<void> {
    const server = dns2.createServer({ udp: true, handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request) as Response;
      const name = (request.questions[0]?.name ?? '').toLowerCase();
      this.queries.push(name);
      const answers = this.answer(name);
      if (answers === null) response.header.rcode = NXDOMAIN;
      else response.answers.push(...(answers as unknown as Response['answers']));
      void send(response);
    } });
    await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
    this.server = server;
    this.port = (server.addresses().udp as AddressInfo).port;
  }

  /** Records for a name, [] for a known name without records, null for an unknown name. */
  private answer(name: string): Answer[] | null {
    for (const [portName, port] of Object.entries(this.ports)) {
      if (name !== `_${portName}._tcp.${this.serviceName}`) continue;
      return [...this.pods.values()].map((p) => ({ name, type: Packet.TYPE.SRV,
        class: Packet.CLASS.IN, ttl: TTL_S, priority: 0, weight: 100, port,
        target: `${p.pod}.${this.serviceName}` }));
    }
    for (const p of this.pods.values()) {
      if (name === `${p.pod}.${this.serviceName}`) {
        return [{ name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: TTL_S, address: p.ip }];
      }
    }
    return name.endsWith(this.serviceName) ? [] : null;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = null;
  }
}
