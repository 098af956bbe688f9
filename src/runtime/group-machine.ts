// The replicated part of one Raft group, pure and deterministic: the service's state machine,
// the de-duplication table and the log's clock, fed one committed entry at a time. RaftGroup
// drives it with real IO; the simulator drives the very same code, so what the simulator
// checks (batches, de-duplication, the clock rule, a new leader's first commands, snapshot
// images) is what runs in production.
import { assert } from '../assert.js';
import type { Entry } from '../raft/types.js';
import { commandFingerprint, DedupTable } from './dedup.js';
import { decode, decodeEnvelope, encode, encodeEnvelope } from './envelope.js';
import type { ApplyContext, StateMachine } from './state-machine.js';

interface Image {
  readonly sm: Uint8Array;
  readonly dedup: Array<[string, number, unknown]>;
  readonly nowMs: number;
}

/** Bounds of the de-duplication table (defaults in dedup.ts). */
export interface DedupOptions {
  readonly windowMs?: number;
  readonly entriesMax?: number;
}

export class GroupMachine {
  private dedup: DedupTable;
  private lastNowMs = 0;

  constructor(readonly sm: StateMachine, private readonly dedupOpts: DedupOptions = {}) {
    this.dedup = new DedupTable(dedupOpts.windowMs, dedupOpts.entriesMax);
  }

  /** The clock for a new entry: the proposer's wall clock, never behind what the log has
   * already seen (a leader whose clock is behind its predecessor's waits for it). */
  clock(wallMs: number): number {
    return Math.max(wallMs, this.lastNowMs);
  }

  /** Applies one committed entry and returns the result of each of its commands, by
   * position (none for configuration entries and empty batches). */
  apply(e: Entry): unknown[] {
    if (e.type !== 'normal') return [];
    const env = decodeEnvelope(e.data);
    this.lastNowMs = Math.max(this.lastNowMs, env.t);
    const results: unknown[] = [];
    for (const [position, x] of env.b.entries()) {
      const ctx: ApplyContext = { index: e.index, position, term: e.term, nowMs: this.lastNowMs };
      if (x.c === undefined || x.r === undefined) {
        results.push(this.sm.apply(x.d, ctx));
        continue;
      }
      const key = DedupTable.key(x.c, x.r, commandFingerprint(x.d));
      const seen = this.dedup.lookup(key);
      if (seen !== undefined) {
        results.push(seen.result);
        continue;
      }
      const result = this.sm.apply(x.d, ctx);
      // A provisional result is not the answer to a retry: that must apply again.
      if (this.sm.isFinal?.(result) ?? true) this.dedup.remember(key, ctx.nowMs, result);
      results.push(result);
    }
    return results;
  }

  /** The entry a leader proposes the moment it takes office in `term` (the state machine's
   * leaderStartCommands), or null when it has none. */
  leaderStartEntry(term: number, wallMs: number): Uint8Array | null {
    const commands = this.sm.leaderStartCommands?.(term) ?? [];
    if (commands.length === 0) return null;
    return encodeEnvelope({ t: this.clock(wallMs), b: commands.map((d) => ({ d })) });
  }

  /** Requests remembered for de-duplication (metrics, tests). */
  dedupSize(): number {
    return this.dedup.size;
  }

  image(): Uint8Array {
    const img: Image = {
      sm: this.sm.snapshot(), dedup: this.dedup.toJSON(), nowMs: this.lastNowMs,
    };
    return encode(img);
  }

  restore(data: Uint8Array): void {
    const img = decode<Image>(data);
    assert(typeof img === 'object' && img !== null && typeof img.nowMs === 'number' &&
      Array.isArray(img.dedup), 'snapshot image: {sm, dedup, nowMs}');
    this.sm.restore(img.sm);
    this.dedup = DedupTable.fromJSON(img.dedup, this.dedupOpts.windowMs,
      this.dedupOpts.entriesMax);
    this.lastNowMs = img.nowMs;
  }
}
