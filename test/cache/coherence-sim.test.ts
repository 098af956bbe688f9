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
import { World, STEP_MS } from './coherence-sim.js';
import { checkLinearizable, describeOps } from '../support/linearizability.js';

const FAULT_MS = 6000;
const HEAL_MS = 4000;

interface Outcome {
  readonly error: string | null;
  readonly world: World;
  readonly unknown: boolean;
}

/** Healed time after which every operation must succeed: longer than the request timeout
 * and a restarted home's grace period together. */
const SETTLE_MS = 3000;

export function runSeed(seed: number, tracing = false): Outcome {
  const world = new World(seed, tracing);
  const fail = (why: string): Outcome => ({ error: why, world, unknown: false });
  for (let t = 0; t < FAULT_MS; t += STEP_MS) {
    world.step();
    const broken = world.checkSingleWriter();
    if (broken !== null) return fail(`single-writer invariant: ${broken}`);
  }
  // Liveness: heal everything; once settled, every operation on every pod must succeed.
  world.faults = false;
  for (let t = 0; t < HEAL_MS; t += STEP_MS) {
    if (t === SETTLE_MS) {
      world.completedByPod.clear();
      world.failedSince = 0;
    }
    world.step();
    const broken = world.checkSingleWriter();
    if (broken !== null) return fail(`single-writer invariant (healed): ${broken}`);
  }
  // Every pod completes operations; a few may still time out when many clients hammer one
  // key (queueing, not a stuck protocol), but a stuck key fails all its operations.
  const idle = world.pods.filter((p) => (world.completedByPod.get(p.id) ?? 0) === 0);
  const completed = [...world.completedByPod.values()].reduce((a, b) => a + b, 0);
  if (world.failedSince > completed / 10 || idle.length > 0) {
    return fail(`no progress after healing: ${world.failedSince} failed operations, ` +
      `pods without a completed operation: ${idle.map((p) => p.id).join(', ')}`);
  }
  const result = checkLinearizable(world.checkedHistory(), { statesMax: 100_000 });
  if (result.ok === false) {
    const { history, longestLinearization } = result.counterexample;
    return fail(`history of ${result.key} is not linearizable:\n${describeOps(history)}\n` +
      `longest linearizable prefix:\n${describeOps(longestLinearization)}`);
  }
  return { error: null, world, unknown: result.ok === 'unknown' };
}

function explain(seed: number, out: Outcome): string {
  let trace = '';
  if (process.env.SIM_TRACE === '1') {
    // Run again with tracing on: the world is deterministic, so it is the same run.
    const path = `/tmp/coherence-sim-${seed}.log`;
    writeFileSync(path, runSeed(seed, true).world.trace.join('\n'));
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
    it(`one writer per key, linearizable histories: seeds ${chunk[0]}..${chunk.at(-1)}`, () => {
      let unknown = 0;
      let ops = 0;
      for (const seed of chunk) {
        const out = runSeed(seed);
        if (out.error !== null) expect.fail(explain(seed, out));
        if (out.unknown) unknown++;
        ops += out.world.stats.completed;
      }
      // The checker's search bound must not hide the runs, and the runs must do work.
      expect(unknown).toBeLessThanOrEqual(Math.floor(chunk.length / 10));
      expect(ops).toBeGreaterThan(chunk.length * 50);
    });
  }
});
