// Shared by the transport tests: a deadline-bounded wait, a log-capturing pino logger, and
// a factory that closes every transport it made.

import { pino } from 'pino';
import type { Logger } from 'pino';
import { PeerTransport } from '../../src/transport/peer-transport.js';
import type { PeerAddress, TransportOptions } from '../../src/transport/peer-transport.js';

export async function waitUntil(what: string, probe: () => boolean, timeoutMs = 10_000,
  ): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface CapturedLog {
  readonly logger: Logger;
  readonly lines: Record<string, unknown>[];
  has(msg: string, fields?: Record<string, unknown>): boolean;
}

export function captureLog(): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, {
    write(line: string): void {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return {
    logger,
    lines,
    has: (msg, fields = {}) => lines.some((l) => l.msg === msg &&
      Object.entries(fields).every(([k, v]) => l[k] === v)),
  };
}

export const TOKEN = 'transport-test-token';

export interface Received {
  readonly from: string;
  readonly payload: unknown;
}

/** Makes transports on 127.0.0.1:0 and closes all of them in closeAll(). */
export class TransportFactory {
  private readonly made: PeerTransport[] = [];

  async start(nodeId: string, overrides: Partial<TransportOptions> = {},
  ): Promise<{ t: PeerTransport; inbox: Received[] }> {
    const t = new PeerTransport({
      nodeId,
      listen: { host: '127.0.0.1', port: 0 },
      peers: new Map<string, PeerAddress>(),
      clusterToken: TOKEN,
      sendQueueBytesMax: 16 * 1024 * 1024,
      frameBytesMax: 8 * 1024 * 1024,
      reconnectMsMin: 10,
      reconnectMsMax: 200,
      ...overrides,
    });
    this.made.push(t);
    const inbox: Received[] = [];
    t.onMessage((from, payload) => inbox.push({ from, payload }));
    await t.start();
    return { t, inbox };
  }

  /** Two transports that know each other (a dials b and b dials a). */
  async pair(overridesA: Partial<TransportOptions> = {},
    overridesB: Partial<TransportOptions> = {}) {
    const b = await this.start('b', overridesB);
    const a = await this.start('a', { peers: new Map([['b', b.t.address()]]), ...overridesA });
    b.t.setPeers(new Map([['a', a.t.address()]]));
    return { a, b };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.made.splice(0).map((t) => t.close()));
  }
}
