// The directory-based MESI coherence protocol as a pure core: one CoherenceNode per cache pod,
// playing both roles. As a holder (coherence-holder.ts) it keeps lines (M/E/S with value,
// version and lease) in a byte-bounded LRU and serves client reads and writes, locally when
// its line allows and otherwise through the key's home. As a home (coherence-home.ts) it
// serialises every coherence action on the keys the ring gives it. This class stamps and
// routes messages between the two roles and the peers, and tracks peer incarnations.
//
// Driving it: call read/write/delete for client operations, receive() for peer messages,
// tick() with the local clock (every few tens of ms), storeLoaded/storeWritten when the
// backing store answers; after each call take drain() and carry the effects out: send
// messages, reply to clients, load from and write to the store. No IO, timers or clock
// inside; messages to itself are delivered internally.
//
// Safety, in short: a pod serves a line only while its lease is valid by its own clock
// (coherence-config.ts states the drift assumption); a home grants M only after every other
// copy was invalidated, recalled, or its lease ran out; an owner's data is never given up
// without being handed to the home and resent until the store has it; grants older than an
// invalidation already seen are discarded; copies from an earlier incarnation of a home are
// dropped (dirty data handed to the new one) and a new home grants nothing during its
// start-up grace: startupGraceMs (at least one lease), or until every peer has confirmed that
// it holds nothing of an earlier life (no grace when that life drained). Write-through:
// nothing is granted that the store does not hold yet, after a recall as much as at once.
//
// Durability, honestly. Write-through loses no acknowledged write. Write-back keeps the newest
// data of a key only in its owner until the next flush (flushIntervalMs), so a crash of the
// owner loses what it had not flushed; a crashed (not drained) home loses the dirty data of
// owners that cannot reach its next incarnation within startupGraceMs. A graceful shutdown
// (beginDrain until drained) loses nothing. The home of a key must not change while copies
// exist: the shell treats a ring change like a restart of the pods concerned (drain first).

import { assert } from '../assert.js';
import {
  parseCoherenceOptions, utf8Bytes, type CoherenceConfig, type CoherenceOptions,
} from './coherence-config.js';
import { HolderLines, type HolderStats, type LineView } from './coherence-holder.js';
import { HomeDirectory, type HomeEntryView, type MsgBody } from './coherence-home.js';
import type {
  CacheValue, CoherenceEffect, CoherenceMsg, LineState, NodeId,
} from './coherence-messages.js';

export type { LineView } from './coherence-holder.js';
export { RENEW_IF_HIT_WITHIN_LEASES } from './coherence-holder.js';

export interface CacheStats extends HolderStats {
  readonly directoryEntries: number;
  /** Write-backs from an earlier incarnation of this home that came after its grace period. */
  readonly writebacksDropped: number;
  /** Peer messages dropped as malformed or oversized. */
  readonly messagesDropped: number;
}

export class CoherenceNode {
  readonly cfg: CoherenceConfig;
  private nowMs: number;
  private readonly home: HomeDirectory;
  private readonly holder: HolderLines;
  /** The newest incarnation heard from each peer. */
  private readonly peerIncs = new Map<NodeId, number>();
  private effects: CoherenceEffect[] = [];
  private readonly loopback: CoherenceMsg[] = [];
  private messagesDropped = 0;

  constructor(opts: CoherenceOptions) {
    this.cfg = parseCoherenceOptions(opts);
    this.nowMs = this.cfg.nowMs;
    this.holder = new HolderLines(this.cfg, {
      send: (to, body) => this.send(to, body),
      reply: (reqId, result) => this.effects.push({ type: 'reply', reqId, result }),
    });
    this.home = new HomeDirectory(this.cfg, {
      send: (to, toInc, body) => this.send(to, body, toInc),
      storeLoad: (key) => this.effects.push({ type: 'storeLoad', key }),
      storeWrite: (key, value, version) =>
        this.effects.push({ type: 'storeWrite', key, value, version }),
      peerInc: (node) => node === this.cfg.self ? this.cfg.incarnation
        : this.peerIncs.get(node) ?? 0,
    });
  }

