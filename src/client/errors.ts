// Errors the SDK throws: one class per error code, all under DsyncError. The codes and their
// statuses are the table of ../error-codes.ts, which the server uses as well; the type of
// WIRE_ERROR_CLASSES below makes the compiler ask for a class when a code is added there.
// Callers match on the class or on `code`, never on the message.
import {
  CLIENT_ERROR_CODES, ERROR_CODES, isWireErrorCode, type ClientErrorCode, type WireErrorCode,
} from '../error-codes.js';

export type SdkErrorCode = WireErrorCode | ClientErrorCode;

export interface DsyncErrorOptions {
  /** HTTP status of the answer; 0 when there was none. Default: the code's, from the table. */
  readonly status?: number;
  /** The fields beside `code` and `message` in the server's envelope. */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
  /** The answer's Retry-After, in ms; null when it had none. */
  readonly retryAfterMs?: number | null;
  /** The node URL that answered (or failed to), when one did. */
  readonly node?: string | null;
}

export class DsyncError extends Error {
  /** Stable: match on it. Codes of the API (LOCK_TIMEOUT, NOT_HELD, …) and of the SDK itself
   * (NETWORK, DEADLINE_EXCEEDED, …); docs/sdk.md lists them all. */
  readonly code: SdkErrorCode;
  /** HTTP status of the answer, 0 when no answer came. */
  readonly status: number;
  /** Worth trying again as it is (the SDK already did, within the call's timeout). */
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;
  readonly retryAfterMs: number | null;
  readonly node: string | null;

  constructor(code: SdkErrorCode, message: string, o: DsyncErrorOptions = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = 'DsyncError';
    this.code = code;
    const wire = isWireErrorCode(code);
    this.status = o.status ?? (wire ? ERROR_CODES[code].status : 0);
    this.retryable = wire ? ERROR_CODES[code].retryable
      : CLIENT_ERROR_CODES[code].retryable;
    this.details = o.details ?? {};
    this.retryAfterMs = o.retryAfterMs ?? null;
    this.node = o.node ?? null;
  }
}

/** @deprecated The old name of DsyncError; `instanceof` works with either. */
export { DsyncError as DsyncApiError };

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** 400: `field` names the offending input (`ttlMs`, `body.value`, …). */
export class InvalidArgumentError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('INVALID_ARGUMENT', message, o);
    this.name = 'InvalidArgumentError';
  }

  get field(): string | undefined { return str(this.details.field); }
}

export class NotFoundError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('NOT_FOUND', message, o);
    this.name = 'NotFoundError';
  }
}

export class MethodNotAllowedError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('METHOD_NOT_ALLOWED', message, o);
    this.name = 'MethodNotAllowedError';
  }
}

/** The lock was not granted within waitMs. */
export class LockTimeoutError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('LOCK_TIMEOUT', message, o);
    this.name = 'LockTimeoutError';
  }
}

/** Waiting would close a wait-for cycle; nothing changed. */
export class DeadlockError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('DEADLOCK', message, o);
    this.name = 'DeadlockError';
  }

  /** The owners in the cycle, as the server listed them. */
  get cycle(): string[] {
    const c = this.details.cycle;
    return Array.isArray(c) ? c.filter((x): x is string => typeof x === 'string') : [];
  }
}

/** Release or renew by an owner that does not hold the lock. */
export class NotHeldError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('NOT_HELD', message, o);
    this.name = 'NotHeldError';
  }

  /** `not_holder`, `expired` or `stale_token`. */
  get reason(): string | undefined { return str(this.details.reason); }
}

/** A conditional write (putIfVersion) found another version of the key. */
export class VersionMismatchError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('VERSION_MISMATCH', message, o);
    this.name = 'VersionMismatchError';
  }

  /** The version the key has now; null when it does not exist. */
  get currentVersion(): number | null {
    const v = this.details.currentVersion;
    return typeof v === 'number' ? v : null;
  }
}

export class PayloadTooLargeError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('PAYLOAD_TOO_LARGE', message, o);
    this.name = 'PayloadTooLargeError';
  }
}

/** A documented bound was reached; retried within the call's timeout, after Retry-After. */
export class ResourceExhaustedError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('RESOURCE_EXHAUSTED', message, o);
    this.name = 'ResourceExhaustedError';
  }

  /** The name of the bound (`waitersPerLock`, `locksPerOwner`, …). */
  get limit(): string | undefined { return str(this.details.limit); }
}

