// The lock table: a pure, deterministic state machine replicated by Raft. It knows nothing
// of Raft, HTTP or clocks: each command arrives with its Raft index and the leader's clock,
// and yields one result for the requester plus events for OTHER requests (grants to waiters,
// wait timeouts, expired leases) that the shell turns into answers to open HTTP calls.
//
// Decisions made here (API.md "Locks" and the lock-service issue):
// - A lease is live while expiresAt > nowMs. Every command except extendLeases first expires
//   what is due at its nowMs (so `tick` is just that), and grants what the expiry frees.
// - Fencing token = max(index, lastToken + 1): the grant's Raft index unless one command
//   grants several, and strictly increasing either way.
// - Waiters are FIFO, granted in the same command that frees the lock, as far as FIFO
//   compatibility allows; a waiting exclusive blocks every later request.
// - A shared holder asking for exclusive upgrades at once when it is the only holder, and
//   otherwise waits at the front of the queue. Losing the shared grant (release, expiry)
//   cancels that pending upgrade.
// - Asking again while waiting keeps the place (and the original mode); the deadline becomes
//   the later of the old and the new one.
// - Iteration that decides anything runs in sorted or FIFO order, never in Map order of
//   derived indexes, so a restored replica behaves exactly like one that never restarted.
// - No command costs more than O(log n) in the number of holders and waiters of a lock
//   (plus what it answers): a crowd of waiters on one lock must not make every command, on
//   every replica and in every replay, slow. Hence the queue of lock-table-queue.ts, one
//   deadline per holder and per waiter in the DeadlineIndex, and the compressed wait-for
//   graph of lock-table-graph.ts.
import { assert } from '../assert.js';
import type {
  ApplyCtx, LockCommand, LockEvent, LockMode, LockResult, LockView, NotHeldReason,
} from './commands.js';
import { DeadlineIndex } from './lock-table-deadlines.js';
import { findWaitForCycle, type WaitForSource } from './lock-table-graph.js';
import { checkTableInvariants } from './lock-table-invariants.js';
import { type LockLimits, parseLockLimits } from './lock-table-limits.js';
import { LockEntry } from './lock-table-queue.js';
import {
  decodeTableState, encodeTableState, type ExpiredMark, type Holder, type Waiter,
} from './lock-table-snapshot.js';

export type { LockLimits } from './lock-table-limits.js';
export { DEFAULT_LOCK_LIMITS, parseLockLimits } from './lock-table-limits.js';

export interface LockTableStats {
  readonly locks: number;
  readonly holders: number;
  readonly waiters: number;
  /** Owners that hold or wait on at least one lock. */
  readonly owners: number;
  readonly expiredRemembered: number;
  readonly lastToken: number;
}

type AcquireCmd = Extract<LockCommand, { type: 'acquire' }>;
type Exhausted = Extract<LockResult, { type: 'exhausted' }>;

/** What acquires that were proposed but have not applied yet may add to the table. The
 * leader's early refusal (`refusal`) counts them as if they had applied. */
export interface InflightLoad {
  /** Acquires in flight on lock `name`. */
  onLock(name: string): number;
  /** Acquires in flight by `owner` on locks it was not in when they were proposed. */
  locksOf(owner: string): number;
  /** Distinct locks, absent from the table when proposed, that acquires in flight name. */
  newLocks(): number;
  /** Whether an acquire in flight names lock `name`, which was absent when proposed. */
  createsLock(name: string): boolean;
}

export function conflicts(a: LockMode, b: LockMode): boolean {
  return a === 'exclusive' || b === 'exclusive';
}

function expiredKey(name: string, owner: string): string {
  // Names and owners never contain control characters, so NUL cannot be ambiguous.
  return `${name}\u0000${owner}`;
}

/** Keys of the deadline index: one per holder (its lease) and per waiter (its deadline).
 * Sorted, they group by lock in name order, holders before waiters. */
function holderDueKey(name: string, owner: string): string {
  return `${name}\u0000h\u0000${owner}`;
}

function waiterDueKey(name: string, owner: string): string {
  return `${name}\u0000w\u0000${owner}`;
}

