// One test per semantic line of API.md "Locks" and of the lock-service issue; each test
// names the line it checks.
import { describe, expect, it } from 'vitest';
import type { LockEvent } from '../../src/lock/commands.js';
import { InflightAcquires } from '../../src/lock/lock-admission.js';
import { LockTable } from '../../src/lock/lock-table.js';
import { Harness, tokenOf } from './harness.js';

describe('API.md Locks: not held', () => {
  it('release or renew of a lock nobody holds is notHeld not_holder', () => {
    const t = new Harness();
    expect(t.release('a', 'o1').result).toEqual({ type: 'notHeld', reason: 'not_holder' });
    expect(t.renew('a', 'o1').result).toEqual({ type: 'notHeld', reason: 'not_holder' });
  });

  it('release or renew by an owner that does not hold the lock is notHeld not_holder', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1').result);
    expect(t.release('a', 'o2').result).toEqual({ type: 'notHeld', reason: 'not_holder' });
    expect(t.renew('a', 'o2').result).toEqual({ type: 'notHeld', reason: 'not_holder' });
    expect(t.holders('a')).toEqual(['o1:exclusive']);
  });

  it('a waiter that does not hold is not a holder for release', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1').result);
    expect(t.acquire('a', 'o2', { waitMs: 1000 }).result.type).toBe('waiting');
    expect(t.release('a', 'o2').result).toEqual({ type: 'notHeld', reason: 'not_holder' });
    expect(t.waiters('a')).toEqual(['o2:exclusive']);
  });

  it('release/renew by an owner whose lease expired is notHeld expired', () => {
    const t = new Harness();
    const token = tokenOf(t.acquire('a', 'o1', { ttlMs: 1000 }).result);
    const { events } = t.tick(1000);
    expect(events).toEqual([{ type: 'expired', name: 'a', owner: 'o1', token }]);
    expect(t.release('a', 'o1').result).toEqual({ type: 'notHeld', reason: 'expired' });
    expect(t.renew('a', 'o1').result).toEqual({ type: 'notHeld', reason: 'expired' });
    expect(t.release('a', 'o1', token).result).toEqual({ type: 'notHeld', reason: 'expired' });
  });

  it('the memory of expiries is bounded: the oldest is forgotten first', () => {
    const t = new Harness({ expiredMemoryMax: 2 });
    for (const name of ['a', 'b', 'c']) tokenOf(t.acquire(name, 'o1', { ttlMs: 100 }).result);
    t.tick(100);
    expect(t.table.stats().expiredRemembered).toBe(2);
    expect(t.release('a', 'o1').result).toEqual({ type: 'notHeld', reason: 'not_holder' });
    expect(t.release('b', 'o1').result).toEqual({ type: 'notHeld', reason: 'expired' });
    expect(t.release('c', 'o1').result).toEqual({ type: 'notHeld', reason: 'expired' });
  });

  it('a new grant clears the memory of an old expiry of that owner and lock', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { ttlMs: 100 }).result);
    t.tick(100);
    tokenOf(t.acquire('a', 'o1').result);
    expect(t.release('a', 'o1').result).toEqual({ type: 'released' });
    expect(t.release('a', 'o1').result).toEqual({ type: 'notHeld', reason: 'not_holder' });
  });
});

describe('API.md Locks: renew', () => {
  it('renew without ttlMs extends by the grant\'s own ttl', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { ttlMs: 5000 }).result);
    t.nowMs += 3000;
    expect(t.renew('a', 'o1').result).toEqual({ type: 'renewed', expiresAt: t.nowMs + 5000 });
  });

  it('renew with ttlMs extends by it and makes it the grant\'s ttl', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { ttlMs: 5000 }).result);
    expect(t.renew('a', 'o1', 700).result).toEqual({ type: 'renewed', expiresAt: t.nowMs + 700 });
    t.nowMs += 500;
    expect(t.renew('a', 'o1').result).toEqual({ type: 'renewed', expiresAt: t.nowMs + 700 });
  });

  it('a renewed lease outlives its first expiry', () => {
    const t = new Harness();
    const token = tokenOf(t.acquire('a', 'o1', { ttlMs: 1000 }).result);
    t.nowMs += 900;
    t.renew('a', 'o1');
    expect(t.tick(900).events).toEqual([]);
    expect(t.table.get('a').holders[0]?.token).toBe(token);
  });
});

