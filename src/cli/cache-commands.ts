// `dsync cache …`: the coherent cache at a terminal, through the SDK.
import type { Command } from 'commander';
import { NotFoundError, type CacheValue, type DsyncClient } from '../client/index.js';
import { clientFor, duration, globalOptions, int } from './options.js';
import { table } from './output.js';
import { reportErrors, run, runOnEach } from './report.js';

const VALUE_COLUMNS = [['key', (v: CacheValue) => v.key], ['value', (v: CacheValue) => v.value],
  ['state', (v: CacheValue) => v.state], ['hit', (v: CacheValue) => v.hit],
  ['version', (v: CacheValue) => v.version]] as const;

/** The argument as JSON; text that is not JSON is a string. */
function jsonOrText(raw: string): unknown {
  try { return JSON.parse(raw) as unknown; } catch { return raw; }
}

export function addCacheCommands(program: Command): void {
  const cache = program.command('cache').description('read and write the coherent cache');
  const out = (c: Command) => globalOptions(c).output;
  cache.command('get <keys...>').description('read keys (several at once with more than one)')
    .action((keys: string[], _o: unknown, c: Command) => run<CacheValue | CacheValue[]>(out(c),
      async () => {
        const api = clientFor(c, 'cache').cache;
        if (keys.length === 1) {
          return (await api.get(keys[0]!)) ?? Promise.reject(new NotFoundError(
            `key ${JSON.stringify(keys[0])} does not exist (never written, deleted or ` +
            'expired); write it with `dsync cache put`', { status: 0 }));
        }
        const got = await api.getMany(keys);
        return keys.filter((k) => got.has(k)).map((k) => got.get(k)!);
      }, (v) => table(Array.isArray(v) ? v : [v], VALUE_COLUMNS)));
  cache.command('put <key> <json>').description('write a key (value is JSON; plain text is a string)')
    .option('--ttl <duration>', 'the value expires after this long (e.g. 10m)', duration)
    .option('--if-version <n>', 'write only if the key is at this version (0: does not exist)',
      int)
    .action((key: string, raw: string, o: { ttl?: number; ifVersion?: number }, c: Command) =>
      run(out(c), () => {
        const api = clientFor(c, 'cache').cache;
        const opts = o.ttl === undefined ? {} : { ttlMs: o.ttl };
        return o.ifVersion === undefined ? api.put(key, jsonOrText(raw), opts)
          : api.putIfVersion(key, jsonOrText(raw), o.ifVersion, opts);
      }));
  cache.command('del <key>').description('delete a key')
    .action((key: string, _o: unknown, c: Command) =>
      run(out(c), () => clientFor(c, 'cache').cache.delete(key)));
  cache.command('state <key>').description('the MESI state of a key on every node')
    .action((key: string, _o: unknown, c: Command) =>
      perNode(c, (api, node) => api.cache.state(key, node)));
  cache.command('stats').description('entries, bytes, hits and misses on every node')
    .action((_o: unknown, c: Command) => perNode(c, (api, node) => api.cache.stats(node)));
  cache.command('flush').description('write every dirty line of every node to the store')
    .action((_o: unknown, c: Command) => perNode(c, (api, node) => api.cache.flush(node)));
}

/** One answer per node (every node the client knows, discovered ones included), each
 * tagged with its node; a node that fails is reported. */
async function perNode<T extends object>(c: Command,
  f: (api: DsyncClient, node: string) => Promise<T>): Promise<void> {
  let api: DsyncClient;
  let nodes: readonly string[];
  try {
    api = clientFor(c, 'cache');
    nodes = await api.cache.discoverNodes();
  } catch (err) {
    process.exitCode = reportErrors([err]);
    return;
  }
  await runOnEach(globalOptions(c).output, nodes, (node) => f(api, node));
}
