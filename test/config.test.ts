// Node configuration: defaults, env and flag parsing, bounds, relationships between fields,
// and error messages that name the field and where to set it.
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import {
  DEFAULT_BODY_BYTES_MAX, DEFAULT_CAPACITY_BYTES, DEFAULT_CLUSTER_TOKEN, DEFAULT_HTTP_HOST,
  DEFAULT_HTTP_PORT, DEFAULT_PEER_HOST, DEFAULT_PEER_PORT, NODE_CONFIG_FIELDS,
  SYSTEM_URLS_PER_SERVICE_MAX, addNodeConfigOptions, configFromEnv, isLoopbackHost,
  leaseReadMs, loadNodeConfig, nodeConfigInput, parseNodeConfig, peerHttpUrl, systemUrlsOf,
  usesDefaultClusterToken,
} from '../src/config.js';
import type { NodeConfigInput } from '../src/config.js';
import { InvalidArgumentError } from '../src/errors.js';

function fails(input: NodeConfigInput): InvalidArgumentError {
  try {
    parseNodeConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

/** A token of its own: the built-in one is refused on the default (non-loopback) hosts. */
const base = { service: 'lock', nodeId: 'lock-0', clusterToken: 'config-test-token' } as const;

describe('parseNodeConfig', () => {
  it('fills documented defaults', () => {
    const cfg = parseNodeConfig({ service: 'lock', nodeId: 'lock-0',
      insecureAllowDefaultToken: true });
    expect(cfg).toMatchObject({
      httpPort: DEFAULT_HTTP_PORT, peerPort: DEFAULT_PEER_PORT,
      bodyBytesMax: DEFAULT_BODY_BYTES_MAX,
      capacityBytes: DEFAULT_CAPACITY_BYTES, peers: [], redisUrl: null, unsafeNoFsync: false,
      writePolicy: 'write-back', electionTicks: 10, heartbeatTicks: 1, dataDir: 'dsync-data/lock-0',
    });
    expect(DEFAULT_BODY_BYTES_MAX).toBe(1024 * 1024);
    expect(DEFAULT_CAPACITY_BYTES).toBe(64 * 1024 * 1024);
    expect(usesDefaultClusterToken(cfg)).toBe(true);
    expect(cfg.clusterToken).toBe(DEFAULT_CLUSTER_TOKEN);
    expect(cfg).toMatchObject({ httpHost: DEFAULT_HTTP_HOST, peerHost: DEFAULT_PEER_HOST,
      insecureAllowDefaultToken: true });
  });

  it('parses string values from flags and env: ints, byte sizes, booleans, peer lists', () => {
    const cfg = parseNodeConfig({
      ...base, httpPort: '8000', bodyBytesMax: '2MiB', capacityBytes: '1GiB', unsafeNoFsync: 'true',
      peers: 'lock-0=127.0.0.1:8000:7000, lock-1=[::1]:8001:7001,lock-2=lock-2.svc:8002:7002',
    });
    expect(cfg.httpPort).toBe(8000);
    expect(cfg.bodyBytesMax).toBe(2 * 1024 * 1024);
    expect(cfg.capacityBytes).toBe(1024 ** 3);
    expect(cfg.unsafeNoFsync).toBe(true);
    expect(cfg.peers).toEqual([
      { id: 'lock-0', host: '127.0.0.1', httpPort: 8000, peerPort: 7000 },
      { id: 'lock-1', host: '[::1]', httpPort: 8001, peerPort: 7001 },
      { id: 'lock-2', host: 'lock-2.svc', httpPort: 8002, peerPort: 7002 },
    ]);
    expect(cfg.peers.map(peerHttpUrl)).toEqual(
      ['http://127.0.0.1:8000', 'http://[::1]:8001', 'http://lock-2.svc:8002']);
  });

  it('names the field, its flag and env var, and the bad value', () => {
    const e = fails({ ...base, httpPort: 'eighty' });
    expect(e.details.field).toBe('httpPort');
    expect(e.message).toContain('--http-port');
    expect(e.message).toContain('DSYNC_HTTP_PORT');
    expect(e.message).toContain('"eighty"');
    expect(e.code).toBe('INVALID_ARGUMENT');
  });

  it.each<[NodeConfigInput, string]>([
    [{ nodeId: 'lock-0' }, 'service'],
    [{ ...base, service: 'kv' }, 'service'],
    [{ ...base, nodeId: 'Lock_0!' }, 'nodeId'],
    [{ ...base, httpPort: 65536 }, 'httpPort'],
    [{ ...base, httpPort: 80.5 }, 'httpPort'],
    [{ ...base, bodyBytesMax: '1TiB' }, 'bodyBytesMax'],
    [{ ...base, bodyBytesMax: 100 }, 'bodyBytesMax'],
    [{ ...base, tickMs: 0 }, 'tickMs'],
    [{ ...base, unsafeNoFsync: 'maybe' }, 'unsafeNoFsync'],
    [{ ...base, writePolicy: 'write-around' }, 'writePolicy'],
    [{ ...base, redisUrl: 'http://x' }, 'redisUrl'],
    [{ ...base, clusterToken: 'short' }, 'clusterToken'],
    [{ ...base, logLevel: 'verbose' }, 'logLevel'],
    [{ ...base, peers: 'lock-1=host:8001' }, 'peers.0'],
    [{ ...base, peers: 'lock-1=h:8001:7001,lock-2=h:99999:7002' }, 'peers.1.httpPort'],
  ])('rejects %j at field %s', (input, field) => {
    expect(fails(input).details.field).toBe(field);
  });

  it('rejects unknown fields instead of ignoring a typo', () => {
    expect(fails({ ...base, htpPort: 1 } as NodeConfigInput).details.field).toBe('htpPort');
  });

  it('checks relationships: heartbeat < election, distinct ports, unique peers', () => {
    expect(fails({ ...base, heartbeatTicks: 10, electionTicks: 10 }).details.field)
      .toBe('heartbeatTicks');
    expect(parseNodeConfig({ ...base, heartbeatTicks: 9, electionTicks: 10 }).heartbeatTicks)
      .toBe(9);
    expect(fails({ ...base, httpPort: 7000, peerPort: 7000 }).details.field).toBe('peerPort');
    expect(parseNodeConfig({ ...base, httpPort: 0, peerPort: 0 }).httpPort).toBe(0);
    expect(fails({ ...base, peers: 'a=h:1:2,a=h:3:4' }).details.field).toBe('peers.1.id');
    expect(fails({ ...base, peers: 'a=h:1:1' }).details.field).toBe('peers.0.peerPort');
    expect(fails({ ...base, peers: 'a=h:1:2,b=h:2:3' }).details.field).toBe('peers.1');
    expect(fails({ ...base, replicationFactor: 2 }).details.field).toBe('replicationFactor');
  });

  it('reads linearizable and forwards over the peer transport by default; a lease must ' +
    'outlast a heartbeat interval', () => {
    expect(parseNodeConfig(base)).toMatchObject({ readMode: 'linearizable', forwardVia: 'peer' });
    const lease = parseNodeConfig({ ...base, readMode: 'lease', forwardVia: 'http' });
    expect(lease).toMatchObject({ readMode: 'lease', forwardVia: 'http' });
    // (10 - 1) ticks of 100 ms, less the 10 % drift allowance.
    expect(leaseReadMs(lease)).toBe(810);
    expect(fails({ ...base, readMode: 'lease', electionTicks: 3, heartbeatTicks: 2 })
      .details.field).toBe('readMode');
    expect(fails({ ...base, readMode: 'stale' }).details.field).toBe('readMode');
  });
});

describe('the built-in cluster token is for loopback only', () => {
  const dflt = { service: 'lock', nodeId: 'lock-0' } as const;

  it('is refused on the default 0.0.0.0, naming the flags to set', () => {
    const e = fails(dflt);
    expect(e.details.field).toBe('clusterToken');
    for (const s of ['--cluster-token', 'DSYNC_CLUSTER_TOKEN', '--http-host is 0.0.0.0',
      '--peer-host is 0.0.0.0', '--insecure-allow-default-token']) {
      expect(e.message).toContain(s);
    }
  });

  it('is refused when only one of the two addresses is not loopback', () => {
    expect(fails({ ...dflt, httpHost: '127.0.0.1' }).message).toContain('--peer-host is 0.0.0.0');
    expect(fails({ ...dflt, peerHost: '::1' }).message).not.toContain('--peer-host');
    expect(fails({ ...dflt, httpHost: '127.0.0.1', peerHost: '10.0.0.5' }).details.field)
      .toBe('clusterToken');
    expect(fails({ ...dflt, httpHost: 'lock-0.svc', peerHost: '127.0.0.1' }).details.field)
      .toBe('clusterToken');
  });

  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])(
    'is accepted on loopback %s', (h) => {
      expect(parseNodeConfig({ ...dflt, httpHost: h, peerHost: h }).clusterToken)
        .toBe(DEFAULT_CLUSTER_TOKEN);
    });

  it('is accepted anywhere with --insecure-allow-default-token (flag or env)', () => {
    expect(parseNodeConfig({ ...dflt, insecureAllowDefaultToken: true }).peerHost)
      .toBe('0.0.0.0');
    expect(loadNodeConfig({}, { DSYNC_SERVICE: 'lock', DSYNC_NODE_ID: 'l-0',
      DSYNC_INSECURE_ALLOW_DEFAULT_TOKEN: '1' }).insecureAllowDefaultToken).toBe(true);
  });

  it('a token of its own is fine on any address', () => {
    expect(parseNodeConfig({ ...dflt, clusterToken: 's3cret-token' }).httpHost).toBe('0.0.0.0');
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
    expect(isLoopbackHost('128.0.0.1')).toBe(false);
  });
});

