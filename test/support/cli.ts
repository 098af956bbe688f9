// Runs the real `dsync` binary (bin/dsync.js over dist/: `npm run build` first) as a child
// process, for tests of the command line: output, exit code, and never a stack trace.
import { execFile } from 'node:child_process';
import { BIN, ROOT } from './cluster.js';

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs `dsync ...args`; never rejects on a non-zero exit. The DSYNC_*_URLS of the test's own
 * environment are cleared so that only what the test passes counts. */
export function dsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], {
      cwd: ROOT, timeout: 30_000,
      env: { ...process.env, DSYNC_LOCK_URLS: '', DSYNC_CACHE_URLS: '', ...env },
    }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(new Error(err.message, { cause: err }));
        return;
      }
      resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr });
    });
  });
}

/** A stack trace line, as Node prints them: what a friendly error never shows. */
export const STACK_LINE = /^\s+at .+\(.+:\d+:\d+\)$/m;
