// Node configuration: one validated object built from CLI flags, `DSYNC_*` environment
// variables and documented defaults, in that order of precedence. Every field is declared once
// in NODE_CONFIG_FIELDS (flag, env var, help text) and once in the zod schema (type, bounds),
// and relationships between fields are checked at start-up so that a bad deployment fails
// fast with a message that names the field, instead of misbehaving later.
import { isIPv4 } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ordinalOf } from './discovery/membership.js';
import { InvalidArgumentError } from './errors.js';

export const SERVICES = ['lock', 'queue', 'cache'] as const;
export type ServiceName = (typeof SERVICES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const WRITE_POLICIES = ['write-back', 'write-through'] as const;
export type WritePolicy = (typeof WRITE_POLICIES)[number];
/** How a leader confirms it may answer a read from its state (docs/runtime.md, "Reads"). */
export const READ_MODES = ['linearizable', 'lease'] as const;
export type ReadMode = (typeof READ_MODES)[number];
/** How a node sends a request it cannot serve to the node that can. */
export const FORWARD_VIAS = ['peer', 'http'] as const;
export type ForwardVia = (typeof FORWARD_VIAS)[number];
/** How a node finds its peers: the static `--peers` list, or the DNS of a headless Service. */
export const DISCOVERY_MODES = ['static', 'dns'] as const;
export type DiscoveryMode = (typeof DISCOVERY_MODES)[number];

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

/** HTTP listen address. Default 0.0.0.0 so a pod answers on its pod IP. */
export const DEFAULT_HTTP_HOST = '0.0.0.0';
/** HTTP port, 1..65535 (0 = any free port, tests only). */
export const DEFAULT_HTTP_PORT = 8080;
/** Peer (Raft / coherence transport) listen address. */
export const DEFAULT_PEER_HOST = '0.0.0.0';
/** Peer port, 1..65535 (0 = any free port), distinct from the HTTP port. */
export const DEFAULT_PEER_PORT = 7000;
/** Parent of per-node data directories: the default dataDir is `dsync-data/<nodeId>`. */
export const DEFAULT_DATA_ROOT = 'dsync-data';
/** Shared secret checked when peers connect, 8..256 chars. The default is public, so it is
 * refused unless both listen addresses are loopback (or insecureAllowDefaultToken is set). */
export const DEFAULT_CLUSTER_TOKEN = 'dsync-insecure-dev-token';
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
/** Largest request body, 1 KiB..64 MiB. */
export const DEFAULT_BODY_BYTES_MAX = MIB;
/** Length of one Raft tick, 5..10000 ms. Election timeout = electionTicks × tickMs. */
export const DEFAULT_TICK_MS = 100;
/** Ticks without a heartbeat before a follower campaigns, 3..1000 (randomized up to 2×). */
export const DEFAULT_ELECTION_TICKS = 10;
/** Ticks between leader heartbeats, 1..999, strictly less than electionTicks. */
export const DEFAULT_HEARTBEAT_TICKS = 1;
/** Applied entries between snapshots (log compaction threshold), 100..10_000_000. */
export const DEFAULT_SNAPSHOT_ENTRIES = 10_000;
/** Cache capacity per pod in bytes, 1 MiB..64 GiB. */
export const DEFAULT_CAPACITY_BYTES = 64 * MIB;
/** Longest time a dirty cache line stays unflushed under write-back, 10..3_600_000 ms. */
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
/** A cache line's lease is twice the flush interval, and a lease is at most 600 s. */
export const FLUSH_INTERVAL_MS_MAX = 300_000;
/** How long a starting cache node waits for Redis by default (--redis-connect-wait-ms). */
export const DEFAULT_REDIS_CONNECT_WAIT_MS = 30_000;
export const DEFAULT_WRITE_POLICY: WritePolicy = 'write-back';
/** Deadline of one client request inside the node (incl. forwarding), 100..600_000 ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
/** Queue partitions (Raft groups per queue cluster), 1..1024. */
export const DEFAULT_PARTITIONS = 16;
/** Replicas of each queue partition, 1..7 and odd. */
export const DEFAULT_REPLICATION_FACTOR = 3;
/** Most peers a static list may name. */
export const PEERS_MAX = 64;
/** Cluster id of a node that discovers its peers by DNS (stored beside its data at first
 * boot; a volume of another cluster is refused). 1..63 chars of a-z, 0-9 and -. */
export const DEFAULT_CLUSTER_ID = 'dsync';
/** How long a node that discovers its peers waits for them to answer at start-up (the
 * initial pods of a new cluster, or a member of an existing one), 1 s..1 h. */
export const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 300_000;
/** DNS servers a node may be told to ask instead of the system's. */
export const DNS_SERVERS_MAX = 8;
/** Most URLs systemUrls may list for one service. */
export const SYSTEM_URLS_PER_SERVICE_MAX = PEERS_MAX;

/** Where the nodes of each service answer HTTP (one URL per node, e.g. a pod's stable DNS
 * name), so that any node can show the whole system on its cluster page. */
export type SystemUrls = Readonly<Partial<Record<ServiceName, readonly string[]>>>;
export const DEFAULT_READ_MODE: ReadMode = 'linearizable';
export const DEFAULT_FORWARD_VIA: ForwardVia = 'peer';
/** Share of the followers' shortest vote refusal that a lease gives away to clock drift
 * (docs/runtime.md, "Lease reads"): far more than NTP-disciplined clocks drift (50 ppm). */
export const LEASE_DRIFT_ALLOWANCE = 0.1;

/** One member of the static peer list: `id=host:httpPort:peerPort`. */
export interface PeerSpec {
  readonly id: string;
  readonly host: string;
  readonly httpPort: number;
  readonly peerPort: number;
}

export interface NodeConfig {
  readonly service: ServiceName;
  /** 1..63 chars of [a-z0-9-] plus `.` and `_`: it appears in DNS names and metric labels. */
  readonly nodeId: string;
  readonly httpHost: string;
  readonly httpPort: number;
  readonly peerHost: string;
  readonly peerPort: number;
  /** Static members of this service's cluster (may include this node); empty when peers are
   * discovered another way. */
  readonly peers: readonly PeerSpec[];
  readonly dataDir: string;
  readonly clusterToken: string;
  readonly logLevel: LogLevel;
  readonly bodyBytesMax: number;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Skip fsync: fast and unsafe (a power loss may lose acknowledged writes). Default false. */
  readonly unsafeNoFsync: boolean;
  readonly snapshotEntries: number;
  /** Backing store of the cache, e.g. `redis://127.0.0.1:6379/0`; null = embedded store. */
  readonly redisUrl: string | null;
  readonly capacityBytes: number;
  readonly flushIntervalMs: number;
  /** How long a starting cache node waits for Redis to answer before it gives up. */
  readonly redisConnectWaitMs: number;
  readonly writePolicy: WritePolicy;
  readonly requestTimeoutMs: number;
  readonly partitions: number;
  readonly replicationFactor: number;
  /** Ids of the initial voters when a group is bootstrapped; empty = every peer. Peers not
   * listed here are known to the transport but join later as learners. */
  readonly voters: readonly string[];
  /** Start as a new member: bootstrap with no configuration and wait for the leader to add
   * this node as a learner (`POST /v1/cluster/learners/{id}`). Default false. */
  readonly join: boolean;
  /** Accept the built-in cluster token on a non-loopback address (anyone who can reach the
   * peer port could then join the cluster). Default false: such a start is refused. */
  readonly insecureAllowDefaultToken: boolean;
  /** HTTP URLs of the nodes of every service (this one's included or not: its peers are
   * added), read by GET /v1/overview and the cluster page. Default: none beyond the peers. */
  readonly systemUrls: SystemUrls;
  /** `linearizable` (default): every read waits for a ReadIndex round, a heartbeat to a
   * quorum. `lease`: the leader answers from its state while its lease holds (leaseReadMs),
   * which rests on bounded clock drift (docs/runtime.md, "Lease reads"). */
  readonly readMode: ReadMode;
  /** `peer` (default): a follower forwards over the peer transport; `http`: by a second HTTP
   * request to the leader (kept to compare, docs/benchmarks.md). */
  readonly forwardVia: ForwardVia;
  /** `static` (default): the peers are `peers`. `dns`: the pods of the headless Service
   * `dnsName` (SRV records of its `peer` and `http` ports), the Raft node id generated at
   * first boot and kept in the data dir with `clusterId` (src/discovery/README.md). */
  readonly discovery: DiscoveryMode;
  /** The headless Service, e.g. `lock-headless.<ns>.svc.cluster.local` (discovery dns). */
  readonly dnsName: string | null;
  /** DNS servers to ask (`ip` or `ip:port`); empty: the system's resolvers. */
  readonly dnsServers: readonly string[];
  /** Pods of the StatefulSet: the initial members (ordinals 0..replicas-1) of a new cluster,
   * and the wanted members when the Kubernetes API does not say (discovery dns). */
  readonly replicas: number | null;
  readonly clusterId: string;
  /** This pod's name (`lock-1`: StatefulSet name and ordinal). Default: nodeId, which
   * defaults to the host name. With discovery dns the Raft node id is generated from it. */
  readonly podName: string;
  /** How long start-up waits for peers to answer before it gives up (discovery dns). */
  readonly bootstrapTimeoutMs: number;
  /** Kubernetes namespace of the pod, for the Kubernetes API features. */
  readonly namespace: string | null;
  /** The pod's StatefulSet; default: podName without its ordinal. */
  readonly statefulSet: string | null;
  /** Follow spec.replicas of the StatefulSet through the Kubernetes API (discovery dns). */
  readonly reconcileMembership: boolean;
  /** The lock leader labels its pod dsync.io/role=leader through the Kubernetes API. */
  readonly labelLeader: boolean;
  /** Kubernetes API server URL; null: the in-cluster configuration (ServiceAccount). */
  readonly kubernetesApiUrl: string | null;
}

export type NodeConfigField = keyof NodeConfig;

/** What parseNodeConfig accepts: every field optional (defaults apply) and, since values come
 * from flags and env, numbers and booleans may be given as strings. */
export type NodeConfigInput = { [K in NodeConfigField]?: unknown };

interface FieldDoc {
  readonly field: NodeConfigField;
  readonly flag: string;
  readonly env: string;
  readonly help: string;
  /** Boolean switch: `--unsafe-no-fsync` without a value. */
  readonly isSwitch?: boolean;
}

function doc(field: NodeConfigField, help: string, isSwitch = false): FieldDoc {
  const kebab = field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const snake = field.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
  return { field, flag: `--${kebab}`, env: `DSYNC_${snake}`, help, isSwitch };
}

/** Flag and env var of every field: `httpPort` ↔ `--http-port` ↔ `DSYNC_HTTP_PORT`. */
export const NODE_CONFIG_FIELDS: readonly FieldDoc[] = [
  doc('service', 'service this node runs: lock | queue | cache'),
  doc('nodeId', 'node id, e.g. lock-0 (default: the host name, a StatefulSet pod name)'),
  doc('httpHost', `HTTP listen address (default ${DEFAULT_HTTP_HOST})`),
  doc('httpPort', `HTTP port (default ${DEFAULT_HTTP_PORT})`),
  doc('peerHost', `peer transport listen address (default ${DEFAULT_PEER_HOST})`),
  doc('peerPort', `peer transport port (default ${DEFAULT_PEER_PORT})`),
  doc('peers', 'static cluster members: id=host:httpPort:peerPort,... ([::1] for IPv6)'),
  doc('dataDir', `WAL and snapshots directory (default ${DEFAULT_DATA_ROOT}/<nodeId>)`),
  doc('clusterToken', 'shared secret peers present on connect (8..256 chars)'),
  doc('logLevel', `${LOG_LEVELS.join(' | ')} (default ${DEFAULT_LOG_LEVEL})`),
  doc('bodyBytesMax', 'largest request body, bytes or with KiB/MiB suffix (default 1MiB)'),
  doc('tickMs', `Raft tick in ms (default ${DEFAULT_TICK_MS})`),
  doc('electionTicks', `election timeout in ticks (default ${DEFAULT_ELECTION_TICKS})`),
  doc('heartbeatTicks', `heartbeat interval in ticks (default ${DEFAULT_HEARTBEAT_TICKS})`),
  doc('unsafeNoFsync', 'skip fsync (unsafe: acknowledged writes may be lost)', true),
  doc('snapshotEntries', `entries between snapshots (default ${DEFAULT_SNAPSHOT_ENTRIES})`),
  doc('redisUrl', 'cache backing store URL (default: embedded store)'),
  doc('capacityBytes', 'cache capacity, bytes or with KiB/MiB/GiB suffix (default 64MiB)'),
  doc('flushIntervalMs', `write-back flush interval, at most ${FLUSH_INTERVAL_MS_MAX} (default ` +
    `${DEFAULT_FLUSH_INTERVAL_MS})`),
  doc('redisConnectWaitMs', 'how long a starting cache node waits for Redis (default ' +
    `${DEFAULT_REDIS_CONNECT_WAIT_MS})`),
  doc('writePolicy', `${WRITE_POLICIES.join(' | ')} (default ${DEFAULT_WRITE_POLICY})`),
  doc('requestTimeoutMs', `request deadline in ms (default ${DEFAULT_REQUEST_TIMEOUT_MS})`),
  doc('partitions', `queue partitions (default ${DEFAULT_PARTITIONS})`),
  doc('replicationFactor', `replicas per queue partition (default ${DEFAULT_REPLICATION_FACTOR})`),
  doc('voters', 'initial voters, comma separated ids (default: every peer)'),
  doc('join', 'join a running cluster as a new member (learner first)', true),
  doc('insecureAllowDefaultToken', 'accept the built-in cluster token on a non-loopback ' +
    'address (insecure: anyone who reaches the peer port can join)', true),
  doc('systemUrls', 'HTTP URLs of the nodes of every service, for the cluster page: ' +
    'lock=http://h:8000,http://h:8001;queue=...;cache=... (default: this service\'s peers)'),
  doc('readMode', `${READ_MODES.join(' | ')}: reads by a quorum round, or from the leader ` +
    `lease, which assumes bounded clock drift (default ${DEFAULT_READ_MODE})`),
  doc('forwardVia', `${FORWARD_VIAS.join(' | ')}: how followers forward to the leader ` +
    `(default ${DEFAULT_FORWARD_VIA})`),
  doc('discovery', `${DISCOVERY_MODES.join(' | ')}: peers from --peers, or from the DNS of ` +
    'a headless Service (default static)'),
  doc('dnsName', 'headless Service to discover pods by, e.g. lock-headless.ns.svc.cluster.local'),
  doc('dnsServers', 'DNS servers to ask, ip or ip:port, comma separated (default: the system\'s)'),
  doc('replicas', 'pods of the StatefulSet: initial members of a new cluster, and the wanted ' +
    'members unless --reconcile-membership reads them from Kubernetes'),
  doc('clusterId', 'cluster id stored with the node id on the volume ' +
    `(default ${DEFAULT_CLUSTER_ID})`),
  doc('podName', 'this pod\'s name, <statefulset>-<ordinal> (default: the node id / host name)'),
  doc('bootstrapTimeoutMs', 'how long start-up waits for peers ' +
    `(default ${DEFAULT_BOOTSTRAP_TIMEOUT_MS})`),
  doc('namespace', 'Kubernetes namespace of the pod (Kubernetes API features)'),
  doc('statefulSet', 'the pod\'s StatefulSet (default: the pod name without its ordinal)'),
  doc('reconcileMembership', 'follow spec.replicas of the StatefulSet through the Kubernetes API',
    true),
  doc('labelLeader', 'the lock leader labels its pod dsync.io/role=leader (Kubernetes API)', true),
  doc('kubernetesApiUrl', 'Kubernetes API server URL (default: the in-cluster configuration)'),
];

const FIELD_DOCS = new Map(NODE_CONFIG_FIELDS.map((d) => [d.field, d]));

// ---- value parsers: strings from flags/env become typed values, never silently clamped ----

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kib: KIB, mib: MIB, gib: GIB };

