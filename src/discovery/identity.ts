// Node identity on the data volume. A pod's name (lock-1) is stable, but its volume may not be:
// a pod that comes back with an empty volume under an old name must join as a *new* Raft
// member (its old id, whose log is gone, is removed by the reconciler), never pose as the old
// one with no log. So the Raft node id is generated at first boot and stored, with the
// cluster id, in `identity.json` beside the node's data (written to a temp file, fsynced,
// renamed, directory fsynced). A volume that belongs to another cluster is refused.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DsyncError } from '../errors.js';
import { FsSync, writeFileDurably } from '../storage/fs-sync.js';

export const IDENTITY_FILE = 'identity.json';
const IDENTITY_VERSION = 1;
/** Same alphabet and length as a config node id: it appears in DNS names and metric labels. */
const NODE_ID_RE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
/** Cluster ids: 1..63 chars of [a-z0-9-] (a release name, or a generated id). */
const CLUSTER_ID_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Random hex digits appended to the pod name to make a node id. */
const NODE_ID_SUFFIX_HEX = 8;
/** Largest identity file read: anything bigger is not ours. */
const IDENTITY_BYTES_MAX = 4096;

export interface NodeIdentity {
  readonly version: number;
  /** The cluster this volume belongs to. */
  readonly clusterId: string;
  /** The Raft node id, generated at first boot: `<pod>-<8 hex>`. */
  readonly nodeId: string;
  /** The pod (or host) name at first boot, for people reading the file. */
  readonly name: string;
  /** First boot, Unix ms. */
  readonly createdAtMs: number;
}

export interface IdentityOptions {
  readonly dataDir: string;
  /** The cluster id this node is configured with. */
  readonly clusterId: string;
  /** The pod name (`lock-1`), the stem of a generated node id. */
  readonly name: string;
  /** Skip fsync (tests only). */
  readonly fsync?: boolean;
  /** Injected for tests: Unix ms now, and random bytes. */
  readonly nowMs?: () => number;
  readonly random?: (bytes: number) => Buffer;
}

export interface LoadedIdentity {
  readonly identity: NodeIdentity;
  /** True when this call generated it: a first boot on an empty (or identity-less) volume. */
  readonly created: boolean;
  /** True when the data dir held nothing but the identity (a node with no Raft state). */
  readonly dataEmpty: boolean;
  /** Data written before identities existed: the node keeps the id it was written under
   * (its name, as `--node-id` defaulted to the pod name), so its log stays its own. */
  readonly adopted: boolean;
}

/** The volume belongs to another cluster: starting would merge two clusters' logs. */
export class ClusterIdMismatchError extends DsyncError {
  constructor(readonly stored: string, readonly configured: string, dataDir: string) {
    super('INVALID_ARGUMENT', `the data in ${dataDir} belongs to cluster "${stored}", but this ` +
      `node is configured for cluster "${configured}". Point the node at cluster "${stored}" ` +
      `again, or give it an empty volume to join "${configured}" as a new member.`,
    { details: { field: 'clusterId', stored, configured, dataDir } });
    this.name = 'ClusterIdMismatchError';
  }
}

/** identity.json is unreadable or not ours: a person must look at the volume. */
export class IdentityFileError extends DsyncError {
  constructor(path: string, why: string) {
    super('INVALID_ARGUMENT', `${path}: ${why}. Restore the file from a backup, or move the ` +
      'data directory away so that the node starts as a new member.', { details: { path } });
    this.name = 'IdentityFileError';
  }
}

export function validClusterId(id: string): boolean {
  return CLUSTER_ID_RE.test(id);
}

/** `<name>-<8 hex>`, the name shortened so that the whole stays a valid node id. */
export function generateNodeId(name: string, random: (bytes: number) => Buffer): string {
  const suffix = random(NODE_ID_SUFFIX_HEX / 2).toString('hex');
  const stem = name.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '')
    .slice(0, 63 - 1 - NODE_ID_SUFFIX_HEX).replace(/[^a-z0-9]+$/, '');
  const id = stem === '' ? `node-${suffix}` : `${stem}-${suffix}`;
  if (!NODE_ID_RE.test(id)) throw new Error(`generated node id ${id} is not a valid node id`);
  return id;
}

function parseIdentity(path: string, text: string): NodeIdentity {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new IdentityFileError(path, 'is not JSON');
  }
  const o = v as Partial<NodeIdentity> | null;
  if (o === null || typeof o !== 'object' || o.version !== IDENTITY_VERSION ||
    typeof o.clusterId !== 'string' || !CLUSTER_ID_RE.test(o.clusterId) ||
    typeof o.nodeId !== 'string' || !NODE_ID_RE.test(o.nodeId) ||
    typeof o.name !== 'string' || typeof o.createdAtMs !== 'number') {
    throw new IdentityFileError(path, `is not a version ${IDENTITY_VERSION} dsync identity`);
  }
  return o as NodeIdentity;
}

async function writeIdentity(dir: string, id: NodeIdentity, sync: FsSync): Promise<void> {
  await writeFileDurably(dir, IDENTITY_FILE, `${JSON.stringify(id, null, 2)}\n`, sync, 0o600);
}

/** Reads the identity of the volume, or makes one on first boot; refuses another cluster's
 * volume. */
export async function loadOrCreateIdentity(opts: IdentityOptions): Promise<LoadedIdentity> {
  if (!CLUSTER_ID_RE.test(opts.clusterId)) {
    throw new DsyncError('INVALID_ARGUMENT', `cluster id "${opts.clusterId}" must be 1..63 ` +
      'characters of a-z, 0-9 and -', { details: { field: 'clusterId' } });
  }
  await mkdir(opts.dataDir, { recursive: true });
  const path = join(opts.dataDir, IDENTITY_FILE);
  const others = (await readdir(opts.dataDir)).filter((n) => !n.startsWith(IDENTITY_FILE));
  let text: string | null = null;
  try {
    const buf = await readFile(path);
    if (buf.byteLength > IDENTITY_BYTES_MAX) throw new IdentityFileError(path, 'is too large');
    text = buf.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== null) {
    const identity = parseIdentity(path, text);
    if (identity.clusterId !== opts.clusterId) {
      throw new ClusterIdMismatchError(identity.clusterId, opts.clusterId, opts.dataDir);
    }
    return { identity, created: false, dataEmpty: others.length === 0, adopted: false };
  }
  const adopted = others.length > 0;
  if (adopted && !NODE_ID_RE.test(opts.name)) {
    throw new IdentityFileError(path, `is missing beside existing data, and the name ` +
      `"${opts.name}" is not a node id the data could have been written under`);
  }
  const identity: NodeIdentity = {
    version: IDENTITY_VERSION, clusterId: opts.clusterId, name: opts.name,
    nodeId: adopted ? opts.name : generateNodeId(opts.name, opts.random ?? randomBytes),
    createdAtMs: (opts.nowMs ?? Date.now)(),
  };
  await writeIdentity(opts.dataDir, identity, new FsSync(opts.fsync ?? true));
  return { identity, created: true, dataEmpty: !adopted, adopted };
}
