// Shared by the sim test files: run a range of seeds in chunks, one `it` per chunk, so that a
// failure names its seeds and the line to reproduce it. Each chunk also checks that its seeds
// injected every kind of fault (fault-coverage.ts): a simulator that silently stopped
// crashing nodes or losing messages would otherwise still pass.

import { expect, it } from 'vitest';
import { emptySimStats, runSeed, SimFailure } from '../sim/cluster-sim.js';
import { addSimStats, faultShortfalls } from '../sim/fault-coverage.js';
import { deriveWorld } from '../sim/world.js';

/** Seeds per `it`: small enough that a failing chunk is quick to find. */
export const SEEDS_PER_CHUNK = 100;

export function simSeedRange(from: number, count: number): void {
  for (let lo = from; lo < from + count; lo += SEEDS_PER_CHUNK) {
    const hi = Math.min(from + count, lo + SEEDS_PER_CHUNK);
    it(`seeds ${lo}..${hi - 1} keep every invariant, make progress and inject every fault`,
      () => {
        const failures: string[] = [];
        const total = emptySimStats();
        for (let seed = lo; seed < hi; seed++) {
          try {
            addSimStats(total, runSeed(deriveWorld(seed)));
          } catch (err) {
            if (!(err instanceof SimFailure)) throw err;
            failures.push(err.message);
          }
        }
        expect(failures).toEqual([]);
        expect(faultShortfalls(total, hi - lo)).toEqual([]);
      });
  }
}
