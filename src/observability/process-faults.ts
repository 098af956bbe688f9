// What a node does when an error escapes every handler (docs/runtime.md, "Errors that
// escape"):
// - An unhandled promise rejection is a bug in how a result was awaited, not a broken state:
//   the promise has already settled and nothing else depends on it. The node logs it with
//   its stack, counts it in dsync_unhandled_rejections_total (alert on any increase) and keeps
//   serving. Node's default would end the process, and a request pattern that triggers the bug
//   would then take every replica down in turn.
// - An uncaught exception may have left any state half-updated (a throw between two related
//   writes): the node logs it as fatal and exits with EXIT_CODE_UNCAUGHT, and Kubernetes
//   restarts it from its durable log. Invariant violations (assertions) end the process the
//   same way, by design (STYLE.md rule 6).
import { Counter, type Registry } from 'prom-client';
import type { Logger } from './logger.js';

/** The exit code after an uncaught exception (EX_SOFTWARE, as the ready loop's failure). */
export const EXIT_CODE_UNCAUGHT = 70;
/** Longest wait for the fatal log line to drain before exiting. */
const FATAL_FLUSH_WAIT_MS = 1000;

/** The process events, injectable so that tests run without touching their own process. */
export interface FaultHost {
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  on(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  off(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  off(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  exit(code: number): void;
}

export interface FaultPolicy {
  readonly unhandledRejections: Counter;
  /** Removes the listeners (tests). */
  dispose(): void;
}

export function installFaultPolicy(logger: Logger, registry: Registry,
  host: FaultHost = process): FaultPolicy {
  const unhandledRejections = new Counter({
    name: 'dsync_unhandled_rejections_total',
    help: 'Promise rejections nothing handled (a bug: the node logged the stack and kept running)',
    registers: [registry],
  });
  const onRejection = (reason: unknown): void => {
    unhandledRejections.inc();
    const err = reason instanceof Error ? reason : new Error(`non-error rejection: ${String(reason)}`);
    logger.error({ err }, 'unhandled promise rejection (a bug; the node keeps running): ' +
      'report it with this stack');
  };
  const onException = (err: Error): void => {
    logger.fatal({ err }, 'uncaught exception: exiting so the node restarts from its log');
    let exited = false;
    const exitOnce = (): void => {
      if (exited) return;
      exited = true;
      host.exit(EXIT_CODE_UNCAUGHT);
    };
    setTimeout(exitOnce, FATAL_FLUSH_WAIT_MS).unref();
    logger.flush(exitOnce);
  };
  host.on('unhandledRejection', onRejection);
  host.on('uncaughtException', onException);
  return {
    unhandledRejections,
    dispose: () => {
      host.off('unhandledRejection', onRejection);
      host.off('uncaughtException', onException);
    },
  };
}
