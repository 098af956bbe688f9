// The home role of the coherence protocol: for the keys the ring assigns to this pod it keeps
// the directory (owner in E/M or the set of sharers, each with its lease), the value in
// memory, and a queue of requests that it serves one transaction at a time per key. Pure:
// the node (coherence.ts) delivers messages and clock ticks and carries out what it emits.

import { assert } from '../assert.js';
import type { CoherenceConfig } from './coherence-config.js';
import type {
  CacheValue, CoherenceMsg, GrantState, LineData, NackCause, NodeId,
} from './coherence-messages.js';

/** A message before the node stamps both incarnations on it. */
export type MsgBody = CoherenceMsg extends infer M
  ? M extends CoherenceMsg ? Omit<M, 'fromInc' | 'toInc'> : never : never;

export interface HomeOutbox {
  send(to: NodeId, toInc: number, body: MsgBody): void;
  storeLoad(key: string): void;
  storeWrite(key: string, value: CacheValue, version: number): void;
  /** The newest incarnation heard from `node` (0 when never heard). */
  peerInc(node: NodeId): number;
}

interface Holder {
  readonly inc: number;
  /** Home clock: the copy may be served until then. */
  readonly leaseUntilMs: number;
  /** The grant the copy was given under; eviction notices must name it. */
  readonly seq: number;
}

interface Owner extends Holder {
  readonly node: NodeId;
  readonly grant: 'E' | 'M';
}

interface HomeRequest {
  /** 'drain': this home takes every copy back before shutting down; nobody is granted. */
  readonly type: 'getS' | 'getM' | 'drain';
  readonly from: NodeId;
  readonly fromInc: number;
  readonly txn: number;
  readonly atMs: number;
}

type RecallKind = 'inv' | 'fwdGetS' | 'fwdGetM';

interface Waiting {
  readonly inc: number;
  /** Sharers: the home stops waiting when the lease runs out. Owners: null, the home waits
   * for their data however long it takes, because an owner may hold the only copy of an
   * acknowledged write. */
  readonly leaseUntilMs: number | null;
  readonly kind: RecallKind;
  lastSentMs: number;
}

interface Busy {
  readonly req: HomeRequest;
  readonly seq: number;
  readonly waiting: Map<NodeId, Waiting>;
}

interface DirEntry {
  readonly key: string;
  loading: boolean;
  loaded: boolean;
  value: CacheValue;
  /** -1 until loaded. */
  version: number;
  /** Newest version the store is known to hold. */
  durableVersion: number;
  /** Newest write-back that arrived before the load finished (applied after it). */
  earlyData: LineData | null;
  owner: Owner | null;
  readonly sharers: Map<NodeId, Holder>;
  readonly queue: HomeRequest[];
  busy: Busy | null;
  /** Last transaction accepted per requester: drops duplicates and reordered retries. */
  readonly lastTxn: Map<NodeId, { inc: number; txn: number }>;
  /** Write-backs to acknowledge once the store holds their version. */
  readonly ackWaiters: Map<NodeId, { inc: number; version: number }>;
}

/** How many idle directory entries a full directory inspects to make room for a new one. */
const DIRECTORY_EVICT_SCAN_MAX = 32;

export interface HomeEntryView {
  readonly value: CacheValue;
  readonly version: number;
  readonly owner: { node: NodeId; grant: 'E' | 'M' } | null;
  readonly sharers: NodeId[];
  readonly queued: number;
  readonly busy: boolean;
}

export class HomeDirectory {
  private readonly entries = new Map<string, DirEntry>();
  /** Keys loading, busy or with queued requests: what tick() must look at. */
  private readonly active = new Set<string>();
  /** One counter for every key of this incarnation, so sequence numbers grow per key even
   * when a directory entry is dropped and made again. */
  private seq = 0;
  private nowMs: number;
  /** Start-up grace: nothing is granted before this, unless every peer confirmed earlier. */
  private readonly graceUntilMs: number;
  private graceOver: boolean;
  /** Peers that have not confirmed yet that they hold nothing of an earlier life of this pod
   * (null: the peers are not known, so the grace runs its full length). */
  private readonly unconfirmed: Set<NodeId> | null;
  private lastHelloMs: number;
  private draining = false;
  /** False while the shell reports the backing store down: requests that need it are
   * refused at once instead of waiting for it. */
  private storeUp = true;
  writebacksDropped = 0;

