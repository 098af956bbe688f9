// Replicated de-duplication of client requests. A request is known by who sent it (client
// id), the id the client gave it (request id) and what it is (a fingerprint of the command's
// bytes): a retry of the same request gets the result of its first application, while a
// different command that reuses a request id (another owner numbering its requests from 1
// too, or one client asking for another lock under an old id) is simply a new request.
// Eviction is deterministic (insertion order, the log's clock), so every replica keeps
// exactly the same table and a snapshot carries it.
import { xxh64 } from '@node-rs/xxhash';

/** How long a request id is remembered, in ms of the leader's clock (5 minutes). */
export const DEFAULT_DEDUP_WINDOW_MS = 5 * 60_000;
/** How many request ids are remembered at most. */
export const DEFAULT_DEDUP_ENTRIES_MAX = 100_000;
/** The client id of a caller that sends no `x-dsync-client` header (http/validate.ts
 * clientIdOf bounds the header). */
export const ANONYMOUS_CLIENT_ID = 'http';

/** What a command is, for de-duplication: 64 bits of xxHash64 of its bytes, in hex. */
export function commandFingerprint(command: Uint8Array): string {
  return xxh64(command).toString(16).padStart(16, '0');
}

interface Remembered {
  readonly atMs: number;
  readonly result: unknown;
}

export class DedupTable {
  private readonly seen = new Map<string, Remembered>();
  /** The keys of `seen` in its insertion order, oldest at `head`: eviction takes them from
   * here, because iterating the Map from its start skips the holes that earlier deletions
   * left in it (until V8 compacts it), which made every command of a replay cost O(window). */
  private order: string[] = [];
  private head = 0;

  constructor(
    private readonly windowMs = DEFAULT_DEDUP_WINDOW_MS,
    private readonly entriesMax = DEFAULT_DEDUP_ENTRIES_MAX,
  ) {}

  /** Client ids and request ids never contain NUL (printable, or chosen by our code). */
  static key(clientId: string, requestId: string, fingerprint: string): string {
    return `${clientId}\u0000${requestId}\u0000${fingerprint}`;
  }

  lookup(key: string): Remembered | undefined {
    return this.seen.get(key);
  }

  remember(key: string, nowMs: number, result: unknown): void {
    if (!this.seen.has(key)) this.order.push(key);
    this.seen.set(key, { atMs: nowMs, result });
    this.evict(nowMs);
  }

  private evict(nowMs: number): void {
    // Insertion order is log order: the oldest come first.
    while (this.head < this.order.length) {
      const k = this.order[this.head] as string;
      const v = this.seen.get(k);
      const keep = this.seen.size <= this.entriesMax && nowMs - (v?.atMs ?? 0) <= this.windowMs;
      if (v !== undefined && keep) break;
      this.seen.delete(k);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }

  get size(): number {
    return this.seen.size;
  }

  toJSON(): Array<[string, number, unknown]> {
    return [...this.seen].map(([k, v]) => [k, v.atMs, v.result]);
  }

  /** Rows of a snapshot. Rows written before fingerprints were part of the key (client id
   * and request id alone) match no new key and simply age out. */
  static fromJSON(rows: Array<[string, number, unknown]>, windowMs?: number, max?: number):
    DedupTable {
    const t = new DedupTable(windowMs, max);
    for (const [k, atMs, result] of rows) {
      if (!t.seen.has(k)) t.order.push(k);
      t.seen.set(k, { atMs, result });
    }
    return t;
  }
}
