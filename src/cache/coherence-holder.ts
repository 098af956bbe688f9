// The holder role of the coherence protocol: the lines this pod holds (M/E/S with value,
// version and lease) in a byte-bounded LRU, the client operations served from them, and the
// transactions that fetch a copy from a key's home (getS/getM) when the line does not allow
// an operation. It answers the home's recalls and invalidations, hands dirty data back
// (write-backs, resent until the home says the store has them), renews the leases of lines in
// use and evicts to stay within capacity. Pure: the node (coherence.ts) delivers messages
// and clock ticks and carries out what it emits.
//
// Per key at most one transaction is in flight (KeyWork); operations that need one queue
// behind it in arrival order.

import { assert } from '../assert.js';
import { DsyncError, UnavailableError, IndeterminateError, InvalidArgumentError } from
  '../errors.js';
import { utf8Bytes, type CoherenceConfig } from './coherence-config.js';
import type { MsgBody } from './coherence-home.js';
import type {
  CacheValue, CoherenceMsg, GrantState, LineData, LineState, NodeId, OpResult,
} from './coherence-messages.js';
import { Lru } from './lru.js';
import { RenewalSchedule } from './coherence-renewals.js';
import { liveValue } from './coherence-value.js';

/** A line hit within this many leases is renewed before its lease runs out, hit or not in
 * its last half: a key read now and then keeps its copy instead of missing every few
 * seconds. A line nobody reads for that long lapses, which costs nothing. */
export const RENEW_IF_HIT_WITHIN_LEASES = 2;

interface Line {
  state: GrantState;
  value: CacheValue;
  version: number;
  /** Newer than anything the home has been sent. */
  dirty: boolean;
  /** The grant this copy is held under. */
  seq: number;
  readonly home: NodeId;
  readonly homeInc: number;
  /** Local clock; the line is served only before this. */
  leaseUntilMs: number;
  /** Local clock of the last hit on this key's line (carried over renewals); -Infinity. */
  lastHitMs: number;
}

interface Txn {
  readonly kind: 'getS' | 'getM';
  readonly txn: number;
  readonly home: NodeId;
  /** Leases count from here: the grant cannot have been made earlier. */
  readonly firstSentMs: number;
  lastSentMs: number;
  /** Highest invalidation or recall seen meanwhile: grants older than it are stale. */
  maxInvSeq: number;
}

export interface LocalOp {
  readonly reqId: string;
  readonly kind: 'read' | 'write' | 'delete';
  readonly value: CacheValue;
  readonly deadlineMs: number;
  /** The wall clock (epoch ms) when the operation arrived: values past their expiry read as
   * absent (coherence-value.ts). 0: nothing has expired. */
  readonly wallMs: number;
  /** A write only when the key is at this version now (0: has no value); otherwise the
   * operation fails with VERSION_MISMATCH and changes nothing. */
  readonly ifVersion?: number;
}

type RecallMsg = Extract<CoherenceMsg, { type: 'inv' | 'fwdGetS' | 'fwdGetM' }>;

interface KeyWork {
  txn: Txn | null;
  readonly ops: LocalOp[];
  /** A recall that overtook the grant it is about: answered once the grant is used. */
  deferred: { readonly from: NodeId; readonly msg: RecallMsg } | null;
}

interface Writeback extends LineData {
  readonly seq: number;
  readonly home: NodeId;
  readonly homeInc: number;
  retain: boolean;
  lastSentMs: number;
}

interface DurableWait {
  readonly version: number;
  readonly reqId: string;
  readonly deadlineMs: number;
  readonly result: OpResult;
}


export interface HolderOutbox {
  /** A message to a peer (or to this pod's own home role); the node stamps incarnations. */
  send(to: NodeId, body: MsgBody): void;
  /** The answer to a client operation. */
  reply(reqId: string, result: OpResult): void;
}

/** The holder's share of CacheStats (coherence.ts). */
export interface HolderStats {
  readonly entries: number;
  readonly bytes: number;
  readonly capacityBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  /** Lines with a valid lease in each state. */
  readonly states: { M: number; E: number; S: number };
  readonly pendingOps: number;
  /** Lines written here and not yet handed to the home, and the bytes of their values: what
   * a kill -9 of this pod would lose in write-back mode. */
  readonly dirtyLines: number;
  readonly dirtyBytes: number;
  readonly pendingWritebacks: number;
}

