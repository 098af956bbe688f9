// Scenario tests of the coherence core with a hand-driven network: each test names the rule
// of the protocol it checks. The randomised fault simulation is coherence-sim.test.ts.

import { describe, expect, it } from 'vitest';
import { CoherenceNode } from '../../src/cache/coherence.js';
import type { CoherenceOptions } from '../../src/cache/coherence-config.js';
import {
  describeEffect, describeMsg, type CacheValue, type CoherenceEffect, type CoherenceMsg,
  type OpResult,
} from '../../src/cache/coherence-messages.js';
import { liveValue, splitValue, withExpiry } from '../../src/cache/coherence-value.js';

interface Envelope { from: string; to: string; msg: CoherenceMsg }

/** Pods a, b, c; every key's home is `home` unless a test says otherwise. */
class Cluster {
  readonly nodes = new Map<string, CoherenceNode>();
  readonly net: Envelope[] = [];
  readonly replies = new Map<string, OpResult>();
  readonly storeLoads: string[] = [];
  readonly storeWrites: { key: string; value: CacheValue; version: number }[] = [];
  readonly store = new Map<string, { value: CacheValue; version: number }>();
  nowMs = 1000;
  autoStore = true;

  constructor(readonly opts: Partial<CoherenceOptions> = {}, readonly home = 'a') {
    for (const id of ['a', 'b', 'c']) this.start(id, 1);
  }

  start(id: string, incarnation: number, extra: Partial<CoherenceOptions> = {}): void {
    this.nodes.set(id, new CoherenceNode({
      self: id, incarnation, homeOf: () => this.home, nowMs: this.nowMs, priorCopies: 'none',
      ...this.opts, ...extra,
    }));
  }

  node(id: string): CoherenceNode {
    return this.nodes.get(id)!;
  }

  /** Collects every node's effects; store effects are answered at once when autoStore. */
  pump(): void {
    for (let again = true; again;) {
      again = false;
      for (const [id, node] of this.nodes) {
        for (const e of node.drain()) {
          again = true;
          this.perform(id, e);
        }
      }
    }
  }

  private perform(id: string, e: CoherenceEffect): void {
    if (e.type === 'send') this.net.push({ from: id, to: e.to, msg: e.msg });
    else if (e.type === 'reply') this.replies.set(e.reqId, e.result);
    else if (e.type === 'storeLoad') {
      this.storeLoads.push(e.key);
      if (this.autoStore) {
        const cur = this.store.get(e.key) ?? { value: null, version: 0 };
        this.node(id).storeLoaded(e.key, cur.value, cur.version);
      }
    } else {
      this.storeWrites.push({ key: e.key, value: e.value, version: e.version });
      if (this.autoStore) {
        this.store.set(e.key, { value: e.value, version: e.version });
        this.node(id).storeWritten(e.key, e.version);
      }
    }
  }

  /** Delivers queued messages in order until the network is quiet (or `max` messages). */
  deliverAll(max = 1000): void {
    this.pump();
    for (let i = 0; i < max && this.net.length > 0; i++) {
      const m = this.net.shift()!;
      this.node(m.to).receive(m.from, m.msg);
      this.pump();
    }
  }

  tick(ms: number): void {
    this.nowMs += ms;
    for (const node of this.nodes.values()) node.tick(this.nowMs);
    this.pump();
  }

  reply(reqId: string): OpResult {
    const r = this.replies.get(reqId);
    if (r === undefined) throw new Error(`no reply to ${reqId}`);
    return r;
  }
}

const read = (c: Cluster, id: string, reqId: string, key = 'k'): void => {
  c.node(id).read(reqId, key);
  c.deliverAll();
};
const write = (c: Cluster, id: string, reqId: string, value: string, key = 'k'): void => {
  c.node(id).write(reqId, key, value);
  c.deliverAll();
};

