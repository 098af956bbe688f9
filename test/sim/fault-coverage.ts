// The faults a batch of simulator seeds must actually have injected. A simulator whose faults
// were switched off by mistake (a rate that became 0, a branch that no longer runs) still
// passes every invariant, so each batch checks that every kind of fault and every piece of
// the protocol the faults are meant to exercise happened at least this often.

import type { SimStats } from './cluster-sim.js';

/** Minimum counts per 100 seeds of deriveWorld: about a fifth of the smallest count any
 * 100-seed chunk of seeds 1..2000 showed when these were set (in brackets). */
export const FAULTS_PER_100_SEEDS_MIN: Readonly<Partial<Record<keyof SimStats, number>>> = {
  committed: 4600, // [23,184]
  elections: 75, // [386]
  crashes: 130, // [659]
  crashesRandom: 50, // [258]
  crashesBeforePersist: 9, // [46]
  crashesMidReady: 8, // [41]
  crashesAfterEarlySend: 12, // [59]
  crashesAfterSend: 38, // [193]
  restarts: 130, // [659]
  quickRestarts: 37, // [187]
  partitions: 43, // [216]
  oneWayPartitions: 13, // [65]
  heals: 26, // [130]
  drops: 960, // [4,807]
  cutDrops: 450, // [2,267]
  duplicates: 290, // [1,448]
  longDelays: 127, // [638]
  reorders: 17_000, // [86,069]
  tickSkips: 1060, // [5,328]
  slowWrites: 1440, // [7,226]
  compactions: 134, // [670]
  snapshotsSent: 46, // [232]
  snapshotsInstalled: 11, // [56]
  reads: 365, // [1,826]
  readsDropped: 420, // [2,110]
  leaseReads: 113, // [567]
  leaseReadsRefused: 206, // [1,031]
  confChanges: 18, // [89]
  confChangesApplied: 20, // [102]
  transfers: 11, // [55]
  timeoutNows: 5, // [23]
};

/** Adds one run's counters to a batch total. */
export function addSimStats(total: SimStats, run: SimStats): void {
  for (const k of Object.keys(total) as (keyof SimStats)[]) total[k] += run[k];
}

/** What a batch of `seeds` seeds fell short of, one line per counter; empty when none. */
export function faultShortfalls(total: SimStats, seeds: number,
  perHundred: Readonly<Partial<Record<keyof SimStats, number>>> = FAULTS_PER_100_SEEDS_MIN,
): string[] {
  const out: string[] = [];
  for (const [k, min] of Object.entries(perHundred) as [keyof SimStats, number][]) {
    const need = Math.floor(min * seeds / 100);
    if (total[k] < need) out.push(`${k}: ${total[k]} in ${seeds} seeds, expected >= ${need}`);
  }
  return out;
}