interface DueLock {
  readonly name: string;
  readonly holders: string[];
  readonly waiters: string[];
}

/** Groups sorted due keys by lock, keeping the locks in name order. */
function groupDue(keys: readonly string[]): DueLock[] {
  const out: DueLock[] = [];
  for (const key of keys) {
    const at = key.indexOf('\u0000');
    const name = key.slice(0, at);
    const kind = key[at + 1];
    const owner = key.slice(at + 3);
    let last = out[out.length - 1];
    if (last === undefined || last.name !== name) {
      last = { name, holders: [], waiters: [] };
      out.push(last);
    }
    (kind === 'h' ? last.holders : last.waiters).push(owner);
  }
  return out;
}

export class LockTable {
  readonly limits: LockLimits;
  private readonly locks = new Map<string, LockEntry>();
  /** Derived: the locks each owner holds or waits on. */
  private readonly ownerLocks = new Map<string, Set<string>>();
  /** Derived: the locks each owner waits on (the wait-for graph's out-edges come from
   * these alone, and most owners wait on nothing). */
  private readonly ownerWaits = new Map<string, Set<string>>();
  private readonly graph: WaitForSource = {
    locks: this.locks, ownerWaits: this.ownerWaits, ownerLocks: this.ownerLocks,
  };
  /** Derived: the lease expiry of every holder and the deadline of every waiter. */
  private readonly deadlines = new DeadlineIndex();
  /** Derived: holders and waiters in the whole table. */
  private holderCount = 0;
  private waiterCount = 0;
  /** Recent expiries, oldest first (Map insertion order is replicated via the snapshot). */
  private readonly expired = new Map<string, ExpiredMark>();
  private lastToken = 0;

  constructor(limits: Partial<LockLimits> = {}) {
    this.limits = parseLockLimits(limits);
  }

  apply(cmd: LockCommand, ctx: ApplyCtx): { result: LockResult; events: LockEvent[] } {
    assert(Number.isSafeInteger(ctx.index) && ctx.index >= 1, `bad apply index ${ctx.index}`);
    assert(Number.isSafeInteger(ctx.nowMs) && ctx.nowMs >= 0, `bad apply time ${ctx.nowMs}`);
    const events: LockEvent[] = [];
    // A new leader's clock may already be past leases that the old leader would have kept
    // alive by renewals: extendLeases must run before anything expires them.
    if (cmd.type !== 'extendLeases') this.expireDue(ctx, events);
    const result = this.dispatch(cmd, ctx, events);
    return { result, events };
  }

  private dispatch(cmd: LockCommand, ctx: ApplyCtx, events: LockEvent[]): LockResult {
    switch (cmd.type) {
      case 'acquire':
        return this.acquire(cmd, ctx);
      case 'release':
        return this.release(cmd.name, cmd.owner, cmd.token, ctx, events);
      case 'renew':
        return this.renew(cmd.name, cmd.owner, cmd.ttlMs, ctx);
      case 'cancelWait':
        return this.cancelWait(cmd.name, cmd.owner, ctx, events);
      case 'tick':
        return { type: 'ok' };
      case 'extendLeases':
        return this.extendLeases(cmd.byMs);
    }
  }

  // ---- acquire ------------------------------------------------------------------------

  private acquire(cmd: AcquireCmd, ctx: ApplyCtx): LockResult {
    assert(cmd.ttlMs > 0 && cmd.waitMs >= 0, 'acquire needs ttlMs > 0 and waitMs >= 0');
    const entry = this.locks.get(cmd.name);
    const holder = entry?.holders.get(cmd.owner);
    if (entry !== undefined && holder !== undefined &&
        (cmd.mode === 'shared' || holder.mode === 'exclusive')) {
      // Idempotent retry: the same grant and token, with a fresh lease.
      holder.ttlMs = cmd.ttlMs;
      this.setExpiry(cmd.name, holder, ctx.nowMs + cmd.ttlMs);
      this.settle(cmd.name, entry);
      return { type: 'granted', name: cmd.name, owner: cmd.owner, mode: holder.mode,
        token: holder.token, expiresAt: holder.expiresAt };
    }
    const waiter = entry?.waiters.get(cmd.owner);
    if (entry !== undefined && waiter !== undefined) {
      waiter.deadline = Math.max(waiter.deadline, ctx.nowMs + cmd.waitMs);
      this.deadlines.set(waiterDueKey(cmd.name, cmd.owner), waiter.deadline);
      if (cmd.requestId !== undefined) waiter.requestId = cmd.requestId;
      this.settle(cmd.name, entry);
      return { type: 'waiting', name: cmd.name, owner: cmd.owner, mode: waiter.mode,
        deadline: waiter.deadline };
    }
    return holder === undefined ? this.acquireFresh(cmd, entry, ctx)
      : this.acquireUpgrade(cmd, entry, ctx);
  }