export interface LineView {
  readonly state: GrantState;
  readonly value: CacheValue;
  readonly version: number;
  readonly dirty: boolean;
  readonly leaseUntilMs: number;
  readonly valid: boolean;
}

export class HolderLines {
  private nowMs: number;
  private readonly lines: Lru<string, Line>;
  private readonly renewals: RenewalSchedule<Line>;
  private readonly works = new Map<string, KeyWork>();
  private readonly writebacks = new Map<string, Writeback>();
  private readonly durableWaits = new Map<string, DurableWait[]>();
  private readonly dirtyKeys = new Set<string>();
  private readonly reqIds = new Set<string>();
  private txnCounter = 0;
  private opsTotal = 0;
  /** Write-through writes applied here and waiting for the store: pending operations too. */
  private durableWaitCount = 0;
  private nextFlushMs: number;
  private readonly counters = { hits: 0, misses: 0, evictions: 0 };

  constructor(private readonly cfg: CoherenceConfig, private readonly out: HolderOutbox) {
    this.nowMs = cfg.nowMs;
    this.nextFlushMs = cfg.nowMs + cfg.flushIntervalMs;
    this.lines = new Lru({ capacityBytes: cfg.capacityBytes,
      entryOverheadBytes: cfg.entryOverheadBytes });
    // At most one live entry per line (a new grant makes the old entry stale), and lines are
    // bounded by what the LRU can hold.
    this.renewals = new RenewalSchedule(cfg.nowMs,
      Math.max(1, Math.floor(cfg.capacityBytes / cfg.entryOverheadBytes)));
  }

  /** The local clock moved on: lease renewals, retries, timeouts, periodic flush. */
  tick(nowMs: number): void {
    assert(nowMs >= this.nowMs, 'the local clock never goes back');
    // Every operation accepted and not answered yet is queued on its key or waits for the
    // store, and nothing else is.
    assert(this.reqIds.size === this.opsTotal + this.durableWaitCount,
      () => `${this.reqIds.size} pending request ids for ${this.opsTotal} queued operations ` +
        `and ${this.durableWaitCount} write-through waits`);
    this.nowMs = nowMs;
    this.renewHotLines();
    this.tickWorks();
    this.tickWritebacks();
    if (nowMs >= this.nextFlushMs) {
      this.flush();
      this.nextFlushMs = nowMs + this.cfg.flushIntervalMs;
    }
  }

  /** Nothing is left that only this pod holds: no dirty line, no unacknowledged write-back,
   * no write-through write waiting for the store. */
  drained(): boolean {
    return this.writebacks.size === 0 && this.dirtyKeys.size === 0 &&
      this.durableWaitCount === 0;
  }

  /** This pod's line for `key` without side effects: I when absent or its lease is over
   * (a dirty line still reports M: it holds data the home has not got yet). */
  lineState(key: string): LineState {
    const line = this.lines.peek(key);
    if (line === undefined) return 'I';
    if (this.valid(line)) return line.state;
    return line.dirty ? 'M' : 'I';
  }

  /** lineState, and whether the line only records that the key has no value (a deleted
   * key, one read as absent from the store, or a value expired at `wallMs`): API.md's
   * `absent`. */
  lineStatus(key: string, wallMs = 0): { state: LineState; absent: boolean } {
    const state = this.lineState(key);
    const line = this.lines.peek(key);
    return { state, absent: state !== 'I' && line !== undefined &&
      liveValue(line.value, wallMs) === null };
  }

  inspectLine(key: string): LineView | null {
    const l = this.lines.peek(key);
    if (l === undefined) return null;
    return { state: l.state, value: l.value, version: l.version, dirty: l.dirty,
      leaseUntilMs: l.leaseUntilMs, valid: this.valid(l) };
  }

  pendingWritebacks(): number {
    return this.writebacks.size;
  }

  stats(): HolderStats {
    const states = { M: 0, E: 0, S: 0 };
    for (const [, line] of this.lines.entries()) if (this.valid(line)) states[line.state]++;
    let dirtyBytes = 0;
    for (const key of this.dirtyKeys) {
      const v = this.lines.peek(key)?.value;
      if (typeof v === 'string') dirtyBytes += utf8Bytes(v);
    }
    return {
      dirtyLines: this.dirtyKeys.size, dirtyBytes,
      entries: this.lines.size, bytes: this.lines.bytes, capacityBytes: this.cfg.capacityBytes,
      hits: this.counters.hits, misses: this.counters.misses,
      evictions: this.counters.evictions, states,
      pendingOps: this.opsTotal + this.durableWaitCount,
      pendingWritebacks: this.writebacks.size,
    };
  }