describe('API.md Locks: modes and FIFO', () => {
  it('waiters are listed in FIFO order', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1').result);
    for (const o of ['o3', 'o2', 'o4']) t.acquire('a', o, { waitMs: 1000 });
    expect(t.waiters('a')).toEqual(['o3:exclusive', 'o2:exclusive', 'o4:exclusive']);
  });

  it('exclusive excludes everything', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1').result);
    expect(t.acquire('a', 'o2', { mode: 'shared' }).result).toEqual({ type: 'timeout' });
    expect(t.acquire('a', 'o3').result).toEqual({ type: 'timeout' });
    tokenOf(t.acquire('b', 'o1', { mode: 'shared' }).result);
    expect(t.acquire('b', 'o2').result).toEqual({ type: 'timeout' });
  });

  it('shared is compatible with shared', () => {
    const t = new Harness();
    for (const o of ['o1', 'o2', 'o3']) tokenOf(t.acquire('a', o, { mode: 'shared' }).result);
    expect(t.table.get('a').mode).toBe('shared');
    expect(t.holders('a')).toEqual(['o1:shared', 'o2:shared', 'o3:shared']);
  });

  it('a waiting exclusive request blocks later shared requests (no writer starvation)', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'r1', { mode: 'shared' }).result);
    expect(t.acquire('a', 'w', { waitMs: 1000 }).result.type).toBe('waiting');
    expect(t.acquire('a', 'r2', { mode: 'shared' }).result).toEqual({ type: 'timeout' });
    expect(t.acquire('a', 'r3', { mode: 'shared', waitMs: 1000 }).result.type).toBe('waiting');
    expect(t.waiters('a')).toEqual(['w:exclusive', 'r3:shared']);
  });

  it('waiters are served FIFO, a run of shared waiters at the head together', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'x', { ttlMs: 1000 }).result);
    t.acquire('a', 's1', { mode: 'shared', waitMs: 5000 });
    t.acquire('a', 's2', { mode: 'shared', waitMs: 5000 });
    t.acquire('a', 'e', { waitMs: 5000 });
    t.acquire('a', 's3', { mode: 'shared', waitMs: 5000 });
    const { result, events } = t.release('a', 'x');
    expect(result).toEqual({ type: 'released' });
    expect(events.map((e) => [e.type, e.owner])).toEqual([['granted', 's1'], ['granted', 's2']]);
    expect(t.waiters('a')).toEqual(['e:exclusive', 's3:shared']);
    t.release('a', 's1');
    const second = t.release('a', 's2').events;
    expect(second.map((e) => [e.type, e.owner])).toEqual([['granted', 'e']]);
    const third = t.release('a', 'e').events;
    expect(third.map((e) => [e.type, e.owner])).toEqual([['granted', 's3']]);
  });

  it('a waiter whose deadline passed is not granted, and tick reports waitTimedOut', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { ttlMs: 10_000 }).result);
    t.acquire('a', 'o2', { waitMs: 1000, requestId: 'r-2' });
    expect(t.tick(999).events).toEqual([]);
    expect(t.tick(1).events).toEqual([
      { type: 'waitTimedOut', name: 'a', owner: 'o2', requestId: 'r-2' }]);
    expect(t.waiters('a')).toEqual([]);
  });

  it('waitMs 0 and not grantable answers timeout and leaves nothing behind', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1').result);
    const before = t.table.snapshot();
    expect(t.acquire('a', 'o2').result).toEqual({ type: 'timeout' });
    expect(t.table.snapshot()).toEqual(before);
  });

  it('cancelWait drops the waiter and grants those it was blocking', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'r1', { mode: 'shared' }).result);
    t.acquire('a', 'w', { waitMs: 1000 });
    t.acquire('a', 'r2', { mode: 'shared', waitMs: 1000 });
    const { result, events } = t.apply({ type: 'cancelWait', name: 'a', owner: 'w' });
    expect(result).toEqual({ type: 'ok' });
    expect(events.map((e) => [e.type, e.owner])).toEqual([['waitCancelled', 'w'],
      ['granted', 'r2']]);
    expect(t.apply({ type: 'cancelWait', name: 'a', owner: 'w' }).result).toEqual({ type: 'ok' });
  });
});