function toInt(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const s = v.trim();
  return /^-?\d+$/.test(s) ? Number(s) : v;
}

function toBytes(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(v.trim());
  const unit = m?.[2]?.toLowerCase() ?? '';
  const mul = BYTE_UNITS[unit];
  return m?.[1] !== undefined && mul !== undefined ? Number(m[1]) * mul : v;
}

function toBool(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
  return v;
}

const int = (min: number, max: number) =>
  z.preprocess(toInt, z.number().int().min(min).max(max));
const bytes = (min: number, max: number) =>
  z.preprocess(toBytes, z.number().int().min(min).max(max));
const port = int(0, 65535);
const host = z.string().trim().min(1).max(253).regex(/^[A-Za-z0-9.:_[\]-]+$/, 'not a host name');
const NODE_ID_RE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
const nodeId = z.string().regex(NODE_ID_RE, 'must be 1..63 chars of a-z 0-9 . _ - (lower case)');
const dnsLabelName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
  'must be 1..63 chars of a-z 0-9 - (a Kubernetes name)');
const commaList = (v: unknown): unknown =>
  typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v;
const switchSchema = z.preprocess(toBool, z.boolean()).default(false);
const DNS_SERVER_RE = /^(\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?)$/;
const dnsServer = z.string().regex(DNS_SERVER_RE,
  'must be an IP address, optionally with :port (IPv6 in brackets)');

