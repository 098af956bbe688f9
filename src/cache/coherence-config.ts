// Options of the coherence core, their defaults and bounds, validated once at start-up.
//
// Clock assumption. Leases are measured only as durations on each pod's own clock; clocks
// need not agree on the time of day, only on the rate: a pod's clock may run at most
// `driftMarginMs / (2 × leaseMs − driftMarginMs)` faster or slower than real time (2.5 %
// with the defaults, far beyond what quartz drifts without NTP). A cache counts its lease
// from the moment it first sent the request, which is before the home granted it, and ends
// it `driftMarginMs` early; the home counts from the grant. So a copy always stops being
// served, in real time, before the home believes its lease has run out, and only then may
// the home hand out a conflicting copy without hearing back from the holder.

import { InvalidArgumentError } from '../errors.js';
import type { NodeId } from './coherence-messages.js';
import {
  DEFAULT_ENTRY_OVERHEAD_BYTES, DEFAULT_LRU_CAPACITY_BYTES, parseLruOptions,
} from './lru.js';

export type WritePolicy = 'write-back' | 'write-through';
export type PriorCopies = 'none' | 'unknown';

export interface CoherenceOptions {
  /** This pod's id, as the ring and the transport name it. */
  readonly self: NodeId;
  /** Strictly greater on every start of this pod (the shell persists it or uses its start
   * time in ms); copies granted by, or to, an earlier incarnation are dropped. >= 1. */
  readonly incarnation: number;
  /** The key's home pod (the shell passes its HashRing's ownerOf). Must agree on every pod. */
  readonly homeOf: (key: string) => NodeId;
  /** The local clock at construction, in ms. */
  readonly nowMs: number;
  /** Lease granted with every copy, ms; default 5000, 1000..600000. */
  readonly leaseMs?: number;
  /** How much earlier than the home a cache ends a lease, ms; default 250; 2× it < leaseMs. */
  readonly driftMarginMs?: number;
  /** Resend period for unanswered requests, recalls and write-backs, ms; default 200. */
  readonly retryMs?: number;
  /** A client operation fails with UNAVAILABLE after this long, ms; default 8000. */
  readonly requestTimeoutMs?: number;
  /** Dirty lines are written back at least this often, ms; default 1000, < leaseMs. */
  readonly flushIntervalMs?: number;
  /** A new incarnation grants nothing for this long, so that every copy granted by its
   * previous life has expired and the dirty data of those copies (flushed at least every
   * flushIntervalMs) has come back; ms, default leaseMs + 2 × flushIntervalMs,
   * leaseMs..leaseMs*4. The grace ends earlier once every peer has confirmed that it holds
   * nothing of an earlier life (see `peers`), and is skipped when `priorCopies` is 'none'. */
  readonly startupGraceMs?: number;
  /** What the shell knows of copies granted by an earlier life of this pod: 'none' when that
   * life drained completely before it stopped (its incarnation record says so), else
   * 'unknown' (default): a crash, or a record that is missing, which is what a first start
   * and a lost data dir both look like. */
  readonly priorCopies?: PriorCopies;
  /** Every other pod of the ring. During the grace period the home asks each of them to
   * confirm that it holds no copy and no unacknowledged data of an earlier life of this pod;
   * once all have, the grace ends. null (default): the grace always runs its full length. */
  readonly peers?: readonly NodeId[] | null;
  /** default 'write-back'. With 'write-through' a write replies once the store has it. */
  readonly writePolicy?: WritePolicy;
  /** Line capacity in bytes (value + overhead), default 64 MiB. */
  readonly capacityBytes?: number;
  /** Bytes charged per line on top of its value, default 64. */
  readonly entryOverheadBytes?: number;
  /** Largest value in bytes (UTF-8 of its JSON text), default 1 MiB; bounds every message. */
  readonly valueBytesMax?: number;
  /** Longest key in UTF-8 bytes, default 256. */
  readonly keyBytesMax?: number;
  /** Requests queued at the home for one key, default 64. */
  readonly homeQueuePerKeyMax?: number;
  /** Client operations waiting on one key in this pod, default 64. */
  readonly opsPerKeyMax?: number;
  /** Client operations waiting in this pod in all, default 10000. */
  readonly opsMax?: number;
  /** Directory entries a home keeps, default 100000. */
  readonly directoryEntriesMax?: number;
  /** Unacknowledged write-backs held by this pod, default 10000. */
  readonly writebacksMax?: number;
}

export const DEFAULT_LEASE_MS = 5000;
export const DEFAULT_DRIFT_MARGIN_MS = 250;
export const DEFAULT_RETRY_MS = 200;
export const DEFAULT_REQUEST_TIMEOUT_MS = 8000;
export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
export const DEFAULT_VALUE_BYTES_MAX = 1024 * 1024;
export const DEFAULT_KEY_BYTES_MAX = 256;
export const DEFAULT_HOME_QUEUE_PER_KEY_MAX = 64;
export const DEFAULT_OPS_PER_KEY_MAX = 64;
export const DEFAULT_OPS_MAX = 10_000;
export const DEFAULT_DIRECTORY_ENTRIES_MAX = 100_000;
export const DEFAULT_WRITEBACKS_MAX = 10_000;

