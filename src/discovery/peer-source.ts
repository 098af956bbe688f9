// Where a node's peers come from, as the node sees them: node ids with a peer address (for the
// transport) and an HTTP URL (forwarding, the cluster routes, the overview). Two sources: the
// static `--peers` list, fixed for the life of the process, and the pods of a headless
// Service (pod-directory.ts), asked again every few seconds, whose host names are resolved on
// every connect.
import type { LookupFunction } from 'node:net';
import { peerHttpUrl, type NodeConfig } from '../config.js';
import type { PeerAddress } from '../transport/peer-transport.js';
import type { HeadlessServiceDns } from './dns.js';
import type { PodDirectory } from './pod-directory.js';

/** How often the pods are asked again once the node runs. */
export const DISCOVERY_REFRESH_MS = 2000;

export interface PeerSource {
  /** Peer addresses of the other nodes, by node id. */
  addresses(): ReadonlyMap<string, PeerAddress>;
  /** The HTTP URL of a node, or undefined when it is not known (yet). */
  urlOf(nodeId: string): string | undefined;
  /** Called when addresses() or urlOf() may answer differently. */
  onChange(listener: () => void): void;
  /** Resolves host names on every connect (transport, HTTP); undefined: the OS resolver. */
  readonly lookup: LookupFunction | undefined;
  /** Starts asking again periodically (no-op for a static list). */
  start(): void;
  close(): Promise<void>;
}

export class StaticPeers implements PeerSource {
  private readonly peers: ReadonlyMap<string, PeerAddress>;
  private readonly urls: ReadonlyMap<string, string>;

  /** `lookup`: for host names that a DNS server of our own must resolve (discovery dns). */
  constructor(cfg: Pick<NodeConfig, 'peers' | 'nodeId'>,
    readonly lookup: LookupFunction | undefined = undefined) {
    this.peers = new Map(cfg.peers.filter((p) => p.id !== cfg.nodeId)
      .map((p) => [p.id, { host: p.host, port: p.peerPort }] as const));
    this.urls = new Map(cfg.peers.map((p) => [p.id, peerHttpUrl(p)] as const));
  }

  addresses(): ReadonlyMap<string, PeerAddress> { return this.peers; }
  urlOf(nodeId: string): string | undefined { return this.urls.get(nodeId); }
  onChange(): void { /* a static list never changes */ }
  start(): void { /* nothing to ask */ }
  async close(): Promise<void> { /* nothing held */ }
}

export class DnsPeers implements PeerSource {
  private timer: NodeJS.Timeout | null = null;
  readonly lookup: LookupFunction;

  /** `selfUrl`: this node's own URL (its pod's DNS name), which it does not ask for. */
  constructor(readonly directory: PodDirectory, private readonly selfId: string,
    private readonly selfUrl: string, dns: HeadlessServiceDns,
    private readonly refreshMs = DISCOVERY_REFRESH_MS) {
    this.lookup = dns.lookup;
  }

  addresses(): ReadonlyMap<string, PeerAddress> {
    return this.directory.peerAddresses(this.selfId);
  }

  urlOf(nodeId: string): string | undefined {
    return nodeId === this.selfId ? this.selfUrl : this.directory.urlOf(nodeId);
  }

  onChange(listener: () => void): void { this.directory.onChange(listener); }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      // A failed round changes nothing; the next one asks again.
      this.directory.refresh().catch(() => undefined);
    }, this.refreshMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.directory.close();
  }
}