/** `[::1]:8000:7000` or `host:8000:7000`. */
const PEER_RE = /^([^=\s]+)=(\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+):(\d{1,5}):(\d{1,5})$/;

function parsePeerList(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  return items.map((item) => {
    const m = PEER_RE.exec(item);
    if (m === null) return item; // left as a string so the schema reports it with its index
    return { id: m[1], host: m[2], httpPort: Number(m[3]), peerPort: Number(m[4]) };
  });
}

const peerSchema = z.object(
  { id: nodeId, host, httpPort: int(1, 65535), peerPort: int(1, 65535) },
  { error: 'must be id=host:httpPort:peerPort, e.g. lock-0=10.0.0.5:8080:7000' },
);

/** `lock=http://a:1,http://b:2;cache=http://c:3` → `{lock: [...], cache: [...]}`. A part
 * without `service=` is kept as a key of its own so that the schema names it; a service given
 * twice gets the URLs of both parts. */
function parseSystemUrls(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const out: Record<string, unknown> = {};
  for (const part of v.split(';').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = part.indexOf('=');
    const service = eq < 0 ? part : part.slice(0, eq).trim();
    const urls = eq < 0 ? '' : part.slice(eq + 1);
    const list = urls.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const before = out[service];
    out[service] = Array.isArray(before) ? [...(before as unknown[]), ...list] : list;
  }
  return out;
}

