// The lock workload's checks can fail: lock tables with a planted bug (an exact textual
// replacement in a copy of src/lock, test/support/mutant.ts) run as the replicated state
// machine of the Raft simulator, and its fencing and no-conflict checks must catch each one
// within SEEDS_MAX seeds. The table's own invariant that would catch the conflict first is
// taken out too, so that it is the workload's check that fires.

import { describe, expect, it } from 'vitest';
import { runSeed, SimFailure } from '../sim/cluster-sim.js';
import { SimViolation } from '../sim/checker.js';
import { LockWorkload } from '../sim/lock-workload.js';
import { deriveWorld } from '../sim/world.js';
import { firstCatch, loadMutant, type MutantSpec } from '../support/mutant.js';

import type * as LockTableModule from '../../src/lock/lock-table.js';

const SEEDS_MAX = 100;

const MUTANTS: readonly (MutantSpec & { readonly caughtAs: RegExp })[] = [
  {
    name: 'token-is-log-index',
    bug: 'a grant takes its command\'s log index as fencing token, so the grants of one ' +
      'command share a token',
    folder: 'src/lock',
    replacements: [{ file: 'lock-table.ts',
      find: '    const token = Math.max(ctx.index, this.lastToken + 1);\n' +
        "    assert(token > this.lastToken, 'fencing tokens strictly increase');\n",
      replace: '    const token = ctx.index;\n' }],
    caughtAs: /fencing: n\d+ granted token (\d+) at \d+ after token \1/,
  },
  {
    name: 'shared-beside-exclusive',
    bug: 'a shared request does not conflict with an exclusive holder',
    folder: 'src/lock',
    replacements: [
      { file: 'lock-table.ts', find: "return a === 'exclusive' || b === 'exclusive';",
        replace: "return a === 'exclusive' && b === 'exclusive';" },
      { file: 'lock-table-invariants.ts',
        find: 'assert(exclusive === 0 || e.holders.size === 1, ' +
          '`${where}: exclusive holder is not alone`);',
        replace: '' },
    ],
    caughtAs: /conflicting holders of \w+ on n\d+ at \d+: .*exclusive/,
  },
];

describe('lock workload catches planted lock table bugs', () => {
  for (const m of MUTANTS) {
    it(`catches ${m.name}: ${m.bug}`, async () => {
      const { LockTable } = await loadMutant<typeof LockTableModule>(m, 'lock-table.ts');
      const caught = firstCatch(1, SEEDS_MAX, (seed) => {
        runSeed(deriveWorld(seed), undefined, new LockWorkload(seed, undefined, LockTable));
      });
      expect(caught, `${m.name} survived seeds 1..${SEEDS_MAX}`).not.toBeNull();
      const err = caught?.error;
      expect(err).toBeInstanceOf(SimFailure);
      expect(err?.cause, err?.message).toBeInstanceOf(SimViolation);
      expect(err?.message).toMatch(m.caughtAs);
    });
  }
});
