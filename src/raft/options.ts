// Options of the Raft core, their defaults and their validation.

import { InvalidArgumentError } from '../errors.js';
import type { Rand } from './rand.js';
import type { NodeId } from './types.js';

export interface RaftOptions {
  id: NodeId;
  /** Election timeout in ticks; the randomized timeout is in [electionTicks, 2*electionTicks).
   * Default 10, bounds [2, 10_000], must exceed heartbeatTicks. */
  electionTicks: number;
  /** Leader heartbeat interval in ticks. Default 1, bounds [1, electionTicks). */
  heartbeatTicks: number;
  /** Entries per append message. Default 256, bounds [1, 65_536]. */
  maxAppendEntries: number;
  /** Bytes of entry data per append message (one larger entry is still sent alone).
   * Default 1 MiB, bounds [1, 64 MiB]. */
  maxAppendBytes: number;
  /** Pipelined appends per follower before waiting for acks. Default 64, bounds [1, 4096]. */
  maxInflightAppends: number;
  /** InstallSnapshot chunk size in bytes. Default 256 KiB, bounds [1, 64 MiB]. */
  snapshotChunkBytes: number;
  /** The leader refuses proposals while this many entries are uncommitted (retryable
   * RESOURCE_EXHAUSTED). Default 4096, bounds [1, 1_000_000]. */
  maxUncommittedEntries: number;
  /** A learner within this many entries of the leader's last index is promoted.
   * Default 64, bounds [0, 1_000_000]. */
  learnerCatchUpEntries: number;
  /** ReadIndex requests queued on the leader at once (retryable RESOURCE_EXHAUSTED beyond).
   * Default 4096, bounds [1, 1_000_000]. */
  maxPendingReads: number;
  /** compact() keeps, before the snapshot's index, the entries a leader's followers still
   * need (after their match, or after the snapshot a follower is being sent), up to this
   * many, so that a follower a little behind, or one that just installed an older snapshot,
   * catches up from the log rather than needing the next snapshot. Default 10,000, bounds
   * [0, 1_000_000]. */
  compactTailEntriesMax: number;
  /** ...and at most this many bytes of entry data. Default 64 MiB, bounds [0, 1 GiB]. */
  compactTailBytesMax: number;
  /** Pre-vote phase (dissertation §9.6). Default true. */
  preVote: boolean;
  /** Leader steps down without a quorum; followers keep a leader lease. Default true. */
  checkQuorum: boolean;
  /** For an election timeout after it starts, the node refuses (pre-)votes as if it had
   * just heard from a leader. Without it, a voter that restarts forgets the lease it gave a
   * leader and could help elect another at once, which lease-based reads must exclude
   * (docs/runtime.md, "Lease reads"). Default false; RaftGroup turns it on. */
  holdVotesAfterStart: boolean;
  rand: Rand;
}

export const DEFAULT_RAFT_OPTIONS: Omit<RaftOptions, 'id' | 'rand'> = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  maxAppendEntries: 256,
  maxAppendBytes: 1024 * 1024,
  maxInflightAppends: 64,
  snapshotChunkBytes: 256 * 1024,
  maxUncommittedEntries: 4096,
  learnerCatchUpEntries: 64,
  maxPendingReads: 4096,
  compactTailEntriesMax: 10_000,
  compactTailBytesMax: 64 * 1024 * 1024,
  preVote: true,
  checkQuorum: true,
  holdVotesAfterStart: false,
});

const MIB = 1024 * 1024;
const INT_BOUNDS: Record<string, readonly [number, number]> = {
  electionTicks: [2, 10_000],
  heartbeatTicks: [1, 10_000],
  maxAppendEntries: [1, 65_536],
  maxAppendBytes: [1, 64 * MIB],
  maxInflightAppends: [1, 4096],
  snapshotChunkBytes: [1, 64 * MIB],
  maxUncommittedEntries: [1, 1_000_000],
  learnerCatchUpEntries: [0, 1_000_000],
  maxPendingReads: [1, 1_000_000],
  compactTailEntriesMax: [0, 1_000_000],
  compactTailBytesMax: [0, 1024 * MIB],
};

/** Merge `input` over the defaults and validate; throws InvalidArgumentError naming the field. */
export function parseRaftOptions(
  input: Partial<RaftOptions> & Pick<RaftOptions, 'id' | 'rand'>,
): RaftOptions {
  const opts: RaftOptions = { ...DEFAULT_RAFT_OPTIONS, ...input };
  if (typeof opts.id !== 'string' || opts.id.length === 0 || opts.id.length > 256) {
    throw new InvalidArgumentError('id', 'id must be a non-empty string of at most 256 chars');
  }
  for (const [field, [lo, hi]] of Object.entries(INT_BOUNDS)) {
    const v = (opts as unknown as Record<string, unknown>)[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi) {
      throw new InvalidArgumentError(field, `${field} must be an integer in [${lo}, ${hi}]`);
    }
  }
  if (opts.heartbeatTicks >= opts.electionTicks) {
    throw new InvalidArgumentError('heartbeatTicks', 'heartbeatTicks must be < electionTicks');
  }
  for (const field of ['preVote', 'checkQuorum', 'holdVotesAfterStart'] as const) {
    if (typeof opts[field] !== 'boolean') {
      throw new InvalidArgumentError(field, `${field} must be a boolean`);
    }
  }
  if (typeof opts.rand?.next !== 'function' || typeof opts.rand.int !== 'function') {
    throw new InvalidArgumentError('rand', 'rand must be a Rand (see src/raft/rand.ts)');
  }
  return opts;
}
