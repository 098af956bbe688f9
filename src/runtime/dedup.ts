// Replicated de-duplication of client requests: (clientId, requestId) → the result of the
// first application. Eviction is deterministic (insertion order, the log's clock), so every
// replica keeps exactly the same table and a snapshot carries it.

/** How long a request id is remembered, in ms of the leader's clock (5 minutes). */
export const DEFAULT_DEDUP_WINDOW_MS = 5 * 60_000;
/** How many request ids are remembered at most. */
export const DEFAULT_DEDUP_ENTRIES_MAX = 100_000;

interface Remembered {
  readonly atMs: number;
  readonly result: unknown;
}

export class DedupTable {
  private readonly seen = new Map<string, Remembered>();

  constructor(
    private readonly windowMs = DEFAULT_DEDUP_WINDOW_MS,
    private readonly entriesMax = DEFAULT_DEDUP_ENTRIES_MAX,
  ) {}

  static key(clientId: string, requestId: string): string {
    return `${clientId}\u0000${requestId}`;
  }

  lookup(key: string): Remembered | undefined {
    return this.seen.get(key);
  }

  remember(key: string, nowMs: number, result: unknown): void {
    this.seen.set(key, { atMs: nowMs, result });
    this.evict(nowMs);
  }

  private evict(nowMs: number): void {
    // Map iteration is insertion order, which is log order: the oldest come first.
    for (const [k, v] of this.seen) {
      if (this.seen.size <= this.entriesMax && nowMs - v.atMs <= this.windowMs) break;
      this.seen.delete(k);
    }
  }

  get size(): number {
    return this.seen.size;
  }

  toJSON(): Array<[string, number, unknown]> {
    return [...this.seen].map(([k, v]) => [k, v.atMs, v.result]);
  }

  static fromJSON(rows: Array<[string, number, unknown]>, windowMs?: number, max?: number):
    DedupTable {
    const t = new DedupTable(windowMs, max);
    for (const [k, atMs, result] of rows) t.seen.set(k, { atMs, result });
    return t;
  }
}