  private acquireFresh(cmd: AcquireCmd, entry: LockEntry | undefined, ctx: ApplyCtx): LockResult {
    if (entry === undefined && this.locks.size >= this.limits.locksMax) {
      return { type: 'exhausted', limit: 'locks', max: this.limits.locksMax };
    }
    if ((this.ownerLocks.get(cmd.owner)?.size ?? 0) >= this.limits.locksPerOwnerMax) {
      return { type: 'exhausted', limit: 'locksPerOwner', max: this.limits.locksPerOwnerMax };
    }
    const e = entry ?? new LockEntry();
    const held = e.holderMode();
    const compatible = e.waiters.size === 0 && (held === null || !conflicts(held, cmd.mode));
    if (compatible && e.holders.size >= this.limits.holdersPerLockMax) {
      return { type: 'exhausted', limit: 'holdersPerLock', max: this.limits.holdersPerLockMax };
    }
    if (compatible) {
      if (entry === undefined) this.locks.set(cmd.name, e);
      this.addOwnerLock(cmd.owner, cmd.name);
      const h = this.grant(cmd.name, e, cmd.owner, cmd.mode, cmd.ttlMs, ctx);
      this.settle(cmd.name, e);
      return { type: 'granted', name: cmd.name, owner: cmd.owner, mode: h.mode, token: h.token,
        expiresAt: h.expiresAt };
    }
    assert(entry !== undefined, 'only an existing lock can be incompatible');
    return this.enqueue(cmd, entry, false, ctx);
  }

  private acquireUpgrade(cmd: AcquireCmd, entry: LockEntry | undefined, ctx: ApplyCtx)
    : LockResult {
    assert(entry !== undefined && cmd.mode === 'exclusive', 'upgrade of a held shared lock');
    if (entry.holders.size === 1) {
      // The only holder: nobody to wait for, and an upgrade goes ahead of the queue.
      const h = this.grant(cmd.name, entry, cmd.owner, 'exclusive', cmd.ttlMs, ctx);
      this.settle(cmd.name, entry);
      return { type: 'granted', name: cmd.name, owner: cmd.owner, mode: h.mode, token: h.token,
        expiresAt: h.expiresAt };
    }
    return this.enqueue(cmd, entry, true, ctx);
  }

  /** The request cannot be granted now: answer timeout, exhausted or deadlock, or queue it
   * (at the back; at the front for an upgrade). */
  private enqueue(cmd: AcquireCmd, entry: LockEntry, upgrade: boolean, ctx: ApplyCtx)
    : LockResult {
    if (cmd.waitMs === 0) return { type: 'timeout' };
    if (entry.waiters.size >= this.limits.waitersPerLockMax) {
      return { type: 'exhausted', limit: 'waitersPerLock', max: this.limits.waitersPerLockMax };
    }
    const w: Waiter = { owner: cmd.owner, mode: cmd.mode, ttlMs: cmd.ttlMs,
      deadline: ctx.nowMs + cmd.waitMs, requestId: cmd.requestId ?? null };
    this.addOwnerLock(cmd.owner, cmd.name);
    this.queue(cmd.name, entry, w, upgrade);
    // Queuing adds only edges out of the requester and, for an upgrade at the front,
    // edges into it from those behind: any new cycle runs through the requester, so a
    // search from it alone is complete.
    const cycle = findWaitForCycle(this.graph, cmd.owner);
    if (cycle !== null) {
      this.unqueue(cmd.name, entry, cmd.owner);
      this.dropOwnerIfGone(cmd.name, cmd.owner);
      return { type: 'deadlock', cycle };
    }
    this.settle(cmd.name, entry);
    return { type: 'waiting', name: cmd.name, owner: cmd.owner, mode: cmd.mode,
      deadline: w.deadline };
  }

