// `dsync lock …` and `dsync cache …`: the SDK at a terminal. Output is JSON on stdout; errors
// say what happened and what to do on stderr, with exit code 1 (2 for usage errors).
import type { Command } from 'commander';
import { DsyncApiError, DsyncClient } from '../client/index.js';

const DEFAULT_LOCK_URLS = [8000, 8001, 8002].map((p) => `http://127.0.0.1:${p}`);
const DEFAULT_CACHE_URLS = [8200, 8201, 8202].map((p) => `http://127.0.0.1:${p}`);

function urlsOf(opt: string | undefined, env: string | undefined, dflt: string[]): string[] {
  const v = opt ?? env;
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : dflt;
}

async function run(fn: () => Promise<unknown>): Promise<void> {
  try {
    const out = await fn();
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } catch (err) {
    if (err instanceof DsyncApiError) {
      process.stderr.write(`dsync: ${err.code}: ${err.message}\n`);
      if (Object.keys(err.details).length > 0) {
        process.stderr.write(`${JSON.stringify(err.details)}\n`);
      }
      if (err.code === 'NETWORK') {
        process.stderr.write('Is the cluster running? Start one with `npx dsync dev`, or pass --urls.\n');
      }
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}

function int(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${v} is not an integer`);
  return n;
}

export function addLockCommands(program: Command): void {
  const lock = program.command('lock').description('acquire, release, renew and inspect locks')
    .option('--urls <list>', 'lock node URLs, comma separated (env DSYNC_LOCK_URLS)');
  const client = (): DsyncClient => new DsyncClient({
    locks: urlsOf(lock.opts<{ urls?: string }>().urls, process.env.DSYNC_LOCK_URLS,
      DEFAULT_LOCK_URLS),
  });
  lock.command('acquire <name>').description('acquire a lock')
    .requiredOption('--owner <owner>', 'who holds it')
    .option('--mode <mode>', 'exclusive or shared', 'exclusive')
    .option('--ttl <ms>', 'lease in ms', int, 30_000)
    .option('--wait <ms>', 'wait up to this long for the lock', int, 0)
    .action((name: string, o: { owner: string; mode: string; ttl: number; wait: number }) =>
      run(() =>
      client().locks.acquire(name, { owner: o.owner, mode: o.mode as 'exclusive' | 'shared',
        ttlMs: o.ttl, waitMs: o.wait })));
  lock.command('release <name>').description('release a lock')
    .requiredOption('--owner <owner>', 'who holds it')
    .option('--token <n>', 'release only the grant with this fencing token', int)
    .action((name: string, o: { owner: string; token?: number }) =>
      run(() => client().locks.release(name, o.owner, o.token)));
  lock.command('renew <name>').description('extend the lease')
    .requiredOption('--owner <owner>', 'who holds it')
    .option('--ttl <ms>', 'new lease in ms (default: the grant\'s own)', int)
    .action((name: string, o: { owner: string; ttl?: number }) =>
      run(() => client().locks.renew(name, o.owner, o.ttl)));
  lock.command('show <name>').description('holders and waiters of a lock')
    .action((name: string) => run(() => client().locks.get(name)));
  lock.command('list').description('held or waited-on locks')
    .option('--prefix <p>', 'only names with this prefix', '')
    .action((o: { prefix: string }) => run(() => client().locks.list(o.prefix)));
}

export function addCacheCommands(program: Command): void {
  const cache = program.command('cache').description('read and write the coherent cache')
    .option('--urls <list>', 'cache node URLs, comma separated (env DSYNC_CACHE_URLS)');
  const urls = (): string[] =>
    urlsOf(cache.opts<{ urls?: string }>().urls, process.env.DSYNC_CACHE_URLS, DEFAULT_CACHE_URLS);
  const client = (): DsyncClient => new DsyncClient({ cache: urls() });
  cache.command('get <key>').description('read a key')
    .action((key: string) => run(async () => (await client().cache.get(key)) ??
      Promise.reject(new DsyncApiError('NOT_FOUND', `no key ${key}`, 404))));
  cache.command('put <key> <json>').description('write a key (value is JSON; plain text is a string)')
    .action((key: string, raw: string) => run(() => {
      let value: unknown;
      try { value = JSON.parse(raw); } catch { value = raw; }
      return client().cache.put(key, value);
    }));
  cache.command('del <key>').description('delete a key')
    .action((key: string) => run(() => client().cache.delete(key)));
  cache.command('state <key>').description('the MESI state of a key on every node')
    .action((key: string) => run(async () => Promise.all(urls().map(async (u) => {
      const r = await fetch(`${u}/v1/cache/${encodeURIComponent(key)}/state`);
      return { node: u, ...(await r.json() as object) };
    }))));
  cache.command('stats').description('entries, bytes, hits and misses on every node')
    .action(() => run(async () => Promise.all(urls().map(async (u) => {
      const r = await fetch(`${u}/v1/cache`);
      return { node: u, ...(await r.json() as object) };
    }))));
}
