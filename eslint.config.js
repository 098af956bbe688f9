// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The pure files: deterministic code that the simulators and every replica rely on (Raft,
// the lock table and its state machine, the coherence core, the queue partition, the LRU,
// de-duplication, the hash ring, the discovery decisions, and what they import).
// test/lint/purity.test.ts checks that these rules fire on each of them and that their
// imports stay inside this set.
const PURE_FILES = [
  'src/raft/**/*.ts', 'src/ring/**/*.ts',
  'src/lock/lock-table*.ts', 'src/lock/lock-state-machine.ts', 'src/lock/commands.ts',
  'src/cache/coherence*.ts', 'src/cache/lru.ts',
  'src/queue/partition*.ts',
  'src/runtime/dedup.ts', 'src/runtime/envelope.ts', 'src/runtime/group-machine.ts',
  'src/discovery/bootstrap.ts', 'src/discovery/membership.ts',
  'src/assert.ts', 'src/errors.ts', 'src/error-codes.ts', 'src/min-heap.ts',
];

const PURE = 'is pure (deterministic): time, randomness, IO and timers come from outside';
const impureGlobals = [
  // time and timers
  'Date', 'performance', 'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout',
  'clearInterval', 'clearImmediate', 'queueMicrotask',
  // IO, the process, randomness
  'process', 'fetch', 'require', 'crypto', 'console', 'navigator', 'WebSocket',
  // escape hatches to everything above, and what depends on the garbage collector
  'globalThis', 'global', 'eval', 'WeakRef', 'FinalizationRegistry',
  // asynchrony and the Node-only byte buffer (cores use Uint8Array)
  'Promise', 'Buffer', 'AbortController', 'MessageChannel', 'SharedArrayBuffer', 'Atomics',
].map((name) => ({ name, message: `This file ${PURE}: no ${name}.` }));

const impureSyntax = [
  ['FunctionDeclaration[async=true]', 'no async functions'],
  ['FunctionExpression[async=true]', 'no async functions'],
  ['ArrowFunctionExpression[async=true]', 'no async functions'],
  ['AwaitExpression', 'no await'],
  ['ForOfStatement[await=true]', 'no for await'],
  ['ImportExpression', 'no dynamic import()'],
  ["MetaProperty[meta.name='import']", 'no import.meta'],
].map(([selector, what]) => ({ selector, message: `This file ${PURE}: ${what}.` }));

const impureModules = [
  'node:*', 'fs', 'fs/*', 'net', 'http', 'https', 'http2', 'os', 'crypto', 'timers', 'timers/*',
  'child_process', 'worker_threads', 'dgram', 'dns', 'dns/*', 'tls', 'perf_hooks',
  'async_hooks', 'cluster', 'readline', 'process', 'vm', 'v8', 'events', 'stream', 'stream/*',
  'ioredis', 'koa', '@koa/*', 'pino', 'prom-client', 'undici', 'commander', 'etcd3',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bin/**', 'eslint.config.js',
    'benchmarks/k6/**', 'test/.mutants/**', 'test/k6/fixtures/**', 'helm/**', '.tools/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      'max-len': ['error', { code: 100, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreComments: false }],
    },
  },
  {
    // The pages' own scripts run in the browser as they are (no build step, no types).
    files: ['src/ui/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'script',
      globals: Object.fromEntries(['window', 'document', 'fetch', 'setTimeout', 'clearTimeout',
        'AbortController', 'Node', 'SwaggerUIBundle'].map((g) => [g, 'readonly'])),
    },
  },
  {
    files: PURE_FILES,
    rules: {
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random',
        message: `This file ${PURE}: use the injected seeded random source.` }],
      'no-restricted-syntax': ['error', ...impureSyntax],
      'no-restricted-imports': ['error',
        { patterns: [{ group: impureModules, message: `This file ${PURE}: no IO modules.` }] }],
    },
  },
);
