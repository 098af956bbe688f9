// What a service plugs into a Raft group: a deterministic state machine.

export interface ApplyContext {
  /** Raft index of the entry being applied. One entry carries a batch of commands, so
   * several commands share an index: `position` tells them apart. */
  readonly index: number;
  /** Place of this command in its entry's batch, from 0. (index, position) is unique and
   * increases in apply order. */
  readonly position: number;
  readonly term: number;
  /** The leader's clock when the entry was proposed, made monotonic across leaders. */
  readonly nowMs: number;
}

export interface StateMachine {
  /** Apply one command. Must be deterministic: the same commands in the same order give the
   * same state and results on every replica. The result is sent back to the proposer and,
   * when final, remembered for de-duplication, so it must be plain data. */
  apply(command: Uint8Array, ctx: ApplyContext): unknown;
  /** The whole state as bytes, deterministic for equal states. */
  snapshot(): Uint8Array;
  /** Replace the whole state with a snapshot's. */
  restore(data: Uint8Array): void;
  /** Whether `result` is the request's last word. A provisional result (a lock acquire
   * that is `waiting`) is not remembered for de-duplication, so a retry with the same
   * requestId applies again instead of replaying an answer that no longer holds.
   * Default: every result is final. */
  isFinal?(result: unknown): boolean;
  /** Commands a new leader proposes the moment it takes office in `term`, ahead of every
   * other proposal of that term: they come right after the leader's no-op in the log, so
   * nothing proposed in the term can apply before them (the lock service extends every lease
   * here, before any command can expire one). Called on the leader only; the commands apply
   * on every replica like any other. Default: none. */
  leaderStartCommands?(term: number): readonly Uint8Array[];
}
