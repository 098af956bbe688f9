// The backing stores on their own: "write only if newer" (a delayed write-back must never
// overwrite a newer value), tombstones that keep versions growing across a delete, and the
// embedded store's log: replay after a restart, a torn tail cut off, compaction. The Redis
// store runs against a real redis-server on a free port.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from
  'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeLog, EmbeddedStore, encodeRecord } from '../../src/cache/embedded-store.js';
import { createStoreLatency, RedisStore, type BackingStore } from '../../src/cache/store.js';
import { silentLogger } from '../../src/observability/logger.js';
import { UnavailableError } from '../../src/errors.js';
import { freePort } from '../support/ports.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const latency = () => createStoreLatency(new Registry());

/** The contract both stores share. */
async function contract(store: BackingStore, key: string): Promise<void> {
  expect(await store.load(key)).toBeNull();
  expect(await store.write(key, '"a"', 2)).toBe(true);
  expect(await store.load(key)).toEqual({ value: '"a"', version: 2 });
  // Older and equal versions never overwrite.
  expect(await store.write(key, '"old"', 1)).toBe(false);
  expect(await store.write(key, '"same"', 2)).toBe(false);
  expect(await store.load(key)).toEqual({ value: '"a"', version: 2 });
  // A delete is a tombstone: no value, the version kept, older writes still refused.
  expect(await store.write(key, null, 3)).toBe(true);
  expect(await store.load(key)).toEqual({ value: null, version: 3 });
  expect(await store.write(key, '"late"', 2)).toBe(false);
  expect(await store.write(key, '"b"', 4)).toBe(true);
  expect(await store.load(key)).toEqual({ value: '"b"', version: 4 });
}

describe('RedisStore', () => {
  let redis: RedisServer;
  let store: RedisStore;
  beforeAll(async () => {
    redis = await startRedis();
    store = new RedisStore(redis.url, latency());
    await store.connect(redis.url, 5_000, () => undefined);
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('writes only newer versions, keeps tombstones; delete removes every trace', async () => {
    expect(store.healthy()).toBe(true);
    await contract(store, 'k/ü');
    await store.delete('k/ü');
    expect(await store.load('k/ü')).toBeNull();
  });

  it('a value that is not JSON text (written by someone else) fails the load, saying so',
    async () => {
      const raw = new Redis(redis.url);
      try {
        await raw.hset('dsync:cache:junk', 'v', '3', 'd', '{not json');
      } finally {
        raw.disconnect();
      }
      await expect(store.load('junk')).rejects.toThrow(/not JSON; delete dsync:cache:junk/);
      await store.ping();
    });

  it('concurrent writes of many versions leave the highest one', async () => {
    const versions = Array.from({ length: 50 }, (_, i) => i + 1).sort(() => 0.5 - Math.random());
    await Promise.all(versions.map((v) => store.write('race', `${v}`, v)));
    expect(await store.load('race')).toEqual({ value: '50', version: 50 });
  });
});

describe('EmbeddedStore', () => {
  const dirs: string[] = [];
  const newDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'dsync-embedded-'));
    dirs.push(d);
    return d;
  };
  const open = (dir: string, compactBytesMin?: number) => EmbeddedStore.open({ dir, fsync: true,
    latency: latency(), logger: silentLogger(),
    ...(compactBytesMin === undefined ? {} : { compactBytesMin }) });
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

  it('keeps the store contract and replays it after a restart', async () => {
    const dir = newDir();
    const s = await open(dir);
    await contract(s, 'k1');
    await s.write('k2', '[1,2]', 7);
    await s.close();
    const again = await open(dir);
    expect(await again.load('k1')).toEqual({ value: '"b"', version: 4 });
    expect(await again.load('k2')).toEqual({ value: '[1,2]', version: 7 });
    expect(await again.write('k2', '"older"', 6)).toBe(false);
    await again.close();
  });

  it('cuts a torn tail off at the first bad record and keeps what came before', async () => {
    const dir = newDir();
    const s = await open(dir);
    await s.write('a', '1', 1);
    await s.write('b', '2', 1);
    await s.close();
    const log = join(dir, 'store.log');
    const good = statSync(log).size;
    // Half a record, as a crash in the middle of an append leaves it.
    appendFileSync(log, encodeRecord('c', { value: '3', version: 1 }).subarray(0, 7));
    const reopened = await open(dir);
    expect(statSync(log).size).toBe(good);
    expect(await reopened.load('b')).toEqual({ value: '2', version: 1 });
    expect(await reopened.load('c')).toBeNull();
    await reopened.close();
    // A flipped byte fails the CRC: that record and everything after it are dropped.
    const bytes = readFileSync(log);
    const second = decodeLog(bytes.subarray(0, encodeRecord('a', { value: '1', version: 1 })
      .length)).validBytes;
    bytes[second + 9] = bytes[second + 9]! ^ 0xff;
    writeFileSync(log, bytes);
    const decoded = decodeLog(readFileSync(log));
    expect(decoded.records.map(([k]) => k)).toEqual(['a']);
  });

  it('compacts the log to the live records once it outgrows them', async () => {
    const dir = newDir();
    const s = await open(dir, 4096);
    for (let v = 1; v <= 200; v++) await s.write('hot', `"${'x'.repeat(50)}${v}"`, v);
    await s.close();
    const size = statSync(join(dir, 'store.log')).size;
    expect(size).toBeLessThan(4096 + 200);
    const again = await open(dir);
    expect(await again.load('hot')).toEqual({ value: `"${'x'.repeat(50)}200"`, version: 200 });
    await again.close();
  });
});

describe('RedisStore start-up', () => {
  it('waits for a Redis that starts late, reporting each failed attempt', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const store = new RedisStore(url, latency());
    const attempts: number[] = [];
    let late: RedisServer | undefined;
    try {
      const connected = store.connect(url, 30_000, (n) => {
        attempts.push(n);
        if (n === 2) void startRedis({ port }).then((r) => { late = r; });
      });
      await connected;
      expect(attempts.length).toBeGreaterThanOrEqual(2);
      expect(store.healthy()).toBe(true);
    } finally {
      await store.close();
      await late?.stop();
    }
  });

  it('gives up after the wait with an error that says what to do, hiding the password',
    async () => {
      const url = `redis://:s3cret@127.0.0.1:${await freePort()}`;
      const store = new RedisStore(url, latency());
      const err = await store.connect(url, 600, () => undefined).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnavailableError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/did not answer within 600 ms/);
      expect(msg).toMatch(/--redis-url \(DSYNC_REDIS_URL\)/);
      expect(msg).not.toContain('s3cret');
      await store.close();
    });
});