  /**
   * The `exhausted` answer a bound would give `cmd` if it applied now, after the acquires
   * still in flight, or null when no bound refuses it. A leader asks before proposing, so
   * that work refused by a bound never reaches the log (the table still checks on apply).
   * It may refuse where apply would not (when acquires in flight end otherwise than by
   * taking their place), never the other way round for the state it sees.
   */
  refusal(cmd: AcquireCmd, load: InflightLoad): Exhausted | null {
    const entry = this.locks.get(cmd.name);
    // A retry or an upgrade: only the table can tell what it means.
    if (entry?.holders.has(cmd.owner) === true || entry?.waiters.has(cmd.owner) === true) {
      return null;
    }
    const l = this.limits;
    if (entry === undefined && !load.createsLock(cmd.name) &&
        this.locks.size + load.newLocks() >= l.locksMax) {
      return { type: 'exhausted', limit: 'locks', max: l.locksMax };
    }
    const joined = (this.ownerLocks.get(cmd.owner)?.size ?? 0) + load.locksOf(cmd.owner);
    if (joined >= l.locksPerOwnerMax) {
      return { type: 'exhausted', limit: 'locksPerOwner', max: l.locksPerOwnerMax };
    }
    if (entry === undefined) return null;
    const pending = load.onLock(cmd.name);
    const held = entry.holderMode();
    if (entry.waiters.size === 0 && (held === null || !conflicts(held, cmd.mode))) {
      return entry.holders.size + pending >= l.holdersPerLockMax
        ? { type: 'exhausted', limit: 'holdersPerLock', max: l.holdersPerLockMax } : null;
    }
    // It would wait; an acquire that cannot wait is answered `timeout` by the table.
    if (cmd.waitMs > 0 && entry.waiters.size + pending >= l.waitersPerLockMax) {
      return { type: 'exhausted', limit: 'waitersPerLock', max: l.waitersPerLockMax };
    }
    return null;
  }

  // ---- release, renew, cancelWait, extendLeases -----------------------------------------

  private notHeld(name: string, owner: string): LockResult {
    const reason: NotHeldReason = this.expired.has(expiredKey(name, owner)) ? 'expired'
      : 'not_holder';
    return { type: 'notHeld', reason };
  }

  private release(name: string, owner: string, token: number | undefined, ctx: ApplyCtx,
    events: LockEvent[]): LockResult {
    const entry = this.locks.get(name);
    const holder = entry?.holders.get(owner);
    if (entry === undefined || holder === undefined) return this.notHeld(name, owner);
    if (token !== undefined && token !== holder.token) {
      return { type: 'notHeld', reason: 'stale_token' };
    }
    this.dropHolder(name, entry, owner);
    this.cancelUpgrade(name, entry, owner, events);
    this.grantWaiters(name, entry, ctx, events);
    this.dropOwnerIfGone(name, owner);
    this.settle(name, entry);
    return { type: 'released' };
  }

  private renew(name: string, owner: string, ttlMs: number | undefined, ctx: ApplyCtx)
    : LockResult {
    const entry = this.locks.get(name);
    const holder = entry?.holders.get(owner);
    if (entry === undefined || holder === undefined) return this.notHeld(name, owner);
    assert(ttlMs === undefined || ttlMs > 0, 'renew ttlMs must be positive');
    // A renew with ttlMs changes the grant's own ttl, so later bare renews keep using it.
    if (ttlMs !== undefined) holder.ttlMs = ttlMs;
    this.setExpiry(name, holder, ctx.nowMs + holder.ttlMs);
    this.settle(name, entry);
    return { type: 'renewed', expiresAt: holder.expiresAt };
  }

