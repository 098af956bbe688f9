// A small runner for our k6 scripts (benchmarks/k6/*.js) where no k6 binary exists, as in
// CI: it provides the parts of `k6`, `k6/http`, `k6/metrics` and `k6/execution` the scripts
// use, runs their scenarios with VUs as concurrent async loops, and evaluates their
// thresholds. Smoke mode shrinks every scenario (few VUs, a few hundred iterations), so that a
// broken script fails CI in seconds; its latency thresholds are reported but only enforced
// with `strictTiming` (they measure the machine as much as the script).
//
//   npx tsx benchmarks/k6-runner/runner.ts benchmarks/k6/locks.js --smoke \
//     -e DSYNC_LOCK_URLS=http://127.0.0.1:8000
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { evaluateThresholds, type ThresholdResult } from './thresholds.js';
import { runtime } from './runtime.js';
import { runScenario, type Scenario, type SmokeLimits } from './scenarios.js';
import { summarize } from './summary.js';

export type { SmokeLimits } from './scenarios.js';

const MODULES: Record<string, string> = {
  'k6': 'k6.ts', 'k6/http': 'http.ts', 'k6/metrics': 'metrics.ts', 'k6/execution': 'execution.ts',
};
/** Files copied per run at most (the script and what it imports from its directory). */
const SCRIPT_FILES_MAX = 64;
/** Iteration errors kept for the report. */
const ERRORS_KEPT_MAX = 10;

export const DEFAULT_SMOKE: SmokeLimits = { vusMax: 4, iterationsMax: 150, durationMsMax: 20_000 };

export interface RunOptions {
  readonly env?: Record<string, string>;
  readonly smoke?: SmokeLimits;
}

export interface RunResult {
  readonly ok: boolean;
  readonly thresholds: ThresholdResult[];
  readonly iterations: Record<string, number>;
  /** Uncaught errors of iterations (the first few), each with its scenario. */
  readonly errors: string[];
  readonly errorCount: number;
  readonly summary: string;
}

interface ScriptModule {
  options?: { scenarios?: Record<string, Scenario>; thresholds?: Record<string, string[]>;
    vus?: number; duration?: string; iterations?: number };
  setup?: () => unknown;
  teardown?: (data: unknown) => unknown;
  [exported: string]: unknown;
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory()
    ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []);
}

/** Copies the script's directory (its .js files) to a temp dir with the k6 imports pointing
 * at our modules; returns the copy of the script. */
function stage(script: string): { entry: string; dir: string } {
  const srcDir = dirname(resolve(script));
  const files = jsFiles(srcDir);
  if (files.length > SCRIPT_FILES_MAX) {
    throw new Error(`${srcDir} has more than ${SCRIPT_FILES_MAX} .js files: give each script a ` +
      'directory of its own');
  }
  const dir = mkdtempSync(join(tmpdir(), 'dsync-k6-'));
  const target = (f: string): string => join(dir, relative(srcDir, f)).replace(/\.js$/, '.mjs');
  for (const f of files) {
    const text = readFileSync(f, 'utf8')
      .replace(/from\s+'(k6(?:\/[a-z]+)?)'/g, (_, mod: string) => {
        const file = MODULES[mod];
        if (file === undefined) throw new Error(`${f}: module ${mod} is not provided here`);
        return `from '${pathToFileURL(join(import.meta.dirname, 'modules', file)).href}'`;
      })
      .replace(/from\s+'(\.{1,2}\/[^']+)\.js'/g, "from '$1.mjs'");
    mkdirSync(dirname(target(f)), { recursive: true });
    writeFileSync(target(f), text);
  }
  return { entry: target(resolve(script)), dir };
}