describe('API.md Locks: fencing tokens', () => {
  it('token is the Raft index of the grant and strictly increases across locks', () => {
    const t = new Harness();
    t.index = 41;
    expect(tokenOf(t.acquire('a', 'o1').result)).toBe(42);
    expect(tokenOf(t.acquire('b', 'o1').result)).toBe(43);
    t.index = 99;
    expect(tokenOf(t.acquire('c', 'o2', { mode: 'shared' }).result)).toBe(100);
  });

  it('one command granting several keeps tokens strictly increasing past the index', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'x').result);
    for (const o of ['s1', 's2', 's3']) t.acquire('a', o, { mode: 'shared', waitMs: 1000 });
    const { events } = t.release('a', 'x');
    const tokens = events.map((e) => (e.type === 'granted' ? e.token : -1));
    expect(tokens).toEqual([t.index, t.index + 1, t.index + 2]);
    expect(tokenOf(t.acquire('b', 'o9').result)).toBe(t.index + 2);
    expect(t.table.stats().lastToken).toBe(t.index + 2);
  });
});

describe('API.md Locks: leases', () => {
  it('a holder keeps the lock until its lease runs out, then tick expires it and grants', () => {
    const t = new Harness();
    const token = tokenOf(t.acquire('a', 'o1', { ttlMs: 1000 }).result);
    t.acquire('a', 'o2', { waitMs: 5000 });
    expect(t.tick(999).events).toEqual([]);
    const { events } = t.tick(1);
    expect(events).toEqual([
      { type: 'expired', name: 'a', owner: 'o1', token },
      { type: 'granted', name: 'a', owner: 'o2', mode: 'exclusive', token: t.index,
        expiresAt: t.nowMs + 30_000 },
    ]);
  });

  it('any command expires what is due at its time before acting', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { ttlMs: 1000 }).result);
    t.nowMs += 1000;
    const { result, events } = t.acquire('a', 'o2');
    expect(result.type).toBe('granted');
    expect(events.map((e) => e.type)).toEqual(['expired']);
  });

  it('a leader change (extendLeases) does not take locks from holders that keep renewing', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { ttlMs: 1000 }).result);
    t.nowMs += 1500; // the new leader's clock is past the lease: the election took a while
    expect(t.apply({ type: 'extendLeases', byMs: 1000 }).events).toEqual([]);
    expect(t.table.get('a').holders[0]?.expiresAt).toBe(1_000_000 + 2000);
    expect(t.renew('a', 'o1').result).toEqual({ type: 'renewed', expiresAt: t.nowMs + 1000 });
  });

  it('nextDeadline is the earliest lease expiry or wait deadline', () => {
    const t = new Harness();
    expect(t.table.nextDeadline()).toBeNull();
    tokenOf(t.acquire('a', 'o1', { ttlMs: 5000 }).result);
    expect(t.table.nextDeadline()).toBe(t.nowMs + 5000);
    t.acquire('a', 'o2', { waitMs: 2000 });
    expect(t.table.nextDeadline()).toBe(t.nowMs + 2000);
    t.apply({ type: 'cancelWait', name: 'a', owner: 'o2' });
    expect(t.table.nextDeadline()).toBe(t.nowMs + 5000);
    t.release('a', 'o1');
    expect(t.table.nextDeadline()).toBeNull();
  });
});

describe('API.md Locks: fenced release', () => {
  it('release with the grant\'s token releases it; another token is stale_token', () => {
    const t = new Harness();
    const old = tokenOf(t.acquire('a', 'o1', { ttlMs: 100 }).result);
    t.tick(100);
    const fresh = tokenOf(t.acquire('a', 'o1').result);
    expect(t.release('a', 'o1', old).result).toEqual({ type: 'notHeld', reason: 'stale_token' });
    expect(t.holders('a')).toEqual(['o1:exclusive']);
    expect(t.release('a', 'o1', fresh).result).toEqual({ type: 'released' });
    expect(t.table.get('a').mode).toBeNull();
  });
});

