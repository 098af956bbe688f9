// The vocabulary of the Raft core: ids, log entries, messages and the Ready batch.
// Everything here is plain data so that it can be encoded on the wire and on disk and
// compared in tests. The core (raft.ts) is pure: the shell persists, sends and applies.

export type NodeId = string;

/** What an entry carries. `noop` is the entry a new leader appends in its term (§5.4.2);
 * `config` carries an encoded ConfChange and takes effect when appended (§4.1 of the
 * dissertation: single-server changes). */
export type EntryType = 'normal' | 'config' | 'noop';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque to Raft for `normal`; an encoded ConfChange for `config`; empty for `noop`. */
  readonly data: Uint8Array;
}

/** What must survive a crash besides the log (Figure 2: currentTerm, votedFor); commit is
 * kept as a hint so a restart can re-apply without waiting for the leader. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  /** Non-voting members that receive the log and are promoted once caught up. */
  readonly learners: readonly NodeId[];
}

export type ConfChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly config: ClusterConfig;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The state machine's image at meta.index, opaque to Raft. */
  readonly data: Uint8Array;
}

export type Role = 'follower' | 'candidate' | 'precandidate' | 'leader' | 'learner';

interface MsgBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

export type Message =
  | (MsgBase & { readonly type: 'prevote'; readonly lastIndex: number; readonly lastTerm: number })
  | (MsgBase & { readonly type: 'prevoteResp'; readonly granted: boolean })
  | (MsgBase & {
      readonly type: 'vote';
      readonly lastIndex: number;
      readonly lastTerm: number;
      /** Set by a leadership transfer: the receiver ignores its leader lease (§3.10). */
      readonly transfer: boolean;
    })
  | (MsgBase & { readonly type: 'voteResp'; readonly granted: boolean })
  | (MsgBase & {
      readonly type: 'append';
      readonly prevIndex: number;
      readonly prevTerm: number;
      readonly entries: readonly Entry[];
      readonly commit: number;
    })
  | (MsgBase & {
      readonly type: 'appendResp';
      readonly success: boolean;
      /** On success: the last index now known to match. On reject: the follower's hint. */
      readonly index: number;
      readonly rejectHint: number;
    })
  | (MsgBase & {
      readonly type: 'heartbeat';
      readonly commit: number;
      /** ReadIndex round this heartbeat confirms leadership for (0 = none). */
      readonly readCtx: number;
    })
  | (MsgBase & { readonly type: 'heartbeatResp'; readonly readCtx: number })
  | (MsgBase & {
      readonly type: 'snapshot';
      readonly meta: SnapshotMeta;
      readonly offset: number;
      /** Size of the whole snapshot image: the receiver never buffers more than this. */
      readonly totalBytes: number;
      readonly chunk: Uint8Array;
      readonly done: boolean;
    })
  | (MsgBase & {
      readonly type: 'snapshotResp';
      readonly index: number;
      /** Next offset the receiver expects; -1 when it rejects the transfer. */
      readonly nextOffset: number;
    })
  | (MsgBase & { readonly type: 'timeoutNow' });

export type MessageType = Message['type'];

/** A linearizable read may be served once `appliedIndex >= index`. */
export interface ReadState {
  readonly index: number;
  readonly ctx: number;
}

export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
}

/**
 * What the shell must do, in this order: send `earlyMessages` (or at any later point: they do
 * not wait for the disk); persist `hardState`, `snapshot` and `entries` with one fsync; then
 * send `messages`; then apply `snapshot` (if any) and `committed` (the committed entries
 * below entries[0].index were persisted by an earlier Ready: without a snapshot they may
 * apply before this Ready is persisted, so a commit need not wait for the next fsync); then call
 * `advance(ready)`, which tells the core the write is durable. Take the next Ready only after
 * that. Entries to persist may overwrite the log from entries[0].index on.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  /** The leader's appends carrying entries, which may be sent before (or while) this Ready is
   * persisted so that the leader's fsync overlaps replication (dissertation §10.2.1). The
   * leader counts itself toward a commit quorum only for entries advance() confirmed durable.
   * Empty in a Ready that changes term or vote or carries a snapshot. */
  readonly earlyMessages: readonly Message[];
  /** Sent only after this Ready is persisted: they may vouch for it (votes, acks). */
  readonly messages: readonly Message[];
  readonly committed: readonly Entry[];
  readonly readStates: readonly ReadState[];
  /** Proposals and reads that failed (leader lost, dropped) since the last Ready. */
  readonly dropped: readonly DroppedRequest[];
}

export interface DroppedRequest {
  readonly kind: 'read';
  readonly ctx: number;
  readonly reason: 'not_leader' | 'leadership_lost';
}
