// `dsync cache …` as a child process (bin/dsync.js over dist/) against a real two-node cache
// cluster with Redis behind, against a dead URL and against something that is not dsync.
// Every command goes through the SDK: data on stdout (-o json here); on failure what
// happened and what to do next on stderr, exit code 1 for a refused operation, 2 for bad
// usage, never a stack trace. Before, `cache state` and `cache stats` used raw fetch and a
// down node printed one.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dsync, STACK_LINE, type CliResult } from '../support/cli.js';
import { Cluster } from '../support/cluster.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

let redis: RedisServer;
let cluster: Cluster;
let urls: string;
/** A loopback port nothing listens on. */
let deadUrl: string;
/** An HTTP server that is not a dsync node: it answers HTML. */
let notDsync: Server;
let notDsyncUrl: string;

beforeAll(async () => {
  redis = await startRedis();
  cluster = await Cluster.start({ service: 'cache', size: 2, startTimeoutMs: 45_000,
    env: { DSYNC_REDIS_URL: redis.url } });
  urls = cluster.nodes.map((n) => n.url).join(',');
  deadUrl = `http://127.0.0.1:${await freePort()}`;
  notDsync = createServer((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>');
  });
  await new Promise<void>((r) => notDsync.listen(0, '127.0.0.1', () => r()));
  notDsyncUrl = `http://127.0.0.1:${(notDsync.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await cluster?.stop();
  await redis?.stop();
  await new Promise((r) => notDsync?.close(r));
});

const cache = (args: string[], at = urls): Promise<CliResult> =>
  dsync(['cache', '--endpoints', at, '--timeout', '500', ...args]);

async function json<T>(args: string[]): Promise<T> {
  const r = await cache([...args, '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as T;
}

/** A failure that a person can act on: the code, words, the next step, no stack. */
function friendly(r: CliResult, code: number, ...says: RegExp[]): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).not.toMatch(STACK_LINE);
  expect(r.stderr).not.toMatch(/unexpected error/);
  for (const re of says) expect(r.stderr).toMatch(re);
}

describe('dsync cache', { timeout: 120_000 }, () => {
  it('put, get, state, stats, flush and del print JSON and exit 0', async () => {
    expect(await json(['put', 'cli/a', '{"n":1}'])).toMatchObject({ key: 'cli/a', state: 'M' });
    expect(await json(['get', 'cli/a'])).toMatchObject({ key: 'cli/a', value: { n: 1 } });
    const states = await json<Array<{ node: string; key: string; state: string; home: string }>>(
      ['state', 'cli/a']);
    expect(states.map((s) => s.node)).toEqual(cluster.nodes.map((n) => n.url));
    for (const s of states) {
      expect(s.key).toBe('cli/a');
      expect(['M', 'E', 'S', 'I']).toContain(s.state);
      expect(cluster.nodes.map((n) => n.id)).toContain(s.home);
    }
    const stats = await json<Array<{ node: string; capacityBytes: number }>>(['stats']);
    expect(stats).toHaveLength(2);
    for (const s of stats) expect(s.capacityBytes).toBe(64 * 1024 * 1024);
    const flushed = await json<Array<{ node: string; flushed: number }>>(['flush']);
    expect(flushed.map((f) => typeof f.flushed)).toEqual(['number', 'number']);
    expect(await json(['del', 'cli/a'])).toEqual({ deleted: true });
  });

  it('a missing key is refused with what to do: exit 1', async () => {
    const r = await cache(['get', 'cli/never']);
    friendly(r, 1, /NOT_FOUND/, /does not exist/, /dsync cache put/);
    expect(r.stdout).toBe('');
  });

  it('a key the server rejects is a usage error naming the field: exit 2', async () => {
    const r = await cache(['get', 'k'.repeat(300)]);
    friendly(r, 2, /INVALID_ARGUMENT/, /"field":"key"/, /Fix the value/);
  });

  it.each([['state', 'k'], ['stats'], ['flush'], ['get', 'k'], ['put', 'k', '1'], ['del', 'k']])(
    'cache %s against a dead URL says it cannot reach it and what to do: exit 1',
    async (...args) => {
      const r = await cache(args, deadUrl);
      friendly(r, 1, /NETWORK/, /connection refused/, /npx dsync dev/, /--endpoints/);
      expect(r.stderr).toContain(deadUrl);
      expect(r.stdout).toBe('');
    });

  it('with one node down, state and stats print the others and report the dead one: exit 1',
    async () => {
      for (const sub of [['state', 'cli/b'], ['stats']]) {
        const r = await cache([...sub, '-o', 'json'], `${urls},${deadUrl}`);
        friendly(r, 1, /NETWORK/, /connection refused/);
        const rows = JSON.parse(r.stdout) as Array<{ node: string }>;
        expect(rows.map((x) => x.node)).toEqual(cluster.nodes.map((n) => n.url));
      }
    });

  it('a URL that is not a dsync node is named as such: exit 1', async () => {
    const r = await cache(['stats'], notDsyncUrl);
    friendly(r, 1, /BAD_RESPONSE/, /not JSON/, /Check --endpoints/);
  });

  it('usage errors exit 2: a bad URL, a missing argument, an unknown command', async () => {
    friendly(await cache(['state', 'k'], 'cache-0:8200'), 2, /is not a node URL/);
    friendly(await cache(['put', 'k']), 2, /missing required argument/);
    friendly(await cache(['frobnicate']), 2, /unknown command/);
    friendly(await dsync(['cache', 'stats', '--timeout', 'soon']), 2, /not a duration/);
  });

  it('--help lists every cache command', async () => {
    const r = await dsync(['cache', '--help']);
    expect(r.code).toBe(0);
    for (const sub of ['get', 'put', 'del', 'state', 'stats', 'flush', '--endpoints', '--timeout']) {
      expect(r.stdout).toContain(sub);
    }
  });
});
