// Deterministic simulation of Raft clusters under faults (see test/sim/cluster-sim.ts).
// Seeds 1..1000 here, 1001..2000 in sim-more.test.ts so the two run on both workers.
// A failure prints "reproduce with: npm run sim -- --seed N".

import { describe } from 'vitest';
import { simSeedRange } from './sim-seeds.js';

describe('raft simulation, seeds 1..1000', () => {
  simSeedRange(1, 1000);
});
