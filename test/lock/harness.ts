// A table driven with a virtual clock and consecutive Raft indexes, checking every invariant
// after every command.
import type { LockCommand, LockEvent, LockMode, LockResult } from '../../src/lock/commands.js';
import { LockTable, type LockLimits } from '../../src/lock/lock-table.js';

export class Harness {
  readonly table: LockTable;
  index = 0;
  nowMs = 1_000_000;

  constructor(limits: Partial<LockLimits> = {}, table?: LockTable) {
    this.table = table ?? new LockTable(limits);
  }

  apply(cmd: LockCommand): { result: LockResult; events: LockEvent[] } {
    this.index += 1;
    const out = this.table.apply(cmd, { index: this.index, nowMs: this.nowMs });
    this.table.checkInvariants();
    return out;
  }

  acquire(name: string, owner: string, opts: { mode?: LockMode; ttlMs?: number;
    waitMs?: number; requestId?: string } = {}): { result: LockResult; events: LockEvent[] } {
    return this.apply({ type: 'acquire', name, owner, mode: opts.mode ?? 'exclusive',
      ttlMs: opts.ttlMs ?? 30_000, waitMs: opts.waitMs ?? 0,
      ...(opts.requestId === undefined ? {} : { requestId: opts.requestId }) });
  }

  release(name: string, owner: string, token?: number): { result: LockResult;
    events: LockEvent[] } {
    return this.apply({ type: 'release', name, owner, ...(token === undefined ? {} : { token }) });
  }

  renew(name: string, owner: string, ttlMs?: number): { result: LockResult;
    events: LockEvent[] } {
    return this.apply({ type: 'renew', name, owner, ...(ttlMs === undefined ? {} : { ttlMs }) });
  }

  tick(advanceMs = 0): { result: LockResult; events: LockEvent[] } {
    this.nowMs += advanceMs;
    return this.apply({ type: 'tick' });
  }

  holders(name: string): string[] {
    return this.table.get(name).holders.map((h) => `${h.owner}:${h.mode}`);
  }

  waiters(name: string): string[] {
    return this.table.get(name).waiters.map((w) => `${w.owner}:${w.mode}`);
  }
}

/** The token of a granted result (fails the test otherwise). */
export function tokenOf(r: LockResult): number {
  if (r.type !== 'granted') throw new Error(`expected granted, got ${JSON.stringify(r)}`);
  return r.token;
}
