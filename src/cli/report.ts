// How the client commands of `dsync` end: data on stdout when it worked (output.ts);
// otherwise one line on stderr that says what happened and one that says what to do next, and
// an exit code a script can act on.
import { DsyncError } from '../client/index.js';
import { print, type OutputFormat } from './output.js';

/** The command worked. */
export const EXIT_OK = 0;
/** The cluster refused or could not do it (not held, timeout, node down, …): maybe later. */
export const EXIT_REFUSED = 1;
/** The command can never work as typed (a bad flag, an out-of-bounds value): fix it. */
export const EXIT_USAGE = 2;
/** `lock run` / `elect -- CMD`: the lock was lost while the command ran, and it was stopped
 * (124, as timeout(1) says its command ran out of time). */
export const EXIT_LOST = 124;

/** A mistake in the command line itself, found before any node was asked. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function usageError(message: string): UsageError {
  return new UsageError(message);
}

/** Error codes that mean the input itself is wrong, wherever it was found out. */
const USAGE_CODES = new Set(['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE']);

const NOT_RUNNING = 'Is the cluster running? Start one with `npx dsync dev`, or point ' +
  '--endpoints (or DSYNC_ENDPOINTS, DSYNC_LOCK_ENDPOINTS, DSYNC_QUEUE_ENDPOINTS, ' +
  'DSYNC_CACHE_ENDPOINTS) at running nodes; `npx dsync status` lists them.';

/** What to do next, per code; the server's own message already says what happened. */
const NEXT_STEP: Readonly<Record<string, string>> = {
  NETWORK: NOT_RUNNING,
  UNAVAILABLE: 'The cluster is electing a leader or a node is down: retry in a few seconds; ' +
    '`npx dsync status` shows every node.',
  BAD_RESPONSE: 'Check --endpoints: it must name dsync nodes of this service.',
  RESOURCE_EXHAUSTED: 'A documented limit was reached (see `limit`): release what you hold, ' +
    'or retry later.',
  INVALID_ARGUMENT: 'Fix the value named by `field` and run the command again.',
  PAYLOAD_TOO_LARGE: 'Send less: the node\'s body limit is in `bytesMax`.',
  LOCK_TIMEOUT: 'Someone else holds it: `dsync lock show NAME` says who; wait longer with ' +
    '--wait.',
  DEADLOCK: 'Release one of the locks in `cycle`, or acquire locks in one fixed order.',
  NOT_HELD: 'The lock is not yours (any more): acquire it again.',
  VERSION_MISMATCH: 'Someone wrote the key in between: read it again (`currentVersion`) and ' +
    'retry with that version.',
  ABORTED: 'Interrupted.',
  LEASE_LOST: 'The lease ran out before it could be renewed: is the lock service reachable ' +
    'and healthy (`dsync status`)? A longer --ttl rides out slower renewals.',
};

/** When the call gave up at its deadline, the advice of what failed last. */
function nextStep(err: DsyncError): string | null {
  if (err.code === 'DEADLINE_EXCEEDED') {
    const last = err.details.lastCode;
    const base = typeof last === 'string' ? NEXT_STEP[last] ?? null : NOT_RUNNING;
    return `${base ?? ''} A longer --timeout waits longer.`.trim();
  }
  return NEXT_STEP[err.code] ?? null;
}

interface Described {
  /** What happened, one or two lines. */
  readonly what: string[];
  /** What to do next, when there is more to say than the message did. */
  readonly next: string | null;
  readonly exitCode: number;
}

/** `err` in words for a person at a terminal, and the exit code it deserves. Errors the SDK
 * does not know are bugs: their message, and the stack with DSYNC_DEBUG=1. */
function describe(err: unknown): Described {
  if (err instanceof DsyncError) {
    const what = [`dsync: ${err.code}: ${err.message}`];
    const details = Object.entries(err.details).filter(([k]) => k !== 'cause' && k !== 'lastCode');
    if (details.length > 0) what.push(JSON.stringify(Object.fromEntries(details)));
    return { what, next: nextStep(err),
      exitCode: USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_REFUSED };
  }
  if (err instanceof UsageError) return { what: [`dsync: ${err.message}`], next: null,
    exitCode: EXIT_USAGE };
  if (err instanceof TypeError && err.message.startsWith('DsyncClient: ')) {
    return { what: [`dsync: ${err.message.slice('DsyncClient: '.length)}`], next: null,
      exitCode: EXIT_USAGE };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { what: [`dsync: unexpected error: ${e.message}`], exitCode: EXIT_REFUSED,
    next: process.env.DSYNC_DEBUG === '1' ? (e.stack ?? null)
      : 'This is a bug in dsync: run again with DSYNC_DEBUG=1 for the stack, and report it.' };
}

/** Prints every error, then each distinct next step once; returns the worst exit code. */
export function reportErrors(errs: readonly unknown[]): number {
  const described = errs.map(describe);
  for (const d of described) process.stderr.write(`${d.what.join('\n')}\n`);
  const next = new Set(described.map((d) => d.next).filter((n) => n !== null && n !== ''));
  for (const n of next) process.stderr.write(`${n}\n`);
  return Math.max(EXIT_OK, ...described.map((d) => d.exitCode));
}

/** Runs one client command: its result printed in `format`, or the error reported. */
export async function run<P = unknown>(format: OutputFormat, fn: () => Promise<unknown>,
  asTable?: (plain: P) => string): Promise<void> {
  try {
    print(format, await fn(), asTable);
  } catch (err) {
    process.exitCode = reportErrors([err]);
  }
}

/** Runs `fn` on every node; prints the answers that came (each with its `node`) and reports
 * each node that failed. Exit code 1 when any node failed. */
export async function runOnEach<T extends object>(format: OutputFormat,
  nodes: readonly string[], fn: (node: string) => Promise<T>): Promise<void> {
  const results = await Promise.allSettled(nodes.map((n) => fn(n)));
  const ok: object[] = [];
  const failed: unknown[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') ok.push({ node: nodes[i], ...r.value });
    else failed.push(r.reason);
  });
  if (ok.length > 0) print(format, ok);
  if (failed.length > 0) process.exitCode = reportErrors(failed);
}
