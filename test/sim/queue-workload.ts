// A queue partition as the replicated state machine of the Raft simulator (SimMachine): nodes
// propose random queue commands (test/queue/partition-driver.ts) stamped with the simulated
// clock, every node applies the committed log to its own QueuePartition, and snapshots carry
// `partition.snapshot()`. After every apply on every node: the partition's invariants and
// byte-identical state at each index across nodes (a restored node must re-encode to its
// image and match the others at that index). The first node to apply an index checks the
// command with PartitionChecker against the naive model of the committed log: no committed
// publish is lost, no message is both held and dead-lettered by a group, no delivery exceeds
// maxDeliveries, first deliveries are FIFO per key. Nodes in other states than the first are
// covered by the digest check: their state at each index is byte for byte the first's.
import { seededRand, type Rand } from '../../src/raft/rand.js';
import type { Entry, NodeId } from '../../src/raft/types.js';
import { decodeQueueCommand, encodeQueueCommand } from '../../src/queue/partition-commands.js';
import { QueuePartition, type PartitionOptions } from '../../src/queue/partition.js';
import { PartitionChecker } from '../queue/partition-checks.js';
import { CommandDriver, DRIVER_LIMITS, randomOp } from '../queue/partition-driver.js';
import { SimViolation } from './checker.js';
import type { SimMachine } from './cluster-sim.js';
import { decodeSimEntry, encodeSimEntry, imageDigest } from './lock-workload.js';

/** Simulated ms per sim step: leases of 100..400 ms live 10..40 steps, retention of 1..3 s
 * passes within a run. */
export const QUEUE_SIM_STEP_MS = 10;
const KIND_COMMAND = 1;
const KIND_MARKER = 2;
const SALT = 0x9e37;

/** How the workload makes partitions: planted-bug tests pass variants. */
export interface PartitionFactory {
  create(opts: PartitionOptions): QueuePartition;
  restore(image: Uint8Array, opts: PartitionOptions): QueuePartition;
}

export const REAL_PARTITIONS: PartitionFactory = {
  create: (opts) => new QueuePartition(opts),
  restore: (image, opts) => QueuePartition.restore(image, opts),
};

interface Replica {
  p: QueuePartition;
  index: number;
}

export interface QueueWorkloadStats {
  applied: number;
  commands: number;
  restores: number;
  tally: Record<string, number>;
}

export class QueueWorkload implements SimMachine {
  private readonly rand: Rand;
  private readonly replicas = new Map<NodeId, Replica>();
  /** State digest after each applied index, the first node's that reached it. */
  private readonly digestAt = new Map<number, string>();
  private frontier = 0;
  private readonly checker: PartitionChecker;
  private readonly driver = new CommandDriver();
  private readonly opts: PartitionOptions = { limits: DRIVER_LIMITS, receiptSalt: SALT };
  readonly stats: QueueWorkloadStats = { applied: 0, commands: 0, restores: 0, tally: {} };

  /** `rulesOnly`: see PartitionChecker. */
  constructor(seed: number, private readonly factory: PartitionFactory = REAL_PARTITIONS,
    rulesOnly = false) {
    this.rand = seededRand(seed ^ 0x9ee0e);
    this.checker = new PartitionChecker(DRIVER_LIMITS, SALT, rulesOnly);
    this.stats.tally = this.checker.tally;
  }

  propose(_node: NodeId, step: number): Uint8Array {
    const cmd = this.driver.resolve(randomOp(() => this.rand.next()));
    return encodeSimEntry(KIND_COMMAND, step * QUEUE_SIM_STEP_MS, encodeQueueCommand(cmd));
  }

  marker(seed: number): Uint8Array {
    return encodeSimEntry(KIND_MARKER, 0, new TextEncoder().encode(`live-${seed}`));
  }

  start(node: NodeId, image: Uint8Array | null, index: number): void {
    if (image === null) {
      this.replicas.set(node, { p: this.factory.create(this.opts), index });
      return;
    }
    this.restore(node, image, index);
  }

  restore(node: NodeId, image: Uint8Array, index: number): void {
    const p = this.factory.restore(image, this.opts);
    this.replicas.set(node, { p, index });
    this.stats.restores++;
    const digest = imageDigest(p.snapshot());
    if (digest !== imageDigest(image)) {
      throw new SimViolation(`${node}: partition restored at ${index} re-encodes differently`);
    }
    this.sameState(node, index, digest);
  }

  apply(node: NodeId, entry: Entry): void {
    const r = this.replica(node);
    if (entry.index !== r.index + 1) {
      throw new SimViolation(`queue ${node} applies ${entry.index} after ${r.index}`);
    }
    r.index = entry.index;
    if (entry.type === 'normal') this.applyNormal(r, entry);
    r.p.checkInvariants();
    this.sameState(node, entry.index, imageDigest(r.p.snapshot()));
    this.stats.applied++;
  }

  snapshot(node: NodeId): Uint8Array {
    return this.replica(node).p.snapshot();
  }

  check(): void {
    // Every apply is checked as it happens.
  }

  private applyNormal(r: Replica, entry: Entry): void {
    const { kind, nowMs, payload } = decodeSimEntry(entry.data);
    if (kind === KIND_MARKER) return;
    if (kind !== KIND_COMMAND) throw new SimViolation(`queue sim entry kind ${kind}`);
    const cmd = decodeQueueCommand(payload);
    const out = r.p.apply(cmd, { nowMs });
    if (entry.index <= this.frontier) return;
    // The first node to apply this index: check the command against the committed log's model
    // (before the invariants, so that a broken rule is reported by name).
    this.frontier = entry.index;
    this.stats.commands++;
    this.checker.observe(cmd, nowMs, out, r.p);
    this.driver.observe(cmd, out.result);
  }

  private sameState(node: NodeId, index: number, digest: string): void {
    const known = this.digestAt.get(index);
    if (known === undefined) {
      this.digestAt.set(index, digest);
    } else if (known !== digest) {
      throw new SimViolation(`queue state machine safety: ${node} partition at ${index} is ` +
        `${digest}, another node's was ${known}`);
    }
  }

  private replica(node: NodeId): Replica {
    const r = this.replicas.get(node);
    if (r === undefined) throw new SimViolation(`queue ${node} applies before it started`);
    return r;
  }
}