describe('API.md Locks: idempotent acquire', () => {
  it('a retry returns the existing grant and token and refreshes the lease', () => {
    const t = new Harness();
    const token = tokenOf(t.acquire('a', 'o1', { ttlMs: 1000 }).result);
    t.nowMs += 800;
    expect(t.acquire('a', 'o1', { ttlMs: 2000 }).result).toEqual({ type: 'granted', name: 'a',
      owner: 'o1', mode: 'exclusive', token, expiresAt: t.nowMs + 2000 });
    expect(t.table.stats().holders).toBe(1);
  });

  it('asking for a weaker mode than held returns the held grant', () => {
    const t = new Harness();
    const token = tokenOf(t.acquire('a', 'o1').result);
    const r = t.acquire('a', 'o1', { mode: 'shared' }).result;
    expect(r).toMatchObject({ type: 'granted', mode: 'exclusive', token });
  });

  it('asking again while waiting keeps the place', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1').result);
    t.acquire('a', 'o2', { waitMs: 1000 });
    t.acquire('a', 'o3', { waitMs: 1000 });
    t.nowMs += 500;
    const r = t.acquire('a', 'o2', { waitMs: 1000 }).result;
    expect(r).toEqual({ type: 'waiting', name: 'a', owner: 'o2', mode: 'exclusive',
      deadline: t.nowMs + 1000 });
    expect(t.waiters('a')).toEqual(['o2:exclusive', 'o3:exclusive']);
  });
});

describe('API.md Locks: upgrade shared → exclusive', () => {
  it('the only holder upgrades at once with a new token, ahead of the queue', () => {
    const t = new Harness();
    const shared = tokenOf(t.acquire('a', 'o1', { mode: 'shared' }).result);
    t.acquire('a', 'o2', { waitMs: 1000 });
    const r = t.acquire('a', 'o1').result;
    expect(r).toMatchObject({ type: 'granted', mode: 'exclusive' });
    expect(tokenOf(r)).toBeGreaterThan(shared);
    expect(t.holders('a')).toEqual(['o1:exclusive']);
    expect(t.release('a', 'o1', shared).result).toEqual({ type: 'notHeld',
      reason: 'stale_token' });
  });

  it('with other holders it waits ahead of other waiters and is granted first', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { mode: 'shared' }).result);
    tokenOf(t.acquire('a', 'o2', { mode: 'shared' }).result);
    t.acquire('a', 'o3', { waitMs: 1000 });
    expect(t.acquire('a', 'o1', { waitMs: 1000 }).result.type).toBe('waiting');
    expect(t.waiters('a')).toEqual(['o1:exclusive', 'o3:exclusive']);
    const { events } = t.release('a', 'o2');
    expect(events).toMatchObject([{ type: 'granted', owner: 'o1', mode: 'exclusive' }]);
    expect(t.holders('a')).toEqual(['o1:exclusive']);
  });

  it('two shared holders both upgrading is a deadlock for the second', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { mode: 'shared' }).result);
    tokenOf(t.acquire('a', 'o2', { mode: 'shared' }).result);
    expect(t.acquire('a', 'o1', { waitMs: 1000 }).result.type).toBe('waiting');
    expect(t.acquire('a', 'o2', { waitMs: 1000 }).result).toEqual({ type: 'deadlock',
      cycle: ['o2', 'o1'] });
  });

  it('releasing the shared grant cancels the pending upgrade', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { mode: 'shared' }).result);
    tokenOf(t.acquire('a', 'o2', { mode: 'shared' }).result);
    t.acquire('a', 'o1', { waitMs: 1000 });
    const { events } = t.release('a', 'o1');
    expect(events).toEqual([{ type: 'waitCancelled', name: 'a', owner: 'o1' }]);
    expect(t.holders('a')).toEqual(['o2:shared']);
  });
});

