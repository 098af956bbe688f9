// Planted bugs for the checkers: a copy of one source folder with exact textual replacements,
// written inside the test tree and imported, so a test can show that a simulator catches a
// known bug without any hook in production code.
//
// Every replacement must match exactly once: when a refactor changes the code it targets,
// the mutant fails to build and says so, instead of silently becoming the original. Imports
// that leave the copied folder are rewritten to the original files, so the copy shares
// errors, assertions and types with the rest of the code (instanceof keeps working).

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, tsFilesUnder } from './source-files.js';
/** Ignored by git, eslint and tsc; each mutant gets its own directory, removed after use. */
export const MUTANTS_DIR = join(REPO_ROOT, 'test', '.mutants');

export interface Replacement {
  /** File inside the mutated folder, relative to it ('raft.ts'). */
  readonly file: string;
  /** Text that must occur exactly once in that file. */
  readonly find: string;
  readonly replace: string;
}

export interface MutantSpec {
  /** A short name for messages and the directory. */
  readonly name: string;
  /** What the planted bug is, in a sentence. */
  readonly bug: string;
  /** Folder to copy, relative to the repository ('src/raft'). */
  readonly folder: string;
  readonly replacements: readonly Replacement[];
}

let counter = 0;

/** Applies the replacements to the folder's text files (repo-relative path -> text). */
export function mutateSources(spec: MutantSpec, sources: Map<string, string>): void {
  for (const r of spec.replacements) {
    const path = `${spec.folder}/${r.file}`;
    const text = sources.get(path);
    if (text === undefined) throw new Error(`mutant ${spec.name}: no file ${path}`);
    const count = text.split(r.find).length - 1;
    if (count !== 1) {
      throw new Error(`mutant ${spec.name}: the text to replace occurs ${count} times in ` +
        `${path} (expected exactly once); the code changed: update the mutant to plant ` +
        `"${spec.bug}" in the new code.\n--- text ---\n${r.find}`);
    }
    sources.set(path, text.replace(r.find, () => r.replace));
  }
}

const RELATIVE_IMPORT = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.\.?\/[^'"]+)\2/g;

/** Points the relative imports of `text` (a file at `original`, copied to `copy`) that leave
 * `folder` at the original files; imports inside the folder keep pointing at the copies. */
function rewriteImports(text: string, original: string, copy: string, folder: string): string {
  return text.replace(RELATIVE_IMPORT, (whole, lead: string, quote: string, spec: string) => {
    const target = resolve(dirname(original), spec);
    if (target.startsWith(folder + sep)) return whole;
    let rel = relative(dirname(copy), target).split(sep).join('/');
    if (!rel.startsWith('.')) rel = `./${rel}`;
    return `${lead}${quote}${rel}${quote}`;
  });
}

/**
 * Builds the mutant and imports `entry` (a file of the folder, 'raft.ts') from it. The type
 * parameter is the original module's type: the copy has the same shape.
 */
export async function loadMutant<T>(spec: MutantSpec, entry: string): Promise<T> {
  const folder = resolve(REPO_ROOT, spec.folder);
  const sources = new Map<string, string>();
  for (const file of tsFilesUnder(spec.folder)) {
    sources.set(file, readFileSync(join(REPO_ROOT, file), 'utf8'));
  }
  mutateSources(spec, sources);
  const dir = join(MUTANTS_DIR, `${spec.name}-${process.pid}-${++counter}`);
  const copyOf = (path: string): string =>
    join(dir, relative(dirname(folder), resolve(REPO_ROOT, path)));
  try {
    for (const [path, text] of sources) {
      const original = resolve(REPO_ROOT, path);
      const copy = copyOf(path);
      mkdirSync(dirname(copy), { recursive: true });
      writeFileSync(copy, `// Mutant "${spec.name}": ${spec.bug}\n` +
        rewriteImports(text, original, copy, folder));
    }
    return await import(pathToFileURL(copyOf(`${spec.folder}/${entry}`)).href) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Catch {
  readonly seed: number;
  readonly error: Error;
}

/** Runs `run` on seeds from, from+1, … (at most `count`) until one throws: the first seed
 * that caught the planted bug and what it said, or null when none did. */
export function firstCatch(from: number, count: number, run: (seed: number) => void):
  Catch | null {
  for (let seed = from; seed < from + count; seed++) {
    try {
      run(seed);
    } catch (err) {
      return { seed, error: err instanceof Error ? err : new Error(String(err)) };
    }
  }
  return null;
}
