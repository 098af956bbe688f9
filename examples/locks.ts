// Locks with the dsync SDK: a Lease that renews itself, its fencing token, `await using`,
// withLock, and what a busy lock looks like. Run: DSYNC_ENDPOINTS=http://127.0.0.1:8000
// npx tsx examples/locks.ts (in your own code, import from 'dsync/client').
import { DsyncClient, LockTimeoutError } from '../src/client/index.js';

const endpoints = (process.env.DSYNC_ENDPOINTS ?? 'http://127.0.0.1:8000').split(',');
const client = new DsyncClient({ endpoints });

{
  // Held until the end of the block, renewed in the background meanwhile.
  await using lease = await client.locks.acquire('examples/report', { ttlMs: 10_000 });
  lease.on('lost', (err) => console.error('stop writing:', err.message));
  console.log(`holding ${lease.name} with fencing token ${lease.token}`);

  // Someone else asking gets a typed error at once (waitMs 0).
  const other = new DsyncClient({ endpoints, owner: 'someone-else' });
  const busy = await other.locks.acquire('examples/report').catch((e: unknown) => e);
  console.log('the other owner got', busy instanceof LockTimeoutError ? busy.code : busy);
  await other.close();
}

// withLock: the callback's signal aborts if the lease is lost; released in finally.
const total = await client.locks.withLock('examples/report', { ttlMs: 5000 },
  async (token, signal) => {
    if (signal.aborted) throw new Error('lost before we started');
    return token;
  });
console.log('withLock ran under token', total);

await client.close();
