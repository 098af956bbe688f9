// Persistent TCP links between the nodes of one service. Every node dials each peer twice,
// once per lane, and only sends on the connections it dialed, so "from" is always the node
// named in that connection's handshake. Two connections rather than one priority queue:
// once a 5 MiB append is inside a socket, nothing can overtake it on that stream, whereas a
// separate control connection lets a heartbeat sent after it arrive first.

import net from 'node:net';
import type { Server, Socket } from 'node:net';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { assert } from '../assert.js';
import { encodePayload } from './frame-codec.js';
import { InboundConnection } from './inbound-connection.js';
import { OutboundLane } from './outbound-lane.js';
import type { Lane, PeerAddress, ResolvedTransportOptions,
  TransportOptions } from './transport-options.js';
import { checkPeers, LANES, parseTransportOptions } from './transport-options.js';

export type { Lane, PeerAddress, TransportOptions } from './transport-options.js';

export type MessageHandler = (from: string, payload: unknown) => void;
/** A lane to `peer` opened (handshake done) or an open one closed. */
export type LinkHandler = (peer: string, lane: Lane, open: boolean) => void;

export interface PeerStats {
  /** Both lanes have a handshaken connection. */
  connected: boolean;
  /** Bytes waiting in this peer's queues (both lanes), not yet handed to a socket. */
  queuedBytes: number;
  /** Frames handed to a socket. */
  sent: number;
  /** Messages refused: queue full, over frameBytesMax, or transport closed. */
  dropped: number;
  /** Times a lane connection was re-established after it had been open before. */
  reconnects: number;
}

interface PeerLink {
  address: PeerAddress;
  readonly lanes: Record<Lane, OutboundLane>;
}

type TransportState = 'new' | 'starting' | 'running' | 'closed';

export class PeerTransport {
  private readonly opts: ResolvedTransportOptions;
  private readonly log: Logger;
  private readonly links = new Map<string, PeerLink>();
  private readonly inbound = new Set<InboundConnection>();
  /** The accepted connection per "nodeId/lane": a newer one supersedes an older one. */
  private readonly inboundByPeerLane = new Map<string, InboundConnection>();
  private readonly handlers: MessageHandler[] = [];
  private readonly linkHandlers: LinkHandler[] = [];
  /** Lanes of removed peers still writing out their queues; close() waits for them. */
  private readonly closing = new Set<Promise<void>>();
  private server: Server | null = null;
  private state: TransportState = 'new';
  private boundAddress: PeerAddress | null = null;

  constructor(opts: TransportOptions) {
    this.opts = parseTransportOptions(opts);
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({
      component: 'transport',
      node: this.opts.nodeId,
    });
    for (const [id, address] of this.opts.peers) this.links.set(id, this.newLink(id, address));
  }