  constructor(private readonly cfg: CoherenceConfig, private readonly out: HomeOutbox) {
    this.nowMs = cfg.nowMs;
    this.graceUntilMs = cfg.nowMs + cfg.startupGraceMs;
    this.unconfirmed = cfg.peers === null ? null : new Set(cfg.peers);
    // No grace when the previous life drained, or when there is no other pod that could hold
    // one of its copies.
    this.graceOver = cfg.priorCopies === 'none' || this.unconfirmed?.size === 0;
    this.lastHelloMs = cfg.nowMs;
    if (!this.graceOver) this.sendHellos();
  }

  /** True while this incarnation may still have to wait for copies of its earlier life. */
  inGrace(): boolean {
    if (this.graceOver) return false;
    if (this.nowMs < this.graceUntilMs && this.unconfirmed?.size !== 0) return true;
    this.graceOver = true;
    return false;
  }

  /** A peer answered a hello: once every peer is clear, the grace period is over. */
  onHelloAck(from: NodeId, msg: Extract<CoherenceMsg, { type: 'helloAck' }>): void {
    if (this.graceOver || !msg.clear || this.unconfirmed === null) return;
    this.unconfirmed.delete(from);
    if (this.inGrace()) return;
    for (const key of [...this.active]) this.advance(this.entries.get(key)!);
  }

  /** The shell's view of the backing store changed. */
  setStoreAvailable(up: boolean): void {
    if (this.storeUp === up) return;
    this.storeUp = up;
    for (const key of [...this.active]) this.advance(this.entries.get(key)!);
  }

  private sendHellos(): void {
    this.lastHelloMs = this.nowMs;
    for (const node of this.unconfirmed ?? []) {
      this.out.send(node, this.out.peerInc(node), { type: 'hello', key: '' });
    }
  }

  get size(): number {
    return this.entries.size;
  }

  inspect(key: string): HomeEntryView | null {
    const e = this.entries.get(key);
    if (e === undefined) return null;
    return {
      value: e.value, version: e.version, queued: e.queue.length, busy: e.busy !== null,
      owner: e.owner === null ? null : { node: e.owner.node, grant: e.owner.grant },
      sharers: [...e.sharers.keys()].sort(),
    };
  }

  onRequest(from: NodeId, fromInc: number, msg: { type: 'getS' | 'getM'; key: string;
    txn: number }): void {
    if (this.draining) {
      this.out.send(from, fromInc, { type: 'nack', key: msg.key, txn: msg.txn,
        code: 'UNAVAILABLE', reason: 'the home is shutting down' });
      return;
    }
    const entry = this.entryFor(msg.key, true);
    if (entry === null) {
      this.out.send(from, fromInc, { type: 'nack', key: msg.key, txn: msg.txn,
        code: 'RESOURCE_EXHAUSTED', reason: `directory full (${this.cfg.directoryEntriesMax} keys)` });
      return;
    }
    const last = entry.lastTxn.get(from);
    if (last !== undefined && last.inc === fromInc) {
      if (msg.txn < last.txn) return;
      const inFlight = (r: HomeRequest): boolean => r.from === from && r.txn === msg.txn;
      if (msg.txn === last.txn && (entry.queue.some(inFlight) ||
          (entry.busy !== null && inFlight(entry.busy.req)))) return;
      // Same txn already answered: the grant was lost, serve it again.
    }
    // A cache has one transaction per key at a time: a newer one replaces a queued older one.
    const older = entry.queue.findIndex((r) => r.from === from);
    if (older >= 0) entry.queue.splice(older, 1);
    if (entry.queue.length >= this.cfg.homeQueuePerKeyMax) {
      this.out.send(from, fromInc, { type: 'nack', key: msg.key, txn: msg.txn,
        code: 'RESOURCE_EXHAUSTED',
        reason: `too many requests queued for the key (${this.cfg.homeQueuePerKeyMax})` });
      return;
    }
    entry.lastTxn.set(from, { inc: fromInc, txn: msg.txn });
    entry.queue.push({ type: msg.type, from, fromInc, txn: msg.txn, atMs: this.nowMs });
    // Store down: a request that needs it is refused at once by advance().
    this.advance(entry);
  }

