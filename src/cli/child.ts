// Runs the command of `lock run` and `elect -- CMD` as a child process: stdio passed through,
// extra environment added, Ctrl-C and SIGTERM passed on to it, and stop() to end it when the
// lock is lost (SIGTERM, then SIGKILL after a grace period).
import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildResult {
  /** Its exit code; for a child ended by a signal, 128 + the signal number, as shells say. */
  readonly exitCode: number;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningChild {
  readonly pid: number | undefined;
  readonly done: Promise<ChildResult>;
  /** SIGTERM now, SIGKILL after graceMs if it is still running. */
  stop(graceMs: number): void;
}

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGUSR1: 10, SIGUSR2: 12,
  SIGPIPE: 13, SIGABRT: 6,
};

export function runChild(argv: readonly string[], env: Record<string, string>): RunningChild {
  const [cmd, ...args] = argv;
  const p: ChildProcess = spawn(cmd!, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  const forward = (sig: NodeJS.Signals) => (): void => { p.kill(sig); };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const done = new Promise<ChildResult>((resolve, reject) => {
    p.once('error', (err) => {
      for (const [s, h] of handlers) process.off(s, h);
      reject(err);
    });
    p.once('exit', (code, signal) => {
      clearTimeout(killTimer);
      for (const [s, h] of handlers) process.off(s, h);
      resolve({ exitCode: code ?? 128 + (SIGNAL_NUMBERS[signal ?? ''] ?? 0), signal });
    });
  });
  return {
    pid: p.pid, done,
    stop: (graceMs) => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      p.kill('SIGTERM');
      killTimer = setTimeout(() => p.kill('SIGKILL'), graceMs);
    },
  };
}
