// The lock table as a Raft state machine: decodes commands, applies them with the leader's
// clock, and tells local listeners about events (grants to waiters, expiries) as they apply.
import type { ApplyContext, StateMachine } from '../runtime/state-machine.js';
import { decode, encode } from '../runtime/envelope.js';
import { LockTable, type LockLimits } from './lock-table.js';
import type { LockCommand, LockEvent, LockResult } from './commands.js';

export type LockEventListener = (events: readonly LockEvent[], ctx: ApplyContext) => void;

export class LockStateMachine implements StateMachine {
  table: LockTable;
  private readonly listeners: LockEventListener[] = [];
  /** Term in which `extendLeases` was last applied: lets a new leader know it may expire. */
  extendedInTerm = 0;

  constructor(private readonly limits: LockLimits) {
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
    if (cmd.type === 'extendLeases') this.extendedInTerm = ctx.term;
    if (events.length > 0) for (const l of this.listeners) l(events, ctx);
    return result;
  }

  snapshot(): Uint8Array {
    return this.table.snapshot();
  }

  restore(data: Uint8Array): void {
    this.table = LockTable.restore(data, this.limits);
  }
}
