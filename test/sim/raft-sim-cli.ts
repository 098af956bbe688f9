// npm run sim -- --seeds 10000 [--from 1]   run many seeds with a progress line
// npm run sim -- --seed 42                   replay one seed with a verbose trace

import { emptySimStats, runSeed, SimFailure } from './cluster-sim.js';
import { addSimStats, faultShortfalls } from './fault-coverage.js';
import { deriveWorld } from './world.js';

const PROGRESS_INTERVAL_MS = 3000;

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} needs a natural number`);
  return v;
}

function replay(seed: number): number {
  const world = deriveWorld(seed);
  console.log(`world ${JSON.stringify(world)}`);
  try {
    const stats = runSeed(world, (line) => console.log(line));
    console.log(`seed ${seed} ok ${JSON.stringify(stats)}`);
    return 0;
  } catch (err) {
    console.log(err instanceof Error ? err.message : String(err));
    return 1;
  }
}

function many(from: number, count: number): number {
  let last = Date.now();
  const started = last;
  let failures = 0;
  const total = emptySimStats();
  for (let seed = from; seed < from + count; seed++) {
    try {
      addSimStats(total, runSeed(deriveWorld(seed)));
    } catch (err) {
      failures++;
      console.log(err instanceof SimFailure ? err.message : String(err));
    }
    if (Date.now() - last >= PROGRESS_INTERVAL_MS) {
      last = Date.now();
      const done = seed - from + 1;
      console.log(`${done}/${count} seeds, ${failures} failed, ` +
        `${((last - started) / done).toFixed(1)} ms/seed`);
    }
  }
  const ms = Date.now() - started;
  console.log(`${count} seeds in ${(ms / 1000).toFixed(1)} s (${(ms / count).toFixed(1)} ms/seed),` +
    ` ${total.committed} entries applied, ${failures} failed`);
  console.log(`faults and events: ${JSON.stringify(total)}`);
  const short = faultShortfalls(total, count - failures);
  for (const line of short) console.log(`too few: ${line}`);
  return failures === 0 && short.length === 0 ? 0 : 1;
}

const seed = arg('seed');
process.exitCode = seed !== undefined ? replay(seed) : many(arg('from') ?? 1, arg('seeds') ?? 1000);
