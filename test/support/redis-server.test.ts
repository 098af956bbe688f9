// The redis-server launcher that integration tests and benchmarks share: a real server on a
// free port, reachable at its url, gone (process and directory) after stop().
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { pingRedis, startRedis } from './redis-server.js';

describe('startRedis', () => {
  it('starts a server of its own and removes every trace on stop', async () => {
    const server = await startRedis();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      await client.set('k', 'v');
      expect(await client.get('k')).toBe('v');
    } finally {
      client.disconnect();
      await server.stop();
    }
    expect(existsSync(server.dir)).toBe(false);
    expect(await pingRedis(server.port)).toBe(false);
    expect(() => process.kill(server.pid, 0)).toThrow();
  });

  it('gives two servers two ports', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(await pingRedis(a.port)).toBe(true);
      expect(await pingRedis(b.port)).toBe(true);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
