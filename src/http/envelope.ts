// The error envelope of API.md: {"error": {"code", "message", ...details}} with a status that
// follows from the code. Any error that is not a DsyncError is a server-side fault: 500
// INTERNAL, with a message that hides internals (the stack goes to the log instead).
import { DsyncError } from '../errors.js';
import { ERROR_CODES, HTTP_STATUS_BY_CODE, type ErrorCode } from '../error-codes.js';

/** The status of each code: the shared table of error-codes.ts (the SDK reads the same). */
export { HTTP_STATUS_BY_CODE };

/** Seconds a client should wait before retrying a 503 or 429: long enough for an election. */
export const DEFAULT_RETRY_AFTER_SECONDS = 1;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; [detail: string]: unknown };
}

export interface ErrorResponse {
  readonly status: number;
  readonly body: ErrorBody;
  /** Set for 503 and 429, per API.md. */
  readonly retryAfterSeconds: number | null;
  /** True for a fault of ours (5xx that is not a known retryable condition): log with stack. */
  readonly internal: boolean;
}

export function errorResponse(err: unknown): ErrorResponse {
  if (!(err instanceof DsyncError)) {
    return {
      status: 500,
      body: { error: { code: 'INTERNAL', message: 'internal error; it was logged on the node' } },
      retryAfterSeconds: null,
      internal: true,
    };
  }
  const status = HTTP_STATUS_BY_CODE[err.code];
  // API.md promises one code for every 503: UNAVAILABLE. The finer cause (not_leader,
  // indeterminate, timeout) travels as `reason`, which callers may read but need not.
  const wire = ERROR_CODES[err.code].wire;
  const code: ErrorCode = wire ? err.code : 'UNAVAILABLE';
  const reason = wire ? {} : { reason: err.code.toLowerCase() };
  // Details never overwrite code and message.
  const body: ErrorBody = { error: { ...err.details, ...reason, code, message: err.message } };
  const retryable = status === 503 || status === 429;
  return {
    status,
    body,
    retryAfterSeconds: retryable ? DEFAULT_RETRY_AFTER_SECONDS : null,
    internal: status === 500,
  };
}

/** The inverse, for forwarding and for clients: a DsyncError from a received envelope, or null
 * when the body is not one. */
export function errorFromEnvelope(body: unknown): DsyncError | null {
  if (typeof body !== 'object' || body === null) return null;
  const e = (body as { error?: unknown }).error;
  if (typeof e !== 'object' || e === null) return null;
  const { code, message, ...details } = e as Record<string, unknown>;
  if (typeof code !== 'string' || !Object.hasOwn(HTTP_STATUS_BY_CODE, code)) return null;
  return new DsyncError(code as ErrorCode, typeof message === 'string' ? message : code,
    { details });
}
