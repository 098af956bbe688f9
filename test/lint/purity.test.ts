// The purity lint cannot be switched off silently. The simulators rely on the pure files
// being deterministic (STYLE.md 1–2): no clock, timers, randomness, IO, process, global
// object or async code. This test holds its own list of what is pure (the spec, apart from
// eslint.config.js), and checks with ESLint's API that:
// - a planted file full of violations, linted as if it were each pure file in turn, gets
//   every violation reported (so every pure file is covered, and no rule is missing);
// - the pure files as they are have no violation;
// - a pure file imports at run time only pure files and a few deterministic libraries, so
//   impurity cannot come in through an import.

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ESLint, type Linter } from 'eslint';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT as ROOT, repoPath, tsFilesUnder } from '../support/source-files.js';

/** What must be deterministic: the cores, what replicas apply, and what those import. */
const PURE: readonly RegExp[] = [
  /^src\/raft\/.+\.ts$/, /^src\/ring\/.+\.ts$/,
  /^src\/lock\/lock-table.*\.ts$/, /^src\/lock\/(lock-state-machine|commands)\.ts$/,
  /^src\/cache\/coherence.*\.ts$/, /^src\/cache\/lru\.ts$/,
  /^src\/queue\/partition.*\.ts$/,
  /^src\/runtime\/(dedup|envelope|group-machine)\.ts$/,
  /^src\/discovery\/(bootstrap|membership)\.ts$/,
  /^src\/(assert|errors|error-codes|min-heap)\.ts$/,
];
/** Files the list must find, so that a renamed folder cannot empty it. */
const MUST_BE_PURE = ['src/raft/raft.ts', 'src/raft/log.ts', 'src/ring/hash-ring.ts',
  'src/lock/lock-table.ts', 'src/lock/lock-state-machine.ts', 'src/lock/commands.ts',
  'src/cache/coherence.ts', 'src/cache/lru.ts', 'src/runtime/dedup.ts',
  'src/queue/partition.ts', 'src/discovery/bootstrap.ts', 'src/discovery/membership.ts',
  'src/runtime/group-machine.ts'];
/** Libraries a pure file may import: deterministic encoders and hashes. */
const PURE_PACKAGES = new Set(['@node-rs/xxhash', 'msgpackr']);
const PURITY_RULES = new Set(['no-restricted-globals', 'no-restricted-properties',
  'no-restricted-syntax', 'no-restricted-imports']);

/** Each line breaks the rule named beside it; the message must name the culprit. */
const PLANTED: readonly (readonly [code: string, rule: string, culprit: string])[] = [
  ["import { readFileSync } from 'node:fs';", 'no-restricted-imports', 'IO modules'],
  ["import { createHash } from 'crypto';", 'no-restricted-imports', 'IO modules'],
  ["import { EventEmitter } from 'events';", 'no-restricted-imports', 'IO modules'],
  ["import Redis from 'ioredis';", 'no-restricted-imports', 'IO modules'],
  ['export const t1 = (): number => Date.now();', 'no-restricted-globals', 'no Date'],
  ['export const t2 = (): number => performance.now();', 'no-restricted-globals',
    'no performance'],
  ['export const r1 = (): number => Math.random();', 'no-restricted-properties', 'seeded'],
  ['export const r2 = (): string => crypto.randomUUID();', 'no-restricted-globals',
    'no crypto'],
  ['export const g1 = (): unknown => globalThis;', 'no-restricted-globals', 'no globalThis'],
  ['export const g2 = (): unknown => global;', 'no-restricted-globals', 'no global'],
  ['export const p1 = (): unknown => process.env;', 'no-restricted-globals', 'no process'],
  ["export const b1 = (): unknown => Buffer.from('x');", 'no-restricted-globals', 'no Buffer'],
  ['export const s1 = (): unknown => setTimeout(() => 0, 1);', 'no-restricted-globals',
    'no setTimeout'],
  ['export const s2 = (): void => queueMicrotask(() => 0);', 'no-restricted-globals',
    'no queueMicrotask'],
  ["export const c1 = (): void => console.log('x');", 'no-restricted-globals', 'no console'],
  ['export const w1 = (): unknown => new WeakRef({});', 'no-restricted-globals', 'no WeakRef'],
  ['export const q1 = (): unknown => Promise.resolve(1);', 'no-restricted-globals',
    'no Promise'],
  ['export async function a1(): Promise<void> {}', 'no-restricted-syntax', 'async functions'],
  ['export const a2 = async (): Promise<void> => {};', 'no-restricted-syntax',
    'async functions'],
  ['export const a3 = async function (): Promise<void> {};', 'no-restricted-syntax',
    'async functions'],
  ['export function* a4(x: number): Generator<number> { yield x; }', '', ''],
  ['export const a5 = async (): Promise<void> => { await a1(); };', 'no-restricted-syntax',
    'no await'],
  ['export const a6 = async (xs: never[]): Promise<void> => { for await (const x of xs) ' +
    'void x; };', 'no-restricted-syntax', 'no for await'],
  ["export const i1 = (): unknown => import('./x.js');", 'no-restricted-syntax',
    'dynamic import'],
  ['export const i2 = (): string => import.meta.url;', 'no-restricted-syntax', 'import.meta'],
];
const PLANTED_TEXT = `${PLANTED.map(([code]) => code).join('\n')}\n`;