  /** Binds the listener, then starts dialing every peer. Resolves once bound. */
  async start(): Promise<void> {
    assert(this.state === 'new', `start() called in state ${this.state}`);
    this.state = 'starting';
    const server = net.createServer({ noDelay: true }, (socket) => this.onConnection(socket));
    server.maxConnections = this.opts.inboundConnectionsMax;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.listen.port, this.opts.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'peer listener error'));
    const bound = server.address();
    assert(bound !== null && typeof bound === 'object', 'TCP server has no address');
    this.boundAddress = { host: this.opts.listen.host, port: bound.port };
    if (this.state !== 'starting') return; // closed while binding
    this.state = 'running';
    for (const link of this.links.values()) for (const lane of LANES) link.lanes[lane].start();
    this.log.info({ address: this.boundAddress, peers: this.links.size }, 'transport listening');
  }

  /** The bound address (the actual port when started with port 0). */
  address(): PeerAddress {
    assert(this.boundAddress !== null, 'address() before start() resolved');
    return { ...this.boundAddress };
  }

  /**
   * Encodes and queues a message; it goes out on the next event-loop turn. Returns false
   * when it is dropped: unknown peer, queue bound reached, larger than frameBytesMax, or
   * the transport is closed. Never throws for a value msgpack can encode.
   */
  send(to: string, payload: unknown, lane: Lane = 'bulk'): boolean {
    const link = this.links.get(to);
    if (link === undefined || this.state === 'closed') return false;
    const outbound = link.lanes[lane];
    assert(outbound !== undefined, `unknown lane ${String(lane)}`);
    const bytes = encodePayload(payload);
    if (bytes.length > this.opts.frameBytesMax) {
      this.log.warn({ peer: to, lane, bytes: bytes.length, frameBytesMax: this.opts.frameBytesMax },
        'message over frameBytesMax dropped');
      outbound.countDropped();
      return false;
    }
    return outbound.enqueue(bytes);
  }

  /** Adds a handler; handlers run in registration order for every message received, in
   * the socket's data callback. A handler that throws is a bug and is not caught. */
  onMessage(handler: MessageHandler): void {
    this.handlers.push(handler);
  }

  /** Adds a handler told when a lane this node dialed opens or closes (in registration order,
   * from socket callbacks). What was written to a lane that closes may or may not have
   * arrived. */
  onLink(handler: LinkHandler): void {
    this.linkHandlers.push(handler);
  }

  /** True while the lane to `peer` is open (dialed and handshaken). */
  isConnected(peer: string, lane: Lane): boolean {
    return this.links.get(peer)?.lanes[lane].connected === true;
  }

  /** Replaces the peer set: new peers are dialed, removed ones closed (their queues
   * dropped), and peers whose address changed are redialed at the new address. */
  setPeers(peers: ReadonlyMap<string, PeerAddress>): void {
    if (this.state === 'closed') return;
    const next = checkPeers(this.opts.nodeId, peers);
    for (const [id, link] of this.links) {
      if (next.has(id)) continue;
      this.links.delete(id);
      for (const lane of LANES) {
        const closed = link.lanes[lane].close();
        this.closing.add(closed);
        void closed.then(() => this.closing.delete(closed));
      }
    }
    for (const [id, address] of next) {
      const link = this.links.get(id);
      if (link === undefined) {
        const created = this.newLink(id, address);
        this.links.set(id, created);
        if (this.state === 'running') for (const lane of LANES) created.lanes[lane].start();
      } else if (link.address.host !== address.host || link.address.port !== address.port) {
        link.address = address;
        for (const lane of LANES) link.lanes[lane].retarget(address);
      }
    }
  }

  stats(): Record<string, PeerStats> {
    const out: Record<string, PeerStats> = {};
    for (const [id, link] of this.links) {
      const { control, bulk } = link.lanes;
      out[id] = {
        connected: control.connected && bulk.connected,
        queuedBytes: control.queuedBytes + bulk.queuedBytes,
        sent: control.sent + bulk.sent,
        dropped: control.dropped + bulk.dropped,
        reconnects: control.reconnects + bulk.reconnects,
      };
    }
    return out;
  }

  /** Stops listening, writes what is queued on open links (bounded by closeGraceMs), and
   * releases every socket and timer. Idempotent. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const done: Promise<void>[] = [...this.closing];
    for (const link of this.links.values()) {
      for (const lane of LANES) done.push(link.lanes[lane].close());
    }
    for (const conn of this.inbound) conn.destroy();
    const server = this.server;
    if (server !== null) {
      done.push(new Promise<void>((resolve) => server.close(() => resolve())));
    }
    await Promise.all(done);
    this.log.info('transport closed');
  }

  private newLink(id: string, address: PeerAddress): PeerLink {
    return {
      address,
      lanes: {
        control: new OutboundLane(this.opts, id, address, 'control', this.log,
          (open) => this.linkChanged(id, 'control', open)),
        bulk: new OutboundLane(this.opts, id, address, 'bulk', this.log,
          (open) => this.linkChanged(id, 'bulk', open)),
      },
    };
  }

  private linkChanged(peer: string, lane: Lane, open: boolean): void {
    for (const handler of this.linkHandlers) handler(peer, lane, open);
  }

  private onConnection(socket: Socket): void {
    if (this.state === 'closed') {
      socket.destroy();
      return;
    }
    const conn = new InboundConnection(socket, this.opts, this.log, {
      accepted: (c) => this.onInboundAccepted(c),
      deliver: (from, payload) => {
        for (const handler of this.handlers) handler(from, payload);
      },
      closed: (c) => {
        this.inbound.delete(c);
        const peer = c.peer;
        if (peer === null) return;
        const key = `${peer.nodeId}/${peer.lane}`;
        if (this.inboundByPeerLane.get(key) === c) this.inboundByPeerLane.delete(key);
      },
    });
    this.inbound.add(conn);
  }

  /** A dialer keeps one connection per lane, so an older one from the same node and lane is
   * dead to it; closing it keeps its late bytes from being delivered after newer ones. */
  private onInboundAccepted(conn: InboundConnection): void {
    const peer = conn.peer;
    assert(peer !== null, 'accepted inbound connection without a peer');
    const key = `${peer.nodeId}/${peer.lane}`;
    const previous = this.inboundByPeerLane.get(key);
    this.inboundByPeerLane.set(key, conn);
    if (previous !== undefined && previous !== conn) previous.destroy();
  }
}