  /** A client operation: replies `read` (value null = no such key), `write`, `delete` (with
   * whether a value was there) or `error`. */
  clientOp(op0: LocalOp, key: string): void {
    const op = { ...op0, deadlineMs: this.nowMs + this.cfg.requestTimeoutMs };
    const invalid = this.validateOp(op, key);
    if (invalid !== null) {
      this.reply(op.reqId, { type: 'error', key, error: invalid });
      return;
    }
    this.reqIds.add(op.reqId);
    const line = this.validLine(key);
    const work = this.works.get(key);
    if (line !== undefined && (op.kind === 'read' || line.state !== 'S') &&
        (work === undefined || work.ops.length === 0) && !this.durableWaits.has(key)) {
      this.counters.hits++;
      this.lines.touch(key);
      line.lastHitMs = this.nowMs;
      if (op.kind === 'read') this.replyRead(op, key, line, true);
      else this.applyWrite(key, line, op);
      this.maybeRenew(key, line);
    } else {
      this.counters.misses++;
      const w: KeyWork = work ?? { txn: null, ops: [], deferred: null };
      this.works.set(key, w);
      w.ops.push(op);
      this.opsTotal++;
      if (w.txn === null) this.drainOps(key, w);
    }
    this.evict();
  }

  private validateOp(op: LocalOp, key: string): DsyncError | null {
    const keyBytes = utf8Bytes(key);
    if (keyBytes === 0 || keyBytes > this.cfg.keyBytesMax) {
      return new InvalidArgumentError('key', `a key is 1..${this.cfg.keyBytesMax} bytes`);
    }
    if (op.value !== null && utf8Bytes(op.value) > this.cfg.valueBytesMax) {
      return new DsyncError('PAYLOAD_TOO_LARGE',
        `the value is over ${this.cfg.valueBytesMax} bytes; store a smaller value`);
    }
    if (this.reqIds.has(op.reqId)) {
      return new InvalidArgumentError('reqId', `request id ${op.reqId} is already pending`);
    }
    if (this.opsTotal + this.durableWaitCount >= this.cfg.opsMax ||
        (this.works.get(key)?.ops.length ?? 0) >= this.cfg.opsPerKeyMax) {
      return new DsyncError('RESOURCE_EXHAUSTED', 'too many cache operations are waiting; ' +
        'retry shortly', { retryable: true });
    }
    return null;
  }

  /** Serves queued operations in order until one needs a copy this pod does not have. */
  private drainOps(key: string, work: KeyWork): void {
    while (work.ops.length > 0 && work.txn === null) {
      const op = work.ops[0]!;
      const line = this.validLine(key);
      if (op.kind === 'read') {
        if (line === undefined) { this.startTxn(key, work, 'getS'); break; }
        // Write-through: no read may see a write before the store has it, or a crash of
        // this pod could take back a value somebody has seen.
        if (this.durableWaits.has(key)) break;
        this.replyRead(op, key, line, false);
      } else {
        if (line === undefined || line.state === 'S') { this.startTxn(key, work, 'getM'); break; }
        // A failed compare-and-set reveals the version: like a read, not before the store
        // has it.
        if (op.ifVersion !== undefined && this.durableWaits.has(key)) break;
        this.applyWrite(key, line, op);
      }
      work.ops.shift();
      this.opsTotal--;
    }
    if (work.ops.length === 0 && work.txn === null && work.deferred === null) {
      this.works.delete(key);
    }
  }

