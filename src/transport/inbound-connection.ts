// One accepted connection: the handshake (token check), then frames delivered as messages
// from the node named in the hello. Anything malformed closes the connection with a logged
// reason; nothing a remote sends can throw out of here.

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { decodePayload, encodePayload, FrameDecoder, frameHeader } from './frame-codec.js';
import type { Hello, HelloReply } from './handshake.js';
import { HANDSHAKE_FRAME_BYTES_MAX, helloRejection, parseHello } from './handshake.js';
import type { Lane, ResolvedTransportOptions } from './transport-options.js';

const EMPTY = Buffer.alloc(0);

export interface InboundHooks {
  /** Called once the hello is accepted, before any message of this connection. */
  accepted(conn: InboundConnection): void;
  deliver(from: string, payload: unknown): void;
  closed(conn: InboundConnection): void;
}

export class InboundConnection {
  private readonly decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
  private handshakeTimer: NodeJS.Timeout | null;
  private hello: Hello | null = null;
  private rejected = false;
  private readonly remote: string;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ResolvedTransportOptions,
    private readonly log: Logger,
    private readonly hooks: InboundHooks,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, opts.keepAliveMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ remote: this.remote, err }, 'inbound error'));
    socket.on('close', () => {
      this.clearHandshakeTimer();
      this.hooks.closed(this);
    });
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null;
      if (!this.rejected) this.fail('no handshake within handshakeTimeoutMs');
      else this.socket.destroy();
    }, opts.handshakeTimeoutMs);
  }

  /** The peer's node id and lane once the handshake is accepted. */
  get peer(): { readonly nodeId: string; readonly lane: Lane } | null {
    return this.hello === null ? null : { nodeId: this.hello.nodeId, lane: this.hello.lane };
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.rejected || this.socket.destroyed) return;
    // Until the hello is accepted, take one frame at a time: the frames after it are held
    // to frameBytesMax, not to the handshake's small limit.
    let result = this.decoder.push(chunk, this.hello === null ? 1 : Number.POSITIVE_INFINITY);
    for (;;) {
      for (const frame of result.frames) {
        if (this.socket.destroyed || this.rejected) return;
        if (this.hello === null) this.onHandshakeFrame(frame);
        else this.onMessageFrame(this.hello.nodeId, frame);
      }
      if (!result.ok || this.hello === null || this.decoder.buffered === 0 ||
        result.frames.length === 0 || this.socket.destroyed || this.rejected) break;
      result = this.decoder.push(EMPTY);
    }
    if (!result.ok && !this.socket.destroyed) {
      const limit = this.hello === null ? HANDSHAKE_FRAME_BYTES_MAX : this.opts.frameBytesMax;
      this.fail(`frame of ${result.frameBytes} bytes is over the limit of ${limit}`);
    }
  }

  private onHandshakeFrame(frame: Buffer): void {
    let parsed: Hello | string;
    try {
      parsed = parseHello(decodePayload(frame));
    } catch {
      parsed = 'handshake frame is not valid msgpack';
    }
    if (typeof parsed === 'string') {
      this.reject(parsed);
      return;
    }
    const rejection = helloRejection(parsed, this.opts.clusterToken, this.opts.nodeId);
    if (rejection !== null) {
      this.reject(rejection, parsed.nodeId);
      return;
    }
    this.clearHandshakeTimer();
    this.hello = parsed;
    this.decoder.setFrameBytesMax(this.opts.frameBytesMax);
    this.reply({ type: 'welcome', nodeId: this.opts.nodeId });
    this.hooks.accepted(this);
  }

  private onMessageFrame(from: string, frame: Buffer): void {
    let payload: unknown;
    try {
      payload = decodePayload(frame);
    } catch (err) {
      this.fail(`undecodable frame of ${frame.length} bytes`, err);
      return;
    }
    this.hooks.deliver(from, payload);
  }

  /** Tells the dialer why, then closes; the handshake timer destroys a peer that lingers. */
  private reject(reason: string, nodeId?: string): void {
    this.rejected = true;
    this.log.warn({ remote: this.remote, nodeId, reason }, 'refused peer connection');
    this.reply({ type: 'reject', reason });
    this.socket.end();
  }

  private fail(reason: string, err?: unknown): void {
    this.log.warn({ remote: this.remote, peer: this.hello?.nodeId, reason, err },
      'closing peer connection');
    this.socket.destroy();
  }

  private reply(message: HelloReply): void {
    const payload = encodePayload(message);
    this.socket.write(Buffer.concat([frameHeader(payload.length), payload]));
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }
}
