// The lock table as a Raft state machine: decodes commands, applies them with the leader's
// clock, and tells local listeners about events (grants to waiters, expiries) as they apply.
// A new leader's first command (leaderStartCommands) extends every lease, so that no command
// of its term can expire a lease before the extension (docs/locks.md, "Guarantees").
import { assert } from '../assert.js';
import type { ApplyContext, StateMachine } from '../runtime/state-machine.js';
import { decode, encode, readTermHeader, withTermHeader } from '../runtime/envelope.js';
import { LockTable, type LockLimits } from './lock-table.js';
import { LOCK_EXTEND_MS_MAX, type LockCommand, type LockEvent, type LockResult } from './commands.js';

export type LockEventListener = (events: readonly LockEvent[], ctx: ApplyContext) => void;

export interface LockStateMachineOptions {
  /** What a new leader extends every lease by, ms: at least the clock skew between pods that
   * the lease rules allow, plus a failover (docs/locks.md). 0..LOCK_EXTEND_MS_MAX. */
  readonly leaseExtensionMs: number;
}

/** Snapshot bytes: withTermHeader(extendedInTerm, the table's bytes). A snapshot written
 * before extendedInTerm was kept is the table's bytes alone: JSON, which starts with '{' and
 * never with the version byte. */
const SNAPSHOT_VERSION = 2;

export class LockStateMachine implements StateMachine {
  table: LockTable;
  private readonly listeners: LockEventListener[] = [];
  /** Term in which `extendLeases` was last applied (kept in snapshots). */
  extendedInTerm = 0;
  private readonly leaseExtensionMs: number;

  constructor(private readonly limits: LockLimits, o: LockStateMachineOptions) {
    assert(Number.isSafeInteger(o.leaseExtensionMs) && o.leaseExtensionMs >= 0 &&
      o.leaseExtensionMs <= LOCK_EXTEND_MS_MAX,
    `leaseExtensionMs must be an integer in [0, ${LOCK_EXTEND_MS_MAX}]`);
    this.leaseExtensionMs = o.leaseExtensionMs;
    this.table = new LockTable(limits);
  }

  static encode(cmd: LockCommand): Uint8Array {
    return encode(cmd);
  }

  onEvents(l: LockEventListener): void {
    this.listeners.push(l);
  }

  apply(command: Uint8Array, ctx: ApplyContext): LockResult {
    const cmd = decode<LockCommand>(command);
    const { result, events } = this.table.apply(cmd, { index: ctx.index, nowMs: ctx.nowMs });
    if (cmd.type === 'extendLeases') this.extendedInTerm = Math.max(this.extendedInTerm, ctx.term);
    if (events.length > 0) for (const l of this.listeners) l(events, ctx);
    return result;
  }

  /** `waiting` is provisional: the answer comes later, as an event. */
  isFinal(result: unknown): boolean {
    return (result as LockResult).type !== 'waiting';
  }

  /** Every lease is pushed out before anything of the new term can expire one. */
  leaderStartCommands(term: number): readonly Uint8Array[] {
    if (this.extendedInTerm >= term) return [];
    return [LockStateMachine.encode({ type: 'extendLeases', byMs: this.leaseExtensionMs })];
  }

  snapshot(): Uint8Array {
    return withTermHeader(SNAPSHOT_VERSION, this.extendedInTerm, this.table.snapshot());
  }

  restore(data: Uint8Array): void {
    const h = readTermHeader(data, SNAPSHOT_VERSION);
    this.table = LockTable.restore(h?.body ?? data, this.limits);
    this.extendedInTerm = h?.term ?? 0;
  }
}