/** An http(s) origin: scheme, host (IPv6 in brackets), optional port; no path or query. A
 * trailing slash is dropped. */
const ORIGIN_RE = /^https?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})(:(\d{1,5}))?$/;
const originUrl = z.string().trim().transform((s) => s.replace(/\/$/, '')).pipe(
  z.string().regex(ORIGIN_RE, 'must be an http(s) URL without a path, e.g. http://lock-0:8080')
    .refine((s) => Number(ORIGIN_RE.exec(s)?.[3] ?? 80) <= 65535 &&
      ORIGIN_RE.exec(s)?.[3] !== '0', 'port must be 1..65535'));
const systemUrlList = z.array(originUrl).min(1, 'must list at least one URL')
  .max(SYSTEM_URLS_PER_SERVICE_MAX);
const systemUrlsSchema = z.preprocess(parseSystemUrls, z.strictObject({
  lock: systemUrlList.optional(), queue: systemUrlList.optional(),
  cache: systemUrlList.optional(),
}, { error: 'must be service=url,url;service=url, e.g. ' +
  'lock=http://lock-0:8080,http://lock-1:8080;cache=http://cache-0:8080' }));

const schema = z.strictObject({
  service: z.enum(SERVICES),
  nodeId,
  httpHost: host.default(DEFAULT_HTTP_HOST),
  httpPort: port.default(DEFAULT_HTTP_PORT),
  peerHost: host.default(DEFAULT_PEER_HOST),
  peerPort: port.default(DEFAULT_PEER_PORT),
  peers: z.preprocess(parsePeerList, z.array(peerSchema).max(PEERS_MAX)).default([]),
  dataDir: z.string().trim().min(1).max(4096).optional(),
  clusterToken: z.string().min(8).max(256).default(DEFAULT_CLUSTER_TOKEN),
  logLevel: z.enum(LOG_LEVELS).default(DEFAULT_LOG_LEVEL),
  bodyBytesMax: bytes(KIB, 64 * MIB).default(DEFAULT_BODY_BYTES_MAX),
  tickMs: int(5, 10_000).default(DEFAULT_TICK_MS),
  electionTicks: int(3, 1000).default(DEFAULT_ELECTION_TICKS),
  heartbeatTicks: int(1, 999).default(DEFAULT_HEARTBEAT_TICKS),
  unsafeNoFsync: z.preprocess(toBool, z.boolean()).default(false),
  snapshotEntries: int(100, 10_000_000).default(DEFAULT_SNAPSHOT_ENTRIES),
  redisUrl: z.preprocess(
    (v) => (v === '' ? null : v),
    z.string().regex(/^rediss?:\/\/\S+$/, 'must start with redis:// or rediss://').nullable(),
  ).default(null),
  capacityBytes: bytes(MIB, 64 * GIB).default(DEFAULT_CAPACITY_BYTES),
  flushIntervalMs: int(10, FLUSH_INTERVAL_MS_MAX).default(DEFAULT_FLUSH_INTERVAL_MS),
  redisConnectWaitMs: int(0, 600_000).default(DEFAULT_REDIS_CONNECT_WAIT_MS),
  writePolicy: z.enum(WRITE_POLICIES).default(DEFAULT_WRITE_POLICY),
  requestTimeoutMs: int(100, 600_000).default(DEFAULT_REQUEST_TIMEOUT_MS),
  partitions: int(1, 1024).default(DEFAULT_PARTITIONS),
  replicationFactor: int(1, 7).default(DEFAULT_REPLICATION_FACTOR),
  voters: z.preprocess(
    (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v),
    z.array(nodeId).max(PEERS_MAX),
  ).default([]),
  join: z.preprocess(toBool, z.boolean()).default(false),
  insecureAllowDefaultToken: z.preprocess(toBool, z.boolean()).default(false),
  systemUrls: systemUrlsSchema.default({}),
  readMode: z.enum(READ_MODES).default(DEFAULT_READ_MODE),
  forwardVia: z.enum(FORWARD_VIAS).default(DEFAULT_FORWARD_VIA),
  discovery: z.enum(DISCOVERY_MODES).default('static'),
  dnsName: host.nullable().default(null),
  dnsServers: z.preprocess(commaList, z.array(dnsServer).max(DNS_SERVERS_MAX)).default([]),
  replicas: int(1, PEERS_MAX).nullable().default(null),
  clusterId: dnsLabelName.default(DEFAULT_CLUSTER_ID),
  podName: nodeId.optional(),
  bootstrapTimeoutMs: int(1000, 3_600_000).default(DEFAULT_BOOTSTRAP_TIMEOUT_MS),
  namespace: dnsLabelName.nullable().default(null),
  statefulSet: dnsLabelName.nullable().default(null),
  reconcileMembership: switchSchema,
  labelLeader: switchSchema,
  kubernetesApiUrl: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL').nullable()
    .default(null),
});

