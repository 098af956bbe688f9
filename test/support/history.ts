// A history recorder and checker for black-box fault tests. Clients record what they observed
// on one monotonic clock (performance.now() of the test process) and the checker looks for
// anomalies afterwards, so the system under test is never trusted to report on itself.
//
// Locks: a hold counts from the moment its grant RETURNED to the client until the moment the
// client SENT its release (or gave up on the lease). That is the narrowest window in which the
// client may be sure it holds the lock, so two conflicting holds overlapping in it is a real
// safety violation, never a measurement artefact. Tokens are checked the same way: if one grant
// returned before another acquire was sent, the later grant must carry a larger token.
// The queue and cache tests reuse HistoryRecorder with their own record types and checkers.

export type Clock = () => number;

/** A monotonic clock in ms; wall time (Date.now) may jump and must not order events. */
export const monotonicMs: Clock = () => performance.now();

/** Most records one recorder keeps: a fault test that produces more is misconfigured. */
export const HISTORY_RECORDS_MAX = 1_000_000;

/** Collects records from many concurrent clients, in the order they were recorded. */
export class HistoryRecorder<R> {
  private readonly items: R[] = [];

  constructor(readonly clock: Clock = monotonicMs, readonly recordsMax = HISTORY_RECORDS_MAX) {
    if (!Number.isSafeInteger(recordsMax) || recordsMax < 1) {
      throw new RangeError(`recordsMax must be a positive integer, got ${recordsMax}`);
    }
  }

  now(): number {
    return this.clock();
  }

  record(r: R): void {
    if (this.items.length >= this.recordsMax) {
      throw new RangeError(`history holds ${this.recordsMax} records already (recordsMax)`);
    }
    this.items.push(r);
  }

  get records(): readonly R[] {
    return this.items;
  }

  get size(): number {
    return this.items.length;
  }
}

export type LockHoldMode = 'exclusive' | 'shared';

/** How a hold ended from the client's point of view. */
export type LockHoldEnd =
  /** The client sent a release; `endAt` is when it was sent. */
  | 'released'
  /** The client stopped treating the lock as its own at its lease end (renewals failed or it
   * stopped renewing); `endAt` is that lease end on the client clock, less a safety margin. */
  | 'lease';

export interface LockHold {
  readonly owner: string;
  readonly name: string;
  readonly token: number;
  readonly mode: LockHoldMode;
  /** When the acquire request was sent. */
  readonly acquireSentAt: number;
  /** When its grant returned to the client: the hold starts here. */
  readonly grantReturnedAt: number;
  /** When the hold ended (release sent, or the lease end); see `endedBy`. */
  readonly endAt: number;
  readonly endedBy: LockHoldEnd;
  /** Free-form notes for failure reports (node used, renewals, …). */
  readonly note?: string;
}

export type LockViolationKind = 'malformed' | 'overlap' | 'token_order' | 'duplicate_token';

export interface LockViolation {
  readonly kind: LockViolationKind;
  readonly message: string;
  readonly holds: readonly LockHold[];
}

const conflicting = (a: LockHold, b: LockHold): boolean =>
  a.mode === 'exclusive' || b.mode === 'exclusive';
/** An idempotent re-acquire returns the same grant: same lock, owner and token. */
const sameGrant = (a: LockHold, b: LockHold): boolean =>
  a.name === b.name && a.owner === b.owner && a.token === b.token;

export function describeHold(h: LockHold): string {
  const t = (x: number): string => x.toFixed(1);
  return `${h.owner}@${h.name} ${h.mode} token=${h.token} sent=${t(h.acquireSentAt)} ` +
    `granted=${t(h.grantReturnedAt)} end=${t(h.endAt)} (${h.endedBy})` +
    (h.note === undefined ? '' : ` [${h.note}]`);
}

function malformed(holds: readonly LockHold[]): LockViolation[] {
  const out: LockViolation[] = [];
  for (const h of holds) {
    const ok = Number.isSafeInteger(h.token) && h.token > 0 &&
      h.acquireSentAt <= h.grantReturnedAt && h.grantReturnedAt <= h.endAt;
    if (!ok) {
      out.push({ kind: 'malformed', holds: [h],
        message: `hold times or token out of order: ${describeHold(h)}` });
    }
  }
  return out;
}

/** (a) Conflicting holds on one lock must not overlap in real time. Sweep by start time. */
function overlaps(holds: readonly LockHold[]): LockViolation[] {
  const out: LockViolation[] = [];
  const byName = new Map<string, LockHold[]>();
  for (const h of holds) {
    const list = byName.get(h.name) ?? [];
    list.push(h);
    byName.set(h.name, list);
  }
  for (const list of byName.values()) {
    list.sort((a, b) => a.grantReturnedAt - b.grantReturnedAt);
    let active: LockHold[] = [];
    for (const h of list) {
      // A grant that came back after the client's own lease bound had passed (a reply delayed
      // by a pause or a partition) is an empty hold: the client never had a moment in which it
      // could use it, so it cannot overlap anything. Its token is still checked below.
      if (h.endAt <= h.grantReturnedAt) continue;
      // Intervals touching at one instant do not overlap: release sent, then grant returned.
      active = active.filter((a) => a.endAt > h.grantReturnedAt);
      for (const a of active) {
        if (!conflicting(a, h) || sameGrant(a, h)) continue;
        out.push({ kind: 'overlap', holds: [a, h], message: `conflicting holds overlap on ` +
          `${h.name}: ${describeHold(a)} | ${describeHold(h)}` });
      }
      active.push(h);
    }
  }
  return out;
}

/** (b) If A's grant returned before B's acquire was sent, A.token < B.token (unless A and B
 * are the same grant). Sweep B by send time with the largest token returned so far. */
function tokenOrder(holds: readonly LockHold[]): LockViolation[] {
  const out: LockViolation[] = [];
  const byReturn = [...holds].sort((a, b) => a.grantReturnedAt - b.grantReturnedAt);
  const bySend = [...holds].sort((a, b) => a.acquireSentAt - b.acquireSentAt);
  let i = 0;
  let max: LockHold | null = null;
  for (const b of bySend) {
    while (i < byReturn.length && byReturn[i]!.grantReturnedAt < b.acquireSentAt) {
      const a = byReturn[i++]!;
      if (max === null || a.token > max.token) max = a;
    }
    if (max === null || max.token < b.token) continue;
    if (max.token === b.token && sameGrant(max, b)) continue;
    out.push({ kind: 'token_order', holds: [max, b], message: `token did not increase in ` +
      `real-time order: ${describeHold(max)} returned before ${describeHold(b)} was sent` });
  }
  return out;
}

/** Tokens are unique per grant across the whole cluster. */
function duplicates(holds: readonly LockHold[]): LockViolation[] {
  const out: LockViolation[] = [];
  const byToken = new Map<number, LockHold>();
  for (const h of holds) {
    const seen = byToken.get(h.token);
    if (seen === undefined) byToken.set(h.token, h);
    else if (!sameGrant(seen, h)) {
      out.push({ kind: 'duplicate_token', holds: [seen, h], message: `token ${h.token} ` +
        `granted twice: ${describeHold(seen)} | ${describeHold(h)}` });
    }
  }
  return out;
}

/** Every violation found in a history of lock holds; empty means the history is safe. */
export function checkLockHistory(holds: readonly LockHold[]): LockViolation[] {
  const bad = malformed(holds);
  // Times out of order would make the sweeps meaningless: report those alone.
  if (bad.length > 0) return bad;
  return [...overlaps(holds), ...tokenOrder(holds), ...duplicates(holds)];
}
