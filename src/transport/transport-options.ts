// Options of the peer transport, documented where declared, validated once at start-up.

import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../errors.js';
import { FRAME_BYTES_LIMIT } from './frame-codec.js';

export interface PeerAddress {
  host: string;
  port: number;
}

/** `control` for small latency-critical messages (heartbeats, votes); `bulk` for the rest. */
export type Lane = 'control' | 'bulk';
export const LANES: readonly Lane[] = ['control', 'bulk'];

/** Longest node id, in UTF-16 code units (node ids are pod names in practice). */
export const NODE_ID_CHARS_MAX = 256;
/** Longest cluster token; it travels in the handshake frame, which is kept small. */
export const CLUSTER_TOKEN_CHARS_MAX = 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
export const DEFAULT_CLOSE_GRACE_MS = 1_000;
export const DEFAULT_INBOUND_CONNECTIONS_MAX = 1_024;
export const DEFAULT_KEEPALIVE_MS = 10_000;
export const DEFAULT_WRITE_STALL_MS = 15_000;
const DURATION_MS_MAX = 10 * 60_000;
const QUEUE_BYTES_LIMIT = 2 ** 31;

export interface TransportOptions {
  /** This node's id; sent in the handshake so receivers know who a frame is from. */
  nodeId: string;
  /** Bind address for peer traffic; port 0 picks a free port (see address()). */
  listen: PeerAddress;
  /** The other nodes (this node excluded); may be replaced with setPeers. */
  peers: ReadonlyMap<string, PeerAddress>;
  /** Shared secret every connection must present; compared in constant time. */
  clusterToken: string;
  /**
   * Bytes of frames waiting to be written, per peer AND per lane (so a bulk backlog never
   * crowds heartbeats out). A send that would exceed it is dropped and counted: Raft
   * retransmits. Frames handed to the socket are not counted (the socket holds at most
   * its high-water mark before we wait for 'drain').
   */
  sendQueueBytesMax: number;
  /** Largest frame payload accepted, in bytes (at most 2^32 - 1). A larger incoming frame
   * closes the connection (logged); a larger outgoing one is dropped (logged). */
  frameBytesMax: number;
  /** Reconnect backoff bounds in ms: exponential from min to max, with jitter. */
  reconnectMsMin: number;
  reconnectMsMax: number;
  logger?: Logger;
  /** Time allowed for connect + handshake, in ms. Default DEFAULT_HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number;
  /** How long close() waits for queued frames to be written before destroying sockets, in
   * ms. Default DEFAULT_CLOSE_GRACE_MS. */
  closeGraceMs?: number;
  /** Inbound connections held at once (2 per peer in normal operation). Default 1024. */
  inboundConnectionsMax?: number;
  /** TCP keep-alive initial delay, in ms, so a silently dead peer is noticed. Default 10 s. */
  keepAliveMs?: number;
  /**
   * A connection with bytes waiting to be written that makes no progress for this long, in
   * ms, is closed and redialed. A peer whose host vanished sends no RST, so without this a
   * link would stall until the kernel gives up (many minutes) while the peer, restarted
   * under the same DNS name, waits for a reconnect. Default DEFAULT_WRITE_STALL_MS.
   */
  writeStallMs?: number;
  /**
   * Resolves a peer's host name on every dial (net.connect's `lookup`). Pods of a
   * StatefulSet keep their DNS names but not their IPs, so a redial must ask DNS again, not a
   * cache (src/discovery/dns.ts). Default: the OS resolver.
   */
  lookup?: LookupFunction;
}

export type ResolvedTransportOptions = Required<Omit<TransportOptions, 'logger' | 'lookup'>> &
  Pick<TransportOptions, 'logger' | 'lookup'>;

function checkInt(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(field, `${field} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

function checkString(field: string, value: unknown, maxChars: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxChars) {
    throw new InvalidArgumentError(field, `${field} must be a string of 1..${maxChars} chars`);
  }
  return value;
}

export function checkAddress(field: string, value: PeerAddress, portMin: number): PeerAddress {
  checkString(`${field}.host`, value.host, 255);
  checkInt(`${field}.port`, value.port, portMin, 65_535);
  return { host: value.host, port: value.port };
}

/** Validates peers and copies them, so later mutation of the caller's map changes nothing. */
export function checkPeers(
  nodeId: string,
  peers: ReadonlyMap<string, PeerAddress>,
): Map<string, PeerAddress> {
  const out = new Map<string, PeerAddress>();
  for (const [id, address] of peers) {
    checkString('peers.id', id, NODE_ID_CHARS_MAX);
    if (id === nodeId) throw new InvalidArgumentError('peers', `peers must not include ${id}`);
    out.set(id, checkAddress(`peers.${id}`, address, 1));
  }
  return out;
}

export function parseTransportOptions(opts: TransportOptions): ResolvedTransportOptions {
  const nodeId = checkString('nodeId', opts.nodeId, NODE_ID_CHARS_MAX);
  const reconnectMsMin = checkInt('reconnectMsMin', opts.reconnectMsMin, 1, DURATION_MS_MAX);
  const resolved: ResolvedTransportOptions = {
    nodeId,
    listen: checkAddress('listen', opts.listen, 0),
    peers: checkPeers(nodeId, opts.peers),
    clusterToken: checkString('clusterToken', opts.clusterToken, CLUSTER_TOKEN_CHARS_MAX),
    sendQueueBytesMax: checkInt('sendQueueBytesMax', opts.sendQueueBytesMax, 1, QUEUE_BYTES_LIMIT),
    frameBytesMax: checkInt('frameBytesMax', opts.frameBytesMax, 1_024, FRAME_BYTES_LIMIT),
    reconnectMsMin,
    reconnectMsMax: checkInt('reconnectMsMax', opts.reconnectMsMax, reconnectMsMin,
      DURATION_MS_MAX),
    handshakeTimeoutMs: checkInt('handshakeTimeoutMs',
      opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 1, DURATION_MS_MAX),
    closeGraceMs: checkInt('closeGraceMs', opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS, 0,
      DURATION_MS_MAX),
    inboundConnectionsMax: checkInt('inboundConnectionsMax',
      opts.inboundConnectionsMax ?? DEFAULT_INBOUND_CONNECTIONS_MAX, 2, 65_536),
    keepAliveMs: checkInt('keepAliveMs', opts.keepAliveMs ?? DEFAULT_KEEPALIVE_MS, 1,
      DURATION_MS_MAX),
    writeStallMs: checkInt('writeStallMs', opts.writeStallMs ?? DEFAULT_WRITE_STALL_MS, 1,
      DURATION_MS_MAX),
  };
  if (opts.logger !== undefined) resolved.logger = opts.logger;
  if (opts.lookup !== undefined) resolved.lookup = opts.lookup;
  return resolved;
}
