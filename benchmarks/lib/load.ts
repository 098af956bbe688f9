// A closed-loop load generator: `concurrency` workers each issue one operation, wait for it,
// and issue the next. Closed loop measures what a system sustains with a fixed number of
// requests in flight, which is how the etcd and Redis figures we compare with are quoted.
import { loadavg } from 'node:os';
import { assert } from '../../src/assert.js';
import { LatencyRecorder } from './stats.js';
import type { LatencySummary } from './stats.js';

/** Workers in flight at most: beyond this the generator, not the system, is measured. */
export const CONCURRENCY_MAX = 4096;
/** Longest measured phase (10 minutes): a typo in a duration should not hang a CI job. */
export const DURATION_MS_MAX = 600_000;
/** Most operations in ops mode. */
export const OPS_MAX = 100_000_000;
/** Default warm-up: connections open, JIT settles, leader elected and caches warm. */
export const DEFAULT_WARMUP_MS = 1000;
/** Default progress period on stderr. */
export const DEFAULT_PROGRESS_MS = 2000;
/** Default failed operations tolerated before the run aborts (a broken system is no result). */
export const DEFAULT_ERRORS_MAX = 100;
/** Distinct error messages kept for the report. */
const ERROR_SAMPLES_MAX = 5;
/** A worker yields to the event loop after this many operations of its own. */
const YIELD_EVERY_OPS = 256;

export interface LoadOptions {
  /** Workers, each with one operation in flight. 1..CONCURRENCY_MAX. */
  concurrency: number;
  /** Measured phase length in ms (1..DURATION_MS_MAX). Exactly one of durationMs and ops. */
  durationMs?: number;
  /** Operations in the measured phase (1..OPS_MAX). */
  ops?: number;
  /** Unmeasured warm-up before the measured phase, ms (default DEFAULT_WARMUP_MS; 0 allowed). */
  warmupMs?: number;
  /** Progress line period on stderr, ms (default DEFAULT_PROGRESS_MS; 0 turns it off). */
  progressMs?: number;
  /** Failed operations tolerated before the run rejects (default DEFAULT_ERRORS_MAX). */
  errorsMax?: number;
  /** Shown in the progress line. */
  label?: string;
  /**
   * One operation. `worker` is 0..concurrency-1, `i` a run-wide sequence number. It may
   * resolve to a latency in ns to record instead of its whole duration (the acquire part of
   * an acquire+release cycle, say). It should carry its own deadline: the run waits for
   * every operation it started.
   */
  op: (worker: number, i: number) => Promise<number | void>;
}

export interface LoadResult {
  /** Operations that completed without error inside the measured phase. */
  ops: number;
  errors: number;
  elapsedMs: number;
  opsPerSec: number;
  latency: LatencySummary;
  /** A few distinct error messages, for the report. */
  errorSamples: string[];
  /** The machine's 1-minute load average when the measured phase started and ended: a
   * figure taken while others used the cores is not comparable with one from a quiet machine. */
  loadAvg: { start: number; end: number };
}

interface Phase {
  measuring: boolean;
  stopped: boolean;
  measureStartNs: bigint;
  measureEndNs: bigint;
}

function validate(opts: LoadOptions): void {
  const { concurrency, durationMs, ops } = opts;
  assert(Number.isSafeInteger(concurrency) && concurrency >= 1 && concurrency <= CONCURRENCY_MAX,
    `concurrency must be an integer in [1, ${CONCURRENCY_MAX}], got ${concurrency}`);
  assert((durationMs === undefined) !== (ops === undefined), 'give exactly one of durationMs, ops');
  if (durationMs !== undefined) {
    assert(Number.isSafeInteger(durationMs) && durationMs >= 1 && durationMs <= DURATION_MS_MAX,
      `durationMs must be an integer in [1, ${DURATION_MS_MAX}], got ${durationMs}`);
  }
  if (ops !== undefined) {
    assert(Number.isSafeInteger(ops) && ops >= 1 && ops <= OPS_MAX,
      `ops must be an integer in [1, ${OPS_MAX}], got ${ops}`);
  }
  const warmupMs = opts.warmupMs ?? DEFAULT_WARMUP_MS;
  assert(Number.isSafeInteger(warmupMs) && warmupMs >= 0 && warmupMs <= DURATION_MS_MAX,
    `warmupMs must be an integer in [0, ${DURATION_MS_MAX}], got ${warmupMs}`);
  const errorsMax = opts.errorsMax ?? DEFAULT_ERRORS_MAX;
  assert(Number.isSafeInteger(errorsMax) && errorsMax >= 0, 'errorsMax must be an integer ≥ 0');
}

/** Counts failed operations and keeps a few distinct messages for the report. */
class ErrorTally {
  count = 0;
  readonly samples: string[] = [];
  /** Set once more than `errorsMax` operations failed. */
  fatal: Error | null = null;

  constructor(private readonly label: string, private readonly errorsMax: number) {}

