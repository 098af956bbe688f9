// The pods of a queue cluster and the placement of the partitions on them, as one pod sees it.
// With static peers the pods are the `--peers` list, fixed for the life of the process. With
// discovery dns they are the node ids that the pods 0..wanted-1 of the StatefulSet run under
// (wanted: spec.replicas or --replicas), followed while the pod runs: a pod added, removed, or
// back with an empty volume under a new id changes the list, the placement follows, and each
// partition's leader moves its membership one step at a time (queue-duties.ts). The list
// changes only when every wanted ordinal has a known id, so a pod that is restarting keeps
// its partitions. The last list is kept on disk, so that a restart sees it before its peers
// answer.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { podOfNodeId, ordinalOf } from '../discovery/membership.js';
import type { PodDirectory } from '../discovery/pod-directory.js';
import type { NodeId } from '../raft/types.js';
import { planPlacement } from '../ring/placement.js';
import { type FsSync, writeFileDurably } from '../storage/fs-sync.js';

export const QUEUE_PODS_FILE = 'queue-pods.json';
const RECORD_BYTES_MAX = 64 * 1024;

export class QueueLayout {
  private podList: NodeId[] = [];
  private placement: NodeId[][] = [];

  constructor(readonly partitions: number, private readonly replicationFactor: number,
    pods: readonly NodeId[]) {
    this.set(pods);
  }

  get pods(): readonly NodeId[] { return this.podList; }

  /** The replica set of a partition now, preferred leader first. */
  desired(p: number): readonly NodeId[] {
    return this.placement[p] ?? [];
  }

  /** Replaces the pods (sorted); true when the list changed. */
  set(pods: readonly NodeId[]): boolean {
    const next = [...pods].sort();
    if (next.length === this.podList.length && next.every((id, i) => id === this.podList[i])) {
      return false;
    }
    this.podList = next;
    const replicas = Math.min(this.replicationFactor, next.length);
    this.placement = planPlacement(next, this.partitions, replicas).sets;
    return true;
  }
}

/** The pod list kept on disk, or null. */
export async function readPodsRecord(dataDir: string): Promise<NodeId[] | null> {
  const path = join(dataDir, QUEUE_PODS_FILE);
  if (!existsSync(path)) return null;
  const text = await readFile(path, 'utf8');
  try {
    const rec = (text.length > RECORD_BYTES_MAX ? null : JSON.parse(text)) as
      { pods?: unknown } | null;
    const pods = rec?.pods;
    if (Array.isArray(pods) && pods.length > 0 && pods.every((p) => typeof p === 'string')) {
      return pods;
    }
  } catch {
    // falls through to the refusal
  }
  throw new Error(`${path} is not a dsync queue pod list; move it away to have it rebuilt`);
}

export async function writePodsRecord(dataDir: string, pods: readonly NodeId[], sync: FsSync):
  Promise<void> {
  await writeFileDurably(dataDir, QUEUE_PODS_FILE, `${JSON.stringify({ pods })}\n`, sync);
}

/** The ids of the pods 0..wanted-1: the id a pod answers with now, else the id of the current
 * list that was generated in that pod; null while one of them is unknown. */
export function wantedPods(o: { wanted: number; self: NodeId; selfPod: string;
  statefulSet: string; directory: PodDirectory; current: readonly NodeId[] }): NodeId[] | null {
  const answering = new Map(o.directory.pods().flatMap((r) =>
    r.answer === null ? [] : [[r.ordinal, r.answer.nodeId] as const]));
  const byOrdinal = new Map<number, NodeId>();
  for (const id of o.current) {
    const pod = podOfNodeId(id, o.statefulSet);
    const ord = pod === null ? null : ordinalOf(pod);
    if (ord !== null) byOrdinal.set(ord, id);
  }
  const selfOrdinal = ordinalOf(o.selfPod);
  const out: NodeId[] = [];
  for (let i = 0; i < o.wanted; i++) {
    const id = i === selfOrdinal ? o.self : answering.get(i) ?? byOrdinal.get(i);
    if (id === undefined) return null;
    out.push(id);
  }
  return out;
}

export interface PodFollowerOptions {
  readonly layout: QueueLayout;
  readonly wanted: () => number;
  readonly self: NodeId;
  readonly selfPod: string;
  readonly statefulSet: string;
  readonly directory: PodDirectory;
  readonly dataDir: string;
  readonly sync: FsSync;
  readonly logger: Logger;
  /** Called after the list changed (the node opens partitions it was placed in). */
  readonly changed: () => Promise<void>;
}

/** Follows the wanted pods: call `check()` on every discovery change and periodically. */
export class PodFollower {
  private running = false;

  constructor(private readonly o: PodFollowerOptions) {}

  async check(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const next = wantedPods({ ...this.o, wanted: this.o.wanted(),
        current: this.o.layout.pods });
      if (next === null) return;
      const before = this.o.layout.pods;
      if (!this.o.layout.set(next)) return;
      this.o.logger.info({ from: before, to: this.o.layout.pods },
        'the pods of the queue changed: the partitions follow the new placement');
      await writePodsRecord(this.o.dataDir, this.o.layout.pods, this.o.sync);
      await this.o.changed();
    } catch (err) {
      this.o.logger.warn({ err }, 'could not follow the pods of the queue; will retry');
    } finally {
      this.running = false;
    }
  }
}