function fieldError(path: readonly PropertyKey[], message: string, got?: unknown): never {
  const top = String(path[0] ?? 'config');
  const d = FIELD_DOCS.get(top as NodeConfigField);
  const where = d === undefined ? '' : ` (flag ${d.flag}, env ${d.env})`;
  const fieldPath = path.map(String).join('.');
  const shown = got === undefined ? '' : `; got ${JSON.stringify(got)}`;
  throw new InvalidArgumentError(
    fieldPath,
    `config ${fieldPath}${where}: ${message}${shown}`,
  );
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const k of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** Validates a config input and fills defaults. Throws InvalidArgumentError whose `field`
 * names the offending field (`peers.1.httpPort` for nested ones). */
export function parseNodeConfig(input: NodeConfigInput): NodeConfig {
  const res = schema.safeParse(input);
  if (!res.success) {
    const issue = res.error.issues[0];
    if (issue === undefined) fieldError([], 'invalid configuration');
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0) {
      fieldError(issue.keys, `unknown config field; known: ${[...FIELD_DOCS.keys()].join(', ')}`);
    }
    if (issue.code === 'unrecognized_keys') {
      fieldError([...issue.path, ...issue.keys],
        `not a service; use ${SERVICES.join(', ')} (service=url,url;service=url)`);
    }
    const got = issue.path.length > 0 ? valueAt(input, issue.path) : undefined;
    fieldError(issue.path, issue.message, got);
  }
  const v = res.data;
  const systemUrls: Partial<Record<ServiceName, readonly string[]>> = {};
  for (const service of SERVICES) {
    const urls = v.systemUrls[service];
    if (urls !== undefined) systemUrls[service] = urls;
  }
  const podName = v.podName ?? v.nodeId;
  const dataDir = v.dataDir ??
    join(DEFAULT_DATA_ROOT, v.discovery === 'dns' ? podName : v.nodeId);
  const cfg: NodeConfig = { ...v, dataDir, systemUrls, podName };
  checkRelations(cfg);
  return cfg;
}