  private applyWrite(key: string, line: Line, op: LocalOp): void {
    assert(line.state !== 'S' && this.valid(line), 'writes need a valid E or M line');
    const existed = liveValue(line.value, op.wallMs) !== null;
    if (op.ifVersion !== undefined && op.ifVersion !== (existed ? line.version : 0)) {
      // This pod owns the key (E/M): no other write can come in between, so the comparison
      // is exact. The line stays as it was.
      const currentVersion = existed ? line.version : null;
      this.reply(op.reqId, { type: 'error', key, error: new DsyncError('VERSION_MISMATCH',
        `${JSON.stringify(key)} is at version ${currentVersion ?? 'none (no value)'}, not ` +
        `${op.ifVersion}; read it again and retry with its version`,
      { details: { currentVersion } }) });
      return;
    }
    line.value = op.kind === 'delete' ? null : op.value;
    line.version++;
    line.state = 'M';
    line.dirty = true;
    this.lines.set(key, line, this.lineBytes(key, line.value));
    const result: OpResult = op.kind === 'delete'
      ? { type: 'delete', key, deleted: existed, version: line.version }
      : { type: 'write', key, state: 'M', version: line.version };
    if (this.cfg.writePolicy === 'write-through') {
      // The reply waits for the home's putAck, which comes once the store has the version.
      line.dirty = false;
      this.makeWriteback(key, line, true, true);
      const waits = this.durableWaits.get(key) ?? [];
      this.durableWaitCount++;
      waits.push({ version: line.version, reqId: op.reqId, result,
        deadlineMs: op.deadlineMs });
      this.durableWaits.set(key, waits);
    } else {
      this.dirtyKeys.add(key);
      this.reply(op.reqId, result);
    }
  }

  private replyRead(op: LocalOp, key: string, line: Line, hit: boolean): void {
    this.reply(op.reqId, { type: 'read', key, value: liveValue(line.value, op.wallMs),
      state: line.state, hit, version: line.version });
  }

  /** Leases are renewed while in use: past half its lease a hit also asks the home again. */
  private maybeRenew(key: string, line: Line): void {
    if (line.leaseUntilMs - this.nowMs > this.cfg.leaseMs / 2 || this.works.has(key)) return;
    const work: KeyWork = { txn: null, ops: [], deferred: null };
    this.works.set(key, work);
    this.startTxn(key, work, 'getS');
  }

  /** Renews lines that come due and were hit recently (RENEW_IF_HIT_WITHIN_LEASES). */
  private renewHotLines(): void {
    const hotSinceMs = this.nowMs - RENEW_IF_HIT_WITHIN_LEASES * this.cfg.leaseMs;
    for (const { key, line } of this.renewals.takeDue(this.nowMs)) {
      // A stale entry: the line was replaced by a later grant (scheduled itself) or dropped.
      if (this.lines.peek(key) !== line || !this.valid(line) || this.works.has(key)) continue;
      if (line.lastHitMs < hotSinceMs) continue;
      const work: KeyWork = { txn: null, ops: [], deferred: null };
      this.works.set(key, work);
      this.startTxn(key, work, 'getS');
    }
  }

  private startTxn(key: string, work: KeyWork, kind: 'getS' | 'getM'): void {
    assert(work.txn === null, 'one transaction per key at a time');
    // After giving its line up, this pod asks again only once the home has its write-back:
    // otherwise the request could overtake the data and be granted the older memory copy.
    const wb = this.writebacks.get(key);
    if (wb !== undefined && !this.lines.has(key)) return;
    const txn: Txn = { kind, txn: ++this.txnCounter, home: this.cfg.homeOf(key),
      firstSentMs: this.nowMs, lastSentMs: this.nowMs, maxInvSeq: 0 };
    work.txn = txn;
    this.send(txn.home, { type: kind, key, txn: txn.txn });
  }

  /** A restarted home asks whether anything of its earlier lives is left here. notePeer has
   * already dropped the lines they granted (dirty data went to the new life as write-backs),
   * so what is left is write-backs the home has not acknowledged yet. */
  onHello(from: NodeId, msg: Extract<CoherenceMsg, { type: 'hello' }>): void {
    let clear = true;
    for (const wb of this.writebacks.values()) {
      if (wb.home === from && wb.homeInc < msg.fromInc) { clear = false; break; }
    }
    this.send(from, { type: 'helloAck', key: '', clear });
  }

  /** `node` restarted as incarnation `inc`: drop the lines its earlier life granted,
   * handing their dirty data to the new life, and ask it again for what is in flight. */
  onPeerRestart(node: NodeId, inc: number): void {
    const stale: [string, Line][] = [];
    for (const [key, line] of this.lines.entries()) {
      if (line.home === node && line.homeInc < inc) stale.push([key, line]);
    }
    for (const [key, line] of stale) {
      if (line.dirty) this.makeWriteback(key, line, false, true);
      this.dropLine(key);
    }
    for (const [key, work] of this.works) {
      if (work.deferred !== null && work.deferred.from === node) work.deferred = null;
      const t = work.txn;
      if (t === null || t.home !== node) continue;
      // Sequence numbers restart with the home: forget the old life's invalidations.
      t.maxInvSeq = 0;
      t.lastSentMs = this.nowMs;
      this.send(node, { type: t.kind, key, txn: t.txn });
    }
  }