  onAck(from: NodeId, fromInc: number, msg: Extract<CoherenceMsg,
    { type: 'invAck' | 'recallAck' }>): void {
    const entry = this.entries.get(msg.key);
    if (entry === undefined) return;
    if (msg.data !== null) this.acceptData(entry, from, fromInc, msg.data, true);
    const busy = entry.busy;
    if (busy === null || msg.seq !== busy.seq) return;
    const w = busy.waiting.get(from);
    if (w === undefined || w.inc !== fromInc) return;
    this.release(entry, from, w.kind, msg.type === 'recallAck' && msg.kept);
    this.advance(entry);
  }

  onPut(from: NodeId, fromInc: number, msg: Extract<CoherenceMsg,
    { type: 'putM' | 'putE' | 'putS' }>): void {
    const entry = this.entryFor(msg.key, msg.type === 'putM');
    if (entry === null) {
      // Only a putM can be refused for room; it is resent, by then there may be room.
      return;
    }
    const current = msg.homeInc === this.cfg.incarnation;
    if (msg.type === 'putM') {
      // Data held under an earlier life of this home is taken during the grace period, or
      // later while no copy of this life exists (then it is merely late, not conflicting).
      const accept = current || this.inGrace() || (entry.owner === null &&
        entry.busy === null && [...entry.sharers.values()].every((h) =>
          h.leaseUntilMs <= this.nowMs));
      if (!accept) this.writebacksDropped++;
      this.acceptData(entry, from, fromInc, { value: msg.value, version: msg.version }, accept);
    }
    const owner = entry.owner;
    const ownerLeft = current && owner !== null && owner.node === from && owner.inc === fromInc &&
      owner.seq === msg.seq && (msg.type === 'putE' || (msg.type === 'putM' && !msg.retain));
    const sharer = entry.sharers.get(from);
    const sharerLeft = current && msg.type === 'putS' && sharer !== undefined &&
      sharer.inc === fromInc && sharer.seq === msg.seq;
    if (ownerLeft || sharerLeft) {
      const w = entry.busy?.waiting.get(from);
      this.release(entry, from, w?.kind ?? 'inv', false);
      this.advance(entry);
    }
  }

  /** Graceful shutdown: refuse new requests and take every copy of every key back (dirty
   * data comes home and goes to the store), so that the next incarnation loses nothing. */
  beginDrain(): void {
    if (this.draining) return;
    this.draining = true;
    for (const entry of this.entries.values()) {
      for (const r of entry.queue) {
        this.out.send(r.from, r.fromInc, { type: 'nack', key: entry.key, txn: r.txn,
          code: 'UNAVAILABLE', reason: 'the home is shutting down' });
      }
      entry.queue.length = 0;
      entry.queue.push({ type: 'drain', from: this.cfg.self, fromInc: this.cfg.incarnation,
        txn: 0, atMs: this.nowMs });
      this.advance(entry);
    }
  }

  /** True once draining left no copy, transaction or unwritten version behind. */
  drained(): boolean {
    if (!this.draining) return false;
    for (const e of this.entries.values()) {
      const busy = e.busy !== null || e.queue.length > 0 || e.loading || e.earlyData !== null;
      if (busy || e.owner !== null || e.durableVersion < e.version || e.ackWaiters.size > 0) {
        return false;
      }
      for (const h of e.sharers.values()) if (h.leaseUntilMs > this.nowMs) return false;
    }
    return true;
  }

  storeLoaded(key: string, value: CacheValue, version: number): void {
    assert(Number.isSafeInteger(version) && version >= 0, 'store versions are integers >= 0');
    const entry = this.entries.get(key);
    if (entry === undefined || !entry.loading) return;
    entry.loading = false;
    entry.loaded = true;
    entry.value = value;
    entry.version = version;
    entry.durableVersion = Math.max(entry.durableVersion, version);
    const early = entry.earlyData;
    entry.earlyData = null;
    if (early !== null && early.version > version) this.applyNewer(entry, early);
    this.flushAcks(entry);
    this.advance(entry);
  }

