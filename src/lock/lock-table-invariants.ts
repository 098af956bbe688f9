// The invariants of the lock table, checked against the replicated state and the derived
// indexes together. A broken one is a bug: the assertion propagates and the node stops.
// O(size of the table): tests run it after every command, production after every restore.
import { assert } from '../assert.js';
import { waitForHasCycle } from './lock-table-graph.js';
import type { LockLimits } from './lock-table-limits.js';
import type { LockEntry } from './lock-table-queue.js';
import type { ExpiredMark, Waiter } from './lock-table-snapshot.js';

export interface TableView {
  readonly locks: ReadonlyMap<string, LockEntry>;
  readonly ownerLocks: ReadonlyMap<string, ReadonlySet<string>>;
  readonly ownerWaits: ReadonlyMap<string, ReadonlySet<string>>;
  readonly expired: ReadonlyMap<string, ExpiredMark>;
  readonly lastToken: number;
  readonly limits: LockLimits;
  readonly holderCount: number;
  readonly waiterCount: number;
  /** Entries in the deadline index: one per holder and one per waiter. */
  readonly deadlineCount: number;
  readonly holderDeadline: (name: string, owner: string) => number | undefined;
  readonly waiterDeadline: (name: string, owner: string) => number | undefined;
  readonly headGrantable: (entry: LockEntry, head: Waiter) => boolean;
}

function checkHolders(t: TableView, name: string, e: LockEntry): void {
  const where = `lock ${name}`;
  assert(e.holders.size <= t.limits.holdersPerLockMax, `${where} has too many holders`);
  let exclusive = 0;
  let previousToken = 0;
  for (const [owner, h] of e.holders) {
    assert(owner === h.owner, `${where}: holder index names ${owner} for ${h.owner}`);
    if (h.mode === 'exclusive') exclusive++;
    assert(h.token > previousToken, `${where}: holders not in grant order`);
    assert(h.token <= t.lastToken, `${where}: token ${h.token} beyond lastToken`);
    assert(h.ttlMs > 0, `${where}: holder ttl must be positive`);
    assert(t.holderDeadline(name, owner) === h.expiresAt,
      `${where}: the deadline index has ${t.holderDeadline(name, owner)} for ${owner}'s lease`);
    previousToken = h.token;
  }
  assert(exclusive === 0 || e.holders.size === 1, `${where}: exclusive holder is not alone`);
}

function checkWaiters(t: TableView, name: string, e: LockEntry): void {
  const where = `lock ${name}`;
  assert(e.waiters.size <= t.limits.waitersPerLockMax, `${where} has too many waiters`);
  e.waiters.check();
  let i = 0;
  for (const w of e.waiters) {
    assert(t.waiterDeadline(name, w.owner) === w.deadline,
      `${where}: the deadline index has ${t.waiterDeadline(name, w.owner)} for ${w.owner}`);
    const holder = e.holders.get(w.owner);
    // Only an upgrade waits while holding, and it sits at the front.
    assert(holder === undefined || (i === 0 && holder.mode === 'shared' &&
      w.mode === 'exclusive'), `${where}: holder ${w.owner} waits but is not an upgrade ` +
      'at the front');
    i++;
  }
  const head = e.waiters.first();
  assert(head === undefined || !t.headGrantable(e, head),
    `${where}: head waiter ${head?.owner} could be granted`);
}

function sameIndex(what: string, got: ReadonlyMap<string, ReadonlySet<string>>,
  expected: ReadonlyMap<string, ReadonlySet<string>>): void {
  assert(expected.size === got.size, `${what} has stale owners`);
  for (const [owner, names] of expected) {
    const set = got.get(owner);
    assert(set !== undefined && set.size === names.size && [...names].every((n) => set.has(n)),
      `${what} of ${owner} is out of step`);
  }
}

function checkOwnerIndexes(t: TableView): void {
  const locksOf = new Map<string, Set<string>>();
  const waitsOf = new Map<string, Set<string>>();
  const add = (index: Map<string, Set<string>>, owner: string, name: string): void => {
    const set = index.get(owner) ?? new Set<string>();
    set.add(name);
    index.set(owner, set);
  };
  for (const [name, e] of t.locks) {
    for (const owner of e.holders.keys()) add(locksOf, owner, name);
    for (const w of e.waiters) {
      add(locksOf, w.owner, name);
      add(waitsOf, w.owner, name);
    }
  }
  sameIndex('owner index', t.ownerLocks, locksOf);
  sameIndex('wait index', t.ownerWaits, waitsOf);
  for (const [owner, names] of locksOf) {
    assert(names.size <= t.limits.locksPerOwnerMax, `${owner} is in too many locks`);
  }
}

export function checkTableInvariants(t: TableView): void {
  assert(Number.isSafeInteger(t.lastToken) && t.lastToken >= 0, 'lastToken is a safe integer');
  assert(t.locks.size <= t.limits.locksMax, 'too many locks');
  assert(t.expired.size <= t.limits.expiredMemoryMax, 'expiry memory over its bound');
  let holders = 0;
  let waiters = 0;
  for (const [name, e] of t.locks) {
    assert(!e.isEmpty(), `lock ${name} is empty but kept`);
    checkHolders(t, name, e);
    checkWaiters(t, name, e);
    holders += e.holders.size;
    waiters += e.waiters.size;
  }
  assert(holders === t.holderCount && waiters === t.waiterCount,
    `counted ${holders} holders and ${waiters} waiters, the table says ` +
    `${t.holderCount} and ${t.waiterCount}`);
  assert(t.deadlineCount === holders + waiters, 'the deadline index has stale entries');
  checkOwnerIndexes(t);
  assert(!waitForHasCycle(t), 'the wait-for graph has a cycle');
}
