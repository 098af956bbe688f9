// What a service plugs into a Raft group: a deterministic state machine.

export interface ApplyContext {
  /** Raft index of the entry being applied. */
  readonly index: number;
  readonly term: number;
  /** The leader's clock when the command was proposed, made monotonic across leaders. */
  readonly nowMs: number;
}

export interface StateMachine {
  /** Apply one command. Must be deterministic: the same commands in the same order give the
   * same state and results on every replica. The result is sent back to the proposer and
   * remembered for de-duplication, so it must be plain data. */
  apply(command: Uint8Array, ctx: ApplyContext): unknown;
  /** The whole state as bytes, deterministic for equal states. */
  snapshot(): Uint8Array;
  /** Replace the whole state with a snapshot's. */
  restore(data: Uint8Array): void;
}