describe('env and flags', () => {
  it('maps every field to DSYNC_ + SCREAMING_SNAKE and --kebab-case', () => {
    const byField = new Map(NODE_CONFIG_FIELDS.map((d) => [d.field, d]));
    expect(byField.get('httpPort')).toMatchObject({ env: 'DSYNC_HTTP_PORT', flag: '--http-port' });
    expect(byField.get('unsafeNoFsync')?.env).toBe('DSYNC_UNSAFE_NO_FSYNC');
    expect(byField.get('requestTimeoutMs')?.env).toBe('DSYNC_REQUEST_TIMEOUT_MS');
    expect(Object.keys(parseNodeConfig(base)).sort())
      .toEqual(NODE_CONFIG_FIELDS.map((d) => d.field).sort());
  });

  it('reads DSYNC_* env, skipping empty and foreign variables', () => {
    const env = { DSYNC_SERVICE: 'cache', DSYNC_NODE_ID: 'cache-1', DSYNC_HTTP_PORT: '8201',
      DSYNC_REDIS_URL: '', DSYNC_WRITE_POLICY: 'write-through', HOME: '/root',
      DSYNC_CLUSTER_TOKEN: 'env-test-token' };
    expect(configFromEnv(env)).toEqual({ service: 'cache', nodeId: 'cache-1', httpPort: '8201',
      writePolicy: 'write-through', clusterToken: 'env-test-token' });
    const cfg = loadNodeConfig({}, env);
    expect(cfg).toMatchObject({ service: 'cache', nodeId: 'cache-1', httpPort: 8201,
      writePolicy: 'write-through', redisUrl: null });
  });

  it('commander flags override env; nodeId falls back to the host name', () => {
    const cmd = addNodeConfigOptions(new Command('serve')).option('--dir <dir>').exitOverride();
    cmd.parse(['--service', 'queue', '--http-port', '8100', '--unsafe-no-fsync', '--dir', 'x'],
      { from: 'user' });
    const env = { DSYNC_HTTP_PORT: '9999', DSYNC_PEER_PORT: '7100',
      DSYNC_CLUSTER_TOKEN: 'env-test-token' };
    const input = nodeConfigInput(cmd.opts(), env, 'queue-2');
    const cfg = parseNodeConfig(input);
    expect(cfg).toMatchObject({ service: 'queue', nodeId: 'queue-2', httpPort: 8100,
      peerPort: 7100, unsafeNoFsync: true });
    expect(input).not.toHaveProperty('dir');
  });

  it('a bad env value is reported with the env var name', () => {
    expect(() => loadNodeConfig({}, { DSYNC_SERVICE: 'lock', DSYNC_NODE_ID: 'l-0',
      DSYNC_TICK_MS: 'fast' })).toThrow(/DSYNC_TICK_MS/);
  });
});