describe('events answer the waiting calls', () => {
  it('a grant to a waiter carries the requestId of its acquire', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1').result);
    t.acquire('a', 'o2', { waitMs: 1000, requestId: 'req-7' });
    expect(t.release('a', 'o1').events).toEqual([{ type: 'granted', name: 'a', owner: 'o2',
      mode: 'exclusive', token: t.index, expiresAt: t.nowMs + 30_000, requestId: 'req-7' }]);
  });

  it('a pending upgrade is cancelled when the shared lease runs out', () => {
    const t = new Harness();
    const token = tokenOf(t.acquire('a', 'o1', { mode: 'shared', ttlMs: 500 }).result);
    tokenOf(t.acquire('a', 'o2', { mode: 'shared' }).result);
    t.acquire('a', 'o1', { waitMs: 5000 });
    expect(t.tick(500).events).toEqual([
      { type: 'expired', name: 'a', owner: 'o1', token },
      { type: 'waitCancelled', name: 'a', owner: 'o1' },
    ]);
    expect(t.waiters('a')).toEqual([]);
  });

  it('renew moves the next deadline', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1', { ttlMs: 1000 }).result);
    t.nowMs += 600;
    t.renew('a', 'o1');
    expect(t.table.nextDeadline()).toBe(t.nowMs + 1000);
  });
});

describe('API.md Locks: deadlock', () => {
  it('a request that would close a wait-for cycle fails with the cycle; nothing changes', () => {
    const t = new Harness();
    tokenOf(t.acquire('x', 'A').result);
    tokenOf(t.acquire('y', 'B').result);
    tokenOf(t.acquire('z', 'C').result);
    expect(t.acquire('y', 'A', { waitMs: 1000 }).result.type).toBe('waiting');
    expect(t.acquire('z', 'B', { waitMs: 1000 }).result.type).toBe('waiting');
    const before = t.table.snapshot();
    expect(t.acquire('x', 'C', { waitMs: 1000 }).result).toEqual({ type: 'deadlock',
      cycle: ['C', 'A', 'B'] });
    expect(t.table.snapshot()).toEqual(before);
  });

  it('waiting behind a conflicting waiter counts as waiting on it', () => {
    const t = new Harness();
    tokenOf(t.acquire('x', 'H', { mode: 'shared' }).result);
    t.acquire('x', 'W', { waitMs: 1000 });            // W waits on H
    tokenOf(t.acquire('y', 'R').result);
    t.acquire('y', 'W', { waitMs: 1000 });            // W waits on R too
    // R asks for shared x: compatible with H, but W's exclusive is ahead: R → W → R.
    expect(t.acquire('x', 'R', { mode: 'shared', waitMs: 1000 }).result).toEqual({
      type: 'deadlock', cycle: ['R', 'W'] });
  });

  it('a request that cannot wait (waitMs 0) answers timeout, not deadlock', () => {
    const t = new Harness();
    tokenOf(t.acquire('x', 'A').result);
    tokenOf(t.acquire('y', 'B').result);
    t.acquire('y', 'A', { waitMs: 1000 });
    expect(t.acquire('x', 'B').result).toEqual({ type: 'timeout' });
  });
});

