// The lock table as the replicated state machine of the Raft simulator (SimMachine): nodes
// propose lock commands from a few owners on a few locks, stamped with the simulated clock,
// every node applies the committed log to its own LockTable, and snapshots carry
// `table.snapshot()`. After every apply it checks the table's own invariants, that every
// node reached byte-identical state at each index, that fencing tokens of new grants
// strictly increase in apply order, and that no lock has conflicting holders.

import { seededRand } from '../../src/raft/rand.js';
import type { Rand } from '../../src/raft/rand.js';
import type { Entry, NodeId } from '../../src/raft/types.js';
import {
  decodeLockCommand, encodeLockCommand, type LockCommand, type LockEvent,
} from '../../src/lock/commands.js';
import { LockTable, type LockLimits } from '../../src/lock/lock-table.js';
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

/** Entry data: [kind][nowMs as float64 BE][payload]. Kind COMMAND's payload is an encoded
 * LockCommand; kind MARKER's payload is opaque and applies as a no-op. */
const KIND_COMMAND = 1;
const KIND_MARKER = 2;
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
  if (data.length < HEADER_BYTES) throw new SimViolation(`lock sim entry of ${data.length} B`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { kind: dv.getUint8(0), nowMs: dv.getFloat64(1), payload: data.subarray(HEADER_BYTES) };
}

/** FNV-1a over the bytes, with the length: a compact fingerprint of a snapshot image. */
export function imageDigest(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return `${bytes.length}:${h.toString(16)}`;
}

interface Replica {
  table: LockTable;
  index: number;
  /** Highest fencing token granted in this replica's apply order (restored: lastToken). */
  maxToken: number;
}

/** The lock table implementation the replicas run: LockTable, or a variant with a planted
 * bug (test/support/mutant.ts). */
export interface LockTableClass {
  new (limits: LockLimits): LockTable;
  restore(image: Uint8Array, limits: LockLimits): LockTable;
}

export interface LockWorkloadStats {
  applied: number;
  grants: number;
  restores: number;
  expiries: number;
}

export class LockWorkload implements SimMachine {
  private readonly rand: Rand;
  private readonly replicas = new Map<NodeId, Replica>();
  /** State digest after each applied index, the first node's that reached it. */
  private readonly digestAt = new Map<number, string>();
  readonly stats: LockWorkloadStats = { applied: 0, grants: 0, restores: 0, expiries: 0 };

  constructor(seed: number, private readonly limits: LockLimits = LOCK_SIM_LIMITS,
    private readonly tables: LockTableClass = LockTable) {
    this.rand = seededRand(seed ^ 0x10c4);
  }

  propose(_node: NodeId, step: number): Uint8Array {
    const cmd = this.randomCommand();
    return encodeSimEntry(KIND_COMMAND, step * LOCK_SIM_STEP_MS, encodeLockCommand(cmd));
  }

  marker(seed: number): Uint8Array {
    return encodeSimEntry(KIND_MARKER, 0, new TextEncoder().encode(`live-${seed}`));
  }

  start(node: NodeId, image: Uint8Array | null, index: number): void {
    if (image === null) {
      this.replicas.set(node, { table: new this.tables(this.limits), index, maxToken: 0 });
      return;
    }
    this.restore(node, image, index);
  }

  restore(node: NodeId, image: Uint8Array, index: number): void {
    const table = this.tables.restore(image, this.limits);
    this.replicas.set(node, { table, index, maxToken: table.stats().lastToken });
    this.stats.restores++;
    // A restored table must re-encode to the image it came from, and match every other
    // node's state at that index.
    const digest = imageDigest(table.snapshot());
    if (digest !== imageDigest(image)) {
      throw new SimViolation(`${node}: table restored at ${index} re-encodes differently`);
    }
    this.sameState(node, index, digest);
  }

  apply(node: NodeId, entry: Entry): void {
    const r = this.replica(node);
    if (entry.index !== r.index + 1) {
      throw new SimViolation(`lock ${node} applies ${entry.index} after ${r.index}`);
    }
    r.index = entry.index;
    if (entry.type === 'normal') this.applyNormal(node, r, entry);
    r.table.checkInvariants();
    checkNoConflicts(node, r.table, entry.index);
    this.sameState(node, entry.index, imageDigest(r.table.snapshot()));
    this.stats.applied++;
  }

  snapshot(node: NodeId): Uint8Array {
    return this.replica(node).table.snapshot();
  }

  check(): void {
    for (const r of this.replicas.values()) r.table.checkInvariants();
  }

  private applyNormal(node: NodeId, r: Replica, entry: Entry): void {
    const { kind, nowMs, payload } = decodeSimEntry(entry.data);
    if (kind === KIND_MARKER) return;
    if (kind !== KIND_COMMAND) throw new SimViolation(`lock sim entry kind ${kind}`);
    const cmd = decodeLockCommand(payload);
    // Holders whose lease outlives nowMs: the apply's expiry pass leaves exactly these.
    const before = cmd.type === 'acquire' ?
      r.table.get(cmd.name).holders.filter((h) => h.expiresAt > nowMs) : [];
    const { result, events } = r.table.apply(cmd, { index: entry.index, nowMs });
    // Apply order within one command: the expiries and grants it causes, then its result.
    for (const ev of events) this.onEvent(node, r, ev, entry.index);
    if (result.type !== 'granted') return;
    // An idempotent retry (same owner, a mode it holds) keeps its grant and token; any
    // other grant, upgrades and grants after an expiry included, takes a new fencing token.
    // The expiry pass may first grant the requester's own wait: then this is its retry too.
    const grantedNow = events.some((ev) => ev.type === 'granted' &&
      ev.name === result.name && ev.owner === result.owner && ev.token === result.token);
    const kept = grantedNow ||
      before.some((h) => h.owner === result.owner && h.token === result.token);
    if (!kept) this.newToken(node, r, result.token, entry.index);
  }

  private onEvent(node: NodeId, r: Replica, ev: LockEvent, index: number): void {
    if (ev.type === 'granted') this.newToken(node, r, ev.token, index);
    if (ev.type === 'expired') this.stats.expiries++;
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
      throw new SimViolation(`lock state machine safety: ${node} table at ${index} is ` +
        `${digest}, another node's was ${known}`);
    }
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
