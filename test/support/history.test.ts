// The lock history checker against hand-made good and bad histories.
import { describe, expect, it } from 'vitest';
import {
  checkLockHistory, HistoryRecorder, type LockHold, type LockViolationKind,
} from './history.js';

function hold(owner: string, token: number, sent: number, granted: number, end: number,
  extra: Partial<LockHold> = {}): LockHold {
  return { owner, name: 'L', token, mode: 'exclusive', acquireSentAt: sent,
    grantReturnedAt: granted, endAt: end, endedBy: 'released', ...extra };
}
const kinds = (hs: LockHold[]): LockViolationKind[] => checkLockHistory(hs).map((v) => v.kind);

describe('checkLockHistory', () => {
  it('accepts an empty history and a sequence of back-to-back holds', () => {
    expect(checkLockHistory([])).toEqual([]);
    expect(kinds([
      hold('a', 10, 0, 1, 5),
      hold('b', 11, 2, 5, 9), // granted exactly when a's release was sent: touching, not overlap
      hold('c', 14, 3, 9.5, 12, { endedBy: 'lease' }),
    ])).toEqual([]);
  });

  it('accepts overlapping shared holds, and overlapping holds on different locks', () => {
    expect(kinds([
      hold('a', 10, 0, 1, 8, { mode: 'shared' }),
      hold('b', 11, 0, 2, 9, { mode: 'shared' }),
      hold('c', 12, 0, 3, 9, { name: 'M' }),
    ])).toEqual([]);
  });

  it('accepts concurrent acquires whose tokens are in either order', () => {
    // b was sent before a's grant returned: they are concurrent, any token order is fine.
    expect(kinds([hold('a', 20, 0, 2, 3), hold('b', 15, 1, 4, 6)])).toEqual([]);
  });

  it('accepts an idempotent re-acquire of the same grant (same token twice)', () => {
    expect(kinds([hold('a', 7, 0, 1, 3), hold('a', 7, 2, 2.5, 6)])).toEqual([]);
  });

  it('accepts a grant that returned after the client\'s lease bound (an empty hold)', () => {
    // The reply was delayed past the lease; the client never held it. Seen in the fault test:
    // token 554 sent at 53889, returned at 56877 while token 566 was held 56089..58209.
    expect(kinds([
      hold('b', 566, 55378, 56089, 58209),
      hold('a', 554, 53890, 56877, 56877, { endedBy: 'lease' }),
    ])).toEqual([]);
    // Its token is still checked: an empty hold that returned before b was sent must be lower.
    expect(kinds([hold('a', 600, 0, 10, 10, { endedBy: 'lease' }), hold('b', 566, 20, 21, 30)]))
      .toEqual(['token_order']);
  });

  it('finds two overlapping exclusive holds on one lock', () => {
    const v = checkLockHistory([hold('a', 10, 0, 1, 5), hold('b', 11, 0.5, 4, 8)]);
    expect(v.map((x) => x.kind)).toEqual(['overlap']);
    expect(v[0]!.holds.map((h) => h.owner)).toEqual(['a', 'b']);
    expect(v[0]!.message).toContain('L');
  });

  it('finds exclusive overlapping shared, and a long hold overlapping a later one', () => {
    expect(kinds([
      hold('a', 10, 0, 1, 5, { mode: 'shared' }), hold('b', 11, 0, 2, 3),
    ])).toEqual(['overlap']);
    expect(kinds([
      hold('long', 1, 0, 1, 100), hold('b', 2, 0, 10, 20), hold('c', 3, 0, 30, 40),
    ])).toEqual(['overlap', 'overlap']);
  });

  it('finds a token that went backwards in real-time order, across locks', () => {
    const v = checkLockHistory([
      hold('a', 10, 0, 1, 2), hold('b', 9, 3, 4, 5, { name: 'M' }),
    ]);
    expect(v.map((x) => x.kind)).toEqual(['token_order']);
    expect(v[0]!.holds.map((h) => h.token)).toEqual([10, 9]);
  });

  it('finds an equal token for a different grant, in order or concurrent', () => {
    expect(kinds([hold('a', 10, 0, 1, 2), hold('b', 10, 3, 4, 5)]))
      .toEqual(['token_order', 'duplicate_token']);
    expect(kinds([hold('a', 10, 0, 1, 2), hold('b', 10, 0.5, 4, 5, { name: 'M' })]))
      .toEqual(['duplicate_token']);
  });

  it('reports malformed holds alone (end before grant, grant before send, bad token)', () => {
    expect(kinds([hold('a', 1, 0, 5, 4), hold('b', 2, 3, 2, 6), hold('c', 0, 0, 1, 2)]))
      .toEqual(['malformed', 'malformed', 'malformed']);
  });
});

describe('HistoryRecorder', () => {
  it('records in order on its clock and enforces its bound', () => {
    let t = 0;
    const r = new HistoryRecorder<{ at: number }>(() => ++t, 2);
    r.record({ at: r.now() });
    r.record({ at: r.now() });
    expect(r.records).toEqual([{ at: 1 }, { at: 2 }]);
    expect(() => r.record({ at: r.now() })).toThrow(/recordsMax/);
    expect(() => new HistoryRecorder(undefined, 0)).toThrow(RangeError);
  });
});
