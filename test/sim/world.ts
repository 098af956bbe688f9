// A simulated world derived from one seed: cluster size, Raft options, fault rates and the
// workload mix. Every seed gets a different world so that many seeds cover many situations.

import { seededRand } from '../../src/raft/rand.js';
import type { Rand } from '../../src/raft/rand.js';

export interface SimWorld {
  readonly seed: number;
  readonly nodeCount: 3 | 5;
  /** Safety-phase length in sim steps (one tick per node per step). */
  readonly safetySteps: number;
  /** Steps allowed for the liveness phase to elect a leader and commit everywhere. */
  readonly livenessBudgetSteps: number;
  readonly net: {
    readonly lossRate: number;
    readonly dupRate: number;
    readonly maxDelaySteps: number;
    /** Probability that a message is held up far longer than maxDelaySteps (a stalled
     * connection, a paused process): it arrives after elections and restarts it predates. */
    readonly longDelayRate: number;
    readonly longDelayStepsMax: number;
  };
  readonly faults: {
    readonly partitionRate: number;
    readonly healRate: number;
    readonly crashRate: number;
    readonly crashBeforePersistRate: number;
    readonly crashMidReadyRate: number;
    /** Crash after a Ready's early messages left, before its persist (per such Ready). */
    readonly crashAfterEarlySendRate: number;
    /** Crash after a Ready's messages left, before it is applied (per such Ready). */
    readonly crashAfterSendRate: number;
    readonly restartRate: number;
    /** Probability that a node crashed in the previous step restarts at once (a supervisor
     * restarting the process): it comes back while the messages of its past life are still in
     * flight, so state it failed to persist is missed at once. */
    readonly quickRestartRate: number;
    /** Probability that a node skips a tick in a step (clock drift). */
    readonly tickSkipRate: number;
  };
  /** The disk: a Ready's write may take a few steps, during which the node keeps receiving
   * messages and proposals (as the runtime does while it awaits an fsync). */
  readonly disk: {
    readonly slowWriteRate: number;
    readonly maxWriteSteps: number;
  };
  readonly load: {
    readonly proposeRate: number;
    readonly readRate: number;
    readonly confChangeRate: number;
    readonly compactRate: number;
    readonly transferRate: number;
    readonly maxExtraNodes: number;
    /** Lease reads per step (0 in worlds without them): the leader answers from its state
     * while the lease of its newest quorum-confirmed heartbeat round runs. */
    readonly leaseReadRate: number;
    /** The lease in sim steps from the step its heartbeat round was sent. */
    readonly leaseReadSteps: number;
  };
  readonly raft: {
    readonly electionTicks: number;
    readonly heartbeatTicks: number;
    readonly maxAppendEntries: number;
    readonly maxAppendBytes: number;
    readonly maxInflightAppends: number;
    readonly snapshotChunkBytes: number;
    readonly maxUncommittedEntries: number;
    readonly learnerCatchUpEntries: number;
    readonly maxPendingReads: number;
    /** How much of the log compaction keeps for lagging followers (RaftOptions): enough for
     * what a partition image's transfer lets pile up in the liveness phase. */
    readonly compactTailEntriesMax: number;
    readonly compactTailBytesMax: number;
    readonly preVote: boolean;
    readonly checkQuorum: boolean;
    readonly holdVotesAfterStart: boolean;
  };
}

function pick(r: Rand, lo: number, hi: number): number {
  return lo + r.next() * (hi - lo);
}

export function deriveWorld(seed: number): SimWorld {
  const r = seededRand(seed ^ 0x5eed);
  const calm = r.next() < 0.2; // some worlds have no faults at all
  const f = (lo: number, hi: number): number => (calm ? 0 : pick(r, lo, hi));
  const electionTicks = r.int(6, 12);
  const preVote = r.next() < 0.85;
  const checkQuorum = r.next() < 0.85;
  // Without PreVote and CheckQuorum a removed server that missed its removal disrupts every
  // election (dissertation §4.2.3); such worlds run without membership changes.
  const membership = preVote || checkQuorum;
  const world: Omit<SimWorld, 'faults' | 'disk' | 'net' | 'load' | 'raft'> & {
    load: Omit<SimWorld['load'], 'leaseReadRate' | 'leaseReadSteps'>;
    raft: Omit<SimWorld['raft'],
      'holdVotesAfterStart' | 'compactTailEntriesMax' | 'compactTailBytesMax'>;
    faults: Omit<SimWorld['faults'],
      'crashAfterEarlySendRate' | 'crashAfterSendRate' | 'quickRestartRate'>;
    net: Omit<SimWorld['net'], 'longDelayRate' | 'longDelayStepsMax'>;
  } = {
    seed,
    nodeCount: r.next() < 0.6 ? 3 : 5,
    safetySteps: r.int(150, 300),
    livenessBudgetSteps: 40 * electionTicks,
    net: { lossRate: f(0, 0.15), dupRate: f(0, 0.05), maxDelaySteps: r.int(0, 3) },
    faults: {
      partitionRate: f(0, 0.03),
      healRate: pick(r, 0.02, 0.1),
      crashRate: f(0, 0.01),
      crashBeforePersistRate: f(0, 0.002),
      crashMidReadyRate: f(0, 0.002),
      restartRate: pick(r, 0.02, 0.2),
      tickSkipRate: f(0, 0.2),
    },
    load: {
      proposeRate: pick(r, 0.1, 0.8),
      readRate: pick(r, 0, 0.4),
      confChangeRate: membership ? pick(r, 0, 0.03) : 0,
      compactRate: pick(r, 0, 0.12),
      transferRate: pick(r, 0, 0.01),
      maxExtraNodes: r.int(0, 3),
    },
    raft: {
      electionTicks,
      heartbeatTicks: r.int(1, 3),
      maxAppendEntries: r.int(1, 9),
      maxAppendBytes: r.int(8, 200),
      maxInflightAppends: r.int(1, 8),
      snapshotChunkBytes: r.int(16, 128),
      maxUncommittedEntries: r.int(10, 100),
      learnerCatchUpEntries: r.int(0, 10),
      maxPendingReads: r.int(4, 64),
      preVote,
      checkQuorum,
    },
  };
  // Drawn last so that adding them kept every other field of existing seeds' worlds.
  // Lease reads rest on CheckQuorum's vote refusal and on restarted voters holding theirs.
  const leases = checkQuorum && r.next() < 0.5;
  return {
    ...world,
    load: { ...world.load, leaseReadRate: leases ? pick(r, 0.05, 0.4) : 0,
      leaseReadSteps: electionTicks - 2 },
    faults: { ...world.faults, crashAfterEarlySendRate: f(0, 0.02),
      crashAfterSendRate: f(0, 0.01), quickRestartRate: f(0, 0.6) },
    disk: { slowWriteRate: pick(r, 0, 0.6), maxWriteSteps: r.int(1, 4) },
    net: { ...world.net, longDelayRate: f(0, 0.02), longDelayStepsMax: r.int(8, 40) },
    raft: { ...world.raft, holdVotesAfterStart: leases, compactTailEntriesMax: r.int(40, 400),
      compactTailBytesMax: r.int(4_000, 40_000) },
  };
}
