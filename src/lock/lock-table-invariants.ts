// The invariants of the lock table, checked against the replicated state and the derived
// indexes together. A broken one is a bug: the assertion propagates and the node stops.
import { assert } from '../assert.js';
import { hasAnyCycle } from './lock-table-graph.js';
import type { LockLimits } from './lock-table-limits.js';
import type { ExpiredMark, LockEntry, Waiter } from './lock-table-snapshot.js';

export interface TableView {
  readonly locks: ReadonlyMap<string, LockEntry>;
  readonly ownerLocks: ReadonlyMap<string, ReadonlySet<string>>;
  readonly ownerWaits: ReadonlyMap<string, ReadonlySet<string>>;
  readonly expired: ReadonlyMap<string, ExpiredMark>;
  readonly lastToken: number;
  readonly limits: LockLimits;
  readonly deadlineOf: (name: string) => number | undefined;
  readonly headGrantable: (entry: LockEntry, head: Waiter) => boolean;
  readonly successors: (owner: string) => readonly string[];
}

function checkLock(t: TableView, name: string, e: LockEntry): void {
  const where = `lock ${name}`;
  assert(e.holders.length + e.waiters.length > 0, `${where} is empty but kept`);
  assert(e.holders.length <= t.limits.holdersPerLockMax, `${where} has too many holders`);
  assert(e.waiters.length <= t.limits.waitersPerLockMax, `${where} has too many waiters`);
  const exclusive = e.holders.filter((h) => h.mode === 'exclusive').length;
  assert(exclusive === 0 || e.holders.length === 1, `${where}: exclusive holder is not alone`);
  let previousToken = 0;
  for (const h of e.holders) {
    assert(h.token > previousToken, `${where}: holders not in grant order`);
    assert(h.token <= t.lastToken, `${where}: token ${h.token} beyond lastToken`);
    assert(h.ttlMs > 0, `${where}: holder ttl must be positive`);
    previousToken = h.token;
  }
  assert(new Set(e.holders.map((h) => h.owner)).size === e.holders.length,
    `${where}: an owner holds twice`);
  assert(new Set(e.waiters.map((w) => w.owner)).size === e.waiters.length,
    `${where}: an owner waits twice`);
  e.waiters.forEach((w, i) => {
    const holder = e.holders.find((h) => h.owner === w.owner);
    if (holder === undefined) return;
    // Only an upgrade waits while holding, and it sits at the front.
    assert(i === 0 && holder.mode === 'shared' && w.mode === 'exclusive',
      `${where}: holder ${w.owner} waits but is not an upgrade at the front`);
  });
  const head = e.waiters[0];
  assert(head === undefined || !t.headGrantable(e, head),
    `${where}: head waiter ${head?.owner} could be granted`);
  let next = Number.MAX_SAFE_INTEGER;
  for (const h of e.holders) next = Math.min(next, h.expiresAt);
  for (const w of e.waiters) next = Math.min(next, w.deadline);
  assert(t.deadlineOf(name) === next, `${where}: deadline index is ${t.deadlineOf(name)}`);
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
    for (const h of e.holders) add(locksOf, h.owner, name);
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
  for (const [name, e] of t.locks) checkLock(t, name, e);
  checkOwnerIndexes(t);
  assert(!hasAnyCycle([...t.ownerLocks.keys()].sort(), t.successors),
    'the wait-for graph has a cycle');
}
