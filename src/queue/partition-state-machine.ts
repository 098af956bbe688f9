// A queue partition as a Raft state machine (runtime/state-machine.ts): decodes and validates
// each committed command, applies it with the leader's clock, and tells local listeners about
// events (topics whose long-polls should retry) as they apply. A new leader's first command
// (leaderStartCommands) pushes every in-flight deadline out, so that no command of its term
// can expire a lease whose holder kept extending it through the old leader; the term of the
// last such extension is kept in the snapshot, so a restart does not extend twice.
import { assert, AssertionError } from '../assert.js';
import { DsyncError } from '../errors.js';
import { readTermHeader, withTermHeader } from '../runtime/envelope.js';
import type { ApplyContext, StateMachine } from '../runtime/state-machine.js';
import {
  decodeQueueCommand, encodeQueueCommand, isFinalQueueResult, type QueueCommand, type QueueEvent,
  type QueueResult,
} from './partition-commands.js';
import { EXTEND_LEASES_MS_MAX } from './partition-limits.js';
import { QueuePartition, type PartitionOptions } from './partition.js';

export type QueueEventListener = (events: readonly QueueEvent[], ctx: ApplyContext) => void;

export interface QueuePartitionMachineOptions extends PartitionOptions {
  /** What a new leader extends every in-flight lease by, ms (0 = nothing is proposed).
   * 0..EXTEND_LEASES_MS_MAX, default 0. */
  readonly leaseExtensionMs?: number;
}

/** Snapshot bytes: withTermHeader(extendedInTerm, the partition's bytes). A snapshot without
 * the header is the partition's bytes alone (msgpack of an array never starts with 0xd1). */
const SNAPSHOT_VERSION = 0xd1;

export class QueuePartitionMachine implements StateMachine {
  partition: QueuePartition;
  /** Term in which `extendLeases` was last applied (kept in snapshots). */
  extendedInTerm = 0;
  private readonly listeners: QueueEventListener[] = [];
  private readonly leaseExtensionMs: number;

  constructor(private readonly opts: QueuePartitionMachineOptions = {}) {
    const ms = opts.leaseExtensionMs ?? 0;
    assert(Number.isSafeInteger(ms) && ms >= 0 && ms <= EXTEND_LEASES_MS_MAX,
      `leaseExtensionMs must be an integer in [0, ${EXTEND_LEASES_MS_MAX}]`);
    this.leaseExtensionMs = ms;
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
    if (cmd.type === 'extendLeases') this.extendedInTerm = Math.max(this.extendedInTerm, ctx.term);
    if (events.length > 0) for (const l of this.listeners) l(events, ctx);
    return result;
  }

  /** Results that request de-duplication must not remember (`exhausted`). */
  isFinal(result: unknown): boolean {
    return isFinalQueueResult(result as QueueResult);
  }

  /** Every in-flight lease is pushed out before anything of the new term can expire one;
   * once per term, even across a restart (extendedInTerm is in the snapshot). */
  leaderStartCommands(term: number): readonly Uint8Array[] {
    if (this.leaseExtensionMs === 0 || this.extendedInTerm >= term) return [];
    return [encodeQueueCommand({ type: 'extendLeases', byMs: this.leaseExtensionMs })];
  }

  snapshot(): Uint8Array {
    return withTermHeader(SNAPSHOT_VERSION, this.extendedInTerm, this.partition.snapshot());
  }

  restore(data: Uint8Array): void {
    const h = readTermHeader(data, SNAPSHOT_VERSION);
    this.partition = QueuePartition.restore(h?.body ?? data, this.opts);
    this.extendedInTerm = h?.term ?? 0;
  }
}