export type CoherenceConfig = { -readonly [K in keyof CoherenceOptions]-?: CoherenceOptions[K] };

export function parseCoherenceOptions(o: CoherenceOptions): CoherenceConfig {
  if (o.self.length === 0) throw new InvalidArgumentError('self', 'self is a non-empty node id');
  const leaseMs = int('leaseMs', o.leaseMs ?? DEFAULT_LEASE_MS, 1000, 600_000);
  const c: CoherenceConfig = {
    self: o.self,
    incarnation: int('incarnation', o.incarnation, 1, Number.MAX_SAFE_INTEGER),
    homeOf: o.homeOf,
    nowMs: int('nowMs', o.nowMs, 0, Number.MAX_SAFE_INTEGER),
    leaseMs,
    driftMarginMs: int('driftMarginMs', o.driftMarginMs ?? DEFAULT_DRIFT_MARGIN_MS, 0, leaseMs),
    retryMs: int('retryMs', o.retryMs ?? DEFAULT_RETRY_MS, 1, 60_000),
    requestTimeoutMs: int('requestTimeoutMs', o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      1, 600_000),
    flushIntervalMs: int('flushIntervalMs', o.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      1, leaseMs - 1),
    startupGraceMs: 0,
    priorCopies: o.priorCopies ?? 'unknown',
    peers: o.peers ?? null,
    writePolicy: o.writePolicy ?? 'write-back',
    capacityBytes: o.capacityBytes ?? DEFAULT_LRU_CAPACITY_BYTES,
    entryOverheadBytes: o.entryOverheadBytes ?? DEFAULT_ENTRY_OVERHEAD_BYTES,
    valueBytesMax: int('valueBytesMax', o.valueBytesMax ?? DEFAULT_VALUE_BYTES_MAX, 1, 2 ** 30),
    keyBytesMax: int('keyBytesMax', o.keyBytesMax ?? DEFAULT_KEY_BYTES_MAX, 1, 65_536),
    homeQueuePerKeyMax: int('homeQueuePerKeyMax',
      o.homeQueuePerKeyMax ?? DEFAULT_HOME_QUEUE_PER_KEY_MAX, 1, 100_000),
    opsPerKeyMax: int('opsPerKeyMax', o.opsPerKeyMax ?? DEFAULT_OPS_PER_KEY_MAX, 1, 100_000),
    opsMax: int('opsMax', o.opsMax ?? DEFAULT_OPS_MAX, 1, 10_000_000),
    directoryEntriesMax: int('directoryEntriesMax',
      o.directoryEntriesMax ?? DEFAULT_DIRECTORY_ENTRIES_MAX, 1, 100_000_000),
    writebacksMax: int('writebacksMax', o.writebacksMax ?? DEFAULT_WRITEBACKS_MAX, 1, 10_000_000),
  };
  const grace = o.startupGraceMs ?? leaseMs + 2 * c.flushIntervalMs;
  if (Number.isSafeInteger(grace) && grace < leaseMs) {
    // A copy granted just before a crash could still be served when the next life grants a
    // conflicting one.
    throw new InvalidArgumentError('startupGraceMs', `startupGraceMs (${grace}) must be at ` +
      `least leaseMs (${leaseMs}): copies of a crashed home's last life live that long; ` +
      'raise startupGraceMs or leave it unset');
  }
  c.startupGraceMs = int('startupGraceMs', grace, leaseMs, leaseMs * 4);
  if (c.priorCopies !== 'none' && c.priorCopies !== 'unknown') {
    throw new InvalidArgumentError('priorCopies', 'priorCopies is none or unknown');
  }
  if (c.peers !== null && c.peers.some((p) => p.length === 0 || p === c.self)) {
    throw new InvalidArgumentError('peers', 'peers are the other pods\' non-empty ids');
  }
  if (c.writePolicy !== 'write-back' && c.writePolicy !== 'write-through') {
    throw new InvalidArgumentError('writePolicy', 'writePolicy is write-back or write-through');
  }
  if (c.driftMarginMs * 2 >= c.leaseMs) {
    throw new InvalidArgumentError('driftMarginMs', 'driftMarginMs must be below leaseMs / 2');
  }
  if (c.retryMs >= c.requestTimeoutMs) {
    throw new InvalidArgumentError('retryMs', 'retryMs must be below requestTimeoutMs');
  }
  parseLruOptions({ capacityBytes: c.capacityBytes, entryOverheadBytes: c.entryOverheadBytes });
  if (c.valueBytesMax + c.keyBytesMax + c.entryOverheadBytes > c.capacityBytes) {
    throw new InvalidArgumentError('valueBytesMax', 'one value of valueBytesMax must fit the cache');
  }
  return c;
}

function int(field: string, value: number, lo: number, hi: number): number {
  if (!Number.isSafeInteger(value) || value < lo || value > hi) {
    throw new InvalidArgumentError(field, `${field} must be an integer in ${lo}..${hi}, got ${value}`);
  }
  return value;
}

/** UTF-8 length of a string without encoding it (pure: no Buffer). */
export function utf8Bytes(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { bytes += 4; i++; }
    else bytes += 3;
  }
  return bytes;
}
