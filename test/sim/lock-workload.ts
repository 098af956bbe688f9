// The lock service's replicated state machine in the Raft simulator (SimMachine): every node
// runs the production GroupMachine around a LockStateMachine, so entries are the runtime's
// batch envelopes (one to three commands, each with the client's idempotency key, sometimes
// a client's retry of an earlier request), stamped with the proposing node's own clock, and a
// node that takes office proposes the state machine's leader-start commands (the lease
// extension) before anything else of its term. After every apply it checks the table's own
// invariants, byte-identical state at each index on every node, strictly increasing fencing
// tokens for new grants in apply order, and no lock with conflicting holders.
//
// Leases as clients see them: each node's clock is off the simulated real time by up to
// `clockSkewMsMax`, and a client holds a grant from when it was answered (the first apply of
// its entry) until `ttlMs` after it SENT the request that set the lease (the acquire, or the
// last successful renew), as the SDK's withLock counts; a release ends it when sent. No two
// clients may hold conflicting grants of one lock at once by those bounds: a new leader whose
// clock runs ahead would otherwise expire a lease that its holder still counts on.

import { seededRand } from '../../src/raft/rand.js';
import type { Rand } from '../../src/raft/rand.js';
import type { Entry, NodeId } from '../../src/raft/types.js';
import type { LockCommand, LockEvent, LockMode, LockResult } from '../../src/lock/commands.js';
import { conflicts, LockTable, type LockLimits } from '../../src/lock/lock-table.js';
import { LockStateMachine } from '../../src/lock/lock-state-machine.js';
import { decode, decodeEnvelope, encodeEnvelope } from '../../src/runtime/envelope.js';
import type { BatchedCommand } from '../../src/runtime/envelope.js';
import { GroupMachine } from '../../src/runtime/group-machine.js';
import type { ApplyContext } from '../../src/runtime/state-machine.js';
import { SimViolation } from './checker.js';
import type { SimMachine } from './cluster-sim.js';

/** Simulated milliseconds per sim step: leases of 100..600 ms live 10..60 steps. */
export const LOCK_SIM_STEP_MS = 10;
const OWNERS = ['o1', 'o2', 'o3', 'o4'] as const;
const LOCK_NAMES = ['a', 'b', 'c'] as const;
/** Small bounds so that runs reach `exhausted` and forget old expiries. */
export const LOCK_SIM_LIMITS: LockLimits = {
  waitersPerLockMax: 2, holdersPerLockMax: 3, locksPerOwnerMax: 2, locksMax: 3,
  expiredMemoryMax: 3,
};
/** Requests a client may retry: the most recent one (sent again in a later entry). */
const RETRY_WINDOW = 1;
/** Requests the groups remember (the production default is 100,000). Transfers no longer
 * restart when the leader compacts (the leader keeps sending the image it began with, and
 * keeps the log its followers still need), so this is no longer about liveness under
 * compaction: it only keeps images small enough that a transfer in chunks of 16-128 bytes,
 * one per round trip, fits the liveness budget (at 32, a 6 KiB image took 134 chunks). */
const DEDUP = { windowMs: 60_000, entriesMax: 8 } as const;

/** The simulator's plain entry format, [kind][nowMs as float64 BE][payload], for workloads
 * whose state machine has no envelope of its own (the queue workload's). The lock workload
 * proposes the runtime's batch envelopes instead. */
const HEADER_BYTES = 9;

export function encodeSimEntry(kind: number, nowMs: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out[0] = kind;
  new DataView(out.buffer).setFloat64(1, nowMs);
  out.set(payload, HEADER_BYTES);
  return out;
}