  private cancelWait(name: string, owner: string, ctx: ApplyCtx, events: LockEvent[])
    : LockResult {
    const entry = this.locks.get(name);
    const waiter = entry === undefined ? undefined : this.unqueue(name, entry, owner);
    // Nothing to cancel (granted or timed out meanwhile) is fine: the client is gone.
    if (entry === undefined || waiter === undefined) return { type: 'ok' };
    events.push(withRequestId({ type: 'waitCancelled', name, owner }, waiter.requestId));
    // The waiter may have been the one blocking those behind it (a waiting exclusive).
    this.grantWaiters(name, entry, ctx, events);
    this.dropOwnerIfGone(name, owner);
    this.settle(name, entry);
    return { type: 'ok' };
  }

  private extendLeases(byMs: number): LockResult {
    assert(Number.isSafeInteger(byMs) && byMs >= 0, `extendLeases by ${byMs}`);
    // Order does not matter here: every lease moves by the same amount and nothing is
    // granted, expired or answered.
    for (const [name, entry] of this.locks) {
      for (const h of entry.holders.values()) this.setExpiry(name, h, h.expiresAt + byMs);
    }
    return { type: 'ok' };
  }

  // ---- expiry and granting ----------------------------------------------------------------

  /** Expires leases and fails waits due at ctx.nowMs, lock by lock in name order, and grants
   * what that frees. */
  private expireDue(ctx: ApplyCtx, events: LockEvent[]): void {
    for (const due of groupDue(this.deadlines.takeDue(ctx.nowMs))) {
      const name = due.name;
      const entry = this.locks.get(name);
      assert(entry !== undefined, `due lock ${name} exists`);
      const gone: string[] = [];
      // Holders in grant order, then waiters in queue order, as a scan of the lock would.
      const holders = due.holders.map((o) => entry.holders.get(o))
        .filter((h): h is Holder => h !== undefined).sort((a, b) => a.token - b.token);
      for (const h of holders) {
        assert(h.expiresAt <= ctx.nowMs, `lease of ${h.owner} on ${name} is due`);
        this.dropHolder(name, entry, h.owner);
        events.push({ type: 'expired', name, owner: h.owner, token: h.token });
        this.rememberExpiry(name, h.owner, h.token);
        this.cancelUpgrade(name, entry, h.owner, events);
        gone.push(h.owner);
      }
      // An upgrade cancelled just above is no longer queued.
      const waiters = due.waiters.filter((o) => entry.waiters.has(o))
        .sort((a, b) => entry.waiters.seqOf(a) - entry.waiters.seqOf(b));
      for (const owner of waiters) {
        const w = this.unqueue(name, entry, owner);
        assert(w !== undefined && w.deadline <= ctx.nowMs, `wait of ${owner} on ${name} is due`);
        events.push(withRequestId({ type: 'waitTimedOut', name, owner }, w.requestId));
        gone.push(owner);
      }
      this.grantWaiters(name, entry, ctx, events);
      for (const owner of gone) this.dropOwnerIfGone(name, owner);
      this.settle(name, entry);
    }
  }

  /** Grants from the head of the queue while the head is compatible with the holders: a run
   * of shared waiters goes in together, the first conflicting waiter stops the run. */
  private grantWaiters(name: string, entry: LockEntry, ctx: ApplyCtx, events: LockEvent[])
    : void {
    for (;;) {
      const head = entry.waiters.first();
      if (head === undefined || !this.headGrantable(entry, head)) return;
      this.unqueue(name, entry, head.owner);
      const h = this.grant(name, entry, head.owner, head.mode, head.ttlMs, ctx);
      events.push(withRequestId({ type: 'granted', name, owner: h.owner, mode: h.mode,
        token: h.token, expiresAt: h.expiresAt }, head.requestId));
    }
  }

  /** Whether the waiter at the head of the queue could be granted now. */
  private headGrantable(entry: LockEntry, head: Waiter): boolean {
    // Holders share one mode, so one comparison stands for all of them.
    const upgrade = entry.holders.has(head.owner);
    const others = entry.holders.size - (upgrade ? 1 : 0);
    const held = entry.holderMode();
    if (others > 0 && held !== null && conflicts(held, head.mode)) return false;
    return upgrade || entry.holders.size < this.limits.holdersPerLockMax;
  }