function checkRelations(cfg: NodeConfig): void {
  if (cfg.heartbeatTicks >= cfg.electionTicks) {
    fieldError(['heartbeatTicks'], `must be less than electionTicks (${cfg.electionTicks}) ` +
      'so that followers hear from a live leader before they campaign', cfg.heartbeatTicks);
  }
  if (cfg.httpPort !== 0 && cfg.httpPort === cfg.peerPort) {
    fieldError(['peerPort'], 'must differ from httpPort', cfg.peerPort);
  }
  if (cfg.replicationFactor % 2 === 0) {
    fieldError(['replicationFactor'], 'must be odd: an even count adds no fault tolerance',
      cfg.replicationFactor);
  }
  if (cfg.readMode === 'lease' && leaseReadMs(cfg) <= cfg.heartbeatTicks * cfg.tickMs) {
    fieldError(['readMode'], `a lease of ${leaseReadMs(cfg)} ms would lapse between two ` +
      `heartbeats (every ${cfg.heartbeatTicks * cfg.tickMs} ms): raise electionTicks or lower ` +
      'heartbeatTicks, or read linearizable', cfg.readMode);
  }
  checkPeers(cfg.peers);
  const known = new Set(cfg.peers.map((p) => p.id));
  cfg.voters.forEach((v, i) => {
    if (!known.has(v)) fieldError(['voters', i], 'must name a peer of --peers', v);
  });
  checkDefaultToken(cfg);
  checkSystemUrls(cfg.systemUrls);
  checkDiscovery(cfg);
}

