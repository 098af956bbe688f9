// Peers of a StatefulSet by the DNS of its headless Service, the way Kubernetes serves it:
//   SRV _peer._tcp.lock-headless.<ns>.svc.<domain>  → one record per pod: port + pod name
//   A   lock-1.lock-headless.<ns>.svc.<domain>      → that pod's current IP
// The Service publishes not-ready addresses, so pods find each other while they start. Pod IPs
// change when pods move, so nothing is cached here: `lookup` (for net.connect and undici)
// resolves on every connect, and `members()` asks again every time. Records of a pod that is
// still being scheduled appear late: `waitForMembers` polls, with backoff, until a deadline.
import { Resolver } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { DsyncError } from '../errors.js';

/** One DNS query's deadline (c-ares retries inside it). */
export const DEFAULT_QUERY_TIMEOUT_MS = 2000;
/** Pause between polls of waitForMembers, doubling up to the max. */
export const MEMBERS_POLL_MS_MIN = 100;
export const MEMBERS_POLL_MS_MAX = 2000;
/** Most members a headless Service may list (as many as a static peer list may name). */
export const MEMBERS_MAX = 64;

export interface HeadlessServiceOptions {
  /** The Service's full DNS name (`lock-headless.<ns>.svc.<domain>`), or the three parts. */
  readonly serviceName?: string;
  /** Name of the headless Service, e.g. `lock-headless`. */
  readonly headless?: string;
  readonly namespace?: string;
  /** The cluster's DNS domain (default cluster.local). */
  readonly clusterDomain?: string;
  /** Named port whose SRV records list the members (default `peer`). */
  readonly portName?: string;
  /** DNS servers as `ip` or `ip:port` (tests); default: the system's resolvers. */
  readonly servers?: readonly string[];
  readonly queryTimeoutMs?: number;
}

export interface Member {
  /** The pod name: the first label of the SRV target (`lock-1`). */
  readonly pod: string;
  /** Its stable DNS name, resolved again on every connect. */
  readonly host: string;
  readonly port: number;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[],
  family?: number) => void;

export class DiscoveryError extends DsyncError {
  constructor(message: string, cause?: unknown) {
    super('UNAVAILABLE', message, { retryable: true, cause });
    this.name = 'DiscoveryError';
  }
}

export class HeadlessServiceDns {
  private readonly resolver: Resolver;
  readonly serviceName: string;
  private readonly portName: string;

  constructor(readonly opts: HeadlessServiceOptions) {
    this.resolver = new Resolver({ timeout: opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
      tries: 2 });
    if (opts.servers !== undefined) this.resolver.setServers([...opts.servers]);
    const parts = opts.headless !== undefined && opts.namespace !== undefined
      ? `${opts.headless}.${opts.namespace}.svc.${opts.clusterDomain ?? 'cluster.local'}`
      : undefined;
    const name = (opts.serviceName ?? parts)?.replace(/\.$/, '');
    if (name === undefined) throw new Error('HeadlessServiceDns needs a service name');
    this.serviceName = name;
    this.portName = opts.portName ?? 'peer';
  }

  private srvName(portName: string): string {
    return `_${portName}._tcp.${this.serviceName}`;
  }

  /** The stable DNS name of a pod of this Service. */
  podHost(pod: string): string {
    return `${pod}.${this.serviceName}`;
  }

  /** The members the SRV records of a named port (default: the configured one) list now,
   * sorted by pod name; [] when there is none yet. */
  async members(portName = this.portName): Promise<Member[]> {
    const srvName = this.srvName(portName);
    let records;
    try {
      records = await this.resolver.resolveSrv(srvName);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
      throw new DiscoveryError(`DNS lookup of ${srvName} failed (${code ?? String(err)}); ` +
        'check that the headless Service exists and cluster DNS answers', err);
    }
    if (records.length > MEMBERS_MAX) {
      throw new DiscoveryError(`${srvName} lists ${records.length} members, more than ` +
        `${MEMBERS_MAX}: is it the right Service?`);
    }
    return records.map((r) => {
      const host = r.name.replace(/\.$/, '');
      return { pod: host.split('.')[0] ?? host, host, port: r.port };
    }).sort((a, b) => a.pod.localeCompare(b.pod));
  }

  /** Waits until the SRV records list at least `count` members (records appear late while
   * pods are scheduled), or fails at the deadline saying how many it saw. */
  async waitForMembers(count: number, timeoutMs: number, signal?: AbortSignal):
    Promise<Member[]> {
    const deadline = Date.now() + timeoutMs;
    let pauseMs = MEMBERS_POLL_MS_MIN;
    for (;;) {
      const seen = await this.members();
      if (seen.length >= count) return seen;
      if (Date.now() + pauseMs > deadline || signal?.aborted === true) {
        throw new DiscoveryError(`${this.srvName(this.portName)} lists ${seen.length} of ` +
          `${count} members ` +
          `after ${timeoutMs} ms (${seen.map((m) => m.pod).join(', ') || 'none'}); are the ` +
          'other pods scheduled?');
      }
      await new Promise((r) => setTimeout(r, pauseMs));
      pauseMs = Math.min(2 * pauseMs, MEMBERS_POLL_MS_MAX);
    }
  }

  /** The addresses of a name now (A, then AAAA), never from a cache. */
  async resolveHost(host: string): Promise<LookupAddress[]> {
    const v4 = await this.resolver.resolve4(host).catch(() => [] as string[]);
    if (v4.length > 0) return v4.map((address) => ({ address, family: 4 }));
    const v6 = await this.resolver.resolve6(host).catch(() => [] as string[]);
    if (v6.length > 0) return v6.map((address) => ({ address, family: 6 }));
    const err = new Error(`no address for ${host}`) as NodeJS.ErrnoException;
    err.code = 'ENOTFOUND';
    throw err;
  }

  /** A `lookup` for net.connect / undici that asks this resolver on every connect. */
  readonly lookup = (host: string, options: LookupOptions,
    callback: LookupCallback): void => {
    this.resolveHost(host).then((addrs) => {
      if (options.all === true) callback(null, addrs);
      else callback(null, addrs[0]!.address, addrs[0]!.family);
    }, (err: NodeJS.ErrnoException) => callback(err, ''));
  };
}