  storeWritten(key: string, version: number): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    entry.durableVersion = Math.max(entry.durableVersion, version);
    this.flushAcks(entry);
    this.advance(entry);
  }

  tick(nowMs: number): void {
    assert(nowMs >= this.nowMs, 'the local clock never goes back');
    this.nowMs = nowMs;
    if (this.inGrace() && nowMs - this.lastHelloMs >= this.cfg.retryMs) this.sendHellos();
    for (const key of [...this.active]) {
      const entry = this.entries.get(key);
      assert(entry !== undefined, 'active keys have entries');
      const stale = nowMs - this.cfg.requestTimeoutMs;
      for (let i = entry.queue.length - 1; i >= 0; i--) {
        const r = entry.queue[i]!;
        if (r.atMs < stale && r.type !== 'drain') entry.queue.splice(i, 1);
      }
      if (entry.busy !== null) this.tickBusy(entry, entry.busy);
      this.advance(entry);
    }
  }

  /** `node` restarted as incarnation `inc`: its earlier copies are gone. */
  purgePeer(node: NodeId, inc: number): void {
    for (const entry of this.entries.values()) {
      let touched = false;
      const w = entry.busy?.waiting.get(node);
      if (w !== undefined && w.inc < inc) {
        this.release(entry, node, w.kind, false);
        touched = true;
      }
      if (entry.owner !== null && entry.owner.node === node && entry.owner.inc < inc) {
        entry.owner = null;
        touched = true;
      }
      const s = entry.sharers.get(node);
      if (s !== undefined && s.inc < inc) { entry.sharers.delete(node); touched = true; }
      if ((entry.lastTxn.get(node)?.inc ?? inc) < inc) entry.lastTxn.delete(node);
      if ((entry.ackWaiters.get(node)?.inc ?? inc) < inc) entry.ackWaiters.delete(node);
      for (let i = entry.queue.length - 1; i >= 0; i--) {
        const r = entry.queue[i]!;
        if (r.from === node && r.fromInc < inc) { entry.queue.splice(i, 1); touched = true; }
      }
      if (touched) this.advance(entry);
    }
  }

  private tickBusy(entry: DirEntry, busy: Busy): void {
    for (const [node, w] of [...busy.waiting]) {
      if (w.leaseUntilMs !== null && this.nowMs >= w.leaseUntilMs) {
        // The sharer did not answer but its lease is over: by its own clock it has stopped
        // serving the copy (see the clock assumption in coherence-config.ts).
        this.release(entry, node, w.kind, false);
      } else if (this.nowMs - w.lastSentMs >= this.cfg.retryMs) {
        w.lastSentMs = this.nowMs;
        this.out.send(node, w.inc, { type: w.kind, key: entry.key, seq: busy.seq });
      }
    }
  }

  /** Serves queued requests in order until one has to wait. */
  private advance(entry: DirEntry): void {
    if (!this.storeUp) this.refuseStoreBound(entry);
    for (;;) {
      if (!entry.loaded) {
        if (!entry.loading) {
          entry.loading = true;
          this.out.storeLoad(entry.key);
        }
        break;
      }
      if (entry.busy !== null) {
        if (entry.busy.waiting.size > 0) break;
        const req = entry.busy.req;
        // The recall may have brought data back that the store does not hold yet: the same
        // write-through gate as for a request served at once (below).
        if (req.type !== 'drain' && this.awaitsStore(entry)) break;
        entry.busy = null;
        if (req.type !== 'drain' && this.out.peerInc(req.from) <= req.fromInc) {
          this.grant(entry, req);
        }
        continue;
      }
      if (this.inGrace() && !this.draining) break;
      // Write-through: grant nothing the store does not hold yet, so that no pod can read a
      // value that a crash of this home could still take back.
      if (this.awaitsStore(entry)) break;
      const req = entry.queue.shift();
      if (req === undefined) break;
      if (this.out.peerInc(req.from) > req.fromInc) continue;
      this.serve(entry, req);
    }
    const idle = entry.loaded && entry.busy === null && entry.queue.length === 0;
    if (idle) this.active.delete(entry.key);
    else this.active.add(entry.key);
  }

  /** Write-through: the memory copy is newer than the store, so nothing may be granted. */
  private awaitsStore(entry: DirEntry): boolean {
    return this.cfg.writePolicy === 'write-through' && entry.durableVersion < entry.version;
  }

  /** Whether serving `type` now would wait for the backing store. */
  private needsStore(entry: DirEntry, type: HomeRequest['type']): boolean {
    if (type === 'drain') return false;
    // A write-through write is answered only once the store has it.
    return !entry.loaded || this.awaitsStore(entry) ||
      (this.cfg.writePolicy === 'write-through' && type === 'getM');
  }

  /** The store is down: refuses at once what would wait for it, so that callers hear that
   * the store is down instead of waiting out their deadline. */
  private refuseStoreBound(entry: DirEntry): void {
    const busy = entry.busy;
    if (busy !== null && busy.waiting.size === 0 && this.needsStore(entry, busy.req.type)) {
      entry.busy = null;
      this.refuse(entry, busy.req, 'store_unavailable');
    }
    for (let i = entry.queue.length - 1; i >= 0; i--) {
      const r = entry.queue[i]!;
      if (!this.needsStore(entry, r.type)) continue;
      entry.queue.splice(i, 1);
      this.refuse(entry, r, 'store_unavailable');
    }
  }

  private refuse(entry: DirEntry, r: HomeRequest, cause: NackCause): void {
    this.out.send(r.from, r.fromInc, { type: 'nack', key: entry.key, txn: r.txn,
      code: 'UNAVAILABLE', reason: 'the backing store is unavailable', cause });
  }

  /** Starts the recalls and invalidations a request needs, or grants at once. */
  private serve(entry: DirEntry, req: HomeRequest): void {
    const waiting = new Map<NodeId, Waiting>();
    const owner = entry.owner;
    if (owner !== null && (owner.node !== req.from || req.type === 'drain')) {
      waiting.set(owner.node, { inc: owner.inc, leaseUntilMs: null, lastSentMs: this.nowMs,
        kind: req.type === 'getS' ? 'fwdGetS' : 'fwdGetM' });
    }
    if (req.type !== 'getS') {
      for (const [node, h] of [...entry.sharers]) {
        if (node === req.from && req.type === 'getM') continue;
        if (h.leaseUntilMs <= this.nowMs) { entry.sharers.delete(node); continue; }
        waiting.set(node, { inc: h.inc, leaseUntilMs: h.leaseUntilMs, lastSentMs: this.nowMs,
          kind: 'inv' });
      }
    }
    if (waiting.size === 0) {
      if (req.type !== 'drain') this.grant(entry, req);
      return;
    }
    const seq = ++this.seq;
    entry.busy = { req, seq, waiting };
    for (const [node, w] of waiting) {
      this.out.send(node, w.inc, { type: w.kind, key: entry.key, seq });
    }
  }

  private grant(entry: DirEntry, req: HomeRequest): void {
    // A draining home still completes the transaction it was in; its drain request follows.
    assert(req.type !== 'drain', 'a drain request grants nothing');
    const seq = ++this.seq;
    const leaseUntilMs = this.nowMs + this.cfg.leaseMs;
    const holder = { inc: req.fromInc, leaseUntilMs, seq };
    const X = req.from;
    let grant: GrantState;
    const validSharers = [...entry.sharers].filter(([n, h]) => n !== X &&
      h.leaseUntilMs > this.nowMs);
    if (entry.owner !== null && entry.owner.node === X) {
      // The owner asks again (lost grant, lease renewal): it keeps what it had.
      grant = req.type === 'getM' ? 'M' : entry.owner.grant;
      entry.owner = { ...holder, node: X, grant };
    } else if (req.type === 'getM') {
      assert(entry.owner === null && validSharers.length === 0,
        () => `getM for ${entry.key} granted while another copy is valid`);
      entry.sharers.clear();
      grant = 'M';
      entry.owner = { ...holder, node: X, grant };
    } else {
      assert(entry.owner === null, () => `getS for ${entry.key} granted beside an owner`);
      grant = validSharers.length === 0 ? 'E' : 'S';
      if (grant === 'E') {
        entry.sharers.clear();
        entry.owner = { ...holder, node: X, grant: 'E' };
      } else {
        entry.sharers.set(X, holder);
      }
    }
    this.out.send(X, req.fromInc, { type: 'data', key: entry.key, txn: req.txn, grant, seq,
      value: entry.value, version: entry.version, leaseMs: this.cfg.leaseMs });
  }

  /** `node` no longer holds a copy (it answered, left, or its lease ran out). */
  private release(entry: DirEntry, node: NodeId, kind: RecallKind, keptShared: boolean): void {
    const owner = entry.owner;
    if (owner !== null && owner.node === node) {
      entry.owner = null;
      if (kind === 'fwdGetS' && keptShared) {
        entry.sharers.set(node, { inc: owner.inc, leaseUntilMs: owner.leaseUntilMs,
          seq: owner.seq });
      }
    } else if (!(kind === 'fwdGetS' && keptShared)) {
      entry.sharers.delete(node);
    }
    entry.busy?.waiting.delete(node);
  }

  /** Takes dirty data from a cache (newer versions only) and acknowledges it once durable. */
  private acceptData(entry: DirEntry, from: NodeId, fromInc: number, data: LineData,
    accept: boolean): void {
    if (!accept) {
      this.out.send(from, fromInc, { type: 'putAck', key: entry.key, version: data.version });
      return;
    }
    if (!entry.loaded) {
      if (entry.earlyData === null || data.version > entry.earlyData.version) {
        entry.earlyData = data;
      }
    } else if (data.version > entry.version) {
      this.applyNewer(entry, data);
    }
    const prior = entry.ackWaiters.get(from);
    entry.ackWaiters.set(from, { inc: fromInc,
      version: Math.max(data.version, prior?.inc === fromInc ? prior.version : 0) });
    this.flushAcks(entry);
  }

  private applyNewer(entry: DirEntry, data: LineData): void {
    assert(data.version > entry.version, 'memory only moves forward');
    entry.value = data.value;
    entry.version = data.version;
    this.out.storeWrite(entry.key, data.value, data.version);
  }

  private flushAcks(entry: DirEntry): void {
    if (!entry.loaded) return;
    for (const [node, w] of [...entry.ackWaiters]) {
      if (w.version > entry.durableVersion) continue;
      entry.ackWaiters.delete(node);
      this.out.send(node, w.inc, { type: 'putAck', key: entry.key,
        version: entry.durableVersion });
    }
  }

  /** The entry for a key, made (and room made for it) when `create`; null when full. */
  private entryFor(key: string, create: boolean): DirEntry | null {
    const found = this.entries.get(key);
    if (found !== undefined) {
      // Re-insert so that Map order approximates least recent use for the eviction scan.
      this.entries.delete(key);
      this.entries.set(key, found);
      return found;
    }
    if (!create) return null;
    if (this.entries.size >= this.cfg.directoryEntriesMax && !this.dropIdleEntry()) return null;
    const entry: DirEntry = {
      key, loading: false, loaded: false, value: null, version: -1, durableVersion: -1,
      earlyData: null, owner: null, sharers: new Map(), queue: [], busy: null,
      lastTxn: new Map(), ackWaiters: new Map(),
    };
    this.entries.set(key, entry);
    return entry;
  }

  /** Drops one entry that no copy, request or write-back depends on. */
  private dropIdleEntry(): boolean {
    let scanned = 0;
    for (const [key, e] of this.entries) {
      if (scanned++ >= DIRECTORY_EVICT_SCAN_MAX) break;
      const idle = e.loaded && e.busy === null && e.queue.length === 0 && e.owner === null &&
        e.ackWaiters.size === 0 && e.durableVersion >= e.version &&
        [...e.sharers.values()].every((h) => h.leaseUntilMs <= this.nowMs);
      if (idle) {
        this.entries.delete(key);
        return true;
      }
    }
    return false;
  }
}