  // ---- inputs -----------------------------------------------------------------------------

  /** A client read at wall clock `wallMs` (expiry, coherence-value.ts; 0: none). Replies
   * `read` (value null = no such key, or expired) or `error`. */
  read(reqId: string, key: string, wallMs = 0): void {
    this.holder.clientOp({ reqId, kind: 'read', value: null, deadlineMs: 0, wallMs }, key);
    this.pump();
  }

  /** A client write of `value`, the JSON text of the user's value (with its expiry, if it
   * has one). `ifVersion`: only if the key is at that version (0: has no value), else
   * VERSION_MISMATCH. Replies `write`. */
  write(reqId: string, key: string, value: string, wallMs = 0, ifVersion?: number): void {
    this.holder.clientOp({ reqId, kind: 'write', value, deadlineMs: 0, wallMs,
      ...(ifVersion === undefined ? {} : { ifVersion }) }, key);
    this.pump();
  }

  /** A client delete. Replies `delete` with whether a (live) value was there. */
  delete(reqId: string, key: string, wallMs = 0): void {
    this.holder.clientOp({ reqId, kind: 'delete', value: null, deadlineMs: 0, wallMs }, key);
    this.pump();
  }

  /** A message from a peer (or, in tests, from this node itself). */
  receive(from: NodeId, msg: CoherenceMsg): void {
    if (!this.wellFormed(msg)) {
      this.messagesDropped++;
      return;
    }
    this.handle(from, msg);
    this.pump();
  }

  /** The local clock moved on: retries, lease expiry, timeouts, periodic flush. */
  tick(nowMs: number): void {
    assert(nowMs >= this.nowMs, 'the local clock never goes back');
    this.nowMs = nowMs;
    this.home.tick(nowMs);
    this.holder.tick(nowMs);
    this.pump();
  }

  /** The shell's view of the backing store: while it is down, the home refuses at once the
   * requests that would wait for it (UNAVAILABLE, reason store_unavailable). */
  setStoreAvailable(up: boolean): void {
    this.home.setStoreAvailable(up);
    this.pump();
  }

  /** True while this pod, as a home, still waits out copies of its previous life. */
  inStartupGrace(): boolean {
    return this.home.inGrace();
  }

  /** The answer to a storeLoad: the stored value (null: none) and its version (0: none). */
  storeLoaded(key: string, value: CacheValue, version: number): void {
    this.home.storeLoaded(key, value, version);
    this.pump();
  }

  /** A storeWrite of `version` reached the store. */
  storeWritten(key: string, version: number): void {
    this.home.storeWritten(key, version);
    this.pump();
  }

  /** Writes every dirty line back (it stays M); returns how many. Follow with
   * pendingWritebacks() until 0 on graceful shutdown. */
  flush(): number {
    const n = this.holder.flush();
    this.pump();
    return n;
  }

  /** Graceful shutdown, step 1: as a home, refuse new requests and take every copy back;
   * as a cache, write every dirty line back. Keep driving the node (receive, tick, store
   * answers) until drained(), then exit; the next incarnation then loses no write. */
  beginDrain(): void {
    this.home.beginDrain();
    this.holder.flush();
    this.pump();
  }

  /** Graceful shutdown, step 2: nothing is left that only this pod holds. */
  drained(): boolean {
    return this.home.drained() && this.holder.drained();
  }

