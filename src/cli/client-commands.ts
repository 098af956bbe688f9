// `dsync lock …` and `dsync cache …`: the SDK at a terminal. Every command goes through the
// SDK. Output is JSON on stdout; errors say what happened and what to do on stderr, with exit
// code 1 when the cluster refused or could not do it and 2 for usage errors (report.ts).
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DsyncApiError, DsyncClient } from '../client/index.js';
import { checkNodeUrl } from '../client/http.js';
import { reportErrors, run, runOnEach, usageError } from './report.js';

const DEFAULT_LOCK_URLS = [8000, 8001, 8002].map((p) => `http://127.0.0.1:${p}`);
const DEFAULT_CACHE_URLS = [8200, 8201, 8202].map((p) => `http://127.0.0.1:${p}`);

/** Each URL checked here, so that a typo is a usage error at once rather than ten seconds
 * of retries; `what` names where the list came from (`--urls`). */
export function checkedUrls(urls: readonly string[], what: string): string[] {
  if (urls.length === 0) throw usageError(`${what} names no node: pass http://host:port,...`);
  for (const u of urls) {
    try {
      checkNodeUrl(u);
    } catch {
      throw usageError(`${what}: ${JSON.stringify(u)} is not a node URL; use ` +
        'http://host:port, e.g. http://127.0.0.1:8000');
    }
  }
  return [...urls];
}

/** --urls, else the env var, else the `dsync dev` ports. */
function urlsOf(opt: string | undefined, env: string | undefined, dflt: string[]): string[] {
  const v = opt ?? env;
  return checkedUrls(v ? v.split(',').map((s) => s.trim()).filter(Boolean) : dflt, '--urls');
}

function int(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`${JSON.stringify(v)} is not an integer (milliseconds)`);
  }
  return n;
}

/** `dsync lock` or `dsync cache` with the options every client command shares, and a
 * factory for the SDK client those options describe. */
function serviceCommand(program: Command, service: 'locks' | 'cache', description: string,
  dflt: string[]): { cmd: Command; client: () => DsyncClient } {
  const env = service === 'locks' ? 'DSYNC_LOCK_URLS' : 'DSYNC_CACHE_URLS';
  const cmd = program.command(service === 'locks' ? 'lock' : 'cache').description(description)
    .option('--urls <list>', `node URLs, comma separated (env ${env})`)
    .option('--deadline <ms>', 'give up retrying after this many ms (default 10000)', int);
  const client = (): DsyncClient => {
    const o = cmd.opts<{ urls?: string; deadline?: number }>();
    return new DsyncClient({ [service]: urlsOf(o.urls, process.env[env], dflt),
      ...(o.deadline === undefined ? {} : { deadlineMs: o.deadline }) });
  };
  return { cmd, client };
}

export function addLockCommands(program: Command): void {
  const { cmd: lock, client } = serviceCommand(program, 'locks',
    'acquire, release, renew and inspect locks', DEFAULT_LOCK_URLS);
  lock.command('acquire <name>').description('acquire a lock')
    .requiredOption('--owner <owner>', 'who holds it')
    .addOption(new Option('--mode <mode>', 'exclusive or shared').choices(['exclusive', 'shared'])
      .default('exclusive'))
    .option('--ttl <ms>', 'lease in ms', int, 30_000)
    .option('--wait <ms>', 'wait up to this long for the lock', int, 0)
    .action((name: string, o: { owner: string; mode: 'exclusive' | 'shared'; ttl: number;
      wait: number }) => run(() =>
      client().locks.acquire(name, { owner: o.owner, mode: o.mode, ttlMs: o.ttl,
        waitMs: o.wait })));
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
  const { cmd: cache, client } = serviceCommand(program, 'cache',
    'read and write the coherent cache', DEFAULT_CACHE_URLS);
  cache.command('get <key>').description('read a key')
    .action((key: string) => run(async () => (await client().cache.get(key)) ??
      Promise.reject(new DsyncApiError('NOT_FOUND', `key ${JSON.stringify(key)} does not ` +
        'exist (never written, or deleted); write it with `dsync cache put`', 404))));
  cache.command('put <key> <json>').description('write a key (value is JSON; plain text is a string)')
    .action((key: string, raw: string) => run(() => {
      let value: unknown;
      try { value = JSON.parse(raw); } catch { value = raw; }
      return client().cache.put(key, value);
    }));
  cache.command('del <key>').description('delete a key')
    .action((key: string) => run(() => client().cache.delete(key)));
  cache.command('state <key>').description('the MESI state of a key on every node')
    .action((key: string) => perNode((c, node) => c.cache.state(key, node)));
  cache.command('stats').description('entries, bytes, hits and misses on every node')
    .action(() => perNode((c, node) => c.cache.stats(node)));
  cache.command('flush').description('write every dirty line of every node to the store')
    .action(() => perNode((c, node) => c.cache.flush(node)));

  /** One answer per node, each tagged with its node; a node that fails is reported. */
  async function perNode<T extends object>(f: (c: DsyncClient, node: string) => Promise<T>):
    Promise<void> {
    let c: DsyncClient;
    try {
      c = client();
    } catch (err) {
      process.exitCode = reportErrors([err]);
      return;
    }
    await runOnEach(c.cache.nodes, (node) => f(c, node));
  }
}
