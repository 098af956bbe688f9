// The vocabulary of the lock service's replicated state machine: the commands the leader
// proposes, the result each one yields, the events it causes for OTHER requests, and the
// read views. Commands travel in Raft entries, so they are plain data with an encoding that
// is validated on the way back in (a corrupt or foreign entry must never reach the table).
import { InvalidArgumentError } from '../errors.js';

export type LockMode = 'exclusive' | 'shared';

/** Every command is applied at a Raft index with the leader's clock carried in the command. */
export interface ApplyCtx {
  readonly index: number;
  readonly nowMs: number;
}

export type LockCommand =
  | {
      readonly type: 'acquire';
      readonly name: string;
      readonly owner: string;
      readonly mode: LockMode;
      readonly ttlMs: number;
      /** 0 means "answer at once": not grantable → `timeout`. */
      readonly waitMs: number;
      readonly requestId?: string;
    }
  | { readonly type: 'release'; readonly name: string; readonly owner: string;
      readonly token?: number }
  | { readonly type: 'renew'; readonly name: string; readonly owner: string;
      readonly ttlMs?: number }
  /** The waiting client went away: drop its place in the queue. */
  | { readonly type: 'cancelWait'; readonly name: string; readonly owner: string }
  /** The leader's periodic command: expire leases and wait deadlines <= nowMs. */
  | { readonly type: 'tick' }
  /** A new leader's first command: push every lease out so failover takes no lock away. */
  | { readonly type: 'extendLeases'; readonly byMs: number };

export type LockResult =
  | { readonly type: 'granted'; readonly name: string; readonly owner: string;
      readonly mode: LockMode; readonly token: number; readonly expiresAt: number }
  /** The request waits; the shell keeps the HTTP call open until an event answers it. */
  | { readonly type: 'waiting'; readonly name: string; readonly owner: string;
      readonly mode: LockMode; readonly deadline: number }
  /** Owners in the wait-for cycle, starting with the requester. */
  | { readonly type: 'deadlock'; readonly cycle: readonly string[] }
  /** waitMs was 0 and the lock was not grantable. */
  | { readonly type: 'timeout' }
  | { readonly type: 'released' }
  | { readonly type: 'renewed'; readonly expiresAt: number }
  | { readonly type: 'notHeld'; readonly reason: NotHeldReason }
  | { readonly type: 'exhausted'; readonly limit: LockLimitName; readonly max: number }
  | { readonly type: 'ok' };

export type NotHeldReason = 'not_holder' | 'expired' | 'stale_token';
export type LockLimitName = 'waitersPerLock' | 'locksPerOwner' | 'locks' | 'holdersPerLock';

/** Side effects on OTHER requests (waiting HTTP calls, holders that lost their lease).
 * `requestId` is the one the waiting acquire carried, when it carried one. */
export type LockEvent =
  | { readonly type: 'granted'; readonly name: string; readonly owner: string;
      readonly mode: LockMode; readonly token: number; readonly expiresAt: number;
      readonly requestId?: string }
  | { readonly type: 'waitTimedOut'; readonly name: string; readonly owner: string;
      readonly requestId?: string }
  | { readonly type: 'waitCancelled'; readonly name: string; readonly owner: string;
      readonly requestId?: string }
  | { readonly type: 'expired'; readonly name: string; readonly owner: string;
      readonly token: number };

export interface LockHolderView {
  readonly owner: string;
  readonly mode: LockMode;
  readonly token: number;
  readonly expiresAt: number;
}

export interface LockWaiterView {
  readonly owner: string;
  readonly mode: LockMode;
}

/** The shape of `GET /v1/locks/{name}` (API.md). Holders in grant order, waiters FIFO. */
export interface LockView {
  readonly name: string;
  readonly mode: LockMode | null;
  readonly holders: readonly LockHolderView[];
  readonly waiters: readonly LockWaiterView[];
}

/** Bounds of API.md: names 1–256 bytes of UTF-8 without control characters, owners 1–128. */
export const LOCK_NAME_BYTES_MAX = 256;
export const LOCK_OWNER_BYTES_MAX = 128;
export const LOCK_REQUEST_ID_BYTES_MAX = 128;
/** API.md: ttlMs is at least 100. The upper bounds are ours: a day of lease, an hour of wait. */
export const LOCK_TTL_MS_MIN = 100;
export const LOCK_TTL_MS_MAX = 86_400_000;
export const LOCK_WAIT_MS_MAX = 3_600_000;
/** extendLeases is one election timeout; a minute is far beyond any sane setting. */
export const LOCK_EXTEND_MS_MAX = 60_000;