/** No leader, no quorum, a node shutting down or a home unreachable: retried by the SDK. */
export class UnavailableError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('UNAVAILABLE', message, o);
    this.name = 'UnavailableError';
  }

  /** The server's finer cause: `not_leader`, `indeterminate`, `timeout`, or none. */
  get reason(): string | undefined { return str(this.details.reason); }
}

export class InternalError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('INTERNAL', message, o);
    this.name = 'InternalError';
  }
}

/** No answer came: `sent` is false when the request cannot have reached a node (connection
 * refused, host unknown), so that even a write is safe to send again. */
export class NetworkError extends DsyncError {
  constructor(message: string, readonly sent: boolean, o: DsyncErrorOptions = {}) {
    super('NETWORK', message, { ...o, status: 0 });
    this.name = 'NetworkError';
  }
}

/** The answer was not dsync's: not JSON, or an error without the envelope. */
export class BadResponseError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('BAD_RESPONSE', message, o);
    this.name = 'BadResponseError';
  }
}

/** The call's timeout passed; `cause` is the last failure, if any attempt failed. */
export class DeadlineExceededError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('DEADLINE_EXCEEDED', message, { ...o, status: 0 });
    this.name = 'DeadlineExceededError';
  }
}

/** The caller's AbortSignal fired; `cause` is the signal's reason. */
export class AbortError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('ABORTED', message, { ...o, status: 0 });
    this.name = 'AbortError';
  }
}

/** A lease ended without its release: it ran out before a renewal succeeded, or the server
 * said NOT_HELD (then `cause` is that NotHeldError). */
export class LeaseLostError extends DsyncError {
  constructor(message: string, o: DsyncErrorOptions = {}) {
    super('LEASE_LOST', message, { ...o, status: 0 });
    this.name = 'LeaseLostError';
  }
}

/** The client was closed before or while the call ran. */
export class ClientClosedError extends DsyncError {
  constructor(message = 'the DsyncClient was closed; create a new one', o: DsyncErrorOptions = {}) {
    super('CLOSED', message, { ...o, status: 0 });
    this.name = 'ClientClosedError';
  }
}

type ErrorClass = new (message: string, o?: DsyncErrorOptions) => DsyncError;

/** The class of every code an answer can carry: the compiler requires one per code. */
export const WIRE_ERROR_CLASSES: { readonly [K in WireErrorCode]: ErrorClass } = {
  INVALID_ARGUMENT: InvalidArgumentError,
  NOT_FOUND: NotFoundError,
  METHOD_NOT_ALLOWED: MethodNotAllowedError,
  LOCK_TIMEOUT: LockTimeoutError,
  DEADLOCK: DeadlockError,
  NOT_HELD: NotHeldError,
  VERSION_MISMATCH: VersionMismatchError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  RESOURCE_EXHAUSTED: ResourceExhaustedError,
  UNAVAILABLE: UnavailableError,
  INTERNAL: InternalError,
};

/** The class of every code the SDK makes itself (NetworkError takes `sent` first). */
export const CLIENT_ERROR_CLASSES: {
  readonly [K in ClientErrorCode]: new (...args: never[]) => DsyncError } = {
  NETWORK: NetworkError,
  BAD_RESPONSE: BadResponseError,
  DEADLINE_EXCEEDED: DeadlineExceededError,
  ABORTED: AbortError,
  LEASE_LOST: LeaseLostError,
  CLOSED: ClientClosedError,
};

/** The typed error for a non-2xx answer with a parsed JSON body. A body that is not the
 * envelope, or a code this SDK does not know, is a BadResponseError that keeps the status. */
export function errorFromAnswer(status: number, body: unknown, node: string,
  retryAfterMs: number | null): DsyncError {
  const e = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error
    : undefined;
  if (typeof e !== 'object' || e === null) {
    return new BadResponseError(`${node} answered HTTP ${status} without dsync's error ` +
      'envelope: is this URL a dsync node of the right service?', { status, node });
  }
  const { code, message, ...details } = e as Record<string, unknown>;
  const text = typeof message === 'string' ? message : `HTTP ${status}`;
  if (!isWireErrorCode(code)) {
    return new BadResponseError(`${node} answered HTTP ${status} with error code ` +
      `${JSON.stringify(code)}, unknown to this SDK (${text}): upgrade the SDK`,
    { status, node, details });
  }
  return new WIRE_ERROR_CLASSES[code](text, { status, node, details, retryAfterMs });
}