  onData(from: NodeId, msg: Extract<CoherenceMsg, { type: 'data' }>): void {
    const work = this.works.get(msg.key);
    const t = work?.txn;
    if (work === undefined || t == null || t.txn !== msg.txn || t.home !== from) return;
    if (msg.seq < t.maxInvSeq) {
      // Issued before an invalidation this pod has already obeyed: ask again at once.
      t.lastSentMs = this.nowMs;
      this.send(from, { type: t.kind, key: msg.key, txn: t.txn });
      return;
    }
    // The grant may overtake this pod's own write-back (a renewal, or a miss right after an
    // eviction): then the home's copy is older than this pod's, and the newest version wins.
    // Only the owner writes, so a newer local version means the grant is to the same owner.
    const old = this.lines.peek(msg.key);
    const oldLine = old !== undefined && old.home === from && old.homeInc === msg.fromInc
      ? old : undefined;
    const wb = this.writebacks.get(msg.key);
    const oldWb = wb !== undefined && wb.home === from && wb.homeInc === msg.fromInc
      ? wb : undefined;
    let newest: LineData = msg;
    if (oldWb !== undefined && oldWb.version > newest.version) newest = oldWb;
    if (oldLine !== undefined && oldLine.version > newest.version) newest = oldLine;
    const ownData = newest !== msg;
    assert(!ownData || msg.grant !== 'S', 'a home never grants S below the owner\'s version');
    const dirty = oldLine !== undefined && newest === oldLine && oldLine.dirty;
    if (old !== undefined && old.dirty && !dirty) this.dirtyKeys.delete(msg.key);
    const line: Line = {
      // The home records E for an owner that may since have written: it is M then.
      state: ownData ? 'M' : msg.grant, value: newest.value, version: newest.version, dirty,
      seq: msg.seq, home: from, homeInc: msg.fromInc,
      leaseUntilMs: t.firstSentMs + msg.leaseMs - this.cfg.driftMarginMs,
      lastHitMs: old?.lastHitMs ?? Number.NEGATIVE_INFINITY,
    };
    assert(line.state !== 'S' || !line.dirty, 'a shared line is never dirty');
    this.lines.set(msg.key, line, this.lineBytes(msg.key, line.value));
    // Renewed a quarter lease before it runs out if it is still in use then.
    this.renewals.add(msg.key, line, line.leaseUntilMs - Math.floor(this.cfg.leaseMs / 4));
    work.txn = null;
    const deferred = work.deferred;
    work.deferred = null;
    this.drainOps(msg.key, work);
    if (deferred !== null) this.onRecall(deferred.from, deferred.msg, false);
    this.evict();
  }

  onNack(from: NodeId, msg: Extract<CoherenceMsg, { type: 'nack' }>): void {
    const work = this.works.get(msg.key);
    if (work?.txn == null || work.txn.txn !== msg.txn || work.txn.home !== from) return;
    const error = msg.cause === 'store_unavailable'
      ? new UnavailableError('the backing store is unavailable (as seen by the key\'s home ' +
        `${from}); retry once it is back, /ready says when`, { reason: msg.cause, home: from })
      : new DsyncError(msg.code, `the key's home refused the request (${msg.reason}); ` +
        'retry shortly', { retryable: true, details: { home: from } });
    for (const op of work.ops) this.reply(op.reqId, { type: 'error', key: msg.key, error });
    this.opsTotal -= work.ops.length;
    this.works.delete(msg.key);
    this.answerDeferred(msg.key, work);
  }

