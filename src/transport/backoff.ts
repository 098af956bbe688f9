// Reconnect delays: exponential growth from min to max with jitter, as a pure function so
// that its bounds can be property-tested.

import { assert } from '../assert.js';

/** Caps the exponent so that 2 ** attempt never overflows into Infinity. */
const BACKOFF_DOUBLINGS_MAX = 30;

/**
 * Delay before dial number `attempt` (0 for the first retry). The ceiling doubles per
 * attempt up to `maxMs`; the delay is drawn from [max(minMs, ceiling / 2), ceiling], so it
 * never drops below `minMs` (a refused peer is not hammered) while N nodes that lost the
 * same peer at once spread their redials instead of arriving in lockstep.
 * `random01` is a number in [0, 1).
 */
export function backoffDelayMs(attempt: number, minMs: number, maxMs: number,
  random01: number): number {
  assert(Number.isSafeInteger(attempt) && attempt >= 0, 'attempt must be a natural number');
  assert(minMs > 0 && minMs <= maxMs, 'backoff bounds must satisfy 0 < min <= max');
  assert(random01 >= 0 && random01 < 1, 'random01 must be in [0, 1)');
  const ceilingMs = Math.min(maxMs, minMs * 2 ** Math.min(attempt, BACKOFF_DOUBLINGS_MAX));
  const floorMs = Math.min(ceilingMs, Math.max(minMs, ceilingMs / 2));
  const delayMs = Math.round(floorMs + random01 * (ceilingMs - floorMs));
  assert(delayMs >= minMs && delayMs <= maxMs, 'backoff delay out of bounds');
  return delayMs;
}