const utf8 = new TextEncoder();
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function parseText(v: unknown, field: string, bytesMax: number): string {
  if (typeof v !== 'string') throw new InvalidArgumentError(field, `${field} must be a string`);
  const bytes = utf8.encode(v).length;
  if (bytes < 1 || bytes > bytesMax) {
    throw new InvalidArgumentError(field, `${field} must be 1 to ${bytesMax} bytes of UTF-8`);
  }
  if (CONTROL_CHARS.test(v)) {
    throw new InvalidArgumentError(field, `${field} must not contain control characters`);
  }
  return v;
}

function parseInt(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(field, `${field} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function parseMode(v: unknown): LockMode {
  if (v !== 'exclusive' && v !== 'shared') {
    throw new InvalidArgumentError('mode', 'mode must be "exclusive" or "shared"');
  }
  return v;
}

function fieldsOf(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidArgumentError('command', 'a lock command must be an object');
  }
  return v as Record<string, unknown>;
}

/** Validates an untrusted value as a LockCommand; throws InvalidArgumentError naming the
 * field. Unknown fields are dropped so that the encoded form stays canonical. */
export function parseLockCommand(value: unknown): LockCommand {
  const f = fieldsOf(value);
  switch (f.type) {
    case 'acquire': {
      const cmd = {
        type: 'acquire' as const,
        name: parseText(f.name, 'name', LOCK_NAME_BYTES_MAX),
        owner: parseText(f.owner, 'owner', LOCK_OWNER_BYTES_MAX),
        mode: parseMode(f.mode),
        ttlMs: parseInt(f.ttlMs, 'ttlMs', LOCK_TTL_MS_MIN, LOCK_TTL_MS_MAX),
        waitMs: parseInt(f.waitMs, 'waitMs', 0, LOCK_WAIT_MS_MAX),
      };
      if (f.requestId === undefined) return cmd;
      return { ...cmd, requestId: parseText(f.requestId, 'requestId', LOCK_REQUEST_ID_BYTES_MAX) };
    }
    case 'release': {
      const name = parseText(f.name, 'name', LOCK_NAME_BYTES_MAX);
      const owner = parseText(f.owner, 'owner', LOCK_OWNER_BYTES_MAX);
      if (f.token === undefined) return { type: 'release', name, owner };
      return { type: 'release', name, owner,
        token: parseInt(f.token, 'token', 1, Number.MAX_SAFE_INTEGER) };
    }
    case 'renew': {
      const name = parseText(f.name, 'name', LOCK_NAME_BYTES_MAX);
      const owner = parseText(f.owner, 'owner', LOCK_OWNER_BYTES_MAX);
      if (f.ttlMs === undefined) return { type: 'renew', name, owner };
      return { type: 'renew', name, owner,
        ttlMs: parseInt(f.ttlMs, 'ttlMs', LOCK_TTL_MS_MIN, LOCK_TTL_MS_MAX) };
    }
    case 'cancelWait':
      return {
        type: 'cancelWait',
        name: parseText(f.name, 'name', LOCK_NAME_BYTES_MAX),
        owner: parseText(f.owner, 'owner', LOCK_OWNER_BYTES_MAX),
      };
    case 'tick':
      return { type: 'tick' };
    case 'extendLeases':
      return { type: 'extendLeases', byMs: parseInt(f.byMs, 'byMs', 0, LOCK_EXTEND_MS_MAX) };
    default:
      throw new InvalidArgumentError('type', `unknown lock command type ${String(f.type)}`);
  }
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** JSON in UTF-8: compact enough for lock commands, readable in a WAL dump, and canonical
 * because parseLockCommand fixes the key order. */
export function encodeLockCommand(cmd: LockCommand): Uint8Array {
  return utf8.encode(JSON.stringify(parseLockCommand(cmd)));
}

export function decodeLockCommand(data: Uint8Array): LockCommand {
  let value: unknown;
  try {
    value = JSON.parse(utf8Decoder.decode(data));
  } catch (err) {
    throw new InvalidArgumentError('command', `not an encoded lock command: ${String(err)}`);
  }
  return parseLockCommand(value);
}

/** One readable line for logs and golden tests. */
export function describeLockCommand(cmd: LockCommand): string {
  switch (cmd.type) {
    case 'acquire':
      return `acquire ${cmd.name} by ${cmd.owner} ${cmd.mode} ttl=${cmd.ttlMs}ms ` +
        `wait=${cmd.waitMs}ms${cmd.requestId === undefined ? '' : ` req=${cmd.requestId}`}`;
    case 'release':
      return `release ${cmd.name} by ${cmd.owner}` +
        (cmd.token === undefined ? '' : ` token=${cmd.token}`);
    case 'renew':
      return `renew ${cmd.name} by ${cmd.owner}` +
        (cmd.ttlMs === undefined ? '' : ` ttl=${cmd.ttlMs}ms`);
    case 'cancelWait':
      return `cancelWait ${cmd.name} by ${cmd.owner}`;
    case 'tick':
      return 'tick';
    case 'extendLeases':
      return `extendLeases by ${cmd.byMs}ms`;
  }
}
