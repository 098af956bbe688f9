// Operational errors: one base class with a stable `code` and a `retryable` flag. Bugs are
// assertion failures (assert.ts) and are never caught. The HTTP layer maps codes to the
// envelope of API.md. The codes, their statuses and whether they are retryable are the table
// of error-codes.ts, shared with the SDK.

import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

export class DsyncError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Extra fields that sit beside code and message in the error envelope. */
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DsyncError';
    this.code = code;
    this.retryable = opts.retryable ?? ERROR_CODES[code].retryable;
    this.details = opts.details ?? {};
  }
}

export class InvalidArgumentError extends DsyncError {
  /** `details` go beside `field` in the envelope (e.g. the limit that was passed). */
  constructor(field: string, message: string, details: Record<string, unknown> = {}) {
    super('INVALID_ARGUMENT', message, { details: { ...details, field } });
    this.name = 'InvalidArgumentError';
  }
}

/** The node is not the leader of the group; `leader` is its best guess (may be null). */
export class NotLeaderError extends DsyncError {
  constructor(readonly leader: string | null, group = 0) {
    super('NOT_LEADER', `this node is not the leader of group ${group}; ` +
      (leader === null ? 'no leader is known yet, retry shortly' : `retry on ${leader}`),
      { retryable: true, details: { leader, group } });
    this.name = 'NotLeaderError';
  }
}

export class UnavailableError extends DsyncError {
  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super('UNAVAILABLE', message, { retryable: true, details, cause });
    this.name = 'UnavailableError';
  }
}

/** The outcome of a write is unknown (leadership lost after it was proposed). Retry with the
 * same requestId: de-duplication makes that safe. */
export class IndeterminateError extends DsyncError {
  constructor(message: string, cause?: unknown) {
    super('INDETERMINATE', message, { retryable: true, cause });
    this.name = 'IndeterminateError';
  }
}

export class TimeoutError extends DsyncError {
  constructor(message: string) {
    super('TIMEOUT', message, { retryable: true });
    this.name = 'TimeoutError';
  }
}
