// How the client commands of `dsync` end: JSON on stdout when it worked; otherwise one line
// on stderr that says what happened and one that says what to do next, and an exit code a
// script can act on.
import { DsyncApiError } from '../client/index.js';

/** The command worked. */
export const EXIT_OK = 0;
/** The cluster refused or could not do it (not held, timeout, node down, …): maybe later. */
export const EXIT_REFUSED = 1;
/** The command can never work as typed (a bad flag, an out-of-bounds value): fix it. */
export const EXIT_USAGE = 2;

/** Error codes that mean the input itself is wrong, wherever it was found out. */
const USAGE_CODES = new Set(['INVALID_ARGUMENT', 'PAYLOAD_TOO_LARGE', 'USAGE']);

/** What to do next, per code; the server's own message already says what happened. */
const NEXT_STEP: Readonly<Record<string, string>> = {
  NETWORK: 'Is the cluster running? Start one with `npx dsync dev`, or point --urls (or ' +
    'DSYNC_LOCK_URLS / DSYNC_CACHE_URLS) at running nodes; `npx dsync status` lists them.',
  UNAVAILABLE: 'The cluster is electing a leader or a node is down: retry in a few seconds; ' +
    '`npx dsync status` shows every node.',
  BAD_RESPONSE: 'Check --urls: it must name dsync nodes of this service (lock or cache).',
  RESOURCE_EXHAUSTED: 'A documented limit was reached (see `limit`): release what you hold, ' +
    'or retry later.',
  INVALID_ARGUMENT: 'Fix the value named by `field` and run the command again.',
  PAYLOAD_TOO_LARGE: 'Send less: the node\'s body limit is in `bytesMax`.',
};

/** An error of the command line itself, before any node was asked. */
export function usageError(message: string): DsyncApiError {
  return new DsyncApiError('USAGE', message, 0);
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
  if (err instanceof DsyncApiError) {
    const what = [`dsync: ${err.code}: ${err.message}`];
    const details = Object.entries(err.details).filter(([k]) => k !== 'cause');
    if (details.length > 0) what.push(JSON.stringify(Object.fromEntries(details)));
    return { what, next: NEXT_STEP[err.code] ?? null,
      exitCode: USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_REFUSED };
  }
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
  const next = new Set(described.map((d) => d.next).filter((n) => n !== null));
  for (const n of next) process.stderr.write(`${n}\n`);
  return Math.max(EXIT_OK, ...described.map((d) => d.exitCode));
}

/** Runs one client command: its result as JSON on stdout, or the error reported. */
export async function run(fn: () => Promise<unknown>): Promise<void> {
  try {
    const out = await fn();
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } catch (err) {
    process.exitCode = reportErrors([err]);
  }
}

/** Runs `fn` on every node; prints the answers that came (JSON array, each with its `node`)
 * and reports each node that failed. Exit code 1 when any node failed. */
export async function runOnEach<T extends object>(nodes: readonly string[],
  fn: (node: string) => Promise<T>): Promise<void> {
  const results = await Promise.allSettled(nodes.map((n) => fn(n)));
  const ok: object[] = [];
  const failed: unknown[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') ok.push({ node: nodes[i], ...r.value });
    else failed.push(r.reason);
  });
  if (ok.length > 0) process.stdout.write(`${JSON.stringify(ok, null, 2)}\n`);
  if (failed.length > 0) process.exitCode = reportErrors(failed);
}
