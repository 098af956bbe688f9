// One dialed connection to one peer for one lane: a bounded queue, batched writes that
// respect socket back-pressure, the handshake, and reconnects with backoff.
//
// Choice for messages sent while disconnected: they stay queued (up to the bound) and are
// flushed on reconnect; beyond the bound new ones are dropped and counted. Raft copes with
// both stale and lost messages, and the cache's coherence messages prefer late to never.
// Frames already handed to a socket that then breaks are lost: TCP does not tell which of
// them arrived, and retransmission is the protocol's job.

import net from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { assert } from '../assert.js';
import { backoffDelayMs } from './backoff.js';
import { decodePayload, encodePayload, FrameDecoder, frameHeader } from './frame-codec.js';
import { FrameQueue } from './frame-queue.js';
import type { Hello } from './handshake.js';
import { HANDSHAKE_FRAME_BYTES_MAX, parseHelloReply, PROTOCOL_VERSION } from './handshake.js';
import type { Lane, PeerAddress, ResolvedTransportOptions } from './transport-options.js';

/** Frames written per flush before yielding to the event loop, so one busy peer cannot
 * monopolize a turn. */
export const FLUSH_FRAMES_MAX = 4_096;

/** Bytes a socket buffers before we wait for 'drain'. Above Node's 16 KiB default so that
 * a burst of small appends goes out in few writev calls; small enough that the bound on
 * queued bytes (sendQueueBytesMax) still describes the memory held per lane. */
export const SOCKET_WRITE_HIGH_WATER_BYTES = 256 * 1024;

type LaneState = 'idle' | 'connecting' | 'handshaking' | 'open' | 'backoff' | 'closed';

export class OutboundLane {
  private state: LaneState = 'idle';
  private socket: Socket | null = null;
  private readonly queue: FrameQueue;
  private attempt = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushImmediate: NodeJS.Immediate | null = null;
  /** A control-lane flush is queued with process.nextTick (which cannot be cancelled). */
  private flushTick = false;
  private waitingDrain = false;
  private everOpened = false;
  /** The current socket completed its handshake (`state` may say closed meanwhile). */
  private handshaken = false;
  private lastError: Error | null = null;
  private closeWaiters: (() => void)[] = [];
  private readonly log: Logger;
  sent = 0;
  dropped = 0;
  reconnects = 0;

  constructor(
    private readonly opts: ResolvedTransportOptions,
    private readonly peerId: string,
    private address: PeerAddress,
    private readonly lane: Lane,
    logger: Logger,
    /** Told when the lane opens (handshake done) and when an open lane closes. */
    private readonly onOpenChange: (open: boolean) => void = () => undefined,
  ) {
    this.queue = new FrameQueue(opts.sendQueueBytesMax);
    this.log = logger.child({ peer: peerId, lane });
  }

  get connected(): boolean {
    return this.state === 'open';
  }

  get queuedBytes(): number {
    return this.queue.queuedBytes;
  }

  start(): void {
    assert(this.state === 'idle', `lane started in state ${this.state}`);
    this.dial();
  }

  /** Queues an encoded payload; false (and counted) when it is dropped. */
  enqueue(payload: Buffer): boolean {
    if (this.state === 'closed' || !this.queue.push(payload)) {
      this.dropped++;
      return false;
    }
    if (this.state === 'open') this.scheduleFlush();
    return true;
  }

  /** Counts a message refused before it reached the queue (e.g. over frameBytesMax). */
  countDropped(): void {
    this.dropped++;
  }

  /** Points the lane at a new address: the current connection is dropped and redialed. */
  retarget(address: PeerAddress): void {
    this.address = address;
    if (this.state === 'closed' || this.state === 'idle') return;
    this.clearTimer();
    if (this.socket !== null) this.socket.destroy();
    else this.dial();
  }

  /** Writes what is queued (when connected), then closes; destroys after closeGraceMs. */
  close(): Promise<void> {
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.clearTimer();
    if (this.flushImmediate !== null) clearImmediate(this.flushImmediate);
    this.flushImmediate = null;
    const socket = this.socket;
    if (socket === null) {
      this.queue.clear();
      return Promise.resolve();
    }
    const closed = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    if (wasOpen) {
      this.writeQueued(socket, Number.MAX_SAFE_INTEGER, true);
      socket.end();
      this.timer = setTimeout(() => socket.destroy(), this.opts.closeGraceMs);
    } else {
      socket.destroy();
    }
    this.queue.clear();
    return closed;
  }

