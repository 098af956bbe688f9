// Runs the real `dsync` binary (bin/dsync.js over dist/: `npm run build` first) as a child
// process, for tests of the command line: output, exit code, and never a stack trace.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { BIN, ROOT } from './cluster.js';
import { waitFor } from './wait.js';

export interface CliResult { code: number; stdout: string; stderr: string }

/** The variables that point the CLI somewhere or change its output, removed so that only
 * what a test passes counts. */
const CLEARED = new Set(['DSYNC_ENDPOINTS', 'DSYNC_LOCK_ENDPOINTS', 'DSYNC_CACHE_ENDPOINTS',
  'DSYNC_QUEUE_ENDPOINTS', 'DSYNC_OUTPUT', 'DSYNC_PROGRESS_MS']);

function envWith(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !CLEARED.has(k)));
  return { ...env, ...extra };
}

/** Runs `dsync ...args`; never rejects on a non-zero exit. */
export function dsync(args: string[], env: NodeJS.ProcessEnv = {},
  opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? ROOT, timeout: opts.timeoutMs ?? 30_000,
      env: envWith(env),
    }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(new Error(err.message, { cause: err }));
        return;
      }
      resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr });
    });
  });
}

/** A `dsync` that runs while the test acts: its output so far, a wait for text in it, and
 * its exit. */
export class RunningCli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;
  private readonly proc: ChildProcess;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT) {
    this.proc = spawn(process.execPath, [BIN, ...args], {
      cwd, env: envWith(env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.on('data', (b: Buffer) => { this.stdout += b.toString(); });
    this.proc.stderr?.on('data', (b: Buffer) => { this.stderr += b.toString(); });
    this.exited = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => resolve({
        code: code ?? (signal === null ? -1 : 128), stdout: this.stdout, stderr: this.stderr }));
    });
  }

  get pid(): number | undefined { return this.proc.pid; }

  /** Waits until stdout or stderr (`where`) matches `re`; the match. */
  async waitForOutput(re: RegExp, where: 'stdout' | 'stderr' = 'stdout',
    timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return waitFor(`${re} in ${where} of dsync (stdout: ${this.stdout.slice(-300)}; ` +
      `stderr: ${this.stderr.slice(-300)})`, () => this[where].match(re), timeoutMs);
  }

  kill(sig: NodeJS.Signals = 'SIGTERM'): void { this.proc.kill(sig); }
}

/** A stack trace line, as Node prints them: what a friendly error never shows. */
export const STACK_LINE = /^\s+at .+\(.+:\d+:\d+\)$/m;