  /** Makes `owner` a holder with a new token, replacing its shared grant on an upgrade. */
  private grant(name: string, entry: LockEntry, owner: string, mode: LockMode, ttlMs: number,
    ctx: ApplyCtx): Holder {
    const token = Math.max(ctx.index, this.lastToken + 1);
    assert(token > this.lastToken, 'fencing tokens strictly increase');
    this.lastToken = token;
    // An upgrade replaces the shared grant; the new one goes last, as it has the newest token.
    if (entry.holders.has(owner)) this.dropHolder(name, entry, owner);
    const h: Holder = { owner, mode, token, ttlMs, expiresAt: ctx.nowMs + ttlMs };
    entry.holders.set(owner, h);
    this.holderCount++;
    this.deadlines.set(holderDueKey(name, owner), h.expiresAt);
    this.expired.delete(expiredKey(name, owner));
    return h;
  }

  /** The owner no longer holds `name`: its pending upgrade lost its premise. */
  private cancelUpgrade(name: string, entry: LockEntry, owner: string, events: LockEvent[])
    : void {
    const w = this.unqueue(name, entry, owner);
    if (w === undefined) return;
    events.push(withRequestId({ type: 'waitCancelled', name, owner }, w.requestId));
  }

  private rememberExpiry(name: string, owner: string, token: number): void {
    if (this.limits.expiredMemoryMax === 0) return;
    const key = expiredKey(name, owner);
    this.expired.delete(key);
    this.expired.set(key, { name, owner, token });
    while (this.expired.size > this.limits.expiredMemoryMax) {
      const oldest = this.expired.keys().next();
      assert(oldest.done !== true, 'memory is not empty');
      this.expired.delete(oldest.value);
    }
  }

  // ---- holders, waiters and the derived indexes ----------------------------------------------

  private setExpiry(name: string, h: Holder, expiresAt: number): void {
    h.expiresAt = expiresAt;
    this.deadlines.set(holderDueKey(name, h.owner), expiresAt);
  }

  private dropHolder(name: string, entry: LockEntry, owner: string): void {
    const gone = entry.holders.delete(owner);
    assert(gone, () => `${owner} holds ${name}`);
    this.holderCount--;
    this.deadlines.set(holderDueKey(name, owner), null);
  }

  /** Queues `w` at the back (at the front for an upgrade) and indexes it. */
  private queue(name: string, entry: LockEntry, w: Waiter, front: boolean): void {
    if (front) entry.waiters.pushFront(w);
    else entry.waiters.pushBack(w);
    this.waiterCount++;
    addToIndex(this.ownerWaits, w.owner, name);
    this.deadlines.set(waiterDueKey(name, w.owner), w.deadline);
  }

  /** Removes `owner`'s place in the queue, if it has one, and its index entries. */
  private unqueue(name: string, entry: LockEntry, owner: string): Waiter | undefined {
    const w = entry.waiters.remove(owner);
    if (w === undefined) return undefined;
    this.waiterCount--;
    removeFromIndex(this.ownerWaits, owner, name);
    this.deadlines.set(waiterDueKey(name, owner), null);
    return w;
  }

  private addOwnerLock(owner: string, name: string): void {
    addToIndex(this.ownerLocks, owner, name);
  }

  private dropOwnerIfGone(name: string, owner: string): void {
    const entry = this.locks.get(name);
    if (entry !== undefined && (entry.holders.has(owner) || entry.waiters.has(owner))) return;
    removeFromIndex(this.ownerLocks, owner, name);
  }

