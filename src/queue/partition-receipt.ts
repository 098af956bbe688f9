// Receipts: what a consumer sends back to ack, nack or extend one delivery.
//
// A receipt is `<pos>.<deliveries>.<tag>` in base 36: the message's position in its topic's
// log (unique within the topic, unlike its id, which a dead-letter and a redrive keep), the
// delivery number, and a 32-bit tag drawn for this delivery. The partition accepts a receipt
// only when all three match the group's current delivery of that message, so a receipt is
// valid for exactly one delivery: after a redelivery the number differs and the old receipt
// counts 0. Tags come from a replicated counter mixed with the partition's salt, so they are
// the same on every replica (receipts survive a leader change) but cannot be guessed from a
// message id or from another delivery's receipt without the salt.
import { assert } from '../assert.js';

export interface ReceiptParts {
  readonly pos: number;
  readonly deliveries: number;
  readonly tag: number;
}

const RECEIPT_RE = /^([0-9a-z]{1,11})\.([0-9a-z]{1,4})\.([0-9a-z]{1,7})$/;

export function formatReceipt(r: ReceiptParts): string {
  assert(Number.isSafeInteger(r.pos) && r.pos >= 1, 'receipt position is a positive integer');
  assert(r.tag >>> 0 === r.tag, 'receipt tag is 32-bit');
  return `${r.pos.toString(36)}.${r.deliveries.toString(36)}.${r.tag.toString(36)}`;
}

/** The parts of a receipt, or null when the text is not one (such a receipt counts 0). */
export function parseReceipt(text: string): ReceiptParts | null {
  const m = RECEIPT_RE.exec(text);
  if (m === null) return null;
  const pos = Number.parseInt(m[1] ?? '', 36);
  const deliveries = Number.parseInt(m[2] ?? '', 36);
  const tag = Number.parseInt(m[3] ?? '', 36);
  if (!Number.isSafeInteger(pos) || pos < 1 || deliveries < 1 || tag > 0xffffffff) return null;
  return { pos, deliveries, tag };
}

/** The tag of the n-th delivery of a partition: murmur3's 32-bit finaliser over the counter
 * and the salt (a bijection for a fixed salt, so consecutive tags look unrelated). */
export function receiptTag(n: number, salt: number): number {
  let h = (Math.imul(n >>> 0, 0x9e3779b1) ^ Math.floor(n / 0x100000000) ^ salt) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
