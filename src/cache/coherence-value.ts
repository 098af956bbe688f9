// A value as the coherence protocol carries it and the backing store keeps it: the JSON text
// of the user's value, or, for a value written with a ttl, that text after its expiry:
// "\u0001<expiresAt, epoch ms>\u0001<JSON text>". JSON text never starts with U+0001 (RFC 8259
// allows only whitespace before a value), so the two forms cannot be confused.
//
// The expiry belongs to the value: every write replaces both, and lines, grants, write-backs
// and the store move it along untouched, so the protocol needs no new state. Whoever serves a
// read judges it against the wall clock of the operation (LocalOp.wallMs): past its expiry a
// value reads as absent, exactly like a deleted one, and a compare-and-set treats it so too.

import type { CacheValue } from './coherence-messages.js';

const MARK = '\u0001';

/** The protocol's text for `json`, expiring at `expiresAt` (null: never). */
export function withExpiry(json: string, expiresAt: number | null): string {
  return expiresAt === null ? json : `${MARK}${expiresAt}${MARK}${json}`;
}

/** The user's JSON text and its expiry. */
export function splitValue(text: string): { json: string; expiresAt: number | null } {
  if (!text.startsWith(MARK)) return { json: text, expiresAt: null };
  const end = text.indexOf(MARK, 1);
  const expiresAt = Number(text.slice(1, end));
  if (end < 0 || !Number.isSafeInteger(expiresAt)) return { json: text, expiresAt: null };
  return { json: text.slice(end + 1), expiresAt };
}

/** The value as a read at `wallMs` sees it: null once expired. */
export function liveValue(value: CacheValue, wallMs: number): CacheValue {
  if (value === null || !value.startsWith(MARK)) return value;
  const { expiresAt } = splitValue(value);
  return expiresAt !== null && wallMs >= expiresAt ? null : value;
}
