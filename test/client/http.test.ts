// The SDK's transport against a real HTTP server on loopback that records what it receives:
// every call carries the client's id in x-dsync-client, the same id for the life of the
// client (so the servers scope its requestIds to it) and a different one per client.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DsyncClient } from '../../src/client/index.js';

let server: Server;
let base = '';
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name: 'n', owner: 'o', mode: 'exclusive', token: 1,
        expiresAt: 0, released: true }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => { await new Promise((r) => server.close(r)); });

describe('SDK transport', () => {
  it('sends its client id in x-dsync-client on every call, one id per client', async () => {
    // No membership lookups: only the calls below reach the server.
    const a = new DsyncClient({ locks: [base], discover: false });
    const b = new DsyncClient({ locks: [base], discover: false });
    seen.length = 0;
    await a.locks.acquire('n', { owner: 'o' });
    await a.locks.release('n', 'o');
    await a.locks.get('n');
    await b.locks.acquire('n', { owner: 'o' });
    const ids = seen.map((h) => h['x-dsync-client']);
    expect(ids).toHaveLength(4);
    expect(ids.every((id) => typeof id === 'string' && /^[\x21-\x7e]{1,128}$/.test(id))).toBe(true);
    expect(new Set(ids.slice(0, 3)).size).toBe(1);
    expect(ids[3]).not.toBe(ids[0]);
    await Promise.all([a.close(), b.close()]);
  });
});
