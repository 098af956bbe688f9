// Seeded simulation of the coherence protocol (see coherence-sim.ts). A fault phase with
// loss, delay, reordering, partitions and restarts checks the single-writer invariant after
// every step; a healed phase requires every client operation to complete; the whole client
// history must be linearizable per key.
//
// Reproduce a failure:  SIM_SEED=<seed> npx vitest run test/cache/coherence-sim.test.ts
// More seeds:           SIM_SEEDS=500 SIM_SEED_BASE=5000 npx vitest run \
//                         test/cache/coherence-sim.test.ts
// Print the message trace of a failing seed with SIM_TRACE=1.

import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  runCoherenceSeed, World, STEP_MS, paramsFromSeed, type CoherenceOutcome, type WorldParams,
} from './coherence-sim.js';
import { describeGaveUp } from '../support/linearizability.js';

function explain(seed: number, out: CoherenceOutcome): string {
  let trace = '';
  if (process.env.SIM_TRACE === '1') {
    // Run again with tracing on: the world is deterministic, so it is the same run.
    const path = `/tmp/coherence-sim-${seed}.log`;
    writeFileSync(path, runCoherenceSeed(seed, true).world.trace.join('\n'));
    trace = `\nmessage trace written to ${path}`;
  }
  return `seed ${seed} failed: ${out.error}\nparams ${JSON.stringify(out.world.params)}\n` +
    `reproduce with: SIM_SEED=${seed} SIM_TRACE=1 npx vitest run ` +
    `test/cache/coherence-sim.test.ts` + trace;
}

describe('coherence simulation', () => {
  const single = process.env.SIM_SEED;
  const seeds = single !== undefined ? [Number(single)]
    : Array.from({ length: Number(process.env.SIM_SEEDS ?? 120) },
      (_, i) => Number(process.env.SIM_SEED_BASE ?? 1000) + i);
  // Chunks keep each test within the per-test timeout when many seeds are asked for.
  const CHUNK_SEEDS = 20;
  for (let i = 0; i < seeds.length; i += CHUNK_SEEDS) {
    const chunk = seeds.slice(i, i + CHUNK_SEEDS);
    it(`one writer per key, linearizable histories: seeds ${chunk[0]}..${chunk.at(-1)}`,
      async ({ annotate }) => {
        const gaveUp: string[] = [];
        let ops = 0;
        for (const seed of chunk) {
          const out = runCoherenceSeed(seed);
          if (out.error !== null) expect.fail(explain(seed, out));
          if (out.gaveUp.length > 0) gaveUp.push(`seed ${seed}: ${describeGaveUp(out.gaveUp)}`);
          ops += out.world.stats.completed;
        }
        // The checker's search bound must not hide the runs, and the runs must do work. The
        // keys it gave up on are reported either way.
        if (gaveUp.length > 0) await annotate(gaveUp.join('\n'), 'linearizability gave up');
        expect(gaveUp.length, gaveUp.join('\n'))
          .toBeLessThanOrEqual(Math.floor(chunk.length / 10));
        expect(ops).toBeGreaterThan(chunk.length * 50);
      });
  }
});

// Directed cases for the gates a home must pass before it grants (issue: "cache gates"). Each
// drives a quiet world (no faults, no random clients) through the one interleaving that
// breaks the gate, checking the invariants after every step.
describe('coherence gates', () => {
  const quiet = (seed: number, over: Partial<WorldParams> = {}): World => new World(seed, false, {
    ...paramsFromSeed(seed), pods: 3, keys: 1, lossRate: 0, duplicateRate: 0, delayMaxMs: 1,
    restartsPerSecond: 0, partitionsPerSecond: 0, clientsPerPod: 0, driftRatio: 0,
    capacityBytes: 64 * 1024, lostDataDirShare: 0, storeDelayMaxMs: 20, ...over,
  });

  /** Steps until `done` (at most `ms`), failing on a broken invariant. */
  const runUntil = (w: World, done: () => boolean, ms: number): void => {
    for (let t = 0; t < ms && !done(); t += STEP_MS) {
      w.step();
      const broken = w.checkSingleWriter() ?? w.checkWriteThroughGrants();
      if (broken !== null) expect.fail(`seed ${w.seed}: ${broken}`);
    }
    expect(done(), `seed ${w.seed}: not done within ${ms} ms`).toBe(true);
  };
  const roles = (w: World): [string, string, string] => {
    const home = w.homeOf('k0');
    const [a, b] = w.pods.map((p) => p.id).filter((id) => id !== home);
    return [home, a!, b!];
  };

  it('write-through: after a recall the home waits for the store before it grants', () => {
    for (let seed = 1; seed <= 8; seed++) {
      const w = quiet(seed, { writePolicy: 'write-through', storeDelayMaxMs: 60 });
      const [, a, b] = roles(w);
      const idle = (): boolean => w.pendingClients() === 0;
      runUntil(w, () => w.timeMs >= 100, 200);
      w.submit(a, 'write', 'k0');
      runUntil(w, idle, 2000);
      // B's read reaches the home first (the owner is recalled); A's second write follows,
      // so the recall brings back a version the store is still writing.
      w.submit(b, 'read', 'k0');
      w.submit(a, 'write', 'k0');
      runUntil(w, idle, 2000);
      expect(w.history.every((o) => o.ret !== null && o.ret !== -1)).toBe(true);
    }
  });

  it('a home whose data dir was lost waits out (or asks about) the copies of its last life',
    () => {
      for (let seed = 1; seed <= 8; seed++) {
        const w = quiet(seed, { writePolicy: 'write-through' });
        const [home, a, b] = roles(w);
        const idle = (): boolean => w.pendingClients() === 0;
        runUntil(w, () => w.timeMs >= 100, 200);
        w.submit(a, 'write', 'k0');
        runUntil(w, idle, 2000);
        expect(w.pod(a).node!.lineState('k0')).toBe('M');
        // kill -9 of the home and of its volume: the next life has no incarnation record.
        w.crash(w.pod(home), true);
        runUntil(w, () => w.pod(home).node !== null, 1000);
        w.submit(b, 'write', 'k0');
        runUntil(w, idle, 3000);
        expect(w.history.every((o) => o.ret !== null && o.ret !== -1)).toBe(true);
      }
    });

  it('startupGraceMs below the lease is refused when a pod starts, naming the field', () => {
    expect(() => quiet(1, { startupGraceMs: 500 })).toThrow(/startupGraceMs.*at least leaseMs/);
  });
});