  /** The effects produced since the last drain, in order. */
  drain(): CoherenceEffect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }

  // ---- views ------------------------------------------------------------------------------

  /** This pod's line for `key` without side effects: I when absent or its lease is over
   * (a dirty line still reports M: it holds data the home has not got yet). */
  lineState(key: string): LineState {
    return this.holder.lineState(key);
  }

  /** lineState, and whether the line only records that the key has no value (a deleted
   * key, or one read as absent from the store): API.md's `absent`. */
  lineStatus(key: string, wallMs = 0): { state: LineState; absent: boolean } {
    return this.holder.lineStatus(key, wallMs);
  }

  inspectLine(key: string): LineView | null {
    return this.holder.inspectLine(key);
  }

  inspectHome(key: string): HomeEntryView | null {
    return this.home.inspect(key);
  }

  homeOf(key: string): NodeId {
    return this.cfg.homeOf(key);
  }

  pendingWritebacks(): number {
    return this.holder.pendingWritebacks();
  }

  stats(): CacheStats {
    return { ...this.holder.stats(), directoryEntries: this.home.size,
      writebacksDropped: this.home.writebacksDropped, messagesDropped: this.messagesDropped };
  }

  // ---- messages -----------------------------------------------------------------------------

  private handle(from: NodeId, msg: CoherenceMsg): void {
    if (from !== this.cfg.self && !this.notePeer(from, msg.fromInc)) return;
    if (msg.toInc !== 0 && msg.toInc !== this.cfg.incarnation && (msg.type === 'data' ||
        msg.type === 'nack' || msg.type === 'putAck' || msg.type === 'helloAck')) {
      // An answer to a request of an earlier life of this pod (transaction numbers restart).
      // Everything else is served whatever the sender believes of this pod: requests and
      // write-backs stand on their own, and answering recalls tells the home that the copy
      // it waits for is gone.
      return;
    }
    switch (msg.type) {
      case 'getS':
      case 'getM':
        this.home.onRequest(from, msg.fromInc, msg);
        return;
      case 'invAck':
      case 'recallAck':
        this.home.onAck(from, msg.fromInc, msg);
        return;
      case 'putM':
      case 'putE':
      case 'putS':
        this.home.onPut(from, msg.fromInc, msg);
        return;
      case 'data':
        this.holder.onData(from, msg);
        return;
      case 'nack':
        this.holder.onNack(from, msg);
        return;
      case 'inv':
      case 'fwdGetS':
      case 'fwdGetM':
        this.holder.onRecall(from, msg);
        return;
      case 'putAck':
        this.holder.onPutAck(from, msg);
        return;
      case 'hello':
        this.holder.onHello(from, msg);
        return;
      case 'helloAck':
        this.home.onHelloAck(from, msg);
        return;
    }
  }

  /** Records the sender's incarnation; false when the message is from an earlier life. */
  private notePeer(node: NodeId, inc: number): boolean {
    const known = this.peerIncs.get(node) ?? 0;
    if (inc < known) return false;
    if (inc === known) return true;
    this.peerIncs.set(node, inc);
    if (known > 0) this.onPeerRestart(node, inc);
    return true;
  }

  /** `node` restarted: forget its old copies (home role) and drop lines its earlier life
   * granted, handing dirty data to the new life (holder role). */
  private onPeerRestart(node: NodeId, inc: number): void {
    this.home.purgePeer(node, inc);
    this.holder.onPeerRestart(node, inc);
  }

  private send(to: NodeId, body: MsgBody, toInc?: number): void {
    const inc = toInc ?? (to === this.cfg.self ? this.cfg.incarnation
      : this.peerIncs.get(to) ?? 0);
    const msg = { ...body, fromInc: this.cfg.incarnation, toInc: inc } as CoherenceMsg;
    if (to === this.cfg.self) this.loopback.push(msg);
    else this.effects.push({ type: 'send', to, msg });
  }

  /** Delivers messages this node sent to itself, in order, until there are none. */
  private pump(): void {
    for (let msg = this.loopback.shift(); msg !== undefined; msg = this.loopback.shift()) {
      this.handle(this.cfg.self, msg);
    }
  }

  private wellFormed(msg: CoherenceMsg): boolean {
    const keyBytes = utf8Bytes(msg.key);
    if (msg.type === 'hello' || msg.type === 'helloAck') {
      if (keyBytes !== 0) return false;
    } else if (keyBytes === 0 || keyBytes > this.cfg.keyBytesMax) {
      return false;
    }
    if (!Number.isSafeInteger(msg.fromInc) || msg.fromInc < 1) return false;
    const value = msg.type === 'data' || msg.type === 'putM' ? msg.value
      : (msg.type === 'invAck' || msg.type === 'recallAck') ? msg.data?.value ?? null : null;
    return value === null || utf8Bytes(value) <= this.cfg.valueBytesMax;
  }
}
