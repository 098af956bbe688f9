// What `dsync serve` sets up before a node starts, by discovery mode:
//   static  the `--peers` list, the node id from the configuration (today's behaviour);
//   dns     the Raft services (lock, queue): the node id from the volume (identity.ts, made at
//           first boot) and the pods of the headless Service asked who they are; the cache
//           (no Raft, a ring of pod names): the ordinals 0..replicas-1 under their stable DNS
//           names. Either way host names are resolved on every connect.
import type { Logger } from 'pino';
import type { NodeConfig, PeerSpec } from '../config.js';
import { statefulSetOf } from '../config.js';
import type { ClusterConfig } from '../raft/types.js';
import { FsSync } from '../storage/fs-sync.js';
import { openConfigRecord, readConfigRecord } from './config-record.js';
import { HeadlessServiceDns } from './dns.js';
import { loadOrCreateIdentity, type LoadedIdentity } from './identity.js';
import { ordinalOf } from './membership.js';
import { DnsPeers, StaticPeers, type PeerSource } from './peer-source.js';
import { PodDirectory } from './pod-directory.js';
import { decideStart, type StartDecision } from './startup.js';

export interface DnsDiscovery {
  readonly dns: HeadlessServiceDns;
  readonly directory: PodDirectory;
  readonly identity: LoadedIdentity;
  readonly statefulSet: string;
  readonly ordinal: number;
  readonly replicas: number;
}

export interface NodeDiscovery {
  readonly peers: PeerSource;
  /** Set for the Raft services with discovery dns. */
  readonly dns: DnsDiscovery | null;
}

/** The identity of a Raft service's volume with discovery dns, with the configuration's node id
 * replaced by the stored one; the configuration as it is otherwise. A volume of another
 * cluster is refused (ClusterIdMismatchError). */
export async function withIdentity(cfg: NodeConfig):
  Promise<{ cfg: NodeConfig; identity: LoadedIdentity | null }> {
  if (cfg.discovery !== 'dns') return { cfg, identity: null };
  if (cfg.service === 'cache') {
    return { cfg: { ...cfg, nodeId: cfg.podName, peers: ordinalPeers(cfg) }, identity: null };
  }
  const identity = await loadOrCreateIdentity({ dataDir: cfg.dataDir, clusterId: cfg.clusterId,
    name: cfg.podName, fsync: !cfg.unsafeNoFsync });
  return { cfg: { ...cfg, nodeId: identity.identity.nodeId }, identity };
}

/** The pods 0..replicas-1 of the StatefulSet under their DNS names, with this pod's ports. */
function ordinalPeers(cfg: NodeConfig): PeerSpec[] {
  const sts = statefulSetOf(cfg) ?? cfg.podName;
  return Array.from({ length: cfg.replicas ?? 1 }, (_, i) => ({ id: `${sts}-${i}`,
    host: `${sts}-${i}.${cfg.dnsName ?? ''}`, httpPort: cfg.httpPort, peerPort: cfg.peerPort }));
}

function headlessDns(cfg: NodeConfig): HeadlessServiceDns {
  return new HeadlessServiceDns({ serviceName: cfg.dnsName ?? '',
    ...(cfg.dnsServers.length > 0 ? { servers: cfg.dnsServers } : {}) });
}

/** Where the node's peers come from (call after withIdentity). */
export function openNodeDiscovery(cfg: NodeConfig, identity: LoadedIdentity | null,
  logger: Logger): NodeDiscovery {
  if (cfg.discovery !== 'dns') return { peers: new StaticPeers(cfg), dns: null };
  const dns = headlessDns(cfg);
  if (identity === null) return { peers: new StaticPeers(cfg, dns.lookup), dns: null };
  const directory = new PodDirectory({ dns, self: cfg.podName,
    logger: logger.child({ component: 'discovery' }) });
  return {
    peers: new DnsPeers(directory, cfg.nodeId,
      `http://${dns.podHost(cfg.podName)}:${cfg.httpPort}`, dns),
    dns: { dns, directory, identity, statefulSet: statefulSetOf(cfg) ?? cfg.podName,
      ordinal: ordinalOf(cfg.podName) ?? 0, replicas: cfg.replicas ?? 1 },
  };
}

/** The `identity` block of GET /health, which peers read to decide their start-up. A node
 * that holds data holds a cluster, also while it is still reading it back. */
export function identityHealth(d: DnsDiscovery | null, started: boolean,
  voters: readonly string[]): Record<string, unknown> {
  if (d === null) return {};
  return { identity: { clusterId: d.identity.identity.clusterId, pod: d.identity.identity.name,
    hasCluster: started || !d.identity.dataEmpty, voters } };
}

/** How a Raft service's node with discovery dns starts: decideStart over the pods' answers. */
export function decideNodeStart(cfg: NodeConfig, d: DnsDiscovery, logger: Logger):
  Promise<StartDecision> {
  return decideStart({ directory: d.directory, clusterId: cfg.clusterId, nodeId: cfg.nodeId,
    statefulSet: d.statefulSet, ordinal: d.ordinal, replicas: d.replicas,
    hasData: !d.identity.dataEmpty, timeoutMs: cfg.bootstrapTimeoutMs, logger });
}

/** The configuration a single Raft group (the lock service's), whose data lives in `dir`,
 * opens with: the one recorded when it was created, else the start decision's (recorded now):
 * a new cluster's voters, or a joiner's view of the members (it starts outside them and
 * waits to be added). Data written before identities has no record: its members were the
 * pods 0..replicas-1 under their names. */
export async function groupConfigAtStart(cfg: NodeConfig, d: DnsDiscovery, dir: string,
  logger: Logger): Promise<ClusterConfig> {
  const decision = await decideNodeStart(cfg, d, logger);
  logger.info({ decision }, 'discovery: start-up decided');
  const sync = new FsSync(!cfg.unsafeNoFsync);
  if (decision.kind === 'recover') {
    return await readConfigRecord(dir) ?? { learners: [], voters: Array.from(
      { length: d.replicas }, (_, i) => `${d.statefulSet}-${i}`) };
  }
  const voters = decision.kind === 'bootstrap' ? [...decision.voters]
    : decision.voters.filter((id) => id !== cfg.nodeId);
  return openConfigRecord(dir, { voters, learners: [] }, sync);
}
