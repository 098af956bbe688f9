// Runs seeds of the Raft simulation with a queue partition as its state machine and sums
// what they did; failures are collected with a line that replays the seed.
import { emptySimStats, type SimStats } from '../sim/cluster-sim.js';
import { addSimStats } from '../sim/fault-coverage.js';
import { QueueWorkload, type PartitionFactory } from '../sim/queue-workload.js';
import { runMachineSeed } from '../sim/run-machine-seed.js';

export interface QueueSimTotals {
  applied: number;
  commands: number;
  restores: number;
  tally: Record<string, number>;
  failures: string[];
  /** The simulator's counters, summed over the seeds that completed. */
  sim: SimStats;
}

function replayHint(seed: number): string {
  return `replay with: QUEUE_SIM_SEED=${seed} npx vitest run test/queue/partition-raft-sim.test.ts`;
}

export function runQueueSeeds(from: number, count: number, factory?: PartitionFactory,
  trace?: (line: string) => void, rulesOnly = false): QueueSimTotals {
  const totals: QueueSimTotals = { applied: 0, commands: 0, restores: 0, tally: {},
    failures: [], sim: emptySimStats() };
  for (let seed = from; seed < from + count; seed++) {
    const machine = new QueueWorkload(seed, factory, rulesOnly);
    const run = runMachineSeed(seed, machine, replayHint(seed), trace);
    if ('failure' in run) totals.failures.push(run.failure);
    else addSimStats(totals.sim, run.stats);
    totals.applied += machine.stats.applied;
    totals.commands += machine.stats.commands;
    totals.restores += machine.stats.restores;
    for (const [k, n] of Object.entries(machine.stats.tally)) {
      totals.tally[k] = (totals.tally[k] ?? 0) + n;
    }
  }
  return totals;
}
