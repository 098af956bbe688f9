// The lock table tested by seeded simulation inside the Raft simulator: every node's state
// machine is a LockTable (test/sim/lock-workload.ts), under the simulator's crashes,
// partitions, message loss, compaction and snapshot installs. Besides Raft's own checks,
// after every apply: the table's invariants, byte-identical state at each index on every
// node, strictly increasing fencing tokens, no conflicting holders.
//
// A failure names its seeds. Replay one with
//   LOCK_SIM_SEED=N npx vitest run test/lock/lock-raft-sim.test.ts
// (LOCK_SIM_TRACE=1 as well prints the simulator's trace).

import { describe, expect, it } from 'vitest';
import { emptySimStats, type SimStats } from '../sim/cluster-sim.js';
import { addSimStats, faultShortfalls } from '../sim/fault-coverage.js';
import { LockWorkload, type LockWorkloadStats } from '../sim/lock-workload.js';
import { runMachineSeed } from '../sim/run-machine-seed.js';

const FIRST_SEED = 1;
const SEED_COUNT = 300;
/** Seeds per `it`: a failing chunk is quick to find and replay. */
const SEEDS_PER_CHUNK = 75;

interface RunTotals extends LockWorkloadStats {
  failures: string[];
  /** The simulator's counters, summed over the seeds that completed. */
  sim: SimStats;
}

function replayHint(seed: number): string {
  return `replay with: LOCK_SIM_SEED=${seed} npx vitest run test/lock/lock-raft-sim.test.ts`;
}

function runSeeds(from: number, count: number, trace?: (line: string) => void): RunTotals {
  const totals: RunTotals = { applied: 0, grants: 0, restores: 0, expiries: 0, failures: [],
    sim: emptySimStats() };
  for (let seed = from; seed < from + count; seed++) {
    const machine = new LockWorkload(seed);
    const run = runMachineSeed(seed, machine, replayHint(seed), trace);
    if ('failure' in run) totals.failures.push(run.failure);
    else addSimStats(totals.sim, run.stats);
    totals.applied += machine.stats.applied;
    totals.grants += machine.stats.grants;
    totals.restores += machine.stats.restores;
    totals.expiries += machine.stats.expiries;
  }
  return totals;
}

const replaySeed = process.env.LOCK_SIM_SEED;

describe('lock table in the Raft simulator', () => {
  if (replaySeed !== undefined) {
    it(`seed ${replaySeed} (replay)`, () => {
      const seed = Number(replaySeed);
      expect(Number.isSafeInteger(seed)).toBe(true);
      const trace = process.env.LOCK_SIM_TRACE === '1' ?
        (line: string): void => { console.log(line); } : undefined;
      expect(runSeeds(seed, 1, trace).failures).toEqual([]);
    });
    return;
  }

  for (let lo = FIRST_SEED; lo < FIRST_SEED + SEED_COUNT; lo += SEEDS_PER_CHUNK) {
    const hi = Math.min(FIRST_SEED + SEED_COUNT, lo + SEEDS_PER_CHUNK);
    it(`seeds ${lo}..${hi - 1} keep the lock invariants on every replica`, () => {
      const totals = runSeeds(lo, hi - lo);
      expect(totals.failures).toEqual([]);
      // The workload must reach the interesting parts: grants, expiries, snapshot installs.
      expect(totals.applied).toBeGreaterThan(0);
      expect(totals.grants).toBeGreaterThan(0);
      expect(totals.expiries).toBeGreaterThan(0);
      expect(totals.restores).toBeGreaterThan(0);
      // ...under every kind of fault the simulator has.
      expect(faultShortfalls(totals.sim, hi - lo)).toEqual([]);
    });
  }
});
