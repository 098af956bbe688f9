// The replicated state of the lock table and its snapshot bytes. Only this state is
// replicated; every index (per-owner locks, deadlines) is derived from it on restore.
// The bytes are deterministic: locks sorted by name, holders in grant order, waiters FIFO,
// expiry memory oldest first, so all replicas that applied the same commands agree on them.
import { assert } from '../assert.js';
import type { LockMode } from './commands.js';
import { LockEntry } from './lock-table-queue.js';

export interface Holder {
  readonly owner: string;
  readonly mode: LockMode;
  /** The fencing token of this grant: strictly increasing across all grants. */
  readonly token: number;
  /** The grant's own ttl: what renew without ttlMs extends by. */
  ttlMs: number;
  expiresAt: number;
}

export interface Waiter {
  readonly owner: string;
  readonly mode: LockMode;
  /** The ttl the grant will get. */
  readonly ttlMs: number;
  deadline: number;
  requestId: string | null;
}

/** A lease that ran out recently, so a late release/renew hears `expired`. */
export interface ExpiredMark {
  readonly name: string;
  readonly owner: string;
  readonly token: number;
}

export interface TableState {
  readonly locks: ReadonlyMap<string, LockEntry>;
  /** Oldest first. */
  readonly expired: readonly ExpiredMark[];
  readonly lastToken: number;
}

const FORMAT_VERSION = 1;

type HolderRow = [string, LockMode, number, number, number];
type WaiterRow = [string, LockMode, number, number, string | null];
type LockRow = [string, HolderRow[], WaiterRow[]];
type ExpiredRow = [string, string, number];

export function encodeTableState(state: TableState): Uint8Array {
  const names = [...state.locks.keys()].sort();
  const locks: LockRow[] = names.map((name) => {
    const e = state.locks.get(name);
    assert(e !== undefined, `lock ${name} listed`);
    return [
      name,
      [...e.holders.values()].map((h): HolderRow =>
        [h.owner, h.mode, h.token, h.ttlMs, h.expiresAt]),
      [...e.waiters].map((w): WaiterRow => [w.owner, w.mode, w.ttlMs, w.deadline, w.requestId]),
    ];
  });
  const expired = state.expired.map((m): ExpiredRow => [m.name, m.owner, m.token]);
  const doc = { v: FORMAT_VERSION, lastToken: state.lastToken, locks, expired };
  return new TextEncoder().encode(JSON.stringify(doc));
}

function str(v: unknown, what: string): string {
  assert(typeof v === 'string' && v.length > 0, `snapshot: ${what} must be a string`);
  return v;
}

function int(v: unknown, what: string): number {
  assert(typeof v === 'number' && Number.isSafeInteger(v), `snapshot: ${what} must be an int`);
  return v;
}

function mode(v: unknown, what: string): LockMode {
  assert(v === 'exclusive' || v === 'shared', `snapshot: ${what} must be a mode`);
  return v;
}

function rows(v: unknown, width: number, what: string): unknown[][] {
  assert(Array.isArray(v), `snapshot: ${what} must be an array`);
  for (const r of v) {
    assert(Array.isArray(r) && r.length === width, `snapshot: ${what} rows have ${width} cells`);
  }
  return v as unknown[][];
}

function decodeLock(row: unknown[]): [string, LockEntry] {
  const name = str(row[0], 'lock name');
  const holders = rows(row[1], 5, 'holders').map((h): Holder => ({
    owner: str(h[0], 'holder owner'),
    mode: mode(h[1], 'holder mode'),
    token: int(h[2], 'token'),
    ttlMs: int(h[3], 'holder ttlMs'),
    expiresAt: int(h[4], 'expiresAt'),
  }));
  const waiters = rows(row[2], 5, 'waiters').map((w): Waiter => ({
    owner: str(w[0], 'waiter owner'),
    mode: mode(w[1], 'waiter mode'),
    ttlMs: int(w[2], 'waiter ttlMs'),
    deadline: int(w[3], 'deadline'),
    requestId: w[4] === null ? null : str(w[4], 'requestId'),
  }));
  assert(holders.length + waiters.length > 0, `snapshot: lock ${name} is empty`);
  assert(new Set(holders.map((h) => h.owner)).size === holders.length,
    `snapshot: lock ${name} has an owner holding twice`);
  assert(new Set(waiters.map((w) => w.owner)).size === waiters.length,
    `snapshot: lock ${name} has an owner waiting twice`);
  return [name, LockEntry.of(holders, waiters)];
}

/** Parses snapshot bytes. Snapshots are CRC-checked by storage, so malformed bytes here are
 * a bug (or a format from the future) and fail an assertion rather than limping on. */
export function decodeTableState(data: Uint8Array): TableState {
  const doc: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  assert(typeof doc === 'object' && doc !== null, 'snapshot: an object');
  const d = doc as Record<string, unknown>;
  assert(d.v === FORMAT_VERSION, `snapshot: format version ${String(d.v)} is not supported`);
  const locks = new Map<string, LockEntry>();
  let previous = '';
  for (const row of rows(d.locks, 3, 'locks')) {
    const [name, entry] = decodeLock(row);
    assert(locks.size === 0 || name > previous, 'snapshot: locks sorted by name, no repeats');
    previous = name;
    locks.set(name, entry);
  }
  const expired = rows(d.expired, 3, 'expired').map((m): ExpiredMark => ({
    name: str(m[0], 'expired name'),
    owner: str(m[1], 'expired owner'),
    token: int(m[2], 'expired token'),
  }));
  return { locks, expired, lastToken: int(d.lastToken, 'lastToken') };
}
