// Receives that wait on this node (long polls, `waitMs` > 0), parked per topic until a command
// that applies here makes messages receivable (the partition's `available` events). The
// number parked on one node is bounded: past it a receive with waitMs is refused at once
// with 429 (limit `longPolls`) rather than held.
//
// A wake-up is not a promise of messages: a woken receive proposes again and may find that
// another consumer was faster. To keep one message from waking a herd, an event wakes the
// parked receives of a group in arrival order only until their `max` covers what the group
// has ready; a receive that got messages notifies its topic again, so the next ones follow.
import { assert } from '../assert.js';
import { DsyncError } from '../errors.js';

/** Receives parked on one node at most (default). */
export const DEFAULT_LONG_POLLS_MAX = 10_000;

/** How many messages `group` of `topic` has ready, or null when the group does not exist
 * (its first receive creates it, so every parked receive of it is woken). */
export type ReadyCount = (topic: string, group: string) => number | null;

export class ParkedReceive {
  private woken = false;
  private resolveWake: (() => void) | null = null;

  constructor(readonly topic: string, readonly group: string, readonly max: number) {}

  /** Marks it woken; a wait in progress (or the next one) returns at once. */
  wake(): void {
    this.woken = true;
    this.resolveWake?.();
  }

  /** Clears the mark before the receive proposes again: a wake-up during the proposal is
   * then seen by the next wait instead of being lost. */
  rearm(): void {
    this.woken = false;
  }

  /** True when woken, false at the deadline or when `signal` aborts. */
  async wait(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.woken) return true;
    if (timeoutMs <= 0 || signal?.aborted === true) return false;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await new Promise<boolean>((resolve) => {
        this.resolveWake = () => resolve(true);
        timer = setTimeout(() => resolve(false), timeoutMs);
        onAbort = () => resolve(false);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    } finally {
      this.resolveWake = null;
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
  }
}

export class LongPolls {
  private readonly byTopic = new Map<string, Set<ParkedReceive>>();
  private parked = 0;
  private readonly pending = new Set<string>();
  private flushing = false;

  constructor(private readonly max: number, private readonly readyOf: ReadyCount) {
    assert(Number.isSafeInteger(max) && max >= 1, 'longPollsMax is a positive integer');
  }

  get size(): number {
    return this.parked;
  }

  /** Parks a receive; throws RESOURCE_EXHAUSTED (429) when this node holds `max` already. */
  park(topic: string, group: string, max: number): ParkedReceive {
    if (this.parked >= this.max) {
      throw new DsyncError('RESOURCE_EXHAUSTED', `${this.max} receives are already waiting on ` +
        'this node; retry after the Retry-After delay, or receive with a shorter waitMs',
      { retryable: true, details: { limit: 'longPolls', max: this.max } });
    }
    const p = new ParkedReceive(topic, group, max);
    let set = this.byTopic.get(topic);
    if (set === undefined) this.byTopic.set(topic, (set = new Set()));
    set.add(p);
    this.parked++;
    return p;
  }

  unpark(p: ParkedReceive): void {
    const set = this.byTopic.get(p.topic);
    if (set?.delete(p) !== true) return;
    this.parked--;
    if (set.size === 0) this.byTopic.delete(p.topic);
  }

  /** Something became receivable on `topic`: wakes parked receives on the next turn (the
   * events of one Raft entry arrive one by one while it applies). */
  notify(topic: string): void {
    if (!this.byTopic.has(topic)) return;
    this.pending.add(topic);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      const topics = [...this.pending];
      this.pending.clear();
      for (const t of topics) this.wakeFor(t);
    });
  }

  /** Wakes every parked receive (shutdown, or leadership moved away: they answer empty). */
  wakeAll(): void {
    for (const set of this.byTopic.values()) for (const p of set) p.wake();
  }

  private wakeFor(topic: string): void {
    const set = this.byTopic.get(topic);
    if (set === undefined) return;
    const budget = new Map<string, number | null>();
    for (const p of set) {
      if (!budget.has(p.group)) budget.set(p.group, this.readyOf(topic, p.group));
      const left = budget.get(p.group);
      if (left === undefined) continue;
      if (left === null) {
        p.wake();
        continue;
      }
      if (left <= 0) continue;
      p.wake();
      budget.set(p.group, left - p.max);
    }
  }
}
