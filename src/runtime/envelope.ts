// The envelope every normal log entry carries: the leader's clock and an optional idempotency
// key around the service's own command bytes. Decoding is shared by every replica, so the
// clock and the de-duplication decisions are part of the replicated state.
import { Packr } from 'msgpackr';
import { assert } from '../assert.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

export interface Envelope {
  /** Leader's wall clock when proposed, Unix ms. */
  readonly t: number;
  /** Client id and request id: a retried command with the same pair applies once. */
  readonly c?: string;
  readonly r?: string;
  /** The service's command. */
  readonly d: Uint8Array;
}

export function encodeEnvelope(env: Envelope): Uint8Array {
  return packr.pack(env);
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const env = packr.unpack(bytes) as Envelope;
  assert(typeof env === 'object' && env !== null && typeof env.t === 'number',
    'log entry is not a dsync envelope');
  return env;
}

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}
