// The fault proxy must do exactly what fault tests rely on: pass bytes in order, reset on
// drop, swallow on blackhole, and, in a mesh, cut one direction of one link only.

import net from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TransportFactory, waitUntil } from '../transport/helpers.js';
import { FaultProxy, ProxyMesh } from './fault-proxy.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An echo server that also records every byte it received. */
async function echoServer(): Promise<{ port: number; received: () => string }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      s.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no address');
  return { port: address.port, received: () => Buffer.concat(chunks).toString() };
}

interface Client {
  readonly socket: Socket;
  readonly echoed: () => string;
  readonly closed: () => boolean;
}

async function connect(port: number): Promise<Client> {
  const chunks: Buffer[] = [];
  let closed = false;
  const socket = net.connect(port, '127.0.0.1');
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
  });
  cleanups.push(async () => {
    socket.destroy();
  });
  // A reset can beat the connect callback (drop mode): then the socket is simply closed.
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', () => resolve());
  });
  return { socket, echoed: () => Buffer.concat(chunks).toString(), closed: () => closed };
}

async function proxyTo(port: number): Promise<FaultProxy> {
  const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port } });
  cleanups.push(() => proxy.close());
  return proxy;
}

describe('FaultProxy', () => {
  it('passes bytes both ways, in order, with and without delay', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo.port);
    const client = await connect(proxy.port);
    client.socket.write('hello;');
    await waitUntil('echo', () => client.echoed() === 'hello;');
    proxy.setDelayMs(30);
    const parts = Array.from({ length: 50 }, (_, i) => `m${i};`);
    parts.slice(0, 25).forEach((p) => client.socket.write(p));
    proxy.setDelayMs(0); // later bytes must not overtake the delayed ones
    parts.slice(25).forEach((p) => client.socket.write(p));
    const expected = `hello;${parts.join('')}`;
    await waitUntil('delayed echo', () => client.echoed() === expected);
    expect(echo.received()).toBe(expected);
    expect(() => proxy.setDelayMs(-1)).toThrow(RangeError);
  });

  it('drop resets existing connections and refuses new ones until pass', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo.port);
    const client = await connect(proxy.port);
    client.socket.write('a');
    await waitUntil('echo', () => client.echoed() === 'a');
    proxy.setMode('drop');
    await waitUntil('existing connection reset', () => client.closed());
    const refused = await connect(proxy.port); // the kernel accepts; the proxy resets
    await waitUntil('new connection reset', () => refused.closed());
    expect(proxy.counters.refused).toBe(1);
    await waitUntil('pairs forgotten', () => proxy.openConnections === 0);
    proxy.setMode('pass');
    const again = await connect(proxy.port);
    again.socket.write('b');
    await waitUntil('echo after heal', () => again.echoed() === 'b');
  });

  it('blackhole swallows bytes, then resets only the connections that lost some', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo.port);
    const quiet = await connect(proxy.port);
    const talker = await connect(proxy.port);
    talker.socket.write('before;');
    await waitUntil('echo', () => talker.echoed() === 'before;');
    proxy.setMode('blackhole');
    talker.socket.write('lost;');
    await waitUntil('bytes discarded', () => proxy.counters.bytesDiscarded === 'lost;'.length);
    expect(echo.received()).toBe('before;');
    expect(talker.closed()).toBe(false);
    proxy.setMode('pass');
    await waitUntil('lossy connection reset', () => talker.closed());
    quiet.socket.write('still here;');
    await waitUntil('quiet connection kept', () => quiet.echoed() === 'still here;');
    expect(quiet.closed()).toBe(false);
  });

  it('resets the client when the target refuses', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo.port);
    await cleanups.splice(0, 1)[0]?.(); // stop the echo server: nothing listens on the target
    const client = await connect(proxy.port);
    await waitUntil('client reset', () => client.closed());
  });
});

describe('ProxyMesh', () => {
  it('cuts one direction of one link between real transports', async () => {
    const factory = new TransportFactory();
    cleanups.push(() => factory.closeAll());
    const ids = ['a', 'b', 'c'];
    // Bind first (port 0), then point every peer list at the proxies.
    const nodes = await Promise.all(ids.map((id) => factory.start(id)));
    const mesh = await ProxyMesh.start(ids.map((id, i) => ({
      id, peerPort: nodes[i]!.t.address().port })));
    cleanups.push(() => mesh.close());
    const [a, b, c] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
    expect([...mesh.peersOf('a').keys()]).toEqual(['b', 'c']);
    ids.forEach((id, i) => nodes[i]!.t.setPeers(mesh.peersOf(id)));
    a.t.send('b', 'a->b 1');
    await waitUntil('a->b flows', () => b.inbox.length === 1);

    mesh.cut('a', 'b');
    await waitUntil('a->b down', () => a.t.stats().b?.connected === false &&
      mesh.link('a', 'b').counters.refused > 0);
    a.t.send('b', 'a->b 2 (queued)');
    b.t.send('a', 'b->a');
    a.t.send('c', 'a->c');
    await waitUntil('other directions flow', () => a.inbox.length === 1 && c.inbox.length === 1);
    expect(a.inbox[0]).toEqual({ from: 'b', payload: 'b->a' });
    expect(b.inbox.map((m) => m.payload)).toEqual(['a->b 1']);

    mesh.healAll();
    await waitUntil('queued message delivered after heal', () => b.inbox.length === 2);
    expect(b.inbox[1]).toEqual({ from: 'a', payload: 'a->b 2 (queued)' });
    expect(() => mesh.link('a', 'a')).toThrow(/no link/);
  });
});
