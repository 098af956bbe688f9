// k6 executors, as concurrent async VU loops: constant-vus, per-vu-iterations,
// shared-iterations and ramping-vus (run at its peak). Scenarios run one after another (their
// startTime only orders them), which is what a smoke run wants.
import { durationMs } from './duration.js';
import { runtime, type VuContext } from './runtime.js';

export interface Scenario {
  executor?: string; vus?: number; duration?: string; iterations?: number; exec?: string;
  startTime?: string; stages?: Array<{ duration: string; target: number }>;
}

export interface SmokeLimits {
  readonly vusMax: number;
  /** Iterations of one scenario at most. */
  readonly iterationsMax: number;
  /** Time one scenario runs at most. */
  readonly durationMsMax: number;
  /** Enforce latency thresholds too (default: report them only). */
  readonly strictTiming?: boolean;
}

interface Plan {
  readonly vus: number;
  /** Iterations of the whole scenario (Infinity: until the deadline). */
  readonly total: number;
  /** Iterations of one VU. */
  readonly perVu: number;
  readonly durationMs: number;
}

const DEFAULT_MAX_DURATION_MS = 600_000;

function plan(name: string, sc: Scenario, smoke: SmokeLimits | undefined): Plan {
  const executor = sc.executor ?? 'constant-vus';
  let p: Plan;
  if (executor === 'constant-vus') {
    p = { vus: sc.vus ?? 1, total: Infinity, perVu: Infinity,
      durationMs: durationMs(sc.duration, 10_000) };
  } else if (executor === 'per-vu-iterations') {
    p = { vus: sc.vus ?? 1, total: Infinity, perVu: sc.iterations ?? 1,
      durationMs: DEFAULT_MAX_DURATION_MS };
  } else if (executor === 'shared-iterations') {
    p = { vus: sc.vus ?? 1, total: sc.iterations ?? 1, perVu: Infinity,
      durationMs: DEFAULT_MAX_DURATION_MS };
  } else if (executor === 'ramping-vus') {
    const stages = sc.stages ?? [];
    p = { vus: Math.max(1, ...stages.map((s) => s.target)), total: Infinity, perVu: Infinity,
      durationMs: stages.reduce((t, s) => t + durationMs(s.duration, 0), 0) };
  } else {
    throw new Error(`scenario ${name}: executor ${executor} is not supported by this runner`);
  }
  if (smoke === undefined) return p;
  return { vus: Math.min(p.vus, smoke.vusMax), total: Math.min(p.total, smoke.iterationsMax),
    perVu: p.perVu, durationMs: Math.min(p.durationMs, smoke.durationMsMax) };
}

export interface ScenarioRun { readonly iterations: number; readonly vus: number }

export async function runScenario(name: string, sc: Scenario,
  fn: (data: unknown) => unknown, data: unknown,
  opts: { smoke: SmokeLimits | undefined; firstVu: number;
    onError: (scenario: string, err: unknown) => void }): Promise<ScenarioRun> {
  const p = plan(name, sc, opts.smoke);
  const rt = runtime();
  const deadline = Date.now() + p.durationMs;
  let started = 0;
  const vuLoop = async (vu: number): Promise<void> => {
    const ctx: VuContext = { vu, scenario: name, executor: sc.executor ?? 'constant-vus',
      iterationInScenario: 0, iterationInTest: 0 };
    for (let mine = 0; mine < p.perVu && started < p.total && Date.now() < deadline; mine++) {
      ctx.iterationInScenario = mine;
      ctx.iterationInTest = started++;
      const t0 = performance.now();
      await rt.context.run(ctx, async () => {
        try {
          await fn(data);
        } catch (err) {
          opts.onError(name, err);
        }
        rt.add('iterations', 'counter', 1);
        rt.add('iteration_duration', 'trend', performance.now() - t0, {}, true);
      });
    }
  };
  await Promise.all(Array.from({ length: p.vus }, (_, i) => vuLoop(opts.firstVu + i)));
  return { iterations: started, vus: p.vus };
}
