// Every error code of dsync, in one table that the server (errors.ts, http/envelope.ts) and
// the SDK (client/errors.ts) both import, so that a code cannot exist on one side only
// (STYLE.md 20). It imports nothing: the SDK ships it without any server code.
//
// Adding a code: add a row here; the type checker then asks for its SDK class
// (client/errors.ts) and test/client/error-table.test.ts for its place in docs/openapi.yaml.

export interface ErrorCodeSpec {
  /** The HTTP status of an answer with this code. */
  readonly status: number;
  /** False for the server's internal codes: they leave a node as 503 UNAVAILABLE with
   * `reason` set to the code in lower case (envelope.ts), so the SDK never sees them. */
  readonly wire: boolean;
  /** Worth trying again as it is, later or on another node. */
  readonly retryable: boolean;
  /** When it happens, in a few words (docs/sdk.md lists them). */
  readonly summary: string;
}

export const ERROR_CODES = {
  INVALID_ARGUMENT: { status: 400, wire: true, retryable: false,
    summary: 'malformed JSON, wrong type, missing field or value out of bounds; `field` names it' },
  NOT_FOUND: { status: 404, wire: true, retryable: false,
    summary: 'no such key, topic, member or route' },
  METHOD_NOT_ALLOWED: { status: 405, wire: true, retryable: false,
    summary: 'a known route with the wrong method' },
  LOCK_TIMEOUT: { status: 409, wire: true, retryable: false,
    summary: 'the lock was not granted within waitMs' },
  DEADLOCK: { status: 409, wire: true, retryable: false,
    summary: 'waiting would close a wait-for cycle; `cycle` lists the owners' },
  NOT_HELD: { status: 409, wire: true, retryable: false,
    summary: 'release or renew of a lock the owner does not hold; `reason` says why' },
  VERSION_MISMATCH: { status: 409, wire: true, retryable: false,
    summary: 'a conditional write found another version; `currentVersion` is the one there' },
  PAYLOAD_TOO_LARGE: { status: 413, wire: true, retryable: false,
    summary: 'the body is over the node\'s limit' },
  RESOURCE_EXHAUSTED: { status: 429, wire: true, retryable: true,
    summary: 'a documented bound is reached; `limit` names it; Retry-After is set' },
  UNAVAILABLE: { status: 503, wire: true, retryable: true,
    summary: 'no leader, no quorum or home node unreachable; Retry-After is set' },
  NOT_LEADER: { status: 503, wire: false, retryable: true,
    summary: 'this node does not lead the group (sent as UNAVAILABLE, reason not_leader)' },
  INDETERMINATE: { status: 503, wire: false, retryable: true,
    summary: 'the outcome of a write is unknown; retry with the same requestId' },
  TIMEOUT: { status: 503, wire: false, retryable: true,
    summary: 'no commit within the request timeout (sent as UNAVAILABLE, reason timeout)' },
  INTERNAL: { status: 500, wire: true, retryable: false,
    summary: 'a fault of the node; it was logged there' },
} as const satisfies Record<string, ErrorCodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Codes that an answer can carry. */
export type WireErrorCode = {
  [K in ErrorCode]: (typeof ERROR_CODES)[K]['wire'] extends true ? K : never
}[ErrorCode];

/** Codes the SDK gives failures that are not a node's answer. They never travel on the wire
 * and never collide with ERROR_CODES (a test checks). `status` is 0: there was no answer. */
export const CLIENT_ERROR_CODES = {
  NETWORK: { retryable: true,
    summary: 'no answer: connection refused or reset, host unknown, or the attempt timed out' },
  BAD_RESPONSE: { retryable: false,
    summary: 'the answer was not dsync\'s (not JSON, or not the envelope): a wrong URL' },
  DEADLINE_EXCEEDED: { retryable: true,
    summary: 'the call\'s timeout passed; `cause` is the last failure' },
  ABORTED: { retryable: false, summary: 'the caller\'s AbortSignal fired' },
  LEASE_LOST: { retryable: false,
    summary: 'a lease ran out before a renewal succeeded, or the server said NOT_HELD' },
  CLOSED: { retryable: false, summary: 'the client was closed' },
} as const satisfies Record<string, { retryable: boolean; summary: string }>;

export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

export function isWireErrorCode(code: unknown): code is WireErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) &&
    ERROR_CODES[code as ErrorCode].wire;
}

/** The HTTP status of every server code (the envelope's table). */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = Object.fromEntries(
  Object.entries(ERROR_CODES).map(([code, spec]) => [code, spec.status]),
) as Record<ErrorCode, number>;
