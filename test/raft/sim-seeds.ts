// Shared by the sim test files: run a range of seeds in chunks, one `it` per chunk, so that a
// failure names its seeds and the line to reproduce it.

import { expect, it } from 'vitest';
import { runSeed, SimFailure } from '../sim/cluster-sim.js';
import { deriveWorld } from '../sim/world.js';

/** Seeds per `it`: small enough that a failing chunk is quick to find. */
export const SEEDS_PER_CHUNK = 100;

export function simSeedRange(from: number, count: number): void {
  for (let lo = from; lo < from + count; lo += SEEDS_PER_CHUNK) {
    const hi = Math.min(from + count, lo + SEEDS_PER_CHUNK);
    it(`seeds ${lo}..${hi - 1} keep every invariant and make progress`, () => {
      const failures: string[] = [];
      let applied = 0;
      for (let seed = lo; seed < hi; seed++) {
        try {
          applied += runSeed(deriveWorld(seed)).committed;
        } catch (err) {
          if (!(err instanceof SimFailure)) throw err;
          failures.push(err.message);
        }
      }
      expect(failures).toEqual([]);
      expect(applied).toBeGreaterThan(0);
    });
  }
}