const pureFiles = tsFilesUnder('src').filter((f) => PURE.some((re) => re.test(f)));

/** Only the purity rules, without type information: fast, and any text can be linted. */
function purityLinter(): ESLint {
  return new ESLint({
    cwd: ROOT,
    ruleFilter: ({ ruleId }) => PURITY_RULES.has(ruleId),
    overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
  });
}

function purityMessages(results: readonly ESLint.LintResult[]): Linter.LintMessage[] {
  return results.flatMap((r) => r.messages)
    .filter((m) => m.fatal === true || PURITY_RULES.has(m.ruleId ?? ''));
}

/** Run-time imports of a file (`import type` and `export type` are erased, so skipped). */
function runtimeImports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false);
  const out: string[] = [];
  for (const s of sf.statements) {
    if (ts.isImportDeclaration(s) && s.importClause?.isTypeOnly !== true &&
      ts.isStringLiteral(s.moduleSpecifier)) out.push(s.moduleSpecifier.text);
    if (ts.isExportDeclaration(s) && !s.isTypeOnly && s.moduleSpecifier !== undefined &&
      ts.isStringLiteral(s.moduleSpecifier)) out.push(s.moduleSpecifier.text);
  }
  return out;
}

describe('purity lint', () => {
  let eslint: ESLint;
  beforeAll(() => { eslint = purityLinter(); });

  it('knows the pure files', () => {
    for (const f of MUST_BE_PURE) expect(pureFiles).toContain(f);
  });

  it('reports every planted violation in every pure file', async () => {
    const missed: string[] = [];
    for (const file of pureFiles) {
      const [result] = await eslint.lintText(PLANTED_TEXT, { filePath: join(ROOT, file) });
      const messages = result?.messages ?? [];
      expect(messages.filter((m) => m.fatal === true), file).toEqual([]);
      const wrong: string[] = [];
      PLANTED.forEach(([code, rule, culprit], i) => {
        const onLine = messages.filter((m) => m.line === i + 1);
        const found = onLine.some((m) => m.ruleId === rule && m.message.includes(culprit));
        // A line planted without a rule is allowed code: nothing may be reported on it.
        if (rule === '' ? onLine.length > 0 : !found) wrong.push(`line ${i + 1} "${code}"`);
      });
      if (wrong.length > 0) missed.push(`${file}: ${wrong.length} wrong: ${wrong.join('; ')}`);
    }
    expect(missed).toEqual([]);
  });

  it('does not apply to a file outside the pure set', async () => {
    const [result] = await eslint.lintText(PLANTED_TEXT,
      { filePath: join(ROOT, 'src/runtime/raft-host.ts') });
    expect(purityMessages(result === undefined ? [] : [result])).toEqual([]);
  });

  it('finds no violation in the pure files as they are', async () => {
    const results = await eslint.lintFiles(pureFiles.map((f) => join(ROOT, f)));
    expect(results).toHaveLength(pureFiles.length);
    expect(purityMessages(results).map((m) => `${m.line}: ${m.message}`)).toEqual([]);
  });

  it('lets a pure file import at run time only pure files and deterministic libraries', () => {
    const wrong: string[] = [];
    for (const file of pureFiles) {
      for (const spec of runtimeImports(file)) {
        if (!spec.startsWith('.')) {
          if (!PURE_PACKAGES.has(spec)) wrong.push(`${file} imports package ${spec}`);
          continue;
        }
        const target = repoPath(resolve(ROOT, dirname(file), spec)).replace(/\.js$/, '.ts');
        if (!pureFiles.includes(target)) wrong.push(`${file} imports ${target}, not pure`);
      }
    }
    // A new import of an impure file: move the pure part out of it, or make it pure and add
    // it to PURE here and to PURE_FILES in eslint.config.js.
    expect(wrong).toEqual([]);
  });
});
