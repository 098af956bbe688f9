// The replicated part of a Raft group (GroupMachine) and its de-duplication table: which
// retries replay a remembered result and which apply, the batch envelope and the format
// before it, the log's clock, a new leader's first entry, snapshot images.
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { commandFingerprint, DedupTable } from '../../src/runtime/dedup.js';
import { decode, decodeEnvelope, encode, encodeEnvelope } from '../../src/runtime/envelope.js';
import { GroupMachine } from '../../src/runtime/group-machine.js';
import type { ApplyContext, StateMachine } from '../../src/runtime/state-machine.js';

/** A counter per key; `wait` answers a provisional result. Records every application. */
class CountingMachine implements StateMachine {
  counts = new Map<string, number>();
  applied: Array<{ cmd: string; ctx: ApplyContext }> = [];
  apply(command: Uint8Array, ctx: ApplyContext): unknown {
    const { k } = decode<{ k: string }>(command);
    this.applied.push({ cmd: k, ctx });
    const n = (this.counts.get(k) ?? 0) + 1;
    this.counts.set(k, n);
    return k.startsWith('wait') ? { type: 'waiting', n } : { type: 'done', k, n };
  }
  isFinal(result: unknown): boolean {
    return (result as { type: string }).type !== 'waiting';
  }
  leaderStartCommands(term: number): Uint8Array[] {
    return [cmd(`start-${term}`)];
  }
  snapshot(): Uint8Array { return encode([...this.counts]); }
  restore(d: Uint8Array): void { this.counts = new Map(decode<Array<[string, number]>>(d)); }
}

const cmd = (k: string): Uint8Array => encode({ k });

function entry(index: number, t: number, items: Array<{ k: string; c?: string; r?: string }>,
  term = 1): Entry {
  const b = items.map((x) => {
    const d = cmd(x.k);
    return x.c === undefined || x.r === undefined ? { d } : { d, c: x.c, r: x.r };
  });
  return { index, term, type: 'normal', data: encodeEnvelope({ t, b }) };
}

describe('DedupTable and its key', () => {
  it('keys a request by client, request id and fingerprint: change any and it is another', () => {
    const f = commandFingerprint(cmd('a'));
    const keys = new Set([
      DedupTable.key('c1', 'r1', f), DedupTable.key('c2', 'r1', f),
      DedupTable.key('c1', 'r2', f), DedupTable.key('c1', 'r1', commandFingerprint(cmd('b'))),
    ]);
    expect(keys.size).toBe(4);
    expect(commandFingerprint(cmd('a'))).toBe(f);
    expect(f).toMatch(/^[0-9a-f]{16}$/);
  });

  it('forgets the oldest first: past the window and past entriesMax, in log order', () => {
    const t = new DedupTable(1000, 3);
    for (let i = 0; i < 5; i++) t.remember(`k${i}`, 100 * i, i);
    expect(t.toJSON().map(([k]) => k)).toEqual(['k2', 'k3', 'k4']);
    t.remember('k5', 1350, 5);
    // k2 was remembered at 200 and is 1150 ms old: gone; k3 (300) is exactly 1050: gone too.
    expect(t.toJSON().map(([k]) => k)).toEqual(['k4', 'k5']);
    const copy = DedupTable.fromJSON(t.toJSON(), 1000, 3);
    expect(copy.toJSON()).toEqual(t.toJSON());
  });
});

describe('GroupMachine: de-duplication', () => {
  it('a retry of the same request replays its result without applying again', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    const first = g.apply(entry(1, 10, [{ k: 'a', c: 'c1', r: '1' }]));
    const again = g.apply(entry(2, 20, [{ k: 'a', c: 'c1', r: '1' }]));
    expect(again).toEqual(first);
    expect(sm.counts.get('a')).toBe(1);
  });

  it('another client reusing the request id is a new request', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    g.apply(entry(1, 10, [{ k: 'a', c: 'c1', r: '1' }]));
    expect(g.apply(entry(2, 20, [{ k: 'a', c: 'c2', r: '1' }]))).toEqual([
      { type: 'done', k: 'a', n: 2 }]);
  });

  it('the same client asking for something else under an old request id gets that', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    g.apply(entry(1, 10, [{ k: 'L1', c: 'http', r: '1' }]));
    expect(g.apply(entry(2, 20, [{ k: 'L2', c: 'http', r: '1' }]))).toEqual([
      { type: 'done', k: 'L2', n: 1 }]);
    // …and L1's retry still replays L1's answer.
    expect(g.apply(entry(3, 30, [{ k: 'L1', c: 'http', r: '1' }]))).toEqual([
      { type: 'done', k: 'L1', n: 1 }]);
  });

  it('a provisional result is never replayed: the retry applies again', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    g.apply(entry(1, 10, [{ k: 'wait-x', c: 'c1', r: '7' }]));
    expect(g.apply(entry(2, 20, [{ k: 'wait-x', c: 'c1', r: '7' }]))).toEqual([
      { type: 'waiting', n: 2 }]);
    expect(g.dedupSize()).toBe(0);
  });

  it('commands without an idempotency key always apply', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    g.apply(entry(1, 10, [{ k: 'a' }, { k: 'a' }]));
    expect(sm.counts.get('a')).toBe(2);
  });

  it('de-duplicates inside one batch too', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    const r = g.apply(entry(1, 10, [{ k: 'a', c: 'c', r: '1' }, { k: 'a', c: 'c', r: '1' }]));
    expect(r[1]).toEqual(r[0]);
    expect(sm.counts.get('a')).toBe(1);
  });
});

