// A real peer transport on loopback for node `ids[i]` of a test cluster, its peers the others.
import { PeerTransport } from '../../src/transport/peer-transport.js';

export function loopbackTransport(ids: readonly string[], ports: readonly number[], i: number):
  PeerTransport {
  const id = ids[i]!;
  const peers = new Map(ids.filter((x) => x !== id)
    .map((x) => [x, { host: '127.0.0.1', port: ports[ids.indexOf(x)]! }] as const));
  return new PeerTransport({
    nodeId: id, listen: { host: '127.0.0.1', port: ports[i]! },
    peers, clusterToken: 't', sendQueueBytesMax: 1 << 24, frameBytesMax: 1 << 24,
    reconnectMsMin: 20, reconnectMsMax: 200 });
}
