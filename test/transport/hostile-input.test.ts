// What a port scanner, a confused client or a broken peer can send must never crash the
// process: each case ends with the connection closed and the transport still serving.

import net from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { encodePayload, frameHeader } from '../../src/transport/frame-codec.js';
import { PROTOCOL_VERSION } from '../../src/transport/handshake.js';
import type { PeerAddress } from '../../src/transport/peer-transport.js';
import { captureLog, TOKEN, TransportFactory, waitUntil } from './helpers.js';

const factory = new TransportFactory();
afterEach(async () => factory.closeAll());

function frame(value: unknown): Buffer {
  const payload = encodePayload(value);
  return Buffer.concat([frameHeader(payload.length), payload]);
}

function hello(overrides: Record<string, unknown> = {}): Buffer {
  return frame({ type: 'hello', version: PROTOCOL_VERSION, nodeId: 'raw', token: TOKEN,
    lane: 'bulk', ...overrides });
}

/** Server-side close must come within this deadline, or the case fails (not hangs). */
const RAW_CLOSE_DEADLINE_MS = 5_000;

/** Writes `bytes` from a raw socket (optionally ending our side) and resolves with what the
 * server sent back once the server has closed the connection. */
async function rawExchange(address: PeerAddress, bytes: Buffer, endAfterWrite: boolean,
  ): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const received: Buffer[] = [];
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`server kept the connection open for ${RAW_CLOSE_DEADLINE_MS} ms`));
    }, RAW_CLOSE_DEADLINE_MS);
    const socket = net.connect(address.port, address.host, () => {
      socket.write(bytes);
      if (endAfterWrite) socket.end();
    });
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined); // a reset is an acceptable way to be refused
    socket.on('close', () => {
      clearTimeout(deadline);
      resolve(Buffer.concat(received));
    });
  });
}

describe('PeerTransport under hostile input', () => {
  it('closes connections that send garbage, with a logged reason, and keeps serving', async () => {
    const log = captureLog();
    const { a, b } = await factory.pair({}, { logger: log.logger, frameBytesMax: 4_096,
      handshakeTimeoutMs: 300 });
    const address = b.t.address();
    const cases: [string, Buffer, RegExp][] = [
      ['huge length prefix', Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), /over the limit/],
      ['invalid msgpack', Buffer.from([0, 0, 0, 2, 0xc1, 0xc1]), /not valid msgpack/],
      ['not a hello', frame([1, 2, 3]), /not a hello/],
      ['wrong version', hello({ version: 99 }), /protocol version 99/],
      ['unknown lane', hello({ lane: 'sideways' }), /unknown lane/],
      ['own node id', hello({ nodeId: 'b' }), /own id/],
      // 0x92 announces a two-element array of which only one element follows.
      ['bad frame after hello', Buffer.concat([hello(), Buffer.from([0, 0, 0, 2, 0x92, 1])]),
        /undecodable frame/],
      ['oversized after hello', Buffer.concat([hello(), frameHeader(5_000)]),
        /over the limit of 4096/],
    ];
    for (const [name, bytes, reason] of cases) {
      const before = log.lines.length;
      await rawExchange(address, bytes, false);
      const said = log.lines.slice(before).map((l) => String(l.reason)).join(' | ');
      expect(said, name).toMatch(reason);
    }
    // Silence after connecting: the handshake timer closes the connection.
    await rawExchange(address, Buffer.alloc(0), false);
    expect(log.has('closing peer connection', {
      reason: 'no handshake within handshakeTimeoutMs' })).toBe(true);
    a.t.send('b', 'still alive', 'control');
    await waitUntil('legit delivery after garbage', () => b.inbox.length === 1);
    expect(b.inbox[0]).toEqual({ from: 'a', payload: 'still alive' });
  });

  it('answers a wrong token with a reject frame naming the reason', async () => {
    const b = await factory.start('b');
    const reply = await rawExchange(b.t.address(), hello({ token: 'guess' }), false);
    expect(reply.readUInt32BE(0)).toBe(reply.length - 4);
    const { decodePayload } = await import('../../src/transport/frame-codec.js');
    expect(decodePayload(reply.subarray(4))).toEqual({ type: 'reject',
      reason: 'wrong cluster token' });
    expect(b.inbox).toEqual([]);
  });

  it('lets a newer connection of the same node and lane supersede the older one', async () => {
    const b = await factory.start('b');
    const address = b.t.address();
    const open = async (): Promise<{ socket: net.Socket; closed: () => boolean }> => {
      let closed = false;
      let replied = false;
      const socket = net.connect(address.port, address.host, () => socket.write(hello()));
      socket.on('data', () => {
        replied = true;
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        closed = true;
      });
      await waitUntil('welcome', () => replied || closed);
      return { socket, closed: () => closed };
    };
    const older = await open();
    const newer = await open();
    await waitUntil('older connection closed', () => older.closed());
    newer.socket.write(frame({ via: 'newer' }));
    await waitUntil('delivered on the newer one', () => b.inbox.length === 1);
    expect(b.inbox[0]).toEqual({ from: 'raw', payload: { via: 'newer' } });
    expect(newer.closed()).toBe(false);
    newer.socket.destroy();
  });

  it('holds only the hello to the small handshake limit, not frames pipelined behind it',
    async () => {
      const b = await factory.start('b', { frameBytesMax: 64 * 1024 });
      const big = new Uint8Array(20_000).fill(9); // over the 4 KiB handshake limit
      const socket = net.connect(b.t.address().port, '127.0.0.1', () => {
        socket.write(Buffer.concat([hello(), frame({ big }), frame('second')]));
      });
      socket.on('error', () => undefined);
      await waitUntil('both pipelined frames delivered', () => b.inbox.length === 2);
      expect((b.inbox[0]?.payload as { big: Uint8Array }).big.length).toBe(20_000);
      expect(b.inbox[1]).toEqual({ from: 'raw', payload: 'second' });
      socket.destroy();
    });

  it('survives arbitrary byte strings (property)', async () => {
    const b = await factory.start('b', { frameBytesMax: 4_096, handshakeTimeoutMs: 300 });
    const address = b.t.address();
    await fc.assert(fc.asyncProperty(
      fc.uint8Array({ minLength: 1, maxLength: 2_048 }),
      async (bytes) => {
        await rawExchange(address, Buffer.from(bytes), true);
      },
    ), { numRuns: 30, seed: 42 });
    expect(b.inbox).toEqual([]);
  });

  it('releases every socket and timer on close', async () => {
    const kinds = new Set(['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'Immediate']);
    const count = (): number =>
      process.getActiveResourcesInfo().filter((k) => kinds.has(k)).length;
    const baseline = count();
    const { a, b } = await factory.pair();
    a.t.send('b', 'x', 'bulk');
    b.t.send('a', 'y', 'control');
    await waitUntil('exchange', () => a.inbox.length === 1 && b.inbox.length === 1);
    // A peer that never answers leaves a lane in backoff with a timer armed.
    a.t.setPeers(new Map([['b', b.t.address()], ['nobody', { host: '127.0.0.1', port: 1 }]]));
    expect(count()).toBeGreaterThan(baseline);
    await factory.closeAll();
    await waitUntil('handles released', () => count() <= baseline);
  });
});