/** What discovery by DNS and the Kubernetes API features need, and what they exclude. */
function checkDiscovery(cfg: NodeConfig): void {
  if (cfg.discovery === 'dns') {
    if (cfg.dnsName === null) {
      fieldError(['dnsName'], 'discovery dns needs the headless Service to ask, e.g. ' +
        '--dns-name lock-headless.<namespace>.svc.cluster.local');
    }
    if (cfg.replicas === null) {
      fieldError(['replicas'], 'discovery dns needs the StatefulSet\'s replica count (the ' +
        'initial members of a new cluster), e.g. --replicas 3');
    }
    if (cfg.peers.length > 0) {
      fieldError(['peers'], 'names static peers, but discovery is dns: give one or the other');
    }
    if (ordinalOf(cfg.podName) === null) {
      fieldError(['podName'], 'discovery dns needs a StatefulSet pod name ending in its ' +
        'ordinal (lock-0, lock-1, ...); set --pod-name', cfg.podName);
    }
  }
  if (cfg.reconcileMembership && cfg.discovery !== 'dns') {
    fieldError(['reconcileMembership'], 'needs --discovery dns: members are known by the node ' +
      'ids their pods report');
  }
  if (cfg.labelLeader && cfg.service !== 'lock') {
    fieldError(['labelLeader'], 'only the lock service has one leader to label');
  }
  if ((cfg.reconcileMembership || cfg.labelLeader) && cfg.namespace === null) {
    fieldError(['namespace'], 'the Kubernetes API features need the pod\'s namespace: set ' +
      'DSYNC_NAMESPACE from the downward API (metadata.namespace)');
  }
  if ((cfg.reconcileMembership || cfg.labelLeader) && statefulSetOf(cfg) === null) {
    fieldError(['statefulSet'], 'cannot tell the StatefulSet from the pod name; set ' +
      '--stateful-set', cfg.podName);
  }
}

/** The StatefulSet of this node's pod: statefulSet, else the pod name without its ordinal. */
export function statefulSetOf(cfg: Pick<NodeConfig, 'statefulSet' | 'podName'>): string | null {
  if (cfg.statefulSet !== null) return cfg.statefulSet;
  const m = /^(.+)-\d{1,9}$/.exec(cfg.podName);
  return m?.[1] ?? null;
}

function checkSystemUrls(urls: SystemUrls): void {
  for (const service of SERVICES) {
    const seen = new Set<string>();
    (urls[service] ?? []).forEach((u, i) => {
      const norm = u.toLowerCase();
      if (seen.has(norm)) fieldError(['systemUrls', service, i], 'duplicate URL', u);
      seen.add(norm);
    });
  }
}

/** The built-in token is in every copy of dsync: on an address others can reach it lets
 * anyone join the cluster, so it is for loopback only unless the operator says otherwise. */
function checkDefaultToken(cfg: NodeConfig): void {
  if (!usesDefaultClusterToken(cfg) || cfg.insecureAllowDefaultToken) return;
  const exposed = [['--http-host', cfg.httpHost], ['--peer-host', cfg.peerHost]]
    .filter(([, h]) => !isLoopbackHost(h ?? ''));
  if (exposed.length === 0) return;
  const where = exposed.map(([flag, h]) => `${flag} is ${h}`).join(' and ');
  fieldError(['clusterToken'], `the built-in cluster token is public and only allowed when ` +
    `the node listens on loopback, but ${where}. Set --cluster-token (or DSYNC_CLUSTER_TOKEN) ` +
    'to a secret of 8 to 256 characters shared by every node of the cluster (e.g. the ' +
    'output of `openssl rand -hex 32`), or listen on 127.0.0.1; on a network you trust, ' +
    '--insecure-allow-default-token (DSYNC_INSECURE_ALLOW_DEFAULT_TOKEN=1) accepts it anyway');
}

/** 127.0.0.0/8, ::1 (bracketed or not, or IPv4-mapped) and `localhost`. Any other name may
 * resolve anywhere, so it does not count as loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (h.startsWith('::ffff:')) return isLoopbackHost(h.slice('::ffff:'.length));
  return isIPv4(h) && h.startsWith('127.');
}

function checkPeers(peers: readonly PeerSpec[]): void {
  const ids = new Set<string>();
  const endpoints = new Set<string>();
  peers.forEach((p, i) => {
    if (ids.has(p.id)) fieldError(['peers', i, 'id'], 'duplicate peer id', p.id);
    ids.add(p.id);
    if (p.httpPort === p.peerPort) {
      fieldError(['peers', i, 'peerPort'], `must differ from httpPort of peer ${p.id}`, p.peerPort);
    }
    for (const ep of [`${p.host}:${p.httpPort}`, `${p.host}:${p.peerPort}`]) {
      if (endpoints.has(ep)) fieldError(['peers', i], `endpoint ${ep} is used twice`, p.id);
      endpoints.add(ep);
    }
  });
}

/** Reads every `DSYNC_*` variable of NODE_CONFIG_FIELDS; unset and empty ones are left out. */
export function configFromEnv(env: NodeJS.ProcessEnv): NodeConfigInput {
  const out: NodeConfigInput = {};
  for (const d of NODE_CONFIG_FIELDS) {
    const v = env[d.env];
    if (v !== undefined && v !== '') out[d.field] = v;
  }
  return out;
}

