// The envelope every normal log entry carries: the leader's clock and a batch of commands,
// each with an optional idempotency key (client id, request id). Every replica computes the
// command's fingerprint from its bytes when it applies (dedup.ts), so the log does not carry
// it and no replica can be told a wrong one. Decoding is shared by every replica, so the
// clock and the de-duplication decisions are part of the replicated state.
//
// Format (msgpack): {t, b: [[d] | [d, c, r], …]}. Entries written before batching carried
// one command as {t, d, c?, r?}; they still decode, as a batch of one.
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
}

export interface Envelope {
  /** Leader's wall clock when proposed, Unix ms. */
  readonly t: number;
  /** The commands of the entry, in apply order (possibly none). */
  readonly b: readonly BatchedCommand[];
}

type Row = [Uint8Array] | [Uint8Array, string, string];

export function encodeEnvelope(env: Envelope): Uint8Array {
  const rows = env.b.map((x): Row =>
    (x.c === undefined || x.r === undefined ? [x.d] : [x.d, x.c, x.r]));
  return packr.pack({ t: env.t, b: rows });
}

/** Bytes an item adds to an encoded envelope, at most (msgpack headers included). */
export function batchedCommandBytes(x: BatchedCommand): number {
  return x.d.byteLength + 3 * (x.c?.length ?? 0) + 3 * (x.r?.length ?? 0) + 16;
}

function optionalString(v: unknown, what: string): string | undefined {
  assert(v === undefined || typeof v === 'string', `log entry: ${what} must be a string`);
  return v;
}

function decodeRow(row: unknown): BatchedCommand {
  assert(Array.isArray(row) && (row.length === 1 || row.length === 3),
    'log entry: a batched command is a row of 1 or 3 cells');
  const [d, c, r] = row as unknown[];
  assert(d instanceof Uint8Array, 'log entry: command bytes');
  const cs = optionalString(c, 'client id');
  const rs = optionalString(r, 'request id');
  return cs === undefined || rs === undefined ? { d } : { d, c: cs, r: rs };
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

/** State machine snapshots that carry the term of a new leader's last start commands (so a
 * restart does not repeat them): a version byte, the term as a float64 (big-endian), then the
 * machine's own bytes. */
const TERM_HEADER_BYTES = 9;

export function withTermHeader(version: number, term: number, body: Uint8Array): Uint8Array {
  assert(Number.isSafeInteger(term) && term >= 0, 'snapshot term is a non-negative integer');
  const out = new Uint8Array(TERM_HEADER_BYTES + body.length);
  out[0] = version;
  new DataView(out.buffer).setFloat64(1, term);
  out.set(body, TERM_HEADER_BYTES);
  return out;
}

/** The term and the machine's bytes of a snapshot written by withTermHeader, or null when
 * `data` does not start with `version` (a snapshot written before the header existed). */
export function readTermHeader(data: Uint8Array, version: number):
  { term: number; body: Uint8Array } | null {
  if (data[0] !== version) return null;
  assert(data.length >= TERM_HEADER_BYTES, 'snapshot: a 9-byte header');
  const term = new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(1);
  assert(Number.isSafeInteger(term) && term >= 0, 'snapshot: the term in its header');
  return { term, body: data.subarray(TERM_HEADER_BYTES) };
}