  /** After any change to a lock: forget it when empty. */
  private settle(name: string, entry: LockEntry): void {
    if (entry.isEmpty()) {
      this.locks.delete(name);
      return;
    }
    assert(this.locks.get(name) === entry, `lock ${name} is in the table`);
    const head = entry.waiters.first();
    assert(head === undefined || !this.headGrantable(entry, head),
      () => `lock ${name}: the head waiter ${head?.owner} could be granted`);
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** API.md's view of one lock; an unknown name is simply free. Leases are shown as last
   * applied: one past its expiresAt goes at the next command. */
  get(name: string): LockView {
    const entry = this.locks.get(name);
    if (entry === undefined) return { name, mode: null, holders: [], waiters: [] };
    return {
      name,
      mode: entry.holderMode(),
      holders: [...entry.holders.values()].map((h) => ({ owner: h.owner, mode: h.mode,
        token: h.token, expiresAt: h.expiresAt })),
      waiters: [...entry.waiters].map((w) => ({ owner: w.owner, mode: w.mode })),
    };
  }

  /** Held or waited-on locks whose name starts with `prefix`, sorted by name, at most max. */
  list(prefix: string, max: number): LockView[] {
    assert(Number.isSafeInteger(max) && max >= 0, `list max ${max}`);
    const names = [...this.locks.keys()].filter((n) => n.startsWith(prefix)).sort();
    return names.slice(0, max).map((n) => this.get(n));
  }

  /** Whether `owner` holds or waits on `name`. */
  isInLock(name: string, owner: string): boolean {
    return this.ownerLocks.get(owner)?.has(name) === true;
  }

  hasLock(name: string): boolean {
    return this.locks.has(name);
  }

  /** The earliest lease expiry or wait deadline: when the leader should propose `tick`. */
  nextDeadline(): number | null {
    return this.deadlines.earliest();
  }

  stats(): LockTableStats {
    return { locks: this.locks.size, holders: this.holderCount, waiters: this.waiterCount,
      owners: this.ownerLocks.size, expiredRemembered: this.expired.size,
      lastToken: this.lastToken };
  }

  // ---- snapshots and invariants ----------------------------------------------------------------

  snapshot(): Uint8Array {
    return encodeTableState({ locks: this.locks, expired: [...this.expired.values()],
      lastToken: this.lastToken });
  }

  static restore(data: Uint8Array, limits: Partial<LockLimits> = {}): LockTable {
    const state = decodeTableState(data);
    const t = new LockTable(limits);
    t.lastToken = state.lastToken;
    for (const m of state.expired) t.expired.set(expiredKey(m.name, m.owner), m);
    for (const [name, decoded] of state.locks) {
      const entry = new LockEntry();
      t.locks.set(name, entry);
      for (const h of decoded.holders.values()) {
        entry.holders.set(h.owner, h);
        t.holderCount++;
        t.deadlines.set(holderDueKey(name, h.owner), h.expiresAt);
        t.addOwnerLock(h.owner, name);
      }
      for (const w of decoded.waiters) {
        t.addOwnerLock(w.owner, name);
        t.queue(name, entry, w, false);
      }
      t.settle(name, entry);
    }
    t.checkInvariants();
    return t;
  }

  /** Checks every invariant of the table against its derived indexes; throws
   * AssertionError on the first broken one. O(size of the table): tests run it after every
   * command, production after restore. */
  checkInvariants(): void {
    checkTableInvariants({
      locks: this.locks, ownerLocks: this.ownerLocks, ownerWaits: this.ownerWaits,
      expired: this.expired,
      lastToken: this.lastToken, limits: this.limits,
      holderCount: this.holderCount, waiterCount: this.waiterCount,
      deadlineCount: this.deadlines.size,
      holderDeadline: (name, owner) => this.deadlines.get(holderDueKey(name, owner)),
      waiterDeadline: (name, owner) => this.deadlines.get(waiterDueKey(name, owner)),
      headGrantable: (e, w) => this.headGrantable(e, w),
    });
  }
}

function addToIndex(index: Map<string, Set<string>>, owner: string, name: string): void {
  let set = index.get(owner);
  if (set === undefined) {
    set = new Set();
    index.set(owner, set);
  }
  set.add(name);
}

function removeFromIndex(index: Map<string, Set<string>>, owner: string, name: string): void {
  const set = index.get(owner);
  if (set === undefined) return;
  set.delete(name);
  if (set.size === 0) index.delete(owner);
}

function withRequestId<E extends LockEvent>(event: E, requestId: string | null): E {
  return requestId === null ? event : { ...event, requestId };
}