/** Registers one flag per config field on a commander Command (structurally typed so this
 * file does not depend on commander). Flags get no commander defaults: defaults live here,
 * and an absent flag must let the env var through. */
export function addNodeConfigOptions<C extends { option(flags: string, desc: string): C }>(
  cmd: C,
): C {
  let c = cmd;
  for (const d of NODE_CONFIG_FIELDS) {
    c = c.option(d.isSwitch === true ? d.flag : `${d.flag} <value>`, `${d.help} [${d.env}]`);
  }
  return c;
}

/** Merges commander options (camelCase keys, as commander names them) over env vars. Keys of
 * `opts` that are not config fields (e.g. a command's own `--dir`) are ignored. nodeId falls
 * back to the host name, which is the pod name in a StatefulSet. */
export function nodeConfigInput(
  opts: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  host: string = hostname(),
): NodeConfigInput {
  const out: NodeConfigInput = { nodeId: host, ...configFromEnv(env) };
  for (const d of NODE_CONFIG_FIELDS) {
    const v = opts[d.field];
    if (v !== undefined) out[d.field] = v;
  }
  return out;
}

/** CLI flags over env over defaults, validated. */
export function loadNodeConfig(opts: Record<string, unknown>, env: NodeJS.ProcessEnv): NodeConfig {
  return parseNodeConfig(nodeConfigInput(opts, env));
}

export function usesDefaultClusterToken(cfg: NodeConfig): boolean {
  return cfg.clusterToken === DEFAULT_CLUSTER_TOKEN;
}

/** Base URL of a peer's HTTP API, IPv6 hosts kept in brackets. */
export function peerHttpUrl(peer: PeerSpec): string {
  return `http://${peer.host}:${peer.httpPort}`;
}

/** Election timeout in ms, for logs and for clients that want to wait out a failover. */
export function electionTimeoutMs(cfg: NodeConfig): number {
  return cfg.electionTicks * cfg.tickMs;
}

/** The HTTP URLs of every service's nodes as this node should show them: systemUrls, with the
 * static peers of its own service added (each URL once, the configured ones first). */
export function systemUrlsOf(cfg: NodeConfig): SystemUrls {
  const out: Partial<Record<ServiceName, readonly string[]>> = { ...cfg.systemUrls };
  const own = [...(cfg.systemUrls[cfg.service] ?? [])];
  for (const p of cfg.peers) {
    const url = peerHttpUrl(p);
    if (!own.some((u) => u.toLowerCase() === url.toLowerCase())) own.push(url);
  }
  if (own.length > 0) out[cfg.service] = own;
  return out;
}

/** What a new leader extends every lease by: two election timeouts, the longest a failover
 * takes, and the bound on clock skew between pods that the lease rules rest on
 * (docs/locks.md, "Guarantees"; the queue's visibility leases follow the same rule). Refused
 * past `maxMs`, naming the service. */
export function leaderLeaseExtensionMs(cfg: NodeConfig, maxMs: number): number {
  const ms = 2 * electionTimeoutMs(cfg);
  if (ms > maxMs) {
    fieldError(['electionTicks'], `two election timeouts (${ms} ms) must not exceed ${maxMs} ` +
      `ms for the ${cfg.service} service: lower electionTicks or tickMs`, cfg.electionTicks);
  }
  return ms;
}

/**
 * The leader lease of read mode `lease`, in ms from when a heartbeat round that a quorum
 * answered was sent. A follower that received the round refuses votes until its election
 * timer reaches electionTicks, at least (electionTicks - 1) ticks of its clock later (its
 * first tick may come at once); a restarted one as long after its start. The lease is that,
 * less LEASE_DRIFT_ALLOWANCE for clocks running at different rates: 810 ms by default.
 */
export function leaseReadMs(cfg: Pick<NodeConfig, 'electionTicks' | 'tickMs'>): number {
  return Math.floor((cfg.electionTicks - 1) * cfg.tickMs * (1 - LEASE_DRIFT_ALLOWANCE));
}
