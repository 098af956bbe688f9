// The peer transport of a node, from its configuration: the static peers (this node left out),
// the cluster token, and the reconnect policy every service uses.
import type { Logger } from 'pino';
import type { NodeConfig } from '../config.js';
import { PeerTransport } from '../transport/peer-transport.js';

/** Reconnect backoff between peers, ms: quick enough to notice a restarted pod at once. */
const RECONNECT_MS_MIN = 50;
const RECONNECT_MS_MAX = 2000;

export interface NodeTransportLimits {
  /** Bytes queued for one peer before messages to it are dropped. */
  readonly sendQueueBytesMax: number;
  /** Largest frame sent or accepted. */
  readonly frameBytesMax: number;
}

export function nodePeerTransport(cfg: NodeConfig, logger: Logger, limits: NodeTransportLimits):
  PeerTransport {
  return new PeerTransport({
    nodeId: cfg.nodeId, listen: { host: cfg.peerHost, port: cfg.peerPort },
    peers: new Map(cfg.peers.filter((p) => p.id !== cfg.nodeId)
      .map((p) => [p.id, { host: p.host, port: p.peerPort }] as const)),
    clusterToken: cfg.clusterToken, sendQueueBytesMax: limits.sendQueueBytesMax,
    frameBytesMax: limits.frameBytesMax, reconnectMsMin: RECONNECT_MS_MIN,
    reconnectMsMax: RECONNECT_MS_MAX, logger,
  });
}
