// The state a k6 script sees through our k6 modules: metric samples, the current VU and
// scenario (per async context, since every VU runs as a concurrent async loop in one
// process), and __ENV. One instance per process, shared by the runner and the modules
// (kept on globalThis so that both see the same one however they were loaded).
import { AsyncLocalStorage } from 'node:async_hooks';

export type MetricType = 'counter' | 'gauge' | 'rate' | 'trend';
export type Tags = Readonly<Record<string, string>>;

export interface Sample { readonly value: number; readonly tags: Tags }

export interface MetricSeries {
  readonly name: string;
  readonly type: MetricType;
  /** A Trend of durations in ms (its thresholds are timing thresholds). */
  readonly isTime: boolean;
  readonly samples: Sample[];
}

export interface VuContext {
  readonly vu: number;
  readonly scenario: string;
  readonly executor: string;
  iterationInScenario: number;
  iterationInTest: number;
}

/** Samples kept per metric at most: a smoke run stays far below; a long run keeps the first. */
export const SAMPLES_PER_METRIC_MAX = 2_000_000;

export class K6Runtime {
  readonly metrics = new Map<string, MetricSeries>();
  readonly context = new AsyncLocalStorage<VuContext>();
  env: Record<string, string> = {};

  metric(name: string, type: MetricType, isTime = false): MetricSeries {
    const have = this.metrics.get(name);
    if (have !== undefined) {
      if (have.type !== type) throw new Error(`metric ${name} is a ${have.type}, not a ${type}`);
      return have;
    }
    const m: MetricSeries = { name, type, isTime, samples: [] };
    this.metrics.set(name, m);
    return m;
  }

  /** Records one sample, tagged with the current scenario plus `tags`. */
  add(name: string, type: MetricType, value: number, tags: Tags = {}, isTime = false): void {
    const m = this.metric(name, type, isTime);
    if (m.samples.length >= SAMPLES_PER_METRIC_MAX) return;
    const scenario = this.context.getStore()?.scenario;
    m.samples.push({ value, tags: scenario === undefined ? { ...tags } : { scenario, ...tags } });
  }

  current(): VuContext {
    const c = this.context.getStore();
    if (c === undefined) throw new Error('k6 API called outside a VU (in the init context?)');
    return c;
  }

  reset(env: Record<string, string>): void {
    this.metrics.clear();
    this.env = env;
  }
}

const KEY = Symbol.for('dsync.k6-runner.runtime');

export function runtime(): K6Runtime {
  const g = globalThis as { [KEY]?: K6Runtime };
  g[KEY] ??= new K6Runtime();
  return g[KEY];
}