/** k6's globals for the init context and the VUs. */
function installGlobals(env: Record<string, string>): void {
  const rt = runtime();
  const g = globalThis as Record<string, unknown>;
  g['__ENV'] = env;
  Object.defineProperty(globalThis, '__VU', { configurable: true,
    get: () => rt.context.getStore()?.vu ?? 0 });
  Object.defineProperty(globalThis, '__ITER', { configurable: true,
    get: () => rt.context.getStore()?.iterationInScenario ?? 0 });
}

function scenariosOf(mod: ScriptModule): Record<string, Scenario> {
  const o = mod.options ?? {};
  if (o.scenarios !== undefined) return o.scenarios;
  return { default: o.iterations !== undefined
    ? { executor: 'shared-iterations', vus: o.vus ?? 1, iterations: o.iterations }
    : { executor: 'constant-vus', vus: o.vus ?? 1, duration: o.duration ?? '10s' } };
}

export async function runK6Script(script: string, opts: RunOptions = {}): Promise<RunResult> {
  const env = { ...opts.env };
  runtime().reset(env);
  installGlobals(env);
  const { entry, dir } = stage(script);
  try {
    const mod = await import(pathToFileURL(entry).href) as ScriptModule;
    const data = mod.setup === undefined ? undefined
      : await runtime().context.run({ vu: 0, scenario: 'setup', executor: 'setup',
        iterationInScenario: 0, iterationInTest: 0 }, () => mod.setup!());
    const iterations: Record<string, number> = {};
    const errors: string[] = [];
    let errorCount = 0;
    const onError = (scenario: string, err: unknown): void => {
      errorCount++;
      if (errors.length < ERRORS_KEPT_MAX) errors.push(`${scenario}: ${String(err)}`);
    };
    let firstVu = 1;
    for (const [name, sc] of Object.entries(scenariosOf(mod))) {
      const fnName = sc.exec ?? 'default';
      const fn = mod[fnName];
      if (typeof fn !== 'function') throw new Error(`scenario ${name}: no exported ${fnName}()`);
      const r = await runScenario(name, sc, (d) => (fn as (x: unknown) => unknown)(d), data,
        { smoke: opts.smoke, firstVu, onError });
      iterations[name] = r.iterations;
      firstVu += r.vus;
    }
    await mod.teardown?.(data);
    const thresholds = evaluateThresholds(mod.options?.thresholds ?? {}, runtime().metrics);
    // A full run enforces every threshold, as k6 does; a smoke run its non-timing ones.
    const strict = opts.smoke === undefined || opts.smoke.strictTiming === true;
    const enforced = thresholds.filter((t) => strict || !t.timing);
    const ok = enforced.every((t) => t.ok) && (opts.smoke === undefined || errorCount === 0);
    const summary = summarize(script, runtime().metrics, thresholds, iterations, errors,
      errorCount);
    return { ok, thresholds, iterations, errors, errorCount, summary };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseArgs(argv: readonly string[]): { script: string; opts: RunOptions } {
  const env: Record<string, string> = {};
  let script: string | undefined;
  let smoke: SmokeLimits | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--smoke') smoke = { ...DEFAULT_SMOKE, ...smoke };
    else if (a === '--strict-timing') smoke = { ...DEFAULT_SMOKE, ...smoke, strictTiming: true };
    else if (a === '-e' || a === '--env') {
      const [k, ...v] = (argv[++i] ?? '').split('=');
      if (k === undefined || k === '' || v.length === 0) throw new Error('-e takes NAME=VALUE');
      env[k] = v.join('=');
    } else if (script === undefined) script = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (script === undefined) {
    throw new Error('usage: runner.ts SCRIPT.js [--smoke] [--strict-timing] [-e NAME=VALUE]...');
  }
  return { script, opts: smoke === undefined ? { env } : { env, smoke } };
}

async function main(): Promise<void> {
  const { script, opts } = parseArgs(process.argv.slice(2));
  const r = await runK6Script(script, opts);
  process.stdout.write(r.summary);
  process.exitCode = r.ok ? 0 : 99; // k6's exit code for failed thresholds
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === import.meta.filename) {
  await main();
}
