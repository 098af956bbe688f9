// Errors the SDK throws. `code` is the API's error code (LOCK_TIMEOUT, DEADLOCK, NOT_HELD, …),
// NETWORK / DEADLINE_EXCEEDED for failures before an answer arrived, or BAD_RESPONSE when the
// answer was not dsync's (the URL points at something else).

export class DsyncApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DsyncApiError';
  }

  /** Worth retrying on another node: no leader yet, node shutting down, network trouble. */
  get retryable(): boolean {
    return this.status === 503 || this.code === 'NETWORK';
  }
}