describe('systemUrls: the other services, for the cluster page', () => {
  it('parses service=url,url;service=url from flags and env; default none', () => {
    expect(parseNodeConfig(base).systemUrls).toEqual({});
    const cfg = loadNodeConfig({}, { DSYNC_SERVICE: 'lock', DSYNC_NODE_ID: 'lock-0',
      DSYNC_CLUSTER_TOKEN: 'env-test-token', DSYNC_SYSTEM_URLS:
        ' lock=http://127.0.0.1:8000, http://127.0.0.1:8001/ ; cache=https://cache-0.c.svc:8080;' +
        'queue=http://[::1]:8100;cache=http://cache-1.c.svc:8080' });
    expect(cfg.systemUrls).toEqual({
      lock: ['http://127.0.0.1:8000', 'http://127.0.0.1:8001'],
      queue: ['http://[::1]:8100'],
      cache: ['https://cache-0.c.svc:8080', 'http://cache-1.c.svc:8080'],
    });
    expect(parseNodeConfig({ ...base, systemUrls: { cache: ['http://c:1'] } }).systemUrls)
      .toEqual({ cache: ['http://c:1'] });
  });

  it.each([
    ['lok=http://a:1', 'systemUrls.lok', /not a service; use lock, queue, cache/],
    ['http://a:1', 'systemUrls.http://a:1', /not a service/],
    ['lock=', 'systemUrls.lock', /at least one URL/],
    ['lock=ftp://a', 'systemUrls.lock.0', /http\(s\) URL without a path/],
    ['lock=http://a/b', 'systemUrls.lock.0', /without a path/],
    ['lock=http://a:1?x', 'systemUrls.lock.0', /without a path/],
    ['lock=http://a:0', 'systemUrls.lock.0', /port must be 1\.\.65535/],
    ['lock=http://a:65536', 'systemUrls.lock.0', /port must be 1\.\.65535/],
    ['cache=http://a:1,http://A:1/', 'systemUrls.cache.1', /duplicate URL/],
  ])('%j is refused, naming %s and the flag and env var', (value, field, why) => {
    const err = fails({ ...base, systemUrls: value });
    expect(err.details.field).toBe(field);
    expect(err.message).toMatch(why);
    expect(err.message).toContain('--system-urls');
    expect(err.message).toContain('DSYNC_SYSTEM_URLS');
  });

  it('refuses more URLs for one service than SYSTEM_URLS_PER_SERVICE_MAX', () => {
    const urls = Array.from({ length: SYSTEM_URLS_PER_SERVICE_MAX + 1 },
      (_, i) => `http://h${i}:8080`).join(',');
    expect(fails({ ...base, systemUrls: `cache=${urls}` }).details.field).toBe('systemUrls.cache');
  });

  it('systemUrlsOf adds this service\'s peers to what it was told, each URL once', () => {
    const cfg = parseNodeConfig({ ...base,
      peers: 'lock-0=127.0.0.1:8000:9000,lock-1=127.0.0.1:8001:9001',
      systemUrls: 'lock=http://127.0.0.1:8001,http://lb:80;cache=http://c:8200' });
    expect(systemUrlsOf(cfg)).toEqual({
      lock: ['http://127.0.0.1:8001', 'http://lb:80', 'http://127.0.0.1:8000'],
      cache: ['http://c:8200'],
    });
    expect(systemUrlsOf(parseNodeConfig(base))).toEqual({});
  });
});