describe('bounds answer exhausted, never growth', () => {
  it('waitersPerLock', () => {
    const t = new Harness({ waitersPerLockMax: 2 });
    tokenOf(t.acquire('a', 'o1').result);
    t.acquire('a', 'o2', { waitMs: 1000 });
    t.acquire('a', 'o3', { waitMs: 1000 });
    expect(t.acquire('a', 'o4', { waitMs: 1000 }).result).toEqual({ type: 'exhausted',
      limit: 'waitersPerLock', max: 2 });
  });

  it('locksPerOwner', () => {
    const t = new Harness({ locksPerOwnerMax: 2 });
    tokenOf(t.acquire('a', 'o1').result);
    tokenOf(t.acquire('b', 'o1').result);
    expect(t.acquire('c', 'o1').result).toEqual({ type: 'exhausted', limit: 'locksPerOwner',
      max: 2 });
    expect(tokenOf(t.acquire('a', 'o1').result)).toBeGreaterThan(0); // a retry is no growth
  });

  it('locks', () => {
    const t = new Harness({ locksMax: 1 });
    tokenOf(t.acquire('a', 'o1').result);
    expect(t.acquire('b', 'o2').result).toEqual({ type: 'exhausted', limit: 'locks', max: 1 });
  });

  it('holdersPerLock', () => {
    const t = new Harness({ holdersPerLockMax: 2 });
    tokenOf(t.acquire('a', 'o1', { mode: 'shared' }).result);
    tokenOf(t.acquire('a', 'o2', { mode: 'shared' }).result);
    expect(t.acquire('a', 'o3', { mode: 'shared' }).result).toEqual({ type: 'exhausted',
      limit: 'holdersPerLock', max: 2 });
  });

  it('the early refusal counts acquires in flight as if they had applied', () => {
    const t = new Harness({ waitersPerLockMax: 3, locksPerOwnerMax: 2, locksMax: 3 });
    tokenOf(t.acquire('a', 'h').result);
    t.acquire('a', 'w1', { waitMs: 1000 });
    const inflight = new InflightAcquires();
    const acq = (name: string, owner: string, waitMs = 1000) => ({ type: 'acquire' as const,
      name, owner, mode: 'exclusive' as const, ttlMs: 1000, waitMs });
    expect(t.table.refusal(acq('a', 'w2'), inflight)).toBeNull();
    const done = inflight.reserve('a', 'w2', true, false);
    inflight.reserve('a', 'w3', true, false);
    // One waiter applied and two in flight fill the three places.
    expect(t.table.refusal(acq('a', 'w4'), inflight)).toEqual({ type: 'exhausted',
      limit: 'waitersPerLock', max: 3 });
    // An owner that already waits is asking again: only apply can judge that.
    expect(t.table.refusal(acq('a', 'w1'), inflight)).toBeNull();
    // A request that cannot wait is answered `timeout` by apply, not refused here.
    expect(t.table.refusal(acq('a', 'w4', 0), inflight)).toBeNull();
    done();
    expect(t.table.refusal(acq('a', 'w4'), inflight)).toBeNull();
    // locksPerOwner and locks count the locks that acquires in flight would join or create.
    inflight.reserve('b', 'h', true, true);
    expect(t.table.refusal(acq('c', 'h'), inflight)).toEqual({ type: 'exhausted',
      limit: 'locksPerOwner', max: 2 });
    inflight.reserve('c', 'x', true, true);
    expect(t.table.refusal(acq('d', 'y'), inflight)).toEqual({ type: 'exhausted',
      limit: 'locks', max: 3 });
    expect(t.table.refusal(acq('c', 'y'), inflight)).toBeNull();
  });

  it('limits are validated', () => {
    expect(() => new LockTable({ waitersPerLockMax: 0 })).toThrow(/waitersPerLockMax/);
    expect(() => new LockTable({ locksMax: 1.5 })).toThrow(/locksMax/);
  });
});

describe('reads', () => {
  it('an unknown name is simply free', () => {
    const t = new Harness();
    expect(t.table.get('nope')).toEqual({ name: 'nope', mode: null, holders: [], waiters: [] });
  });

  it('list returns held or waited-on locks with the prefix, sorted by name, at most max', () => {
    const t = new Harness();
    for (const n of ['job/b', 'job/a', 'other', 'job/c']) tokenOf(t.acquire(n, 'o1').result);
    t.release('job/c', 'o1');
    expect(t.table.list('job/', 10).map((v) => v.name)).toEqual(['job/a', 'job/b']);
    expect(t.table.list('', 2).map((v) => v.name)).toEqual(['job/a', 'job/b']);
    expect(t.table.list('job/a', 10)[0]).toEqual(t.table.get('job/a'));
  });

  it('stats count locks, holders, waiters and owners', () => {
    const t = new Harness();
    tokenOf(t.acquire('a', 'o1').result);
    t.acquire('a', 'o2', { waitMs: 1000 });
    expect(t.table.stats()).toMatchObject({ locks: 1, holders: 1, waiters: 1, owners: 2 });
  });
});

