// The SDK's choice of node and pause between attempts, as pure functions of what happened:
// endpoints.ts (sticky node, leader first, down nodes skipped, seeds kept through discovery)
// and retry.ts (equal-jitter backoff never shorter than Retry-After, which failures may be
// resent, Retry-After parsing per RFC 9110 10.2.3).
import { describe, expect, it } from 'vitest';
import { Endpoints, type Membership } from '../../src/client/endpoints.js';
import {
  DsyncError, NetworkError, NotHeldError, UnavailableError,
} from '../../src/client/errors.js';
import {
  mayRetry, parseRetryAfter, parseRetryOptions, retryDelayMs,
} from '../../src/client/retry.js';

const opts = { discover: null, refreshMsMin: 0, downMsMin: 100, downMsMax: 400,
  random: () => 0 };

describe('Endpoints', () => {
  it('sticks to the node that answered, moves on from one that failed', () => {
    const e = new Endpoints({ ...opts, seeds: ['http://a/', 'http://b', 'http://c'] });
    expect(e.urls).toEqual(['http://a', 'http://b', 'http://c']);
    expect(e.pick(new Set(), 0)).toBe('http://a');
    e.succeeded('http://b');
    expect(e.pick(new Set(), 0)).toBe('http://b');
    e.failed('http://b', false, 0);
    expect(e.pick(new Set(), 0)).toBe('http://c');
    expect(e.pick(new Set(['http://c']), 0)).toBe('http://a');
  });

  it('skips a down node until its pause is over, doubling the pause up to the max', () => {
    const e = new Endpoints({ ...opts, seeds: ['http://a', 'http://b'] });
    e.failed('http://a', true, 0);
    e.succeeded('http://b');
    e.failed('http://b', false, 0);
    // b only failed once (not down); a is down until 100.
    expect(e.pick(new Set(), 50)).toBe('http://b');
    expect(e.pick(new Set(['http://b']), 50)).toBe('http://a');
    expect(e.pick(new Set(), 150)).toBe('http://a');
    e.failed('http://a', true, 150);
    e.failed('http://a', true, 150);
    e.failed('http://a', true, 150);
    // 100, 200, 400, 400: capped.
    e.failed('http://b', true, 150);
    expect(e.pick(new Set(), 500)).toBe('http://b');
    expect(e.pick(new Set(), 551)).toBe('http://a');
  });

  it('learns members, asks the leader first, and never drops a seed', async () => {
    let m: Membership = { leader: 'n2', members: [{ id: 'n1', url: 'http://a' },
      { id: 'n2', url: 'http://x' }, { id: 'n3', url: 'http://y/' }] };
    const e = new Endpoints({ ...opts, seeds: ['http://a', 'http://lb'],
      discover: async () => m });
    await e.refresh();
    expect(e.urls).toEqual(['http://a', 'http://lb', 'http://x', 'http://y']);
    expect(e.pick(new Set(), 0)).toBe('http://x');
    e.failed('http://x', true, 0);
    expect(e.pick(new Set(), 0)).not.toBe('http://x');
    // A failure looks the membership up again (in the background).
    await e.refresh();
    m = { leader: null, members: [{ id: 'n1', url: 'http://a' }] };
    await e.refresh();
    expect(e.urls).toEqual(['http://a', 'http://lb']);
  });

  it('stops asking a service that has no membership route', async () => {
    let asked = 0;
    const e = new Endpoints({ ...opts, seeds: ['http://a', 'http://b'],
      discover: async () => { asked++; return 'unsupported' as const; } });
    await e.refresh();
    await e.refresh();
    expect(asked).toBe(1);
  });
});

describe('retry policy', () => {
  const p = parseRetryOptions({ backoffMsMin: 100, backoffMsMax: 1000 });

  it('backs off exponentially with equal jitter, capped, and honours Retry-After', () => {
    expect(retryDelayMs(0, null, p, () => 0)).toBe(50);
    expect(retryDelayMs(0, null, p, () => 1)).toBe(100);
    expect(retryDelayMs(3, null, p, () => 0)).toBe(400);
    expect(retryDelayMs(30, null, p, () => 1)).toBe(1000);
    const e = new UnavailableError('x', { retryAfterMs: 2000 });
    expect(retryDelayMs(0, e, p, () => 0)).toBe(2000);
    const huge = new UnavailableError('x', { retryAfterMs: 10_000_000 });
    expect(retryDelayMs(0, huge, p, () => 0)).toBe(p.retryAfterMsMax);
  });

  it('resends a write only when it cannot have been applied twice', () => {
    const refused = new NetworkError('refused', false);
    const reset = new NetworkError('reset', true);
    const busy = new UnavailableError('no leader');
    for (const idempotent of [true, false]) expect(mayRetry(refused, idempotent)).toBe(true);
    expect([mayRetry(reset, true), mayRetry(reset, false)]).toEqual([true, false]);
    expect([mayRetry(busy, true), mayRetry(busy, false)]).toEqual([true, false]);
    expect(mayRetry(new NotHeldError('no'), true)).toBe(false);
    expect(mayRetry(new Error('bug'), true)).toBe(false);
    expect(mayRetry(new DsyncError('ABORTED', 'x'), true)).toBe(false);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter('soon')).toBeNull();
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now)).toBe(0);
  });

  it('refuses options out of bounds with a TypeError naming them', () => {
    expect(() => parseRetryOptions({ backoffMsMin: 0 })).toThrow(/retry.backoffMsMin/);
    expect(() => parseRetryOptions({ backoffMsMin: 500, backoffMsMax: 100 }))
      .toThrow(/retry.backoffMsMax/);
  });
});
