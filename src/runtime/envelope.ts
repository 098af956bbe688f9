// The envelope every normal log entry carries: the leader's clock and a batch of commands,
// each with an optional idempotency key (client id, request id, fingerprint of the command).
// Decoding is shared by every replica, so the clock and the de-duplication decisions are part
// of the replicated state.
//
// Format (msgpack): {t, b: [[d, c?, r?, f?], …]}. Entries written before batching carried one
// command as {t, d, c?, r?}; they still decode, as a batch of one without a fingerprint.
import { Packr } from 'msgpackr';
import { assert } from '../assert.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

export interface BatchedCommand {
  /** The service's command. */
  readonly d: Uint8Array;
  /** Client id and request id: a retried command with the same pair and the same bytes
   * applies once. */
  readonly c?: string;
  readonly r?: string;
  /** Fingerprint of `d` (see dedup.ts), computed once by the proposer. */
  readonly f?: string;
}

export interface Envelope {
  /** Leader's wall clock when proposed, Unix ms. */
  readonly t: number;
  /** The commands of the entry, in apply order (possibly none). */
  readonly b: readonly BatchedCommand[];
}

type Row = [Uint8Array, string?, string?, string?];

export function encodeEnvelope(env: Envelope): Uint8Array {
  const rows = env.b.map((x): Row => {
    if (x.c === undefined || x.r === undefined) return [x.d];
    return x.f === undefined ? [x.d, x.c, x.r] : [x.d, x.c, x.r, x.f];
  });
  return packr.pack({ t: env.t, b: rows });
}

/** Bytes an item adds to an encoded envelope, at most (msgpack headers included). */
export function batchedCommandBytes(x: BatchedCommand): number {
  return x.d.byteLength + 3 * (x.c?.length ?? 0) + 3 * (x.r?.length ?? 0) +
    (x.f?.length ?? 0) + 24;
}

function optionalString(v: unknown, what: string): string | undefined {
  assert(v === undefined || typeof v === 'string', `log entry: ${what} must be a string`);
  return v;
}

function decodeRow(row: unknown): BatchedCommand {
  assert(Array.isArray(row) && row.length >= 1 && row.length <= 4,
    'log entry: a batched command is a row of 1 to 4 cells');
  const [d, c, r, f] = row as unknown[];
  assert(d instanceof Uint8Array, 'log entry: command bytes');
  const cs = optionalString(c, 'client id');
  const rs = optionalString(r, 'request id');
  const fs = optionalString(f, 'fingerprint');
  if (cs === undefined || rs === undefined) return { d };
  return fs === undefined ? { d, c: cs, r: rs } : { d, c: cs, r: rs, f: fs };
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const env = packr.unpack(bytes) as Record<string, unknown> | null;
  assert(typeof env === 'object' && env !== null && typeof env.t === 'number',
    'log entry is not a dsync envelope');
  if (Array.isArray(env.b)) return { t: env.t, b: env.b.map(decodeRow) };
  // The format before batching: one command.
  assert(env.d instanceof Uint8Array, 'log entry: a dsync envelope without commands');
  const c = optionalString(env.c, 'client id');
  const r = optionalString(env.r, 'request id');
  return { t: env.t, b: [c === undefined || r === undefined ? { d: env.d } : { d: env.d, c, r }] };
}

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}
