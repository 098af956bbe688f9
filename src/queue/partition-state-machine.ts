// A queue partition as a Raft state machine (runtime/state-machine.ts): decodes and validates
// each committed command, applies it with the leader's clock, and tells local listeners about
// events (topics whose long-polls should retry) as they apply.
import { AssertionError } from '../assert.js';
import { DsyncError } from '../errors.js';
import type { ApplyContext, StateMachine } from '../runtime/state-machine.js';
import {
  decodeQueueCommand, encodeQueueCommand, isFinalQueueResult, type QueueCommand, type QueueEvent,
  type QueueResult,
} from './partition-commands.js';
import { QueuePartition, type PartitionOptions } from './partition.js';

export type QueueEventListener = (events: readonly QueueEvent[], ctx: ApplyContext) => void;

export class QueuePartitionMachine implements StateMachine {
  partition: QueuePartition;
  private readonly listeners: QueueEventListener[] = [];

  constructor(private readonly opts: PartitionOptions = {}) {
    this.partition = new QueuePartition(opts);
  }

  /** Validates and encodes a command for a proposal; throws InvalidArgumentError. */
  static encode(cmd: QueueCommand): Uint8Array {
    return encodeQueueCommand(cmd);
  }

  onEvents(l: QueueEventListener): void {
    this.listeners.push(l);
  }

  apply(command: Uint8Array, ctx: ApplyContext): QueueResult {
    let cmd: QueueCommand;
    try {
      cmd = decodeQueueCommand(command);
    } catch (err) {
      // Proposals are validated before they enter the log: a committed entry that does not
      // decode is corruption or a foreign version, and every replica would stop here alike.
      if (err instanceof DsyncError) {
        throw new AssertionError(`committed queue entry at ${ctx.index}: ${err.message}`);
      }
      throw err;
    }
    const { result, events } = this.partition.apply(cmd, ctx);
    if (events.length > 0) for (const l of this.listeners) l(events, ctx);
    return result;
  }

  /** Results that request de-duplication must not remember (`exhausted`). */
  isFinal(result: unknown): boolean {
    return isFinalQueueResult(result as QueueResult);
  }

  snapshot(): Uint8Array {
    return this.partition.snapshot();
  }

  restore(data: Uint8Array): void {
    this.partition = QueuePartition.restore(data, this.opts);
  }
}
