// Runs one seed of the Raft simulator with a replicated machine; a failure comes back as one
// line plus a replay hint for the calling test file (the simulator's own hint would replay
// without the machine).
import { runSeed, SimFailure, type SimMachine, type SimStats } from './cluster-sim.js';
import { deriveWorld } from './world.js';

/** The simulator's counters when the seed passed, else the failure's first line and
 * `replay`. */
export function runMachineSeed(seed: number, machine: SimMachine, replay: string,
  trace?: (line: string) => void): { stats: SimStats } | { failure: string } {
  try {
    return { stats: runSeed(deriveWorld(seed), trace, machine) };
  } catch (err) {
    if (!(err instanceof SimFailure)) throw err;
    const why = err.message.split('\n')[0] ?? err.message;
    return { failure: `${why}\n${replay}` };
  }
}