  onRecall(from: NodeId, msg: RecallMsg, mayDefer = true): void {
    const work = this.works.get(msg.key);
    const t = work?.txn;
    const line = this.lines.peek(msg.key);
    const mine = line !== undefined && line.home === from ? line : undefined;
    // A recall can overtake the grant it is about (the home grants, then recalls for the
    // next requester). Dropping that grant would let a busy key starve this pod, so the
    // recall waits for the grant: the home waits for the answer, so using the grant for the
    // queued operations first is safe. An owner recall while holding S, or any recall
    // while holding nothing, means the grant is in flight.
    if (mayDefer && work !== undefined && t != null && t.home === from &&
        (mine === undefined || (msg.type !== 'inv' && mine.state === 'S'))) {
      const prior = work.deferred;
      if (prior !== null && prior.msg.seq >= msg.seq) {
        if (prior.msg.seq > msg.seq) this.onRecall(from, msg, false);
        return;
      }
      work.deferred = { from, msg };
      if (prior !== null) this.onRecall(prior.from, prior.msg, false);
      return;
    }
    if (t != null && t.home === from) t.maxInvSeq = Math.max(t.maxInvSeq, msg.seq);
    let kept = false;
    if (mine !== undefined) {
      const line = mine;
      if (line.seq < msg.seq) {
        // Hand dirty data over and keep resending it until the store has it, so that a lost
        // answer cannot lose an acknowledged write.
        // A downgraded owner still holds a copy, so its write-back keeps `retain`: it must
        // not read at the home as the owner having left.
        if (line.dirty) this.makeWriteback(msg.key, line, msg.type === 'fwdGetS', false);
        if (msg.type === 'fwdGetS') {
          assert(!line.dirty, 'a downgraded line has handed its data over');
          line.state = 'S';
          kept = true;
        } else {
          this.dropLine(msg.key);
        }
      } else {
        kept = true;
      }
    }
    const wb = this.writebacks.get(msg.key);
    const data = wb !== undefined && wb.home === from
      ? { value: wb.value, version: wb.version } : null;
    if (msg.type === 'inv') this.send(from, { type: 'invAck', key: msg.key, seq: msg.seq, data });
    else this.send(from, { type: 'recallAck', key: msg.key, seq: msg.seq, data, kept });
  }

  /** Gives up on the grant a deferred recall waits for (lost, or the transaction ended). */
  private answerDeferred(key: string, work: KeyWork): void {
    const deferred = work.deferred;
    if (deferred === null) return;
    work.deferred = null;
    this.onRecall(deferred.from, deferred.msg, false);
    if (work.ops.length === 0 && work.txn === null && this.works.get(key) === work) {
      this.works.delete(key);
    }
  }

  onPutAck(from: NodeId, msg: Extract<CoherenceMsg, { type: 'putAck' }>): void {
    const wb = this.writebacks.get(msg.key);
    if (wb !== undefined && wb.home === from && wb.version <= msg.version) {
      this.writebacks.delete(msg.key);
      const work = this.works.get(msg.key);
      if (work !== undefined && work.txn === null) this.drainOps(msg.key, work);
    }
    const waits = this.durableWaits.get(msg.key);
    if (waits === undefined) return;
    const left = waits.filter((w) => {
      if (w.version > msg.version) return true;
      this.durableWaitCount--;
      this.reply(w.reqId, w.result);
      return false;
    });
    if (left.length === 0) this.durableWaits.delete(msg.key);
    else this.durableWaits.set(msg.key, left);
    const work = this.works.get(msg.key);
    if (left.length === 0 && work !== undefined && work.txn === null) {
      this.drainOps(msg.key, work);
    }
  }


  /** Records dirty data for the home and (unless it rides on an ack) sends it. The line, if
   * kept, is clean from now on. */
  private makeWriteback(key: string, line: Line, retain: boolean, sendNow: boolean): void {
    const prior = this.writebacks.get(key);
    assert(prior === undefined || prior.version <= line.version, 'write-backs only move forward');
    const wb: Writeback = { value: line.value, version: line.version, seq: line.seq,
      home: line.home, homeInc: line.homeInc, retain, lastSentMs: this.nowMs };
    this.writebacks.set(key, wb);
    line.dirty = false;
    this.dirtyKeys.delete(key);
    if (sendNow) this.sendWriteback(key, wb);
  }

  private sendWriteback(key: string, wb: Writeback): void {
    wb.lastSentMs = this.nowMs;
    this.send(wb.home, { type: 'putM', key, seq: wb.seq, homeInc: wb.homeInc, value: wb.value,
      version: wb.version, retain: wb.retain });
  }

