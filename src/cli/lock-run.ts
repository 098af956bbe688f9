// `dsync lock run NAME -- CMD ARGS…` (etcdctl `lock NAME CMD`): acquire, run the command with
// the fencing token in DSYNC_LOCK_TOKEN while the lease renews in the background, stop the
// command (SIGTERM, then SIGKILL) if the lease is lost, release, and exit with the command's
// exit code — or EXIT_LOST when the lock was lost under it.
import { hostname } from 'node:os';
import type { Command } from 'commander';
import {
  AbortError, LockTimeoutError, type DsyncClient, type Lease, type LockView,
} from '../client/index.js';
import { runChild } from './child.js';
import { clientFor, duration } from './options.js';
import { elapsed, startProgress } from './progress.js';
import { EXIT_LOST, reportErrors, usageError } from './report.js';

/** Exit code when the command cannot be started (as shells say for "not found"). */
export const EXIT_CANNOT_RUN = 127;
export const DEFAULT_RUN_TTL_MS = 30_000;
export const DEFAULT_GRACE_MS = 10_000;

interface RunOptions {
  readonly owner?: string;
  readonly shared?: boolean;
  readonly ttl: number;
  readonly wait?: number;
  readonly grace: number;
}

export function addLockRun(lock: Command): void {
  lock.command('run <name>').description('hold a lock while a command runs (renewed in the ' +
    'background); the command gets the fencing token in DSYNC_LOCK_TOKEN')
    .argument('<command...>', 'the command and its arguments, after --')
    .option('--owner <owner>', 'who holds it (default: host/pid)')
    .option('--shared', 'take it shared instead of exclusive')
    .option('--ttl <duration>', 'lease, renewed every ttl/3 (e.g. 30s)', duration,
      DEFAULT_RUN_TTL_MS)
    .option('--wait <duration>', 'wait at most this long for the lock (default: as long as ' +
      'it takes)', duration)
    .option('--grace <duration>', 'after a lost lease, SIGKILL the command this long after ' +
      'SIGTERM', duration, DEFAULT_GRACE_MS)
    .showHelpAfterError('(the command goes after --: dsync lock run NAME -- CMD ARGS…)')
    .action(async (name: string, argv: string[], o: RunOptions, c: Command) => {
      process.exitCode = await lockRun(c, name, argv, o);
    });
}

async function lockRun(c: Command, name: string, argv: string[], o: RunOptions):
  Promise<number> {
  if (argv.length === 0) return reportErrors([usageError('name a command after --')]);
  const client = clientFor(c, 'lock', { longRunning: true });
  const owner = o.owner ?? `${hostname()}/${process.pid}`;
  let lease: Lease;
  try {
    lease = await acquireWithProgress(client, name, owner, o);
  } catch (err) {
    await client.close();
    return err instanceof AbortError ? interruptedCode(err) : reportErrors([err]);
  }
  const code = await runUnderLease(lease, argv, {
    DSYNC_LOCK_NAME: name, DSYNC_LOCK_OWNER: owner, DSYNC_LOCK_TOKEN: String(lease.token),
  }, o.grace);
  await client.close();
  return code;
}

/** The lock, at once when it is free; otherwise waiting with a progress line on stderr that
 * names the holder. Ctrl-C or SIGTERM while waiting gives up (AbortError). */
async function acquireWithProgress(client: DsyncClient, name: string, owner: string,
  o: RunOptions): Promise<Lease> {
  const base = { owner, mode: o.shared ? 'shared' as const : 'exclusive' as const, ttlMs: o.ttl };
  try {
    return await client.locks.acquire(name, { ...base, waitMs: 0 });
  } catch (err) {
    if (!(err instanceof LockTimeoutError) || o.wait === 0) throw err;
  }
  const interrupted = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => (): void => {
    interrupted.abort(new Error(sig));
  };
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) process.once(s, h);
  const started = performance.now();
  let view: LockView | null = await client.locks.get(name).catch(() => null);
  let lookedAt = performance.now();
  const look = (): void => {
    if (performance.now() - lookedAt < 1000) return;
    lookedAt = performance.now();
    void client.locks.get(name, { signal: interrupted.signal }).then((v) => { view = v; },
      () => undefined);
  };
  const progress = startProgress(() => {
    look();
    return `dsync: waiting for lock ${name} (${holders(view)}) for ` +
      `${elapsed(performance.now() - started)}${o.wait === undefined ? ''
        : ` of ${elapsed(o.wait)}`}; Ctrl-C gives up`;
  });
  try {
    const opts = { ...base, signal: interrupted.signal };
    return o.wait === undefined ? await client.locks.acquireBlocking(name, opts)
      : await client.locks.acquire(name, { ...opts, waitMs: o.wait });
  } finally {
    progress.stop();
    for (const [s, h] of handlers) process.off(s, h);
  }
}

function holders(v: LockView | null): string {
  if (v === null) return 'held';
  const h = v.holders.map((x) => `${x.owner}, token ${x.token}`).join('; ');
  return `held by ${h || 'nobody'}${v.waiters.length > 0 ? `; ${v.waiters.length} waiting` : ''}`;
}

function interruptedCode(err: AbortError): number {
  const sig = err.cause instanceof Error ? err.cause.message : '';
  process.stderr.write(`dsync: interrupted (${sig || 'aborted'}) while waiting for the lock; ` +
    'nothing was run\n');
  return sig === 'SIGTERM' ? 143 : 130;
}

/**
 * Runs `argv` while `lease` holds; on its loss stops the command (SIGTERM, SIGKILL after
 * graceMs) and answers EXIT_LOST; otherwise the command's exit code. Releases the lease when
 * the command has ended (a failed release is reported; the lease then runs out by itself).
 */
export async function runUnderLease(lease: Lease, argv: readonly string[],
  env: Record<string, string>, graceMs: number): Promise<number> {
  let child;
  try {
    child = runChild(argv, env);
  } catch (err) {
    await lease.release().catch(() => undefined);
    process.stderr.write(`dsync: cannot run ${argv[0]}: ${(err as Error).message}\n`);
    return EXIT_CANNOT_RUN;
  }
  let lost = false;
  lease.once('lost', (err) => {
    lost = true;
    reportErrors([err]);
    process.stderr.write(`dsync: stopping the command (pid ${child.pid}): SIGTERM, then ` +
      `SIGKILL after ${elapsed(graceMs)}\n`);
    child.stop(graceMs);
  });
  let code: number;
  try {
    code = (await child.done).exitCode;
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'command not found'
      : (err as Error).message;
    process.stderr.write(`dsync: cannot run ${argv[0]}: ${why}\n`);
    code = EXIT_CANNOT_RUN;
  }
  try {
    await lease.release();
  } catch (err) {
    reportErrors([err]);
    process.stderr.write('dsync: the lock was not released; its lease runs out within ' +
      `${elapsed(lease.ttlMs)}\n`);
  }
  return lost ? EXIT_LOST : code;
}
