// Leader election on top of one exclusive lock, like etcd's election API: candidates campaign
// (a blocking acquire, FIFO), the holder is the leader, its fencing token is the leadership
// term (strictly increasing across leaders), and the value it proclaimed travels in the owner
// name: `<value>@<8 hex digits>` (the suffix keeps two candidates with one value apart, since
// an acquire by the same owner is granted again, not queued).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  AbortError, InvalidArgumentError, LockTimeoutError, type LeaseLostError,
} from './errors.js';
import type { CallOptions } from './http.js';
import { pause, type Lease } from './lease.js';
import type { Locks } from './locks.js';

/** Owners are 1–128 bytes; the suffix takes 9. */
export const ELECTION_VALUE_BYTES_MAX = 119;
/** How often observe() looks at the lock by default, ms. */
export const DEFAULT_OBSERVE_INTERVAL_MS = 500;
/** A campaign waits in blocking acquires of at most this long each, ms. */
export const CAMPAIGN_WAIT_CHUNK_MS = 60_000;

const SUFFIX = /@[0-9a-f]{8}$/;

export interface Leader {
  /** What the leader proclaimed (its owner name when it did not campaign through the SDK). */
  readonly value: string;
  /** The fencing token of its grant: higher for every later leader. */
  readonly term: number;
  readonly owner: string;
  /** Server's end of its lease, epoch ms. */
  readonly expiresAt: number;
}

export interface CampaignOptions extends CallOptions {
  /** Lease of the leadership, ms (default 10000): how long a crashed leader blocks the next. */
  readonly ttlMs?: number;
  /** Called when the campaign has to wait, with the leader (null: none), and on every
   * change of leader while it waits. */
  readonly onWaiting?: (leader: Leader | null) => void;
}

/** This candidate's leadership: held until resign() or loss. */
export class Leadership extends EventEmitter<{ lost: [err: LeaseLostError] }>
  implements AsyncDisposable {
  constructor(readonly election: string, readonly value: string, readonly lease: Lease) {
    super();
    lease.on('lost', (err) => this.emit('lost', err));
  }

  get term(): number { return this.lease.token; }
  /** Aborts when the leadership ends (lost or resigned). */
  get signal(): AbortSignal { return this.lease.signal; }
  get isLeader(): boolean { return this.lease.state === 'held'; }

  /** Steps down: the next candidate in line becomes leader. */
  resign(o: CallOptions = {}): Promise<void> { return this.lease.release(o); }

  async [Symbol.asyncDispose](): Promise<void> { await this.lease[Symbol.asyncDispose](); }

  toJSON(): Leader {
    return { value: this.value, term: this.term, owner: this.lease.owner,
      expiresAt: this.lease.expiresAt };
  }
}

export class Election {
  constructor(private readonly locks: Locks, readonly name: string) {}

  /** The leader now, or null. */
  async leader(o: CallOptions = {}): Promise<Leader | null> {
    const v = await this.locks.get(this.name, o);
    const h = v.holders[0];
    if (h === undefined) return null;
    return { value: h.owner.replace(SUFFIX, ''), term: h.token, owner: h.owner,
      expiresAt: h.expiresAt };
  }

  /** Resolves once this candidate leads with `value`: at once when nobody leads, else when
   * its turn comes (candidates wait in line, FIFO). Waits as long as it takes, unless
   * `signal` aborts (AbortError). */
  async campaign(value: string, o: CampaignOptions = {}): Promise<Leadership> {
    const bytes = Buffer.byteLength(value);
    if (bytes < 1 || bytes > ELECTION_VALUE_BYTES_MAX) {
      throw new InvalidArgumentError(`the value must be 1..${ELECTION_VALUE_BYTES_MAX} bytes ` +
        `(it travels in the lock's owner name), got ${bytes}`, { status: 0, details: { field: 'value' } });
    }
    const owner = `${value}@${randomBytes(4).toString('hex')}`;
    const base = { owner, ttlMs: o.ttlMs ?? 10_000, mode: 'exclusive' as const,
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) };
    try {
      return new Leadership(this.name, value, await this.locks.acquire(this.name, base));
    } catch (err) {
      if (!(err instanceof LockTimeoutError)) throw err;
    }
    // Someone leads: wait in line, watching who leads meanwhile.
    const watching = new AbortController();
    const watch = o.onWaiting ? this.reportWhileWaiting(o.onWaiting, o.signal,
      watching.signal) : Promise.resolve();
    try {
      const lease = await this.locks.acquireBlocking(this.name,
        { ...base, waitChunkMs: CAMPAIGN_WAIT_CHUNK_MS });
      return new Leadership(this.name, value, lease);
    } finally {
      watching.abort();
      await watch;
    }
  }

  /** Every change of leader (null: none), starting with the current one, until `signal`
   * aborts. Polls the lock; a failed look is retried at the next interval. */
  async *observe(o: { signal?: AbortSignal; intervalMs?: number } = {}):
    AsyncGenerator<Leader | null> {
    const signal = o.signal ?? new AbortController().signal;
    let last: number | null | undefined;
    while (!signal.aborted) {
      let now: Leader | null | undefined;
      try {
        now = await this.leader({ signal });
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof AbortError) throw err;
        now = undefined;
      }
      if (now !== undefined && (now?.term ?? null) !== last) {
        last = now?.term ?? null;
        yield now;
      }
      await pause(o.intervalMs ?? DEFAULT_OBSERVE_INTERVAL_MS, signal);
    }
  }

  private async reportWhileWaiting(cb: (l: Leader | null) => void, user: AbortSignal | undefined,
    stop: AbortSignal): Promise<void> {
    const signal = user ? AbortSignal.any([user, stop]) : stop;
    try {
      for await (const l of this.observe({ signal })) cb(l);
    } catch {
      // Progress reports are best effort.
    }
  }
}