describe('snapshots', () => {
  it('restore gives the same bytes and the same behaviour', () => {
    const t = new Harness();
    tokenOf(t.acquire('b', 'o1', { ttlMs: 1000 }).result);
    tokenOf(t.acquire('a', 'o2', { mode: 'shared' }).result);
    t.acquire('a', 'o3', { waitMs: 5000, requestId: 'q' });
    const bytes = t.table.snapshot();
    const r = new Harness({}, LockTable.restore(bytes));
    r.index = t.index;
    r.nowMs = t.nowMs;
    expect(r.table.snapshot()).toEqual(bytes);
    expect(r.tick(1000)).toEqual(t.tick(1000));
    expect(r.release('a', 'o2')).toEqual(t.release('a', 'o2'));
    expect(r.table.snapshot()).toEqual(t.table.snapshot());
  });

  it('the bytes are pinned: replicas of different builds must agree on them', () => {
    const t = new Harness({ expiredMemoryMax: 1 });
    tokenOf(t.acquire('b', 'o1', { ttlMs: 100 }).result);
    tokenOf(t.acquire('a', 'o2', { mode: 'shared', ttlMs: 1000 }).result);
    t.acquire('a', 'o3', { waitMs: 5000, requestId: 'q' });
    t.tick(100);
    expect(new TextDecoder().decode(t.table.snapshot())).toBe(
      '{"v":1,"lastToken":2,"locks":[["a",[["o2","shared",2,1000,1001000]],' +
      '[["o3","exclusive",30000,1005000,"q"]]]],"expired":[["b","o1",1]]}');
  });

  it('a snapshot of the previous (array-based) table restores and answers as it did', () => {
    // Written by the table before its queues became linked lists, with an upgrade at the
    // front, shared and exclusive waiters and a remembered expiry. The events below are
    // what that table answered to the same four commands.
    const old = '{"v":1,"lastToken":8,"locks":[["db/x",[["A","shared",1,5000,6000],' +
      '["B","shared",2,5000,6000]],[["A","exclusive",5000,10100,"r1"],' +
      '["C","exclusive",5000,10200,"r2"],["D","shared",5000,10300,null]]],' +
      '["q",[["E","exclusive",6,5000,6400]],[["F","exclusive",5000,10500,null]]]],' +
      '"expired":[["gone","G",8]]}';
    const t = LockTable.restore(new TextEncoder().encode(old), { expiredMemoryMax: 4 });
    expect(new TextDecoder().decode(t.snapshot())).toBe(old);
    let index = 10;
    const at = (nowMs: number): { index: number; nowMs: number } => ({ index: index++, nowMs });
    const granted = (name: string, owner: string, token: number, expiresAt: number,
      requestId?: string): LockEvent => ({ type: 'granted', name, owner, mode: 'exclusive',
      token, expiresAt, ...(requestId === undefined ? {} : { requestId }) });
    expect(t.apply({ type: 'release', name: 'db/x', owner: 'B' }, at(5100)).events)
      .toEqual([granted('db/x', 'A', 10, 10100, 'r1')]);
    expect(t.apply({ type: 'tick' }, at(9000)).events).toEqual([
      { type: 'expired', name: 'q', owner: 'E', token: 6 }, granted('q', 'F', 11, 14000)]);
    expect(t.apply({ type: 'release', name: 'db/x', owner: 'A' }, at(9100)).events)
      .toEqual([granted('db/x', 'C', 12, 14100, 'r2')]);
    expect(t.apply({ type: 'tick' }, at(20000)).events).toEqual([
      { type: 'expired', name: 'db/x', owner: 'C', token: 12 },
      { type: 'waitTimedOut', name: 'db/x', owner: 'D' },
      { type: 'expired', name: 'q', owner: 'F', token: 11 }]);
    expect(new TextDecoder().decode(t.snapshot())).toBe('{"v":1,"lastToken":12,"locks":[],' +
      '"expired":[["gone","G",8],["q","E",6],["db/x","C",12],["q","F",11]]}');
  });

  it('restore refuses corrupt bytes', () => {
    const bad = new TextEncoder().encode('{"v":1,"lastToken":0,"locks":[["a",[],[]]],' +
      '"expired":[]}');
    expect(() => LockTable.restore(bad)).toThrow(/invariant/);
    expect(() => LockTable.restore(new TextEncoder().encode('{"v":2}'))).toThrow(/version/);
  });
});
