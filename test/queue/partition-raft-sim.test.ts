// The queue partition tested by seeded simulation inside the Raft simulator: every node's
// state machine is a QueuePartition (test/sim/queue-workload.ts), under the simulator's
// crashes, partitions, message loss, compaction and snapshot installs. Besides Raft's own
// checks, after every apply: the partition's invariants and byte-identical state per index
// on every node; at the first apply of each index, PartitionChecker against the model of the
// committed log (nothing committed lost, no double state, deliveries within maxDeliveries,
// FIFO per key of first deliveries).
//
// A failure names its seeds. Replay one with
//   QUEUE_SIM_SEED=N npx vitest run test/queue/partition-raft-sim.test.ts
// (QUEUE_SIM_TRACE=1 as well prints the simulator's trace).
import { describe, expect, it } from 'vitest';
import { faultShortfalls } from '../sim/fault-coverage.js';
import { runQueueSeeds } from './partition-sim-run.js';

const FIRST_SEED = 1;
const SEED_COUNT = 150;
/** Seeds per `it`: a failing chunk is quick to find and replay. */
const SEEDS_PER_CHUNK = 50;

const replaySeed = process.env.QUEUE_SIM_SEED;

describe('queue partition in the Raft simulator', () => {
  if (replaySeed !== undefined) {
    it(`seed ${replaySeed} (replay)`, () => {
      const seed = Number(replaySeed);
      expect(Number.isSafeInteger(seed)).toBe(true);
      const trace = process.env.QUEUE_SIM_TRACE === '1' ?
        (line: string): void => { console.log(line); } : undefined;
      expect(runQueueSeeds(seed, 1, undefined, trace).failures).toEqual([]);
    });
    return;
  }

  for (let lo = FIRST_SEED; lo < FIRST_SEED + SEED_COUNT; lo += SEEDS_PER_CHUNK) {
    const hi = Math.min(FIRST_SEED + SEED_COUNT, lo + SEEDS_PER_CHUNK);
    it(`seeds ${lo}..${hi - 1} keep the queue's rules on every replica`, () => {
      const t = runQueueSeeds(lo, hi - lo);
      expect(t.failures).toEqual([]);
      // The workload must reach the interesting parts: deliveries, redeliveries, dead
      // letters, acks, snapshot installs.
      expect(t.restores).toBeGreaterThan(0);
      for (const k of ['published', 'received', 'redelivered', 'deadLettered', 'ackedSome']) {
        expect(t.tally[k] ?? 0, k).toBeGreaterThan(0);
      }
      // ...under every kind of fault the simulator has.
      expect(faultShortfalls(t.sim, hi - lo)).toEqual([]);
    });
  }
});
