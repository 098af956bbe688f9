// The first frame on every connection. The dialer says who it is and proves it knows the
// cluster token; the acceptor answers `welcome` or `reject` with a reason (then closes), so
// a misconfigured node logs why it cannot join instead of silently retrying.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Lane } from './transport-options.js';
import { CLUSTER_TOKEN_CHARS_MAX, NODE_ID_CHARS_MAX } from './transport-options.js';

/** Bumped on any incompatible change of the frame or handshake format. */
export const PROTOCOL_VERSION = 1;
/** Handshake frames are tiny; a larger one before the handshake is garbage. */
export const HANDSHAKE_FRAME_BYTES_MAX = 4_096;

export interface Hello {
  readonly type: 'hello';
  readonly version: number;
  readonly nodeId: string;
  readonly token: string;
  readonly lane: Lane;
}

export type HelloReply =
  | { readonly type: 'welcome'; readonly nodeId: string }
  | { readonly type: 'reject'; readonly reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Returns the hello or, when the frame is not one, a reason fit for a log line. */
export function parseHello(value: unknown): Hello | string {
  if (!isRecord(value) || value.type !== 'hello') return 'first frame is not a hello';
  const { version, nodeId, token, lane } = value;
  if (typeof version !== 'number') return 'hello without a protocol version';
  if (typeof nodeId !== 'string' || nodeId.length === 0 || nodeId.length > NODE_ID_CHARS_MAX) {
    return 'hello with an invalid node id';
  }
  if (typeof token !== 'string' || token.length > CLUSTER_TOKEN_CHARS_MAX) {
    return 'hello with an invalid token';
  }
  if (lane !== 'control' && lane !== 'bulk') return 'hello with an unknown lane';
  return { type: 'hello', version, nodeId, token, lane };
}

export function parseHelloReply(value: unknown): HelloReply | null {
  if (!isRecord(value)) return null;
  if (value.type === 'welcome' && typeof value.nodeId === 'string') {
    return { type: 'welcome', nodeId: value.nodeId };
  }
  if (value.type === 'reject' && typeof value.reason === 'string') {
    return { type: 'reject', reason: value.reason };
  }
  return null;
}

/** Why the acceptor refuses this hello, or null when it accepts it. */
export function helloRejection(hello: Hello, clusterToken: string, selfId: string): string | null {
  if (hello.version !== PROTOCOL_VERSION) {
    return `protocol version ${hello.version} is not ${PROTOCOL_VERSION}`;
  }
  if (!tokensEqual(hello.token, clusterToken)) return 'wrong cluster token';
  if (hello.nodeId === selfId) return `node id ${selfId} is this node's own id`;
  return null;
}

/** Constant-time comparison: hashing first makes the inputs equal-length, which
 * timingSafeEqual requires, without leaking the token's length through an early exit. */
export function tokensEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}