describe('GroupMachine: entries', () => {
  it('applies a batch in order with (index, position) and one clock; results by position',
    () => {
      const sm = new CountingMachine();
      const g = new GroupMachine(sm);
      const results = g.apply(entry(5, 1234, [{ k: 'a' }, { k: 'b', c: 'c', r: '1' }, { k: 'c' }]));
      expect(results.map((r) => (r as { k: string }).k)).toEqual(['a', 'b', 'c']);
      expect(sm.applied.map((a) => a.ctx)).toEqual([0, 1, 2].map((position) => ({
        index: 5, position, term: 1, nowMs: 1234 })));
    });

  it('makes the clock monotonic across leaders: an entry stamped earlier applies later', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    g.apply(entry(1, 5000, [{ k: 'a' }]));
    g.apply(entry(2, 4000, [{ k: 'b' }], 2));
    expect(sm.applied.map((a) => a.ctx.nowMs)).toEqual([5000, 5000]);
    expect(g.clock(4500)).toBe(5000);
    expect(g.clock(6000)).toBe(6000);
  });

  it('applies an entry written before batching ({t, d, c, r}) as a batch of one', () => {
    const legacy = new Packr({ useRecords: false, moreTypes: false });
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    const old = (index: number, k: string): Entry => ({ index, term: 1, type: 'normal',
      data: legacy.pack({ t: 100 * index, d: cmd(k), c: 'c1', r: 'r1' }) });
    expect(decodeEnvelope(old(1, 'a').data).b).toHaveLength(1);
    const first = g.apply(old(1, 'a'));
    expect(first).toEqual([{ type: 'done', k: 'a', n: 1 }]);
    // Old entries are de-duplicated by the same key: the retry replays.
    expect(g.apply(old(2, 'a'))).toEqual(first);
    expect(g.apply(old(3, 'b'))).toEqual([{ type: 'done', k: 'b', n: 1 }]);
    expect(sm.applied.map((a) => a.ctx.nowMs)).toEqual([100, 300]);
  });

  it('applies nothing for configuration entries and empty batches', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    expect(g.apply({ index: 1, term: 1, type: 'config', data: new Uint8Array([1]) })).toEqual([]);
    expect(g.apply(entry(2, 10, []))).toEqual([]);
    expect(sm.applied).toEqual([]);
  });

  it('builds a new leader\'s first entry from the state machine, stamped with the log clock',
    () => {
      const sm = new CountingMachine();
      const g = new GroupMachine(sm);
      g.apply(entry(1, 9000, [{ k: 'a' }]));
      const data = g.leaderStartEntry(3, 100);
      expect(data).not.toBeNull();
      const env = decodeEnvelope(data!);
      expect(env.t).toBe(9000);
      expect(env.b.map((x) => decode<{ k: string }>(x.d).k)).toEqual(['start-3']);
      const plain: StateMachine = {
        apply: () => null, snapshot: () => new Uint8Array(), restore: () => undefined,
      };
      expect(new GroupMachine(plain).leaderStartEntry(3, 100)).toBeNull();
    });

  it('an image carries state, remembered requests and the clock', () => {
    const sm = new CountingMachine();
    const g = new GroupMachine(sm);
    g.apply(entry(1, 777, [{ k: 'a', c: 'c', r: '1' }]));
    const sm2 = new CountingMachine();
    const g2 = new GroupMachine(sm2);
    g2.restore(g.image());
    expect(g2.image()).toEqual(g.image());
    expect(g2.apply(entry(2, 10, [{ k: 'a', c: 'c', r: '1' }]))).toEqual([
      { type: 'done', k: 'a', n: 1 }]);
    expect(g2.clock(0)).toBe(777);
  });
});
