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
import { runCoherenceSeed, type CoherenceOutcome } from './coherence-sim.js';
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
