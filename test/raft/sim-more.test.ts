// The second half of the CI simulation seeds (see sim.test.ts).

import { describe } from 'vitest';
import { simSeedRange } from './sim-seeds.js';

describe('raft simulation, seeds 1001..2000', () => {
  simSeedRange(1001, 1000);
});