  /** Records a failure; true when the run must stop. */
  add(err: unknown): boolean {
    this.count++;
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    if (this.samples.length < ERROR_SAMPLES_MAX && !this.samples.includes(message)) {
      this.samples.push(message);
    }
    if (this.count > this.errorsMax && this.fatal === null) {
      this.fatal = new Error(`${this.label}: more than ${this.errorsMax} operations failed; ` +
        `first errors: ${this.samples.join(' | ')}`, { cause: err });
    }
    return this.fatal !== null;
  }
}

/**
 * Runs a warm-up, then the measured phase, and resolves once every worker has stopped.
 * Operations still in flight when the measured phase ends finish but do not count.
 * Rejects when more than `errorsMax` operations fail.
 */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  validate(opts);
  const warmupMs = opts.warmupMs ?? DEFAULT_WARMUP_MS;
  const errorsMax = opts.errorsMax ?? DEFAULT_ERRORS_MAX;
  const latency = new LatencyRecorder();
  const phase: Phase = { measuring: false, stopped: false, measureStartNs: 0n, measureEndNs: 0n };
  const tally = new ErrorTally(opts.label ?? 'load', errorsMax);
  let seq = 0;
  // In ops mode the measured operations are numbered from the first one after warm-up.
  let opsBase = 0;
  let measuredOps = 0;
  let loadAtStart = loadavg()[0] ?? 0;

  const startMeasuring = (): void => {
    phase.measuring = true;
    loadAtStart = loadavg()[0] ?? 0;
    opsBase = seq;
    phase.measureStartNs = process.hrtime.bigint();
    if (opts.durationMs !== undefined) {
      phase.measureEndNs = phase.measureStartNs + BigInt(opts.durationMs) * 1_000_000n;
    }
  };
  // Warm-up ends by the clock, checked by the workers: no timer that a busy loop could starve.
  const warmupEndNs = process.hrtime.bigint() + BigInt(warmupMs) * 1_000_000n;
  const worker = async (w: number): Promise<void> => {
    for (let local = 1; !phase.stopped; local++) {
      if (!phase.measuring && process.hrtime.bigint() >= warmupEndNs) startMeasuring();
      if (opts.ops !== undefined && phase.measuring && seq - opsBase >= opts.ops) break;
      const i = seq++;
      const counted = phase.measuring;
      const startNs = process.hrtime.bigint();
      let reportedNs: number | void = undefined;
      let failed = false;
      try {
        reportedNs = await opts.op(w, i);
      } catch (err) {
        if (tally.add(err)) phase.stopped = true;
        failed = true;
      }
      const endNs = process.hrtime.bigint();
      const late = opts.durationMs !== undefined && phase.measuring && endNs > phase.measureEndNs;
      if (late) phase.stopped = true;
      if (failed || !counted || late) continue;
      measuredOps++;
      if (opts.durationMs === undefined) phase.measureEndNs = endNs;
      latency.record(typeof reportedNs === 'number' ? reportedNs : endNs - startNs);
      // Operations that resolve at once would otherwise starve timers and IO (the progress
      // line, the system's own sockets); yield to the event loop now and then.
      if (local % YIELD_EVERY_OPS === 0) await new Promise<void>((r) => setImmediate(r));
    }
  };

  const progress = startProgress(opts, () => ({ measuredOps, errors: tally.count, phase }));
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
  } finally {
    if (progress !== undefined) clearInterval(progress);
  }
  if (tally.fatal !== null) throw tally.fatal;
  const elapsedMs = Math.max(0, Number(phase.measureEndNs - phase.measureStartNs) / 1e6);
  return {
    ops: measuredOps, errors: tally.count, elapsedMs,
    opsPerSec: elapsedMs > 0 ? (measuredOps * 1000) / elapsedMs : 0,
    latency: latency.summary(), errorSamples: tally.samples,
    loadAvg: { start: loadAtStart, end: loadavg()[0] ?? 0 },
  };
}

function startProgress(
  opts: LoadOptions, read: () => { measuredOps: number; errors: number; phase: Phase },
): NodeJS.Timeout | undefined {
  const periodMs = opts.progressMs ?? DEFAULT_PROGRESS_MS;
  if (periodMs <= 0) return undefined;
  const startNs = process.hrtime.bigint();
  let lastOps = 0;
  let lastNs = startNs;
  const timer = setInterval(() => {
    const { measuredOps, errors, phase } = read();
    const nowNs = process.hrtime.bigint();
    // The rate over the part of the period that was measured (the first one is mostly warm-up).
    const fromNs = phase.measuring && phase.measureStartNs > lastNs ? phase.measureStartNs : lastNs;
    const periodS = Number(nowNs - fromNs) / 1e9;
    const rate = periodS > 0 ? (measuredOps - lastOps) / periodS : 0;
    lastOps = measuredOps;
    lastNs = nowNs;
    const state = phase.measuring ? 'measuring' : 'warming up';
    const sinceS = Number(nowNs - startNs) / 1e9;
    process.stderr.write(`[${opts.label ?? 'load'}] ${sinceS.toFixed(1)}s ${state}: ` +
      `${measuredOps} ops, ${Math.round(rate)} ops/s now, ${errors} errors\n`);
  }, periodMs);
  timer.unref();
  return timer;
}
