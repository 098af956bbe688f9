// Errors, timeouts and cancellation with the dsync SDK: every failure is a DsyncError with a
// stable `code`; the classes say what happened; every call takes a timeout and a signal.
// Run: DSYNC_ENDPOINTS=http://127.0.0.1:8000 npx tsx examples/errors.ts
import {
  AbortError, DeadlineExceededError, DsyncClient, InvalidArgumentError, NotHeldError,
  type DsyncError,
} from '../src/client/index.js';

const endpoints = (process.env.DSYNC_ENDPOINTS ?? 'http://127.0.0.1:8000').split(',');
const client = new DsyncClient({ endpoints, timeoutMs: 5000 });

// The server refuses: a typed error with the envelope's details.
const e1 = await client.locks.release('examples/never-held', 'me').catch((e: unknown) => e);
if (e1 instanceof NotHeldError) console.log(e1.code, e1.status, e1.reason);

const e2 = await client.locks.acquire('examples/x', { ttlMs: 5 }).catch((e: unknown) => e);
if (e2 instanceof InvalidArgumentError) console.log(e2.code, 'field', e2.field);

// A blocking acquire, given up by the caller.
await using held = await client.locks.acquire('examples/busy');
const other = new DsyncClient({ endpoints, owner: 'impatient' });
const ac = new AbortController();
setTimeout(() => ac.abort(new Error('changed my mind')), 200);
const e3 = await other.locks.acquire('examples/busy', { waitMs: 10_000, signal: ac.signal })
  .catch((e: unknown) => e);
console.log(e3 instanceof AbortError ? `${e3.code}: ${(e3.cause as Error).message}` : e3);

// Nothing listens there: retried until the call's timeout, then DEADLINE_EXCEEDED with the
// last failure as its cause.
const nowhere = new DsyncClient({ locks: ['http://127.0.0.1:1'], discover: false });
const e4 = await nowhere.locks.get('x', { timeoutMs: 300 }).catch((e: unknown) => e);
if (e4 instanceof DeadlineExceededError) {
  console.log(e4.code, 'after', (e4.cause as DsyncError).code);
}
console.log('still held:', held.state);
await Promise.all([other.close(), nowhere.close(), client.close()]);
