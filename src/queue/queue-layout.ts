// Where a queue pod keeps its partitions, and what it remembers about the cluster:
//
//   <dataDir>/queue-cluster.json        the partition count the cluster was created with
//   <dataDir>/wal/                      the pod WAL: every partition's log (pod-wal.ts)
//   <dataDir>/partitions/<p>/           one Raft group's snapshots
//   <dataDir>/partitions/<p>/bootstrap.json   the configuration the group started from
//   <dataDir>/partitions/<p>.removed/   a group this pod was removed from (kept, not opened)
//
// Why the files: a Raft group without a snapshot reads its membership as "the bootstrap
// configuration plus the changes in its log", so the bootstrap must stay what it was when the
// group was created, even after the peer list (and with it the placement) changed; it is
// written once and read back on every start. The cluster record tells a restarting pod that
// the cluster is not new: a partition it has no data for is then joined (it waits to be
// added as a learner and starts from the leader's snapshot) instead of bootstrapped, which
// would make a second group under the same number.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { xxh64 } from '@node-rs/xxhash';
import { BOOTSTRAP_FILE, openConfigRecord } from '../discovery/config-record.js';
import { DsyncError, InvalidArgumentError } from '../errors.js';
import type { ClusterConfig, NodeId } from '../raft/types.js';
import { type FsSync, writeFileDurably } from '../storage/fs-sync.js';

export const QUEUE_CLUSTER_FILE = 'queue-cluster.json';
const RECORD_VERSION = 1;
/** Largest record read back: anything bigger is not ours. */
const RECORD_BYTES_MAX = 64 * 1024;

/** The pod WAL, shared by every partition of the pod. */
export function podWalDir(dataDir: string): string {
  return join(dataDir, 'wal');
}

export function partitionsDir(dataDir: string): string {
  return join(dataDir, 'partitions');
}

export function partitionDir(dataDir: string, partition: number): string {
  return join(partitionsDir(dataDir), String(partition));
}

/** Partitions this pod holds data for (directories named by their number). */
export async function partitionsOnDisk(dataDir: string, partitions: number): Promise<number[]> {
  const out: number[] = [];
  for (let p = 0; p < partitions; p++) {
    if (existsSync(join(partitionDir(dataDir, p), BOOTSTRAP_FILE))) out.push(p);
  }
  return out;
}

async function readJson(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  if (text.length > RECORD_BYTES_MAX) throw new Error(`${path} is larger than any record of ours`);
  return JSON.parse(text) as unknown;
}

/** Reads the cluster record, or writes it on a pod's first start. Returns whether the pod
 * may bootstrap partitions it has no data for: only on the first start of a pod of a new
 * cluster (not `--join`). A record with another partition count is refused: P is fixed when
 * the cluster is created. */
export async function openClusterRecord(dataDir: string, partitions: number, joining: boolean):
  Promise<{ mayBootstrap: boolean }> {
  const path = join(dataDir, QUEUE_CLUSTER_FILE);
  if (existsSync(path)) {
    const rec = await readJson(path) as { version?: unknown; partitions?: unknown };
    if (rec.version !== RECORD_VERSION || !Number.isSafeInteger(rec.partitions)) {
      throw new DsyncError('INVALID_ARGUMENT', `${path} is not a dsync queue cluster record; ` +
        'move it away only if this data directory holds no partition of a live cluster');
    }
    if (rec.partitions !== partitions) {
      throw new InvalidArgumentError('partitions', `this pod's data was written by a cluster of ` +
        `${String(rec.partitions)} partitions, and the partition count is fixed when a cluster ` +
        `is created: start it with --partitions ${String(rec.partitions)}`);
    }
    return { mayBootstrap: false };
  }
  return { mayBootstrap: !joining };
}

/** Writes the cluster record once the partitions of a first start exist on disk. */
export async function writeClusterRecord(dataDir: string, partitions: number, pods: NodeId[],
  sync: FsSync): Promise<void> {
  if (existsSync(join(dataDir, QUEUE_CLUSTER_FILE))) return;
  await mkdir(dataDir, { recursive: true });
  const rec = { version: RECORD_VERSION, partitions, createdWith: pods };
  await writeFileDurably(dataDir, QUEUE_CLUSTER_FILE, `${JSON.stringify(rec, null, 2)}\n`, sync);
}

/** The configuration partition `p`'s group starts from: the one recorded when it was
 * created, else `initial` (recorded now, before the group writes anything). */
export function partitionBootstrap(dataDir: string, p: number, initial: ClusterConfig,
  sync: FsSync): Promise<ClusterConfig> {
  return openConfigRecord(partitionDir(dataDir, p), initial, sync);
}

/** Moves a partition this pod was removed from out of the way (kept for an operator to
 * inspect; replaced by the next removal of the same partition). */
export async function retirePartition(dataDir: string, p: number): Promise<void> {
  const to = `${partitionDir(dataDir, p)}.removed`;
  await rm(to, { recursive: true, force: true });
  await rename(partitionDir(dataDir, p), to);
}

/** The receipt salt of a partition (partition-receipt.ts): the same on every replica, not
 * guessable without the cluster's token. */
export function receiptSaltOf(clusterToken: string, partition: number): number {
  return Number(xxh64(`${clusterToken}/queue-partition-${partition}`) & 0xffffffffn);
}
