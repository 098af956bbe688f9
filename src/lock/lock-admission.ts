// The acquires a leader has proposed and not yet seen applied, counted by what they may add
// to the lock table, so that its early refusal (LockTable.refusal) of work a bound would
// refuse also holds for a burst: 10,000 acquires arriving together on a lock with room for
// 1,000 waiters put about 1,000 commands in the log, not 10,000. Local, derived state of one
// node: never replicated, never part of a decision of the table itself.
import { assert } from '../assert.js';
import type { InflightLoad } from './lock-table.js';

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  assert(n >= 0, () => `in-flight count of ${key} stays >= 0`);
  if (n === 0) m.delete(key);
  else m.set(key, n);
}

export class InflightAcquires implements InflightLoad {
  private readonly byLock = new Map<string, number>();
  private readonly byOwner = new Map<string, number>();
  private readonly created = new Map<string, number>();
  private total = 0;

  get size(): number {
    return this.total;
  }

  onLock(name: string): number {
    return this.byLock.get(name) ?? 0;
  }

  locksOf(owner: string): number {
    return this.byOwner.get(owner) ?? 0;
  }

  newLocks(): number {
    return this.created.size;
  }

  createsLock(name: string): boolean {
    return this.created.has(name);
  }

  /** Counts an acquire about to be proposed; call the returned function once it applied
   * (or failed). `joins` says the owner is not in the lock yet, `creates` that the lock is
   * not in the table yet. */
  reserve(name: string, owner: string, joins: boolean, creates: boolean): () => void {
    bump(this.byLock, name, 1);
    if (joins) bump(this.byOwner, owner, 1);
    if (creates) bump(this.created, name, 1);
    this.total++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      bump(this.byLock, name, -1);
      if (joins) bump(this.byOwner, owner, -1);
      if (creates) bump(this.created, name, -1);
      this.total--;
    };
  }
}