  /** Writes every dirty line back (it stays M); returns how many. */
  flush(): number {
    let n = 0;
    for (const key of [...this.dirtyKeys]) {
      const line = this.lines.peek(key);
      assert(line !== undefined && line.dirty, 'dirty keys have dirty lines');
      if (this.writebacks.size >= this.cfg.writebacksMax && !this.writebacks.has(key)) break;
      this.makeWriteback(key, line, true, true);
      n++;
    }
    return n;
  }

  /** Evicts down to capacity, never a line with work in flight, and a dirty one only when
   * there is room to track its write-back. */
  private evict(): void {
    if (this.lines.bytes <= this.cfg.capacityBytes) return;
    const victims = this.lines.evictUntil(this.cfg.capacityBytes, (key, line) =>
      !this.works.has(key) && (!line.dirty || this.writebacks.size < this.cfg.writebacksMax));
    for (const { key, value: line } of victims) {
      this.counters.evictions++;
      const wb = this.writebacks.get(key);
      if (line.dirty) {
        this.makeWriteback(key, line, false, true);
      } else if (wb !== undefined && wb.retain) {
        wb.retain = false;
        this.sendWriteback(key, wb);
      } else {
        this.send(line.home, { type: line.state === 'S' ? 'putS' : 'putE', key, seq: line.seq,
          homeInc: line.homeInc });
      }
      this.dirtyKeys.delete(key);
    }
  }

  private tickWorks(): void {
    for (const [key, work] of [...this.works]) {
      while (work.ops.length > 0 && work.ops[0]!.deadlineMs <= this.nowMs) {
        const op = work.ops.shift()!;
        this.opsTotal--;
        this.reply(op.reqId, { type: 'error', key, error: new UnavailableError(
          `the home of ${JSON.stringify(key)} did not answer in ${this.cfg.requestTimeoutMs} ms; ` +
          'retry later', { home: this.cfg.homeOf(key) }) });
      }
      const t = work.txn;
      if (t === null) {
        this.answerDeferred(key, work);
        this.drainOps(key, work);
        continue;
      }
      if (work.ops.length === 0 && this.nowMs - t.firstSentMs >= this.cfg.requestTimeoutMs) {
        // Nobody waits any more: give up; a late grant is then ignored (the home's record of
        // this pod as a holder only over-approximates, which is safe).
        this.works.delete(key);
        work.txn = null;
        this.answerDeferred(key, work);
      } else if (this.nowMs - t.lastSentMs >= this.cfg.retryMs) {
        // The grant looks lost: answer the recall that waits for it, or the home, busy with
        // that recall, could never serve the retry.
        this.answerDeferred(key, work);
        t.lastSentMs = this.nowMs;
        this.send(t.home, { type: t.kind, key, txn: t.txn });
      }
    }
  }

  private tickWritebacks(): void {
    for (const [key, wb] of this.writebacks) {
      if (this.nowMs - wb.lastSentMs >= this.cfg.retryMs) this.sendWriteback(key, wb);
    }
    for (const [key, waits] of [...this.durableWaits]) {
      const left = waits.filter((w) => {
        if (w.deadlineMs > this.nowMs) return true;
        this.durableWaitCount--;
        // Applied locally but not known to be in the store: the outcome is unknown.
        this.reply(w.reqId, { type: 'error', key, error: new IndeterminateError(
          `the write of ${JSON.stringify(key)} v${w.version} is not confirmed durable; ` +
          'read the key to see whether it took effect') });
        return false;
      });
      if (left.length === 0) this.durableWaits.delete(key);
      else this.durableWaits.set(key, left);
    }
  }


  private valid(line: Line): boolean {
    return this.nowMs < line.leaseUntilMs;
  }

  private validLine(key: string): Line | undefined {
    const line = this.lines.peek(key);
    return line !== undefined && this.valid(line) ? line : undefined;
  }

  private dropLine(key: string): void {
    const line = this.lines.delete(key);
    assert(line === undefined || !line.dirty, 'a dirty line is never dropped');
    this.dirtyKeys.delete(key);
  }

  /** What a line costs besides the LRU's fixed overhead: its key and value. */
  private lineBytes(key: string, value: CacheValue): number {
    return utf8Bytes(key) + utf8Bytes(value ?? '');
  }

  private reply(reqId: string, result: OpResult): void {
    this.reqIds.delete(reqId);
    this.out.reply(reqId, result);
  }

  private send(to: NodeId, body: MsgBody): void {
    this.out.send(to, body);
  }
}
