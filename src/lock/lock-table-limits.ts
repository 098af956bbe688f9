// The bounds of the lock table. Every replica must run with the same limits (they decide
// results), so they belong to the cluster's configuration, not to one node's whim.
// Reaching a bound answers `exhausted`; the table never grows past it.
import { InvalidArgumentError } from '../errors.js';

export interface LockLimits {
  /** Waiters queued on one lock. Default DEFAULT_LOCK_LIMITS.waitersPerLockMax, 1..100000. */
  readonly waitersPerLockMax: number;
  /** Holders of one lock (only shared locks have more than one). 1..100000. */
  readonly holdersPerLockMax: number;
  /** Locks one owner holds or waits on at once. 1..1000000. */
  readonly locksPerOwnerMax: number;
  /** Locks that are held or waited on, in the whole table. 1..10000000. */
  readonly locksMax: number;
  /** Recent lease expiries remembered so that a late release/renew hears `expired` rather
   * than `not_holder`; the oldest are forgotten first. 0..10000000. */
  readonly expiredMemoryMax: number;
}

export const DEFAULT_LOCK_LIMITS: LockLimits = Object.freeze({
  waitersPerLockMax: 1_000,
  holdersPerLockMax: 1_000,
  locksPerOwnerMax: 1_000,
  locksMax: 100_000,
  expiredMemoryMax: 10_000,
});

const BOUNDS: Record<keyof LockLimits, readonly [number, number]> = {
  waitersPerLockMax: [1, 100_000],
  holdersPerLockMax: [1, 100_000],
  locksPerOwnerMax: [1, 1_000_000],
  locksMax: [1, 10_000_000],
  expiredMemoryMax: [0, 10_000_000],
};

/** Fills defaults and validates; throws InvalidArgumentError naming the field. */
export function parseLockLimits(input: Partial<LockLimits> = {}): LockLimits {
  const out: Record<string, number> = {};
  for (const key of Object.keys(BOUNDS) as (keyof LockLimits)[]) {
    const v = input[key] ?? DEFAULT_LOCK_LIMITS[key];
    const [min, max] = BOUNDS[key];
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(key, `${key} must be an integer from ${min} to ${max}`);
    }
    out[key] = v;
  }
  return Object.freeze(out as unknown as LockLimits);
}