describe('CoherenceNode', () => {
  it('a first read misses, loads once from the store and is granted E; the next read hits', () => {
    const c = new Cluster();
    c.store.set('k', { value: '"v0"', version: 3 });
    read(c, 'b', 'r1');
    expect(c.reply('r1')).toEqual({ type: 'read', key: 'k', value: '"v0"', state: 'E',
      hit: false, version: 3 });
    read(c, 'b', 'r2');
    expect(c.reply('r2')).toMatchObject({ hit: true, state: 'E' });
    expect(c.storeLoads).toEqual(['k']);
    expect(c.node('b').stats()).toMatchObject({ hits: 1, misses: 1, entries: 1 });
  });

  it('dirty lines and bytes count what a kill -9 would lose in write-back, until flushed', () => {
    const c = new Cluster();
    write(c, 'b', 'w1', '"12345"');
    write(c, 'b', 'w2', '"abc"', 'k2');
    expect(c.node('b').stats()).toMatchObject({ dirtyLines: 2, dirtyBytes: 7 + 5 });
    expect(c.node('b').flush()).toBe(2);
    c.deliverAll();
    expect(c.node('b').stats()).toMatchObject({ dirtyLines: 0, dirtyBytes: 0 });
    expect(c.store.get('k')).toEqual({ value: '"12345"', version: 1 });
  });

  it('concurrent misses on several pods issue one storeLoad (stampede protection)', () => {
    const c = new Cluster();
    c.autoStore = false;
    c.node('b').read('rb', 'k');
    c.node('c').read('rc', 'k');
    c.node('a').read('ra', 'k');
    c.deliverAll();
    expect(c.storeLoads).toEqual(['k']);
    c.node('a').storeLoaded('k', '"x"', 1);
    c.deliverAll();
    for (const r of ['ra', 'rb', 'rc']) expect(c.reply(r)).toMatchObject({ value: '"x"' });
  });

  it('a read of a line owned elsewhere recalls it: the owner writes back and both share', () => {
    const c = new Cluster();
    write(c, 'b', 'w1', '"one"');
    expect(c.reply('w1')).toEqual({ type: 'write', key: 'k', state: 'M', version: 1 });
    read(c, 'c', 'r1');
    expect(c.reply('r1')).toMatchObject({ value: '"one"', state: 'S', version: 1, hit: false });
    expect(c.node('b').lineState('k')).toBe('S');
    expect(c.store.get('k')).toEqual({ value: '"one"', version: 1 });
    expect(c.node('a').inspectHome('k')).toMatchObject({ owner: null, sharers: ['b', 'c'] });
  });

  it('a write invalidates every sharer before M is granted; versions increase', () => {
    const c = new Cluster();
    write(c, 'a', 'w0', '"zero"');
    read(c, 'b', 'r1');
    read(c, 'c', 'r2');
    write(c, 'b', 'w1', '"one"');
    expect(c.reply('w1')).toMatchObject({ version: 2, state: 'M' });
    expect(c.node('a').lineState('k')).toBe('I');
    expect(c.node('c').lineState('k')).toBe('I');
    expect(c.node('b').lineState('k')).toBe('M');
    // E → M is silent: a second write on b sends nothing.
    c.node('b').write('w2', 'k', '"two"');
    c.pump();
    expect(c.net).toHaveLength(0);
    expect(c.reply('w2')).toMatchObject({ version: 3 });
    c.node('c').delete('d1', 'k');
    c.deliverAll();
    expect(c.reply('d1')).toEqual({ type: 'delete', key: 'k', deleted: true, version: 4 });
    read(c, 'b', 'r3');
    expect(c.reply('r3')).toMatchObject({ value: null, version: 4 });
  });

  it('the home waits out the lease of a sharer that does not answer before granting M', () => {
    const c = new Cluster({ leaseMs: 5000, driftMarginMs: 250, retryMs: 100 });
    read(c, 'c', 'r0');
    read(c, 'b', 'r1'); // b and c share
    c.node('a').write('w1', 'k', '"new"');
    c.pump();
    // c is cut off: its invalidations are lost until its lease has run out.
    const dropToC = (): void => {
      for (let i = c.net.length - 1; i >= 0; i--) if (c.net[i]!.to === 'c') c.net.splice(i, 1);
    };
    for (let t = 0; t < 5200; t += 100) {
      dropToC();
      c.deliverAll();
      dropToC();
      c.tick(100);
      // While c may still serve its copy, a must not have M.
      if (c.node('c').lineState('k') === 'S') expect(c.node('a').lineState('k')).not.toBe('M');
    }
    expect(c.reply('w1')).toMatchObject({ state: 'M' });
    expect(c.node('c').lineState('k')).toBe('I'); // expired by its own clock
  });

  it('a line hit early in its lease is renewed before it runs out; one left unread for two ' +
    'leases lapses', () => {
    const c = new Cluster();
    c.store.set('k', { value: '"v"', version: 1 });
    read(c, 'b', 'r1'); // miss: granted E, lease 5 s from now
    c.tick(500);
    read(c, 'b', 'r2'); // a hit in the first half of the lease
    expect(c.reply('r2')).toMatchObject({ hit: true });
    // Past the end of the first lease with no other read: renewed, still served.
    for (let t = 0; t < 6000; t += 100) { c.tick(100); c.deliverAll(); }
    expect(c.node('b').lineState('k')).toBe('E');
    read(c, 'b', 'r3');
    expect(c.reply('r3')).toMatchObject({ hit: true });
    // Nobody reads it for more than RENEW_IF_HIT_WITHIN_LEASES leases: it lapses.
    for (let t = 0; t < 16_000; t += 100) { c.tick(100); c.deliverAll(); }
    expect(c.node('b').lineState('k')).toBe('I');
    // A line that was only ever fetched, never hit, is not renewed.
    read(c, 'c', 'r4', 'k2');
    for (let t = 0; t < 6000; t += 100) { c.tick(100); c.deliverAll(); }
    expect(c.node('c').lineState('k2')).toBe('I');
  });

  it('a sharer stops serving when its lease expires by its own clock, with no message', () => {
    const c = new Cluster({ leaseMs: 2000, driftMarginMs: 100 });
    read(c, 'b', 'r1');
    c.tick(1850);
    expect(c.node('b').lineState('k')).toBe('E');
    c.tick(100); // 1950 ms since the request: past leaseMs − driftMarginMs
    expect(c.node('b').lineState('k')).toBe('I');
    c.node('b').read('r2', 'k');
    c.pump();
    expect(c.net.map((m) => m.msg.type)).toEqual(['getS']); // a miss, not a stale hit
  });

  /** b has a getS granted (held back in the network) and a's write then invalidates b. */
  const grantThenInv = (): { c: Cluster; grant: Envelope } => {
    const c = new Cluster({ retryMs: 100 });
    read(c, 'c', 'r0');
    read(c, 'a', 'r00'); // a and c share, so b's grant is S and needs no recall
    c.node('b').read('r1', 'k');
    c.pump();
    const get = c.net.shift()!;
    c.node('a').receive(get.from, get.msg);
    c.pump();
    const grant = c.net.shift()!;
    expect(grant.msg).toMatchObject({ type: 'data', grant: 'S' });
    c.node('a').write('w1', 'k', '"x"'); // invalidates b and c
    c.pump();
    const inv = c.net.find((m) => m.to === 'b')!;
    c.net.splice(c.net.indexOf(inv), 1);
    c.node('b').receive(inv.from, inv.msg); // the invalidation overtakes the grant
    c.pump();
    return { c, grant };
  };

  it('an invalidation that overtakes its grant waits for it: the grant serves the waiting ' +
    'read, then the copy is given up', () => {
    const { c, grant } = grantThenInv();
    c.deliverAll();
    expect(c.replies.has('w1')).toBe(false); // the home still waits for b
    c.node('b').receive(grant.from, grant.msg);
    c.deliverAll();
    expect(c.reply('r1')).toMatchObject({ value: null, hit: false }); // before w1 returned
    expect(c.node('b').lineState('k')).toBe('I');
    expect(c.reply('w1')).toMatchObject({ state: 'M' });
  });

  it('a grant issued before an invalidation the cache has already answered is discarded', () => {
    const { c, grant } = grantThenInv();
    c.tick(100); // the grant looks lost: b answers the invalidation and asks again
    const retry = c.net.filter((m) => m.from === 'b').map((m) => m.msg.type);
    expect(retry).toEqual(['invAck', 'getS']);
    const getS = c.net.findIndex((m) => m.msg.type === 'getS');
    const held = c.net.splice(getS, 1)[0]!;
    c.deliverAll();
    expect(c.reply('w1')).toMatchObject({ state: 'M' });
    c.node('b').receive(grant.from, grant.msg); // stale: issued before the answered inv
    c.pump();
    expect(c.node('b').lineState('k')).toBe('I');
    expect(c.replies.has('r1')).toBe(false);
    c.node('a').receive(held.from, held.msg);
    c.deliverAll();
    expect(c.reply('r1')).toMatchObject({ value: '"x"', hit: false });
  });

  it('copies granted by an earlier incarnation of the home are dropped, dirty ones first ' +
    'written back to the new incarnation', () => {
    const c = new Cluster();
    write(c, 'b', 'w1', '"dirty"');
    expect(c.store.get('k')).toBeUndefined(); // write-back: only b has it
    // The home restarts after a crash and forgets everything; it does not know its peers.
    c.start('a', 2, { priorCopies: 'unknown', startupGraceMs: 5400 });
    read(c, 'c', 'r1'); // queued at the new home during its grace period
    expect(c.replies.has('r1')).toBe(false);
    for (let t = 0; t < 5000; t += 200) c.tick(200);
    expect(c.replies.has('r1')).toBe(false);
    for (let t = 0; t < 600; t += 200) {
      c.tick(200);
      c.deliverAll();
    }
    expect(c.node('b').lineState('k')).toBe('I');
    expect(c.node('b').pendingWritebacks()).toBe(0);
    expect(c.store.get('k')).toEqual({ value: '"dirty"', version: 1 });
    expect(c.reply('r1')).toMatchObject({ value: '"dirty"', version: 1 });
  });

  it('a restarted home ends its grace once every peer confirms it holds nothing of the ' +
    'earlier life; an unconfirmed peer keeps it waiting', () => {
    const c = new Cluster();
    write(c, 'b', 'w1', '"dirty"');
    c.start('a', 2, { priorCopies: 'unknown', peers: ['b', 'c'] });
    expect(c.node('a').inStartupGrace()).toBe(true);
    // c answers, b is cut off: still in grace, and c's read waits.
    c.pump();
    c.net.splice(0, c.net.length, ...c.net.filter((m) => m.to !== 'b'));
    read(c, 'c', 'r1');
    expect(c.node('a').inStartupGrace()).toBe(true);
    expect(c.replies.has('r1')).toBe(false);
    // The next hello reaches b: it drops its copy of the old life, hands the dirty data to the
    // new one and is clear once that is stored.
    c.tick(200);
    c.deliverAll();
    c.tick(200);
    c.deliverAll();
    expect(c.node('a').inStartupGrace()).toBe(false);
    expect(c.node('b').lineState('k')).toBe('I');
    expect(c.store.get('k')).toEqual({ value: '"dirty"', version: 1 });
    expect(c.reply('r1')).toMatchObject({ value: '"dirty"', version: 1 });
  });

  it('a home alone on its ring, or whose last life drained, has no grace', () => {
    const c = new Cluster();
    c.start('a', 2, { priorCopies: 'unknown', peers: [] });
    expect(c.node('a').inStartupGrace()).toBe(false);
    c.start('a', 3, { priorCopies: 'none', peers: ['b', 'c'] });
    expect(c.node('a').inStartupGrace()).toBe(false);
    c.start('a', 4, { priorCopies: 'unknown', peers: ['b', 'c'] });
    expect(c.node('a').inStartupGrace()).toBe(true);
  });

  it('a draining home takes every copy back, refuses new requests, then reports drained', () => {
    const c = new Cluster();
    write(c, 'b', 'w1', '"dirty"');
    read(c, 'c', 'r1', 'other');
    c.node('a').beginDrain();
    expect(c.node('a').drained()).toBe(false);
    c.deliverAll();
    expect(c.node('a').drained()).toBe(true);
    expect(c.store.get('k')).toEqual({ value: '"dirty"', version: 1 });
    expect(c.node('b').lineState('k')).toBe('I');
    expect(c.node('c').lineState('other')).toBe('I');
    read(c, 'b', 'r2');
    expect(c.reply('r2')).toMatchObject({ type: 'error',
      error: { code: 'UNAVAILABLE', retryable: true } });
  });

  it('a home that knows the store is down refuses at once what needs it, serves the rest, ' +
    'and recovers when it is back', () => {
    const c = new Cluster();
    c.store.set('warm', { value: '"w"', version: 1 });
    read(c, 'b', 'r0', 'warm'); // loaded into the home's directory
    c.autoStore = false;
    c.node('a').setStoreAvailable(false);
    // A key the home never loaded: refused at once, naming the store, not the home.
    read(c, 'b', 'r1', 'cold');
    const r1 = c.reply('r1');
    expect(r1).toMatchObject({ type: 'error', error: { code: 'UNAVAILABLE', retryable: true,
      details: { reason: 'store_unavailable', home: 'a' } } });
    // A request queued on a load when the store went down is refused too.
    c.node('a').setStoreAvailable(true);
    read(c, 'c', 'r2', 'cold2');
    expect(c.replies.has('r2')).toBe(false);
    c.node('a').setStoreAvailable(false);
    c.deliverAll();
    expect(c.reply('r2')).toMatchObject({ error: { details: { reason: 'store_unavailable' } } });
    // Write-back: a loaded key is served without the store.
    write(c, 'c', 'w1', '"new"', 'warm');
    expect(c.reply('w1')).toMatchObject({ type: 'write', version: 2 });
    // Back up: the pending loads complete and the cold key is served.
    c.node('a').setStoreAvailable(true);
    read(c, 'b', 'r3', 'cold');
    for (const key of ['cold', 'cold2']) c.node('a').storeLoaded(key, null, 0);
    c.deliverAll();
    expect(c.reply('r3')).toMatchObject({ type: 'read', value: null });
  });

  it('write-through with the store down: a write is refused before it waits on the store', () => {
    const c = new Cluster({ writePolicy: 'write-through' });
    c.store.set('k', { value: '"v"', version: 1 });
    read(c, 'b', 'r0');
    c.node('a').setStoreAvailable(false);
    write(c, 'c', 'w1', '"x"');
    expect(c.reply('w1')).toMatchObject({ error: { details: { reason: 'store_unavailable' } } });
    read(c, 'c', 'r1'); // reads of a stored version need no store
    expect(c.reply('r1')).toMatchObject({ type: 'read', value: '"v"' });
  });

  it('write-through replies only once the store has the version', () => {
    const c = new Cluster({ writePolicy: 'write-through' });
    c.autoStore = false;
    c.node('b').write('w1', 'k', '"v"');
    c.deliverAll();
    c.node('a').storeLoaded('k', null, 0);
    c.deliverAll();
    expect(c.replies.has('w1')).toBe(false);
    expect(c.storeWrites).toEqual([{ key: 'k', value: '"v"', version: 1 }]);
    c.node('a').storeWritten('k', 1);
    c.deliverAll();
    expect(c.reply('w1')).toMatchObject({ version: 1 });
  });

  it('flush writes dirty lines back and keeps them in M', () => {
    const c = new Cluster();
    write(c, 'b', 'w1', '"v"');
    expect(c.node('b').flush()).toBe(1);
    c.deliverAll();
    expect(c.store.get('k')).toEqual({ value: '"v"', version: 1 });
    expect(c.node('b').lineState('k')).toBe('M');
    expect(c.node('b').pendingWritebacks()).toBe(0);
    expect(c.node('b').flush()).toBe(0);
  });

  it('evicts least recently used lines to stay within capacity, writing dirty ones back', () => {
    const c = new Cluster({ capacityBytes: 2000, entryOverheadBytes: 64, valueBytesMax: 900,
      keyBytesMax: 16 });
    const big = JSON.stringify('x'.repeat(800));
    write(c, 'b', 'w1', big, 'k1');
    write(c, 'b', 'w2', big, 'k2');
    write(c, 'b', 'w3', big, 'k3');
    const stats = c.node('b').stats();
    expect(stats.bytes).toBeLessThanOrEqual(2000);
    expect(stats.evictions).toBe(1);
    expect(c.node('b').lineState('k1')).toBe('I');
    expect(c.store.get('k1')).toEqual({ value: big, version: 1 });
    expect(c.node('a').inspectHome('k1')).toMatchObject({ owner: null });
  });

  it('a pod that gave a dirty line up asks for it again only after its write-back', () => {
    const c = new Cluster({ capacityBytes: 300, entryOverheadBytes: 64, valueBytesMax: 100,
      keyBytesMax: 16 });
    const v = (s: string): string => JSON.stringify(s.repeat(60));
    write(c, 'b', 'w1', v('1'), 'k1');
    write(c, 'b', 'w2', v('2'), 'k2');
    c.node('b').write('w3', 'k3', v('3')); // its grant evicts k1, whose putM we hold back
    c.pump();
    let held: Envelope | undefined;
    while (held === undefined && c.net.length > 0) {
      const m = c.net.shift()!;
      c.node(m.to).receive(m.from, m.msg);
      c.pump();
      const i = c.net.findIndex((x) => x.msg.type === 'putM' && x.msg.key === 'k1');
      if (i >= 0) held = c.net.splice(i, 1)[0];
    }
    expect(held).toBeDefined();
    c.deliverAll();
    expect(c.node('b').lineState('k1')).toBe('I');
    // Were the read's request to overtake the write-back, the home would grant its older
    // memory copy: so the pod asks again only once the home has acknowledged the data.
    c.node('b').read('r1', 'k1');
    c.deliverAll();
    expect(c.replies.has('r1')).toBe(false);
    c.node('a').receive(held!.from, held!.msg);
    c.deliverAll();
    expect(c.store.get('k1')).toEqual({ value: v('1'), version: 1 });
    expect(c.reply('r1')).toMatchObject({ value: v('1'), version: 1 });
  });

  it('bounds: oversized values, bad keys and too many waiting operations fail typed', () => {
    const c = new Cluster({ valueBytesMax: 10, opsPerKeyMax: 2 });
    c.node('b').write('w1', 'k', '"0123456789"');
    c.node('b').read('r1', '');
    c.node('b').read('r2', 'k');
    c.node('b').read('r3', 'k');
    c.node('b').read('r4', 'k');
    c.pump();
    expect(c.reply('w1')).toMatchObject({ type: 'error', error: { code: 'PAYLOAD_TOO_LARGE' } });
    expect(c.reply('r1')).toMatchObject({ type: 'error', error: { code: 'INVALID_ARGUMENT' } });
    expect(c.reply('r4')).toMatchObject({ type: 'error',
      error: { code: 'RESOURCE_EXHAUSTED', retryable: true } });
    c.deliverAll();
    expect(c.reply('r3')).toMatchObject({ type: 'read', value: null });
  });

  it('an unanswered request fails UNAVAILABLE after requestTimeoutMs', () => {
    const c = new Cluster({ requestTimeoutMs: 1000, retryMs: 200 });
    c.node('b').read('r1', 'k');
    for (let t = 0; t < 1000; t += 200) {
      c.net.length = 0; // the home is unreachable
      c.tick(200);
    }
    expect(c.reply('r1')).toMatchObject({ type: 'error',
      error: { code: 'UNAVAILABLE', retryable: true } });
  });

  it('rejects invalid options, naming the field', () => {
    const base = { self: 'a', incarnation: 1, homeOf: () => 'a', nowMs: 0 };
    expect(() => new CoherenceNode({ ...base, leaseMs: 10 })).toThrow(/leaseMs/);
    expect(() => new CoherenceNode({ ...base, driftMarginMs: 3000 })).toThrow(/driftMarginMs/);
    expect(() => new CoherenceNode({ ...base, incarnation: 0 })).toThrow(/incarnation/);
    expect(() => new CoherenceNode({ ...base, retryMs: 9000 })).toThrow(/retryMs/);
    expect(() => new CoherenceNode({ ...base, startupGraceMs: 4999 }))
      .toThrow(/startupGraceMs \(4999\) must be at least leaseMs \(5000\)/);
    expect(() => new CoherenceNode({ ...base, startupGraceMs: 0 })).toThrow(/startupGraceMs/);
    expect(() => new CoherenceNode({ ...base, peers: ['x', 'a'] })).toThrow(/peers/);
  });

  it('describes messages and effects on one line', () => {
    const c = new Cluster();
    c.node('b').write('w1', 'k', '"v"');
    c.pump();
    expect(describeMsg(c.net[0]!.msg)).toBe('getM "k" inc 1→0 txn 1');
    c.deliverAll();
    const e: CoherenceEffect = { type: 'reply', reqId: 'w1', result: c.reply('w1') };
    expect(describeEffect(e)).toBe('reply w1 "k": write v1');
  });
});

