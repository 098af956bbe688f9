// The coherence simulator's single-writer check can fail: a coherence core with a planted
// bug (an exact textual replacement in a copy of src/cache, test/support/mutant.ts) must be
// caught within SEEDS_MAX seeds of the CI worlds.

import { describe, expect, it } from 'vitest';
import { runCoherenceSeed } from './coherence-sim.js';
import { firstCatch, loadMutant, type MutantSpec } from '../support/mutant.js';

import type * as CoherenceModule from '../../src/cache/coherence.js';

const SEEDS_MAX = 40;
/** The first seed of the CI batch in coherence-sim.test.ts. */
const FIRST_SEED = 1000;

const SHARER_KEEPS_ITS_COPY: MutantSpec = {
  name: 'sharer-ignores-invalidation',
  bug: 'a sharer acknowledges an invalidation but keeps its valid S copy',
  folder: 'src/cache',
  replacements: [{ file: 'coherence-holder.ts',
    find: "          line.state = 'S';\n" +
      '          kept = true;\n' +
      '        } else {\n' +
      '          this.dropLine(msg.key);\n' +
      '        }',
    replace: "          line.state = 'S';\n" +
      '          kept = true;\n' +
      "        } else if (msg.type !== 'inv') {\n" +
      '          this.dropLine(msg.key);\n' +
      '        }' }],
};

describe('coherence simulator catches a planted bug', () => {
  it(`catches ${SHARER_KEEPS_ITS_COPY.name}: ${SHARER_KEEPS_ITS_COPY.bug}`, async () => {
    const { CoherenceNode } = await loadMutant<typeof CoherenceModule>(SHARER_KEEPS_ITS_COPY,
      'coherence.ts');
    const caught = firstCatch(FIRST_SEED, SEEDS_MAX, (seed) => {
      const out = runCoherenceSeed(seed, false, CoherenceNode);
      if (out.error !== null) throw new Error(out.error);
    });
    expect(caught, `survived seeds ${FIRST_SEED}..${FIRST_SEED + SEEDS_MAX - 1}`).not.toBeNull();
    expect(caught?.error.message)
      .toMatch(/^single-writer invariant: key k\d+ held as .*(:S.*:M|:M.*:S)/);
  });
});
