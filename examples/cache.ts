// The coherent cache with the dsync SDK: put and get, compare-and-set on the version, a
// value that expires, and many keys at once.
// Run: DSYNC_ENDPOINTS=http://127.0.0.1:8200 npx tsx examples/cache.ts
import { DsyncClient, VersionMismatchError } from '../src/client/index.js';

const endpoints = (process.env.DSYNC_ENDPOINTS ?? 'http://127.0.0.1:8200').split(',');
const client = new DsyncClient({ endpoints });
const cache = client.cache;

await cache.put('examples/user:1', { name: 'Ada', visits: 0 });
const got = await cache.get<{ name: string; visits: number }>('examples/user:1');
console.log('read', got?.value, 'version', got?.version);

// Compare-and-set: increment only if nobody wrote in between; on a conflict, read again.
for (;;) {
  const cur = (await cache.get<{ name: string; visits: number }>('examples/user:1'))!;
  try {
    await cache.putIfVersion('examples/user:1', { ...cur.value, visits: cur.value.visits + 1 },
      cur.version);
    break;
  } catch (err) {
    if (!(err instanceof VersionMismatchError)) throw err;
    console.log('someone wrote in between; now at', err.currentVersion);
  }
}

// A session token that expires by itself after ttlMs.
const session = await cache.put('examples/session:42', 'token-xyz', { ttlMs: 60_000 });
console.log('session expires at', new Date(session.expiresAt!).toISOString());

const many = await cache.getMany(['examples/user:1', 'examples/session:42', 'examples/none']);
console.log('getMany found', [...many.keys()].join(', '));
await client.close();