describe('compare-and-set (ifVersion) and expiry (coherence-value.ts)', () => {
  const cas = (c: Cluster, id: string, reqId: string, value: string, ifVersion: number):
    OpResult => {
    c.node(id).write(reqId, 'k', value, 0, ifVersion);
    c.deliverAll();
    return c.reply(reqId);
  };

  it('writes only at the expected version, once this pod owns the key; a mismatch changes ' +
    'nothing and names the current version', () => {
    const c = new Cluster();
    // 0: only when the key has no value. Through getM from the home.
    expect(cas(c, 'b', 'w1', '"one"', 0)).toMatchObject({ type: 'write', version: 1 });
    const miss = cas(c, 'b', 'w2', '"two"', 0);
    expect(miss).toMatchObject({ type: 'error', error: { code: 'VERSION_MISMATCH',
      details: { currentVersion: 1 } } });
    // Another pod takes the key over by recall and compares against the owner's data.
    expect(cas(c, 'c', 'w3', '"three"', 1)).toMatchObject({ type: 'write', version: 2 });
    expect(cas(c, 'b', 'w4', '"stale"', 1)).toMatchObject({ type: 'error',
      error: { code: 'VERSION_MISMATCH', details: { currentVersion: 2 } } });
    read(c, 'a', 'r1');
    expect(c.reply('r1')).toMatchObject({ value: '"three"', version: 2 });
    c.node('a').delete('d1', 'k');
    c.deliverAll();
    // A deleted key has no value: only 0 matches, and the error says null.
    expect(cas(c, 'b', 'w5', '"x"', 3)).toMatchObject({ type: 'error',
      error: { code: 'VERSION_MISMATCH', details: { currentVersion: null } } });
    expect(cas(c, 'b', 'w6', '"again"', 0)).toMatchObject({ type: 'write', version: 4 });
  });

  it('a value past its expiry reads as absent on every pod, deletes as absent and matches ' +
    'ifVersion 0; its text travels through the store unchanged', () => {
    const c = new Cluster();
    const text = withExpiry('"short"', 5000);
    c.node('b').write('w1', 'k', text, 1000);
    c.deliverAll();
    for (const [id, wallMs] of [['b', 4999], ['c', 4999]] as const) {
      c.node(id).read(`r-${id}`, 'k', wallMs);
      c.deliverAll();
      expect(c.reply(`r-${id}`)).toMatchObject({ value: text, version: 1 });
    }
    expect(splitValue(text)).toEqual({ json: '"short"', expiresAt: 5000 });
    expect(c.store.get('k')).toEqual({ value: text, version: 1 });
    c.node('c').read('r2', 'k', 5000);
    c.deliverAll();
    expect(c.reply('r2')).toMatchObject({ value: null, version: 1, hit: true });
    expect(c.node('c').lineStatus('k', 5000)).toEqual({ state: 'S', absent: true });
    expect(c.node('c').lineStatus('k', 4999)).toEqual({ state: 'S', absent: false });
    c.node('b').delete('d1', 'k', 6000);
    c.deliverAll();
    expect(c.reply('d1')).toMatchObject({ type: 'delete', deleted: false, version: 2 });
    c.node('b').write('w2', 'k', withExpiry('"later"', 9000), 6000);
    c.deliverAll();
    c.node('c').write('w3', 'k', '"kept"', 9000, 0);
    c.deliverAll();
    expect(c.reply('w3')).toMatchObject({ type: 'write', version: 4 });
    expect(liveValue('"plain"', Number.MAX_SAFE_INTEGER)).toBe('"plain"');
  });
});
