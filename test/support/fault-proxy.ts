// A TCP proxy put between peers so that fault tests can cut, black-hole or slow one link.
// Our transport only sends on connections it dialed, so a proxy in front of B used by A
// carries exactly the traffic A -> B: cutting it is a one-way partition.
//
// Modes:
// - pass: bytes flow (after the configured delay).
// - drop: existing connections are reset and new ones are reset on accept (the dialer sees
//   ECONNRESET at once, as when a node's port is firewalled with REJECT).
// - blackhole: sockets stay open but every byte is discarded in both directions, as when
//   packets vanish. A TCP stream can never skip bytes, so on the way back to pass the
//   connections that lost bytes are reset; the ones that lost nothing keep flowing.

import net from 'node:net';
import type { Server, Socket } from 'node:net';

export type FaultMode = 'pass' | 'drop' | 'blackhole';

export interface ProxyTarget {
  host: string;
  port: number;
}

/** Bytes held back by the delay, per direction, before the source is paused. */
const DELAY_BUFFER_BYTES_MAX = 64 * 1024 * 1024;

/** One direction of one proxied connection: delays chunks in order, or discards them. */
class Forwarder {
  private readonly pending: { dueAtMs: number; chunk: Buffer }[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private finishing = false;

  constructor(private readonly src: Socket, private readonly dst: Socket,
    private readonly pair: ProxyPair) {}

  push(chunk: Buffer): void {
    const proxy = this.pair.proxy;
    if (proxy.mode === 'blackhole') {
      this.pair.lostBytes = true;
      proxy.counters.bytesDiscarded += chunk.length;
      return;
    }
    const delayMs = proxy.delayMs;
    if (delayMs === 0 && this.pending.length === 0) {
      this.write(chunk);
      return;
    }
    const last = this.pending[this.pending.length - 1];
    // A shorter delay set later must not let new bytes overtake older ones.
    const dueAtMs = Math.max(Date.now() + delayMs, last?.dueAtMs ?? 0);
    this.pending.push({ dueAtMs, chunk });
    this.pendingBytes += chunk.length;
    if (this.pendingBytes > DELAY_BUFFER_BYTES_MAX) this.src.pause();
    this.arm();
  }

  /** The source closed: end the destination once delayed bytes are out. */
  finish(): void {
    this.finishing = true;
    if (this.pending.length === 0) this.dst.end();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.pending.length = 0;
  }

  private write(chunk: Buffer): void {
    if (this.dst.destroyed) return;
    this.pair.proxy.counters.bytesForwarded += chunk.length;
    if (!this.dst.write(chunk)) {
      this.src.pause();
      this.dst.once('drain', () => this.src.resume());
    }
  }

  private arm(): void {
    const head = this.pending[0];
    if (this.timer !== null || head === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = Date.now();
      while (this.pending[0] !== undefined && this.pending[0].dueAtMs <= now) {
        const item = this.pending.shift()!;
        this.pendingBytes -= item.chunk.length;
        this.write(item.chunk);
      }
      if (this.pendingBytes <= DELAY_BUFFER_BYTES_MAX && !this.src.destroyed) this.src.resume();
      if (this.pending.length > 0) this.arm();
      else if (this.finishing) this.dst.end();
    }, Math.max(0, head.dueAtMs - Date.now()));
  }
}

class ProxyPair {
  lostBytes = false;
  private readonly forward: Forwarder;
  private readonly backward: Forwarder;

  constructor(readonly proxy: FaultProxy, readonly client: Socket, readonly upstream: Socket) {
    this.forward = new Forwarder(client, upstream, this);
    this.backward = new Forwarder(upstream, client, this);
    client.pause(); // until the upstream connection exists
    upstream.on('connect', () => client.resume());
    client.on('data', (chunk: Buffer) => this.forward.push(chunk));
    upstream.on('data', (chunk: Buffer) => this.backward.push(chunk));
    for (const socket of [client, upstream]) socket.on('error', () => this.reset());
    client.on('close', () => this.forward.finish());
    upstream.on('close', () => this.backward.finish());
    client.on('close', () => this.closedOne());
    upstream.on('close', () => this.closedOne());
  }

  reset(): void {
    this.forward.stop();
    this.backward.stop();
    for (const socket of [this.client, this.upstream]) {
      if (!socket.destroyed) {
        // resetAndDestroy needs a connected handle; a pending connect can only be destroyed.
        if (socket.connecting) socket.destroy();
        else socket.resetAndDestroy();
      }
    }
  }

  private closedOne(): void {
    if (this.client.destroyed && this.upstream.destroyed) {
      this.forward.stop();
      this.backward.stop();
      this.proxy.forget(this);
    }
  }
}

