// `dsync status`'s rows from scripted /health answers on loopback (a queue node is not built
// yet, so its shape comes from API.md): a Raft node's state, term, leader and lag; a queue
// node's partitions (how many it hosts and leads); a node that is down, with why; and the
// members a Raft node lists in /v1/cluster found from one URL.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeStatuses, statusText } from '../../src/cli/status.js';
import { freePort } from '../support/ports.js';

const servers: Server[] = [];
async function node(answer: (path: string, self: string) => unknown): Promise<string> {
  let self = '';
  const s = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer(req.url ?? '', self)));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  self = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return self;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

let lock0 = '';
let lock1 = '';
let queue0 = '';
let dead = '';
let cache0 = '';

beforeAll(async () => {
  const raft = (id: string, state: string, applied: number) => (path: string) =>
    (path === '/v1/cluster'
      ? { leader: 'lock-0', members: [{ id: 'lock-0', url: lock0 }, { id: 'lock-1', url: lock1 }] }
      : { status: 'ok', service: 'lock', node: id, raft: { state, term: 4, leader: 'lock-0',
        commitIndex: 120, appliedIndex: applied } });
  lock0 = await node(raft('lock-0', 'leader', 120));
  lock1 = await node(raft('lock-1', 'follower', 100));
  queue0 = await node((path) => (path === '/v1/cluster' ? {} : { status: 'ok',
    service: 'queue', node: 'queue-0', partitions: [
      { partition: 0, state: 'leader', term: 2, leader: 'queue-0' },
      { partition: 1, state: 'follower', term: 3, leader: 'queue-1' },
      { partition: 5, state: 'follower', term: 1, leader: 'queue-2' }] }));
  cache0 = await node(() => ({ status: 'ok', service: 'cache', node: 'cache-0',
    storeUp: false, startupGrace: true }));
  dead = `http://127.0.0.1:${await freePort()}`;
});

describe('dsync status rows', () => {
  it('finds the other members from one node, shows partitions and a dead node', async () => {
    const rows = await nodeStatuses([cache0, lock0, queue0, dead], true);
    expect(rows.map((r) => [r.service, r.node, r.status])).toEqual([
      ['lock', 'lock-0', 'up'], ['lock', 'lock-1', 'up'], ['queue', 'queue-0', 'up'],
      ['cache', 'cache-0', 'up'], [null, null, 'down']]);
    expect(rows.map((r) => r.lag)).toEqual([0, 20, undefined, undefined, undefined]);
    expect(rows[2]!.partitions).toHaveLength(3);
    const text = statusText(rows);
    expect(text).toMatch(/lock\s+lock-1\s+\S+\s+follower\s+4\s+lock-0\s+120\s+20/);
    expect(text).toMatch(/queue\s+queue-0\s+\S+\s+3 partitions, leads 1/);
    expect(text).toMatch(/DOWN \(connection refused: no node listens there\)/);
    expect(text).toMatch(/cache\s+cache-0\s+\S+\s+up \(store DOWN, start-up grace\)/);
  });
});
