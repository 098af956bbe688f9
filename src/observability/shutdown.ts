// Graceful shutdown on SIGTERM/SIGINT: run named steps in order (transfer leadership, flush
// dirty cache lines, drain HTTP, close storage), each under its own deadline, the whole under
// an overall one, then exit 0, or 1 if any step failed or the deadline passed. Kubernetes
// sends SIGKILL after terminationGracePeriodSeconds (30 s by default), so the overall deadline
// must stay below it for the exit code and the last log lines to be ours.
import { assert } from '../assert.js';
import type { Logger } from './logger.js';

/** Overall deadline; below Kubernetes' default 30 s grace period. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 25_000;
/** Most steps one shutdown may have. */
export const SHUTDOWN_STEPS_MAX = 32;
/** Longest wait for the log to drain before exiting. */
const LOG_FLUSH_WAIT_MS = 1000;
export const DEFAULT_SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

export interface ShutdownStep {
  readonly name: string;
  run(): Promise<void>;
  /** The step counts as failed past this; later steps still run. */
  readonly timeoutMs: number;
}

/** The signal source and the exit, injectable so tests run without killing their runner. */
export interface ShutdownHost {
  once(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
  exit(code: number): void;
}

export interface ShutdownOptions {
  readonly logger: Logger;
  readonly deadlineMs?: number;
  readonly host?: ShutdownHost;
}

export interface ShutdownHandle {
  /** Starts the shutdown as if a signal arrived; resolves with the exit code. Idempotent. */
  trigger(reason: string): Promise<number>;
  /** Removes the signal listeners (tests, or a process that hands shutdown to someone else). */
  dispose(): void;
}

const processHost: ShutdownHost = {
  once: (s, l) => process.once(s, l),
  off: (s, l) => process.off(s, l),
  exit: (code) => process.exit(code),
};

export function onShutdown(
  signals: readonly NodeJS.Signals[],
  steps: readonly ShutdownStep[],
  opts: ShutdownOptions,
): ShutdownHandle {
  assert(steps.length <= SHUTDOWN_STEPS_MAX, `at most ${SHUTDOWN_STEPS_MAX} shutdown steps`);
  assert(steps.every((s) => s.timeoutMs > 0), 'every shutdown step needs a positive timeoutMs');
  const host = opts.host ?? processHost;
  const deadlineMs = opts.deadlineMs ?? DEFAULT_SHUTDOWN_DEADLINE_MS;
  const log = opts.logger;
  let running: Promise<number> | null = null;
  const listeners = new Map<NodeJS.Signals, () => void>();

  const finish = (code: number): void => {
    log.info({ exitCode: code }, 'shutdown complete');
    // pino writes asynchronously: flush so that the last lines survive the exit, but do not
    // let a stuck stdout hold the process.
    let exited = false;
    const exitOnce = (): void => {
      if (exited) return;
      exited = true;
      clearTimeout(fallback);
      host.exit(code);
    };
    const fallback = setTimeout(exitOnce, LOG_FLUSH_WAIT_MS);
    log.flush(exitOnce);
  };
  const trigger = (reason: string): Promise<number> => {
    if (running !== null) return running;
    log.info({ reason, steps: steps.map((s) => s.name), deadlineMs }, 'shutting down');
    running = runWithDeadline(steps, deadlineMs, log).then((code) => {
      finish(code);
      return code;
    });
    return running;
  };
  for (const signal of signals) {
    const listener = (): void => {
      // A second signal while steps run means the operator wants out now.
      host.once(signal, () => {
        log.warn({ signal }, 'second signal during shutdown: exiting at once');
        host.exit(1);
      });
      void trigger(signal);
    };
    listeners.set(signal, listener);
    host.once(signal, listener);
  }
  const dispose = (): void => {
    for (const [signal, listener] of listeners) host.off(signal, listener);
    listeners.clear();
  };
  return { trigger, dispose };
}

async function runWithDeadline(
  steps: readonly ShutdownStep[],
  deadlineMs: number,
  log: Logger,
): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<number>((resolve) => {
    timer = setTimeout(() => {
      log.error({ deadlineMs }, 'shutdown deadline passed; exiting with steps unfinished');
      resolve(1);
    }, deadlineMs);
  });
  try {
    return await Promise.race([runSteps(steps, log), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the steps in order, each under its own timeout; 0 when all succeeded, else 1. Used
 * by the signal handler and by a node's own stop(). */
export async function runShutdownSteps(steps: readonly ShutdownStep[], log: Logger):
  Promise<number> {
  return runSteps(steps, log);
}

async function runSteps(steps: readonly ShutdownStep[], log: Logger): Promise<number> {
  let failed = 0;
  for (const step of steps) {
    const startedMs = Date.now();
    try {
      await withTimeout(step);
      log.info({ step: step.name, tookMs: Date.now() - startedMs }, 'shutdown step done');
    } catch (err) {
      failed += 1;
      log.error({ step: step.name, err, tookMs: Date.now() - startedMs }, 'shutdown step failed');
    }
  }
  return failed === 0 ? 0 : 1;
}

async function withTimeout(step: ShutdownStep): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`step ${step.name} did not finish within ${step.timeoutMs} ms`)),
      step.timeoutMs,
    );
  });
  try {
    await Promise.race([step.run(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
