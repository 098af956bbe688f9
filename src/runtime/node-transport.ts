// The peer transport of a node, from its configuration and where its peers come from: the
// peers (this node left out, followed when discovery changes them), the cluster token, the
// host-name resolver and the reconnect policy every service uses.
import type { Logger } from 'pino';
import type { NodeConfig } from '../config.js';
import { StaticPeers, type PeerSource } from '../discovery/peer-source.js';
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

export function nodePeerTransport(cfg: NodeConfig, logger: Logger, limits: NodeTransportLimits,
  peers: PeerSource = new StaticPeers(cfg)): PeerTransport {
  const transport = new PeerTransport({
    nodeId: cfg.nodeId, listen: { host: cfg.peerHost, port: cfg.peerPort },
    peers: peers.addresses(),
    clusterToken: cfg.clusterToken, sendQueueBytesMax: limits.sendQueueBytesMax,
    frameBytesMax: limits.frameBytesMax, reconnectMsMin: RECONNECT_MS_MIN,
    reconnectMsMax: RECONNECT_MS_MAX, logger,
    ...(peers.lookup === undefined ? {} : { lookup: peers.lookup }),
  });
  peers.onChange(() => transport.setPeers(peers.addresses()));
  return transport;
}