export function decodeSimEntry(data: Uint8Array):
  { kind: number; nowMs: number; payload: Uint8Array } {
  if (data.length < HEADER_BYTES) throw new SimViolation(`sim entry of ${data.length} B`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { kind: dv.getUint8(0), nowMs: dv.getFloat64(1), payload: data.subarray(HEADER_BYTES) };
}

export interface LockWorkloadOptions {
  /** Each node's clock is ahead of the simulated real time by 0..this many ms, fixed per
   * node, so two nodes disagree by up to this much. The lease extension is set to the same
   * bound: docs/locks.md's rule that skew must stay within it. Default 0. */
  readonly clockSkewMsMax?: number;
  /** Whether a new leader proposes the leader-start commands (default true). Off, the
   * simulator plays a runtime that forgets them, and the lease check must catch it. */
  readonly leaderStart?: boolean;
}

/** FNV-1a over the bytes, with the length: a compact fingerprint of a snapshot image. */
export function imageDigest(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return `${bytes.length}:${h.toString(16)}`;
}

/** What one command did when it applied on a replica (a replayed result has none). */
interface Applied {
  readonly cmd: LockCommand;
  readonly ctx: ApplyContext;
  readonly result: LockResult;
  readonly events: readonly LockEvent[];
  /** For an acquire or a renew: the owner's token before, if it held the lock and kept
   * holding it through the expiry pass. */
  readonly heldToken: number | null;
}

/** The lock table implementation the replicas run: LockTable, or a variant with a planted
 * bug (test/support/mutant.ts). */
export interface LockTableClass {
  new (limits: LockLimits): LockTable;
  restore(image: Uint8Array, limits: LockLimits): LockTable;
}

/** The production state machine around the given table class, recording each command's
 * outcome for the checks. */
class RecordingLockMachine extends LockStateMachine {
  readonly records = new Map<number, Applied>();
  private events: LockEvent[] = [];

  constructor(private readonly lockLimits: LockLimits, leaseExtensionMs: number,
    private readonly tables: LockTableClass) {
    super(lockLimits, { leaseExtensionMs });
    this.table = new tables(lockLimits);
    this.onEvents((evs) => { this.events.push(...evs); });
  }

  override restore(data: Uint8Array): void {
    super.restore(data);
    if (this.tables === LockTable) return;
    this.table = this.tables.restore(this.table.snapshot(), this.lockLimits);
  }

  override apply(command: Uint8Array, ctx: ApplyContext): LockResult {
    const cmd = decode<LockCommand>(command);
    const held = cmd.type === 'acquire' || cmd.type === 'renew' ? this.table.get(cmd.name)
      .holders.find((h) => h.owner === cmd.owner && h.expiresAt > ctx.nowMs) : undefined;
    this.events = [];
    const result = super.apply(command, ctx);
    this.records.set(ctx.position, { cmd, ctx, result, events: this.events,
      heldToken: held?.token ?? null });
    return result;
  }
}

interface Replica {
  readonly sm: RecordingLockMachine;
  readonly gm: GroupMachine;
  index: number;
  /** Highest fencing token granted in this replica's apply order (restored: lastToken). */
  maxToken: number;
}

/** A client's view of one grant. */
interface ClientHold {
  readonly token: number;
  readonly mode: LockMode;
  /** Real ms until which the client counts on the lease. */
  boundMs: number;
  /** Released: nothing extends it any more. */
  ended: boolean;
}

export interface LockWorkloadStats {
  applied: number;
  grants: number;
  restores: number;
  expiries: number;
}

/** What the clients of a run did. */
export interface LockClientStats {
  /** Grants answered to clients, checked against every other client's lease bound. */
  grants: number;
  /** Entries with more than one command; retries of an earlier request. */
  batches: number;
  retries: number;
}

export class LockWorkload implements SimMachine {
  private readonly rand: Rand;
  private readonly replicas = new Map<NodeId, Replica>();
  /** State digest after each applied index, the first node's that reached it. */
  private readonly digestAt = new Map<number, string>();
  private readonly skewMsMax: number;
  private readonly leaderStartOn: boolean;
  private readonly clockOffsetMs = new Map<NodeId, number>();
  /** Sent requests: the command with its key, and when its client first sent it. */
  private readonly recent: BatchedCommand[] = [];
  private readonly firstSentMs = new Map<string, number>();
  private requestSeq = 0;
  /** The clients' view: by lock, by owner. Answered up to this index. */
  private readonly holds = new Map<string, Map<string, ClientHold>>();
  private readonly waitingSentMs = new Map<string, number>();
  private answeredIndex = 0;
  readonly stats: LockWorkloadStats = { applied: 0, grants: 0, restores: 0, expiries: 0 };
  readonly clientStats: LockClientStats = { grants: 0, batches: 0, retries: 0 };

  constructor(seed: number, private readonly limits: LockLimits = LOCK_SIM_LIMITS,
    private readonly tables: LockTableClass = LockTable, opts: LockWorkloadOptions = {}) {
    this.rand = seededRand(seed ^ 0x10c4);
    this.skewMsMax = opts.clockSkewMsMax ?? 0;
    this.leaderStartOn = opts.leaderStart ?? true;
  }

  propose(node: NodeId, step: number): Uint8Array {
    const count = this.rand.next() < 0.15 ? 2 : 1;
    const b: BatchedCommand[] = [];
    for (let i = 0; i < count; i++) b.push(this.request(step));
    if (count > 1) this.clientStats.batches++;
    return encodeEnvelope({ t: this.clockOf(node, step), b });
  }

  leaderStart(node: NodeId, term: number, step: number): readonly Uint8Array[] {
    if (!this.leaderStartOn) return [];
    const data = this.replica(node).gm.leaderStartEntry(term, this.clockOf(node, step));
    return data === null ? [] : [data];
  }

  marker(_seed: number): Uint8Array {
    // No commands, no clock: applies as nothing. Unique: no other entry is empty.
    return encodeEnvelope({ t: 0, b: [] });
  }

  start(node: NodeId, image: Uint8Array | null, index: number): void {
    if (image === null) {
      const sm = new RecordingLockMachine(this.limits, this.skewMsMax, this.tables);
      this.replicas.set(node, { sm, gm: new GroupMachine(sm, DEDUP), index, maxToken: 0 });
      return;
    }
    this.restore(node, image, index);
  }

  restore(node: NodeId, image: Uint8Array, index: number): void {
    const sm = new RecordingLockMachine(this.limits, this.skewMsMax, this.tables);
    const gm = new GroupMachine(sm, DEDUP);
    gm.restore(image);
    this.replicas.set(node, { sm, gm, index, maxToken: sm.table.stats().lastToken });
    this.stats.restores++;
    // A restored group must re-encode to the image it came from, and match every other
    // node's state at that index.
    const digest = imageDigest(gm.image());
    if (digest !== imageDigest(image)) {
      throw new SimViolation(`${node}: group restored at ${index} re-encodes differently`);
    }
    this.sameState(node, index, digest);
  }

  apply(node: NodeId, entry: Entry, step: number): void {
    const r = this.replica(node);
    if (entry.index !== r.index + 1) {
      throw new SimViolation(`lock ${node} applies ${entry.index} after ${r.index}`);
    }
    r.index = entry.index;
    r.sm.records.clear();
    const results = r.gm.apply(entry) as LockResult[];
    for (const rec of r.sm.records.values()) this.checkTokens(node, r, rec, entry.index);
    r.sm.table.checkInvariants();
    checkNoConflicts(node, r.sm.table, entry.index);
    if (entry.index > this.answeredIndex) {
      this.answeredIndex = entry.index;
      this.answer(entry, results, r.sm.records, step * LOCK_SIM_STEP_MS);
    }
    this.sameState(node, entry.index, imageDigest(r.gm.image()));
    this.stats.applied++;
  }

  snapshot(node: NodeId): Uint8Array {
    return this.replica(node).gm.image();
  }

  check(): void {
    for (const r of this.replicas.values()) r.sm.table.checkInvariants();
  }

  // ---- requests ------------------------------------------------------------------------

  private clockOf(node: NodeId, step: number): number {
    let offset = this.clockOffsetMs.get(node);
    if (offset === undefined) {
      offset = this.rand.int(0, this.skewMsMax + 1);
      this.clockOffsetMs.set(node, offset);
    }
    return step * LOCK_SIM_STEP_MS + offset;
  }

  /** A new request of a random client, or (sometimes) a client's retry of a recent one. */
  private request(step: number): BatchedCommand {
    const old = this.recent[this.rand.int(0, this.recent.length)];
    if (old !== undefined && this.rand.next() < 0.1) {
      this.clientStats.retries++;
      return old;
    }
    const cmd = this.randomCommand();
    const d = LockStateMachine.encode(cmd);
    // The leader's duties (tick, extendLeases) carry no idempotency key.
    if (!('owner' in cmd)) return { d };
    const x: BatchedCommand = { d, c: cmd.owner, r: `q${++this.requestSeq}` };
    this.firstSentMs.set(x.r ?? '', step * LOCK_SIM_STEP_MS);
    this.recent.push(x);
    if (this.recent.length > RETRY_WINDOW) this.recent.shift();
    return x;
  }

  // ---- checks --------------------------------------------------------------------------

  private checkTokens(node: NodeId, r: Replica, rec: Applied, index: number): void {
    // Apply order within one command: the expiries and grants it causes, then its result.
    for (const ev of rec.events) {
      if (ev.type === 'granted') this.newToken(node, r, ev.token, index);
      if (ev.type === 'expired') this.stats.expiries++;
    }
    const res = rec.result;
    if (res.type !== 'granted') return;
    // An idempotent retry (same owner, a mode it holds) keeps its grant and token; any
    // other grant, upgrades and grants after an expiry included, takes a new fencing token.
    // The expiry pass may first grant the requester's own wait: then this is its retry too.
    const grantedNow = rec.events.some((ev) => ev.type === 'granted' &&
      ev.name === res.name && ev.owner === res.owner && ev.token === res.token);
    if (!grantedNow && rec.heldToken !== res.token) this.newToken(node, r, res.token, index);
  }

  private newToken(node: NodeId, r: Replica, token: number, index: number): void {
    if (!(token > r.maxToken)) {
      throw new SimViolation(`fencing: ${node} granted token ${token} at ${index} after ` +
        `token ${r.maxToken}`);
    }
    r.maxToken = token;
    this.stats.grants++;
  }

  private sameState(node: NodeId, index: number, digest: string): void {
    const known = this.digestAt.get(index);
    if (known === undefined) {
      this.digestAt.set(index, digest);
    } else if (known !== digest) {
      throw new SimViolation(`lock state machine safety: ${node} group at ${index} is ` +
        `${digest}, another node's was ${known}`);
    }
  }

  // ---- the clients' view of their leases -----------------------------------------------

  /** The answers of an entry's commands reach their clients at `nowMs` (real time). */
  private answer(entry: Entry, results: readonly LockResult[],
    records: ReadonlyMap<number, Applied>, nowMs: number): void {
    if (entry.type !== 'normal') return;
    const items = decodeEnvelope(entry.data).b;
    for (const [position, x] of items.entries()) {
      const rec = records.get(position);
      const result = results[position];
      if (result === undefined) throw new SimViolation(`no result at ${entry.index}.${position}`);
      // A replayed answer (de-duplication) says nothing new: its first answer counted.
      if (rec === undefined) continue;
      const sentMs = this.firstSentMs.get(x.r ?? '');
      // A command's expiry pass comes first (its events lead), then the command itself:
      // a release lets go before the waiters it frees are granted (the events that follow).
      let answered = sentMs === undefined;
      const answerNow = (): void => {
        if (!answered && sentMs !== undefined) this.onClientAnswer(rec, result, sentMs, nowMs);
        answered = true;
      };
      const cmd = rec.cmd;
      for (const ev of rec.events) {
        if (cmd.type === 'release' && ev.type === 'granted' && ev.name === cmd.name &&
          ev.owner !== cmd.owner) answerNow();
        this.onClientEvent(ev, rec.ctx.nowMs, nowMs);
      }
      answerNow();
    }
  }

  private onClientEvent(ev: LockEvent, logNowMs: number, nowMs: number): void {
    const key = `${ev.name}\u0000${ev.owner}`;
    if (ev.type === 'granted') {
      const sent = this.waitingSentMs.get(key);
      this.waitingSentMs.delete(key);
      // The waiter's lease is ttl from the grant; its client counts from its last send.
      if (sent !== undefined) {
        this.clientGrant(ev.name, ev.owner, ev.mode, ev.token,
          sent + (ev.expiresAt - logNowMs), nowMs);
      }
    } else if (ev.type !== 'expired') {
      this.waitingSentMs.delete(key);
    }
  }

  /** A lease runs `ttl` from when the request that set it was sent: an acquire of a held
   * lock or a renew sets it anew (a shorter ttl shortens it). */
  private onClientAnswer(rec: Applied, result: LockResult, sentMs: number, nowMs: number): void {
    const cmd = rec.cmd;
    if (cmd.type === 'acquire' && result.type === 'granted') {
      this.clientGrant(cmd.name, cmd.owner, result.mode, result.token, sentMs + cmd.ttlMs, nowMs);
    } else if (cmd.type === 'acquire' && result.type === 'waiting') {
      this.waitingSentMs.set(`${cmd.name}\u0000${cmd.owner}`, sentMs);
    } else if (cmd.type === 'release' && result.type === 'released') {
      // The client stops relying on the lock when it sends the release.
      const h = this.holds.get(cmd.name)?.get(cmd.owner);
      if (h !== undefined) {
        h.boundMs = Math.min(h.boundMs, sentMs);
        h.ended = true;
      }
    } else if (cmd.type === 'renew' && result.type === 'renewed') {
      const h = this.holds.get(cmd.name)?.get(cmd.owner);
      if (h !== undefined && !h.ended && h.token === rec.heldToken) {
        h.boundMs = sentMs + (result.expiresAt - rec.ctx.nowMs);
      }
    }
  }

  /** A client learns at `nowMs` that it holds `token` until `boundMs`: no other client may
   * count on a conflicting grant of that lock past now. */
  private clientGrant(name: string, owner: string, mode: LockMode, token: number,
    boundMs: number, nowMs: number): void {
    let byOwner = this.holds.get(name);
    if (byOwner === undefined) this.holds.set(name, (byOwner = new Map()));
    const mine = byOwner.get(owner);
    if (mine !== undefined && token < mine.token) {
      throw new SimViolation(`${owner} granted ${name} token ${token} after token ${mine.token}`);
    }
    if (mine !== undefined && token === mine.token) {
      if (!mine.ended) mine.boundMs = boundMs;
      return;
    }
    for (const [other, h] of byOwner) {
      if (other === owner || h.boundMs <= nowMs || !conflicts(h.mode, mode)) continue;
      throw new SimViolation(`lease safety: ${owner} granted ${name} (${mode}, token ${token}) ` +
        `at ${nowMs} ms while ${other} still counts on token ${h.token} (${h.mode}) until ` +
        `${h.boundMs} ms`);
    }
    byOwner.set(owner, { token, mode, boundMs, ended: false });
    this.clientStats.grants++;
  }

  private replica(node: NodeId): Replica {
    const r = this.replicas.get(node);
    if (r === undefined) throw new SimViolation(`lock ${node} applies before it started`);
    return r;
  }

  private pick<T>(xs: readonly T[]): T {
    const x = xs[this.rand.int(0, xs.length)];
    if (x === undefined) throw new SimViolation('pick from an empty list');
    return x;
  }

  private randomCommand(): LockCommand {
    const name = this.pick(LOCK_NAMES);
    const owner = this.pick(OWNERS);
    const r = this.rand.next();
    if (r < 0.4) {
      const waitMs = this.rand.next() < 0.4 ? 0 : this.rand.int(1, 500);
      const cmd: LockCommand = { type: 'acquire', name, owner, waitMs,
        mode: this.rand.next() < 0.6 ? 'exclusive' : 'shared', ttlMs: this.rand.int(100, 600) };
      return this.rand.next() < 0.3 ? { ...cmd, requestId: `r${this.rand.int(0, 5)}` } : cmd;
    }
    if (r < 0.6) {
      // Sometimes with a token: right (by chance) or stale.
      return this.rand.next() < 0.3 ? { type: 'release', name, owner,
        token: this.rand.int(1, 400) } : { type: 'release', name, owner };
    }
    if (r < 0.75) {
      return this.rand.next() < 0.5 ? { type: 'renew', name, owner } :
        { type: 'renew', name, owner, ttlMs: this.rand.int(100, 600) };
    }
    if (r < 0.82) return { type: 'cancelWait', name, owner };
    if (r < 0.95) return { type: 'tick' };
    return { type: 'extendLeases', byMs: this.rand.int(0, 200) };
  }
}

/** No lock has an exclusive holder next to another holder, or one owner twice. */
function checkNoConflicts(node: NodeId, table: LockTable, index: number): void {
  for (const view of table.list('', LOCK_NAMES.length + 1)) {
    const owners = new Set(view.holders.map((h) => h.owner));
    const exclusive = view.holders.some((h) => h.mode === 'exclusive');
    if (owners.size !== view.holders.length || (exclusive && view.holders.length > 1)) {
      throw new SimViolation(`conflicting holders of ${view.name} on ${node} at ${index}: ` +
        view.holders.map((h) => `${h.owner}/${h.mode}/${h.token}`).join(' '));
    }
  }
}