  private dial(): void {
    this.state = 'connecting';
    // net.Socket hands stream options to its Duplex base; @types/node does not list them.
    const connectOpts: net.TcpNetConnectOpts & { writableHighWaterMark: number } = {
      host: this.address.host,
      port: this.address.port,
      writableHighWaterMark: SOCKET_WRITE_HIGH_WATER_BYTES,
      ...(this.opts.lookup === undefined ? {} : { lookup: this.opts.lookup }),
    };
    const socket = net.connect(connectOpts);
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, this.opts.keepAliveMs);
    const decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
    socket.on('connect', () => this.onConnect(socket));
    socket.on('data', (chunk: Buffer) => this.onData(socket, decoder, chunk));
    socket.on('drain', () => {
      this.waitingDrain = false;
      this.scheduleFlush();
    });
    socket.on('error', (err) => {
      this.lastError = err;
    });
    socket.on('close', () => this.onClose(socket));
    socket.on('timeout', () => this.onIdle(socket));
    // Covers connect and handshake: a peer that accepts but never answers is redialed.
    this.timer = setTimeout(() => {
      this.lastError = new Error(`handshake timed out after ${this.opts.handshakeTimeoutMs} ms`);
      socket.destroy();
    }, this.opts.handshakeTimeoutMs);
  }

  private onConnect(socket: Socket): void {
    if (socket !== this.socket || this.state !== 'connecting') return;
    this.state = 'handshaking';
    const hello: Hello = {
      type: 'hello',
      version: PROTOCOL_VERSION,
      nodeId: this.opts.nodeId,
      token: this.opts.clusterToken,
      lane: this.lane,
    };
    const payload = encodePayload(hello);
    socket.write(Buffer.concat([frameHeader(payload.length), payload]));
  }

  private onData(socket: Socket, decoder: FrameDecoder, chunk: Buffer): void {
    if (socket !== this.socket) return;
    if (this.state !== 'handshaking') {
      // After the welcome the acceptor never writes: anything else is a protocol error.
      this.lastError = new Error(`unexpected ${chunk.length} bytes from the acceptor`);
      socket.destroy();
      return;
    }
    const result = decoder.push(chunk);
    const frame = result.frames[0];
    if (!result.ok || result.frames.length > 1) {
      this.lastError = new Error('malformed handshake reply');
      socket.destroy();
      return;
    }
    if (frame === undefined) return;
    let reply;
    try {
      reply = parseHelloReply(decodePayload(frame));
    } catch {
      reply = null;
    }
    if (reply === null || reply.type === 'reject') {
      const reason = reply === null ? 'malformed handshake reply' : reply.reason;
      this.log.error({ reason }, 'peer refused the handshake');
      this.lastError = new Error(`refused: ${reason}`);
      socket.destroy();
      return;
    }
    this.onOpen(reply.nodeId);
  }

  private onOpen(remoteId: string): void {
    this.clearTimer();
    if (remoteId !== this.peerId) {
      // Addresses can be stale (a pod rescheduled); the link still works, but say so.
      this.log.warn({ remoteId }, 'peer address answered with another node id');
    }
    this.state = 'open';
    this.attempt = 0;
    this.lastError = null;
    if (this.everOpened) this.reconnects++;
    this.everOpened = true;
    this.log.debug({ address: this.address }, 'peer connection open');
    // Socket inactivity (no byte read or written) for writeStallMs; see onIdle.
    this.socket?.setTimeout(this.opts.writeStallMs);
    this.scheduleFlush();
    this.handshaken = true;
    this.onOpenChange(true);
  }

  private onClose(socket: Socket): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.waitingDrain = false;
    this.clearTimer();
    if (this.handshaken) {
      this.handshaken = false;
      this.onOpenChange(false);
    }
    if (this.state === 'closed') {
      for (const resolve of this.closeWaiters.splice(0)) resolve();
      return;
    }
    const reason = this.lastError?.message ?? 'closed by peer';
    if (this.state === 'open') this.log.warn({ reason }, 'peer connection lost');
    else this.log.debug({ reason, attempt: this.attempt }, 'peer dial failed');
    this.state = 'backoff';
    const delayMs = backoffDelayMs(this.attempt, this.opts.reconnectMsMin,
      this.opts.reconnectMsMax, Math.random());
    this.attempt++;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.dial();
    }, delayMs);
  }

  /** No socket activity for writeStallMs: fine when there is nothing to write, a stalled
   * peer when bytes are waiting. */
  private onIdle(socket: Socket): void {
    if (socket !== this.socket || this.state !== 'open') return;
    if (socket.writableLength === 0 && this.queue.length === 0) return;
    this.lastError = new Error(`no write progress for ${this.opts.writeStallMs} ms ` +
      `with ${socket.writableLength + this.queue.queuedBytes} bytes waiting`);
    this.log.warn({ reason: this.lastError.message }, 'peer stopped reading, redialing');
    socket.destroy();
  }

  private scheduleFlush(): void {
    if (this.flushImmediate !== null || this.flushTick || this.waitingDrain) return;
    const flush = (): void => {
      this.flushImmediate = null;
      this.flushTick = false;
      const socket = this.socket;
      if (this.state !== 'open' || socket === null || this.waitingDrain) return;
      if (this.writeQueued(socket, FLUSH_FRAMES_MAX, false)) this.scheduleFlush();
    };
    if (this.lane === 'control') {
      // Heartbeats, votes and acknowledgements leave as soon as the code that sent them is
      // done. Node can spend seconds in one poll phase of its event loop (a burst of HTTP
      // requests), and an Immediate would hold them until it ends: the followers of a busy
      // leader would hear nothing and elect another.
      this.flushTick = true;
      process.nextTick(flush);
      return;
    }
    // One flush per event-loop turn: every append of this turn goes out in one writev.
    this.flushImmediate = setImmediate(flush);
  }

  /** Writes up to `framesMax` whole frames; returns true when more are queued and the
   * socket can take them. With `ignoreBackPressure` (on close) it writes everything. */
  private writeQueued(socket: Socket, framesMax: number, ignoreBackPressure: boolean): boolean {
    socket.cork();
    let written = 0;
    while (written < framesMax && this.queue.length > 0) {
      const payload = this.queue.shift();
      assert(payload !== undefined, 'queue length out of step with its contents');
      socket.write(frameHeader(payload.length));
      const more = socket.write(payload);
      written++;
      this.sent++;
      if (!more && !ignoreBackPressure) {
        this.waitingDrain = true;
        break;
      }
    }
    socket.uncork();
    return !this.waitingDrain && this.queue.length > 0;
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
