// PeerTransport over real TCP on 127.0.0.1 (port 0). No test asserts timings: each waits
// for a condition with a deadline and then checks contents and order.

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodePayload, frameHeader } from '../../src/transport/frame-codec.js';
import { PeerTransport } from '../../src/transport/peer-transport.js';
import { captureLog, TOKEN, TransportFactory, waitUntil } from './helpers.js';

const factory = new TransportFactory();

/** Decoded binary comes back as Buffer (a Uint8Array subclass); compare it as Uint8Array. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}
afterEach(async () => factory.closeAll());

describe('PeerTransport', () => {
  it('round-trips many message shapes, binary included', async () => {
    const { a, b } = await factory.pair();
    const bytes = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
    const shapes: unknown[] = [
      null, true, false, 0, -1, 42, 2 ** 53 - 1, -(2 ** 40), 1.5, -0.25, '', 'héllo ✓ 🚀',
      'x'.repeat(70_000), [], [1, 'two', [3, { four: 4 }]], {},
      { type: 'append', term: 7, entries: [{ term: 7, index: 12, data: bytes }] },
      { nested: { deeper: { deepest: [null, { ok: true }] } } },
      bytes, new Uint8Array(0),
    ];
    shapes.forEach((shape, i) => expect(a.t.send('b', { i, shape })).toBe(true));
    await waitUntil('all shapes delivered', () => b.inbox.length === shapes.length);
    for (const [i, got] of b.inbox.entries()) {
      expect(got.from).toBe('a');
      const payload = got.payload as { i: number; shape: unknown };
      expect(payload.i).toBe(i);
      expect(plain(payload.shape)).toEqual(shapes[i]);
    }
    const binary = (b.inbox[shapes.indexOf(bytes)]?.payload as { shape: unknown }).shape;
    expect(binary).toBeInstanceOf(Uint8Array);
    expect(Array.from(binary as Uint8Array)).toEqual(Array.from(bytes));
    const appendEntry = (b.inbox[16]?.payload as {
      shape: { entries: { data: unknown }[] } }).shape.entries[0];
    expect(appendEntry?.data).toBeInstanceOf(Uint8Array);
  });

  it('delivers in both directions with the sender as "from"', async () => {
    const { a, b } = await factory.pair();
    a.t.send('b', 'ping', 'control');
    b.t.send('a', 'pong', 'control');
    await waitUntil('both delivered', () => a.inbox.length === 1 && b.inbox.length === 1);
    expect(b.inbox[0]).toEqual({ from: 'a', payload: 'ping' });
    expect(a.inbox[0]).toEqual({ from: 'b', payload: 'pong' });
  });

  it('preserves order within each lane', async () => {
    const { a, b } = await factory.pair();
    const perLane = 1_500;
    for (let seq = 0; seq < perLane; seq++) {
      a.t.send('b', { lane: 'bulk', seq, pad: 'p'.repeat(seq % 200) }, 'bulk');
      a.t.send('b', { lane: 'control', seq }, 'control');
    }
    await waitUntil('all delivered', () => b.inbox.length === 2 * perLane);
    for (const lane of ['bulk', 'control']) {
      const seqs = b.inbox.map((m) => m.payload as { lane: string; seq: number })
        .filter((p) => p.lane === lane).map((p) => p.seq);
      expect(seqs).toEqual(Array.from({ length: perLane }, (_, i) => i));
    }
    expect(a.t.stats().b).toMatchObject({ sent: 2 * perLane, dropped: 0, queuedBytes: 0 });
  });

  it('refuses a dialer with the wrong cluster token and logs why on both sides', async () => {
    const logA = captureLog();
    const logB = captureLog();
    const b = await factory.start('b', { logger: logB.logger });
    const a = await factory.start('a', {
      clusterToken: 'not-the-token', logger: logA.logger,
      peers: new Map([['b', b.t.address()]]),
    });
    expect(a.t.send('b', 'secret', 'control')).toBe(true);
    await waitUntil('rejection logged on both sides', () =>
      logB.has('refused peer connection', { reason: 'wrong cluster token', nodeId: 'a' }) &&
      logA.has('peer refused the handshake', { reason: 'wrong cluster token' }));
    expect(a.t.stats().b?.connected).toBe(false);
    expect(b.inbox).toEqual([]);
  });

  it('reconnects after the peer restarts on the same port, delivering what was queued', async () => {
    const first = await factory.start('b');
    const port = first.t.address().port;
    const a = await factory.start('a', { peers: new Map([['b', first.t.address()]]) });
    a.t.send('b', 'before', 'bulk');
    await waitUntil('first delivery', () => first.inbox.length === 1);
    await first.t.close();
    await waitUntil('a notices the loss', () => a.t.stats().b?.connected === false);
    expect(a.t.send('b', 'while-down', 'bulk')).toBe(true);
    expect(a.t.send('b', 'while-down-control', 'control')).toBe(true);
    const second = await factory.start('b', { listen: { host: '127.0.0.1', port } });
    await waitUntil('queued messages delivered', () => second.inbox.length === 2);
    expect(second.inbox.map((m) => m.payload).sort()).toEqual(['while-down', 'while-down-control']);
    a.t.send('b', 'after', 'bulk');
    await waitUntil('later message delivered', () => second.inbox.length === 3);
    const stats = a.t.stats().b;
    expect(stats?.connected).toBe(true);
    expect(stats?.reconnects).toBeGreaterThanOrEqual(2); // both lanes came back
  });

  it('drops and counts sends beyond the queue bound while the peer is away', async () => {
    // A port that was bound and released: nothing listens there, dials are refused.
    const gone = await factory.start('gone');
    const deadAddress = gone.t.address();
    await gone.t.close();
    const boundBytes = 10_000;
    const a = await factory.start('a', {
      sendQueueBytesMax: boundBytes, peers: new Map([['b', deadAddress]]),
    });
    const payload = { data: new Uint8Array(1_000) }; // ~1 KiB on the wire
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 25; i++) {
      if (a.t.send('b', payload, 'bulk')) accepted++;
      else refused++;
    }
    for (let i = 0; i < 25; i++) if (!a.t.send('b', payload, 'control')) refused++;
    const stats = a.t.stats().b;
    expect(accepted).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    expect(stats?.dropped).toBe(refused);
    expect(stats?.queuedBytes).toBeLessThanOrEqual(2 * boundBytes); // per lane
    expect(stats?.queuedBytes).toBeGreaterThan(boundBytes / 2);
    expect(a.t.send('nobody', 'x')).toBe(false);
  });

  it('lets control frames sent after a 5 MiB bulk frame arrive before it', async () => {
    const { a, b } = await factory.pair();
    // Warm both lanes so the test measures the streams, not the dial order.
    a.t.send('b', 'warm-bulk', 'bulk');
    a.t.send('b', 'warm-control', 'control');
    await waitUntil('warm-up', () => b.inbox.length === 2 && a.t.stats().b?.connected === true);
    const big = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251);
    a.t.send('b', { kind: 'big', data: big }, 'bulk');
    for (let seq = 0; seq < 20; seq++) a.t.send('b', { kind: 'hb', seq }, 'control');
    await waitUntil('big frame delivered', () => b.inbox.length === 23, 30_000);
    const kinds = b.inbox.slice(2).map((m) => (m.payload as { kind: string }).kind);
    const bigAt = kinds.indexOf('big');
    // The control lane is its own stream: every heartbeat overtakes the big append.
    expect(bigAt).toBe(20);
    const gotBig = (b.inbox[2 + bigAt]?.payload as { data: Uint8Array }).data;
    expect(gotBig.length).toBe(big.length);
    expect(gotBig[big.length - 1]).toBe(big[big.length - 1]);
    expect(Buffer.compare(Buffer.from(gotBig), Buffer.from(big))).toBe(0);
  });

  it('writes control frames before the event loop turns, bulk frames by the end of the turn',
    async () => {
      const { a, b } = await factory.pair();
      a.t.send('b', 'warm-bulk', 'bulk');
      a.t.send('b', 'warm-control', 'control');
      await waitUntil('warm-up', () => b.inbox.length === 2 && a.t.stats().b?.connected === true);
      const sent = (): number => a.t.stats().b?.sent ?? -1;
      const before = sent();
      // What a leader does from inside one long poll phase (thousands of HTTP requests):
      // no Immediate runs until the phase ends, so a heartbeat must not wait for one.
      a.t.send('b', { kind: 'hb' }, 'control');
      await new Promise<void>((resolve) => process.nextTick(resolve));
      expect(sent()).toBe(before + 1);
      a.t.send('b', { kind: 'append' }, 'bulk');
      await new Promise<void>((resolve) => process.nextTick(resolve));
      expect(sent()).toBe(before + 1);
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(sent()).toBe(before + 2);
      await waitUntil('both delivered', () => b.inbox.length === 4);
    });

  it('closes a connection that carries a frame over frameBytesMax, then recovers', async () => {
    const logB = captureLog();
    const { a, b } = await factory.pair({}, { frameBytesMax: 64 * 1024, logger: logB.logger });
    a.t.send('b', 'small', 'bulk');
    await waitUntil('small delivered', () => b.inbox.length === 1);
    expect(a.t.send('b', { blob: new Uint8Array(200 * 1024) }, 'bulk')).toBe(true);
    await waitUntil('oversized frame refused', () =>
      logB.has('closing peer connection') && a.t.stats().b?.reconnects === 1);
    const line = logB.lines.find((l) => l.msg === 'closing peer connection');
    expect(String(line?.reason)).toMatch(/over the limit of 65536/);
    a.t.send('b', 'after', 'bulk');
    await waitUntil('delivery after reconnect', () => b.inbox.length === 2);
    expect(b.inbox.map((m) => m.payload)).toEqual(['small', 'after']);
    // The sender refuses what its own limit forbids, without touching the connection.
    const tiny = await factory.start('c', {
      frameBytesMax: 2_048, peers: new Map([['b', b.t.address()]]),
    });
    expect(tiny.t.send('b', new Uint8Array(4_096))).toBe(false);
    expect(tiny.t.stats().b?.dropped).toBe(1);
  });

  it('redials a peer that accepted the handshake and then stopped reading', async () => {
    // A fake acceptor: welcomes every dialer, then never reads again (a frozen process).
    const accepted: net.Socket[] = [];
    const server = net.createServer((socket) => {
      accepted.push(socket);
      socket.on('error', () => undefined);
      socket.once('data', () => {
        const welcome = encodePayload({ type: 'welcome', nodeId: 'frozen' });
        socket.write(Buffer.concat([frameHeader(welcome.length), welcome]));
        socket.pause();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const log = captureLog();
      const a = await factory.start('a', {
        logger: log.logger, writeStallMs: 300, sendQueueBytesMax: 64 * 1024 * 1024,
        peers: new Map([['frozen', { host: '127.0.0.1', port }]]),
      });
      await waitUntil('connected', () => a.t.stats().frozen?.connected === true);
      // Enough to fill the loopback socket buffers of both ends, so writes stop progressing.
      const chunk = new Uint8Array(1024 * 1024);
      for (let i = 0; i < 48; i++) expect(a.t.send('frozen', { chunk }, 'bulk')).toBe(true);
      await waitUntil('stall detected', () => log.has('peer stopped reading, redialing'), 30_000);
      await waitUntil('redialed', () => accepted.length >= 3); // control, bulk, bulk again
    } finally {
      for (const socket of accepted) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('writes out what is queued when closed (a leader hands off, then exits)', async () => {
    const { a, b } = await factory.pair();
    a.t.send('b', 'warm', 'control');
    await waitUntil('connected', () => a.t.stats().b?.connected === true);
    a.t.send('b', 'timeout-now', 'control');
    a.t.send('b', 'last append', 'bulk');
    await a.t.close(); // same turn as the sends: nothing was flushed yet
    await waitUntil('queued messages delivered', () => b.inbox.length === 3);
    expect(b.inbox.map((m) => m.payload).sort()).toEqual(['last append', 'timeout-now', 'warm']);
    expect(a.t.send('b', 'after close')).toBe(false);
  });

  it('adds and removes peers with setPeers', async () => {
    const b = await factory.start('b');
    const c = await factory.start('c');
    const a = await factory.start('a', { peers: new Map([['b', b.t.address()]]) });
    expect(a.t.send('c', 'too early')).toBe(false);
    a.t.setPeers(new Map([['c', c.t.address()]]));
    expect(a.t.send('b', 'gone')).toBe(false);
    expect(Object.keys(a.t.stats())).toEqual(['c']);
    a.t.send('c', 'hello c');
    await waitUntil('c receives', () => c.inbox.length === 1);
    expect(c.inbox[0]).toEqual({ from: 'a', payload: 'hello c' });
    expect(() => a.t.setPeers(new Map([['a', a.t.address()]]))).toThrow(/must not include/);
  });

  it('validates its options, naming the field', () => {
    const base = {
      nodeId: 'a', listen: { host: '127.0.0.1', port: 0 }, peers: new Map(),
      clusterToken: TOKEN, sendQueueBytesMax: 1_000, frameBytesMax: 4_096,
      reconnectMsMin: 10, reconnectMsMax: 100,
    };
    expect(() => new PeerTransport({ ...base, reconnectMsMax: 5 }))
      .toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT',
        details: { field: 'reconnectMsMax' } }));
    expect(() => new PeerTransport({ ...base, frameBytesMax: 2 ** 32 }))
      .toThrow(/frameBytesMax/);
    expect(() => new PeerTransport({ ...base, nodeId: '' })).toThrow(/nodeId/);
  });
});
