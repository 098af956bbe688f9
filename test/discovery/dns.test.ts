// Headless-Service DNS discovery against a real DNS server that the test starts on loopback
// (test/discovery/headless-dns-server.ts): SRV and A records served the way cluster DNS serves
// a StatefulSet's headless Service, records that appear late, and pod IPs that change between
// connects (every connect resolves again).
import { once } from 'node:events';
import { createServer, connect, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadlessServiceDns } from '../../src/discovery/dns.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';
import { HeadlessDnsServer } from './headless-dns-server.js';

const NS = 'dsync-test';
let dns: HeadlessDnsServer;
let discovery: HeadlessServiceDns;

beforeAll(async () => {
  dns = new HeadlessDnsServer('lock-headless', NS);
  await dns.start();
  discovery = new HeadlessServiceDns({ headless: 'lock-headless', namespace: NS,
    servers: [dns.address], queryTimeoutMs: 1000 });
});
afterAll(async () => {
  await dns.stop();
});

describe('headless Service DNS discovery', () => {
  it('lists the pods of the SRV records with their peer port and stable names', async () => {
    dns.setPod('lock-1', '127.0.0.11');
    dns.setPod('lock-0', '127.0.0.10');
    expect(await discovery.members()).toEqual([
      { pod: 'lock-0', host: `lock-0.lock-headless.${NS}.svc.cluster.local`, port: 7000 },
      { pod: 'lock-1', host: `lock-1.lock-headless.${NS}.svc.cluster.local`, port: 7000 },
    ]);
    expect(discovery.podHost('lock-1')).toBe(`lock-1.lock-headless.${NS}.svc.cluster.local`);
    expect(await discovery.resolveHost(discovery.podHost('lock-1')))
      .toEqual([{ address: '127.0.0.11', family: 4 }]);
    expect(dns.queries).toContain(`_peer._tcp.lock-headless.${NS}.svc.cluster.local`);
  });

  it('other named ports have their own SRV records', async () => {
    const http = new HeadlessServiceDns({ headless: 'lock-headless', namespace: NS,
      portName: 'http', servers: [dns.address] });
    expect((await http.members()).map((m) => m.port)).toEqual([8080, 8080]);
  });

  it('an empty Service or an unknown one lists no members; an unknown pod does not resolve',
    async () => {
      const none = new HeadlessServiceDns({ headless: 'queue-headless', namespace: NS,
        servers: [dns.address] });
      expect(await none.members()).toEqual([]);
      await expect(discovery.resolveHost(discovery.podHost('lock-9')))
        .rejects.toMatchObject({ code: 'ENOTFOUND' });
    });

  it('waits for records that appear late', async () => {
    dns.removePod('lock-1');
    const srv = `_peer._tcp.lock-headless.${NS}.svc.cluster.local`;
    const asked = (): number => dns.queries.filter((q) => q === srv).length;
    const before = asked();
    const waiting = discovery.waitForMembers(3, 20_000);
    // The pods are "scheduled" only after the waiter has seen the Service with one pod.
    await waitFor('the waiter to ask once', () => asked() > before);
    dns.setPod('lock-1', '127.0.0.11');
    dns.setPod('lock-2', '127.0.0.12');
    expect((await waiting).map((m) => m.pod)).toEqual(['lock-0', 'lock-1', 'lock-2']);
    expect(asked() - before).toBeGreaterThanOrEqual(2);
  });

  it('gives up at its deadline saying how many members it saw', async () => {
    await expect(discovery.waitForMembers(5, 300)).rejects.toThrow(
      /lists 3 of 5 members after 300 ms \(lock-0, lock-1, lock-2\)/);
  });

  it('resolves again on every connect: a pod that moves is reached at its new IP', async () => {
    const port = await freePort();
    const seen: string[] = [];
    const listen = async (ip: string): Promise<Server> => {
      const s = createServer((sock) => {
        seen.push(ip);
        sock.end();
      });
      s.listen(port, ip);
      await once(s, 'listening');
      return s;
    };
    const servers = [await listen('127.0.0.12'), await listen('127.0.0.13')];
    const dial = async (): Promise<void> => {
      const sock = connect({ host: discovery.podHost('lock-2'), port, lookup: discovery.lookup });
      await once(sock, 'close');
    };
    try {
      await dial();
      dns.setPod('lock-2', '127.0.0.13'); // the pod was rescheduled
      await dial();
      expect(seen).toEqual(['127.0.0.12', '127.0.0.13']);
    } finally {
      for (const s of servers) s.close();
    }
  });
});
