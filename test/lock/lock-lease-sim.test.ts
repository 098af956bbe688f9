// Leases across leader changes with clocks that disagree (docs/locks.md, "Guarantees"): the
// Raft simulator runs the lock service's state machine with every node's clock ahead of real
// time by 0..CLOCK_SKEW_MS, fixed per node, and the lease extension set to that same bound.
// Clients count on a grant from its answer until ttlMs after they sent the request that set
// the lease (as the SDK does); no two clients may count on conflicting grants of one lock at
// once. A new leader proposes its leader-start commands (the extension) before anything else
// of its term; a simulator that skips them must be caught.
//
// Replay one seed with
//   LOCK_SIM_SEED=N npx vitest run test/lock/lock-lease-sim.test.ts
import { describe, expect, it } from 'vitest';
import { runSeed, SimFailure } from '../sim/cluster-sim.js';
import { LOCK_SIM_LIMITS, LockWorkload, type LockWorkloadOptions } from '../sim/lock-workload.js';
import { deriveWorld } from '../sim/world.js';

/** The skew bound of this test, ms: 30 sim steps, comparable to the leases (100..600 ms). */
const CLOCK_SKEW_MS = 300;
const SAFE_SEEDS = 200;
const SEEDS_PER_CHUNK = 100;
/** Seeds the broken simulator runs; it must fail on some of them. */
const BROKEN_SEEDS = 200;

interface Outcome {
  failures: string[];
  clientGrants: number;
  batches: number;
  retries: number;
}

function runSeeds(from: number, count: number, opts: LockWorkloadOptions): Outcome {
  const out: Outcome = { failures: [], clientGrants: 0, batches: 0, retries: 0 };
  for (let seed = from; seed < from + count; seed++) {
    const machine = new LockWorkload(seed, LOCK_SIM_LIMITS, undefined, opts);
    try {
      runSeed(deriveWorld(seed), undefined, machine);
    } catch (err) {
      if (!(err instanceof SimFailure)) throw err;
      const why = err.message.split('\n')[0] ?? err.message;
      out.failures.push(`${why}\nreplay with: LOCK_SIM_SEED=${seed} npx vitest run ` +
        'test/lock/lock-lease-sim.test.ts');
    }
    out.clientGrants += machine.clientStats.grants;
    out.batches += machine.clientStats.batches;
    out.retries += machine.clientStats.retries;
  }
  return out;
}

const replaySeed = process.env.LOCK_SIM_SEED;

describe('leases under clock skew in the Raft simulator', () => {
  if (replaySeed !== undefined) {
    it(`seed ${replaySeed} (replay)`, () => {
      expect(runSeeds(Number(replaySeed), 1, { clockSkewMsMax: CLOCK_SKEW_MS }).failures)
        .toEqual([]);
    });
    return;
  }

  for (let lo = 1; lo <= SAFE_SEEDS; lo += SEEDS_PER_CHUNK) {
    it(`seeds ${lo}..${lo + SEEDS_PER_CHUNK - 1}: no two clients count on conflicting grants ` +
      `(skew up to ${CLOCK_SKEW_MS} ms, extension ${CLOCK_SKEW_MS} ms)`, () => {
      const out = runSeeds(lo, SEEDS_PER_CHUNK, { clockSkewMsMax: CLOCK_SKEW_MS });
      expect(out.failures).toEqual([]);
      // The runs reach what matters: grants checked, batched entries, retried requests.
      // (Per 100 seeds: about 880 grants, 940 batches and 740 retries.)
      expect(out.clientGrants).toBeGreaterThan(400);
      expect(out.batches).toBeGreaterThan(400);
      expect(out.retries).toBeGreaterThan(300);
    });
  }

  it('a runtime that forgets the leader-start commands is caught: a new leader whose clock ' +
    'runs ahead expires a lease its holder still counts on', () => {
    const out = runSeeds(1, BROKEN_SEEDS, { clockSkewMsMax: CLOCK_SKEW_MS, leaderStart: false });
    const lease = out.failures.filter((f) => f.includes('lease safety'));
    expect(lease.length, out.failures.join('\n')).toBeGreaterThan(0);
  });
});
