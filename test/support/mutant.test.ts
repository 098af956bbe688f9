// The planted-bug harness must refuse a replacement that no longer matches exactly once, so
// a refactor cannot silently turn a mutant back into the original.

import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type * as Quorum from '../../src/raft/quorum.js';
import { loadMutant, MUTANTS_DIR, mutateSources, type MutantSpec } from './mutant.js';

const spec = (find: string): MutantSpec => ({ name: 't', bug: 'a test bug', folder: 'src/x',
  replacements: [{ file: 'a.ts', find, replace: 'Y' }] });

describe('mutant harness', () => {
  it('replaces text that occurs exactly once', () => {
    const sources = new Map([['src/x/a.ts', 'one two three']]);
    mutateSources(spec('two'), sources);
    expect(sources.get('src/x/a.ts')).toBe('one Y three');
  });

  it('refuses text that is missing or occurs twice, naming the file and the bug', () => {
    expect(() => mutateSources(spec('four'), new Map([['src/x/a.ts', 'one two']])))
      .toThrow(/occurs 0 times in src\/x\/a.ts .*plant "a test bug"/s);
    expect(() => mutateSources(spec('o'), new Map([['src/x/a.ts', 'one two']])))
      .toThrow(/occurs 2 times/);
    expect(() => mutateSources(spec('x'), new Map())).toThrow(/no file src\/x\/a.ts/);
  });

  it('imports a mutated copy that shares modules outside the folder, then removes it',
    async () => {
      const before = existsSync(MUTANTS_DIR) ? readdirSync(MUTANTS_DIR).length : 0;
      const quorum = await loadMutant<typeof Quorum>({
        name: 'quorum-of-one', bug: 'any single voter is a quorum', folder: 'src/raft',
        replacements: [{ file: 'quorum.ts', find: 'return Math.floor(voterCount / 2) + 1;',
          replace: 'return 1;' }],
      }, 'quorum.ts');
      expect(quorum.quorumSize(5)).toBe(1);
      // The copy's assert is the original module (rewritten import): same error class.
      const { AssertionError } = await import('../../src/assert.js');
      expect(() => quorum.quorumSize(0)).toThrow(AssertionError);
      expect(existsSync(MUTANTS_DIR) ? readdirSync(MUTANTS_DIR).length : 0).toBe(before);
    });
});