export class FaultProxy {
  private currentMode: FaultMode = 'pass';
  private currentDelayMs = 0;
  readonly counters = { accepted: 0, refused: 0, bytesForwarded: 0, bytesDiscarded: 0 };
  private readonly pairs = new Set<ProxyPair>();

  private constructor(private readonly server: Server, readonly port: number,
    readonly target: ProxyTarget) {}

  static async start(opts: { listenPort?: number; target: ProxyTarget }): Promise<FaultProxy> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.listenPort ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address !== 'object') throw new Error('proxy has no port');
    const proxy = new FaultProxy(server, address.port, { ...opts.target });
    server.on('connection', (socket) => proxy.onConnection(socket));
    return proxy;
  }

  get mode(): FaultMode {
    return this.currentMode;
  }

  get delayMs(): number {
    return this.currentDelayMs;
  }

  setMode(mode: FaultMode): void {
    const previous = this.currentMode;
    this.currentMode = mode;
    if (mode === 'drop') {
      for (const pair of this.pairs) pair.reset();
    } else if (mode === 'pass' && previous === 'blackhole') {
      for (const pair of this.pairs) if (pair.lostBytes) pair.reset();
    }
  }

  setDelayMs(ms: number): void {
    if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`delay ${ms} ms is invalid`);
    this.currentDelayMs = ms;
  }

  /** Connections currently proxied. */
  get openConnections(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const pair of this.pairs) pair.reset();
    await closed;
  }

  /** @internal */
  forget(pair: ProxyPair): void {
    this.pairs.delete(pair);
  }

  private onConnection(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'drop') {
      this.counters.refused++;
      client.resetAndDestroy();
      return;
    }
    this.counters.accepted++;
    const upstream = net.connect({ host: this.target.host, port: this.target.port });
    upstream.setNoDelay(true);
    this.pairs.add(new ProxyPair(this, client, upstream));
  }
}

export interface MeshNode {
  readonly id: string;
  readonly peerPort: number;
  readonly host?: string;
}

/**
 * One FaultProxy per ordered pair of nodes: link(a, b) carries what a sends to b. Start the
 * nodes with peersOf(id) as their peer list, then cut links with cut / partition / isolate.
 */
export class ProxyMesh {
  private constructor(private readonly proxies: ReadonlyMap<string, FaultProxy>,
    private readonly ids: readonly string[]) {}

  static async start(nodes: readonly MeshNode[]): Promise<ProxyMesh> {
    const ids = nodes.map((n) => n.id);
    if (new Set(ids).size !== ids.length) throw new Error('mesh node ids must be unique');
    const proxies = new Map<string, FaultProxy>();
    try {
      for (const from of nodes) {
        for (const to of nodes) {
          if (from.id === to.id) continue;
          const target = { host: to.host ?? '127.0.0.1', port: to.peerPort };
          proxies.set(linkKey(from.id, to.id), await FaultProxy.start({ target }));
        }
      }
    } catch (err) {
      await Promise.all([...proxies.values()].map((p) => p.close()));
      throw err;
    }
    return new ProxyMesh(proxies, ids);
  }

  link(from: string, to: string): FaultProxy {
    const proxy = this.proxies.get(linkKey(from, to));
    if (proxy === undefined) throw new Error(`no link ${from} -> ${to} in the mesh`);
    return proxy;
  }

  /** The peer list node `id` should use: every other node, reached through its proxy. */
  peersOf(id: string): Map<string, ProxyTarget> {
    if (!this.ids.includes(id)) throw new Error(`no node ${id} in the mesh`);
    const peers = new Map<string, ProxyTarget>();
    for (const other of this.ids) {
      if (other !== id) peers.set(other, { host: '127.0.0.1', port: this.link(id, other).port });
    }
    return peers;
  }

  /** Cuts (or with 'pass' heals) the one-way link from -> to. */
  cut(from: string, to: string, mode: FaultMode = 'drop'): void {
    this.link(from, to).setMode(mode);
  }

  partition(a: string, b: string, mode: FaultMode = 'drop'): void {
    this.cut(a, b, mode);
    this.cut(b, a, mode);
  }

  isolate(id: string, mode: FaultMode = 'drop'): void {
    for (const other of this.ids) if (other !== id) this.partition(id, other, mode);
  }

  healAll(): void {
    for (const proxy of this.proxies.values()) {
      proxy.setMode('pass');
      proxy.setDelayMs(0);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }
}

function linkKey(from: string, to: string): string {
  return `${from}->${to}`;
}
