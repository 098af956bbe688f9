// Drives one Raft group: the ready loop (send early → persist → send → apply → advance),
// proposals and linearizable reads as promises with deadlines, snapshots and log compaction.
//
// Batching: the proposals of one event-loop turn (and those that arrive while the loop waits
// for the disk) become one Raft entry, one envelope with the leader's clock and a list of
// commands, encoded once and de-duplicated in one pass on every replica; each command's
// promise is answered with its own result. Reads of one turn share one ReadIndex round.
//
// Taking office: the moment this node learns it leads a new term, and before propose() can
// accept anything in that term, it proposes the state machine's leaderStartCommands, so
// they follow the term's no-op in the log and apply before any command of the term.
import type { Logger } from 'pino';
import { assert } from '../assert.js';
import { READ_MODES, type ReadMode } from '../config.js';
import {
  DsyncError, IndeterminateError, InvalidArgumentError, NotLeaderError, TimeoutError,
  UnavailableError,
} from '../errors.js';
import {
  committedBeforeWrite, RaftNode, parseRaftOptions, type RaftOptions,
} from '../raft/raft.js';
import { seededRand } from '../raft/rand.js';
import type {
  ClusterConfig, Entry, HardState, Message, NodeId, Ready, Role, Snapshot,
} from '../raft/types.js';
import type { Recovered } from '../storage/pod-wal.js';
import { RaftStorage, type GroupStorage } from '../storage/raft-storage.js';
import { batchedCommandBytes, encodeEnvelope, type BatchedCommand } from './envelope.js';
import { GroupMachine } from './group-machine.js';
import type { StateMachine } from './state-machine.js';
import { Waiter } from './waiter.js';

/** Counters and gauges the group reports; the node maps them onto prom-client. */
export interface RaftGroupObserver {
  onRole?(group: number, role: Role, term: number, leader: NodeId | null): void;
  onCommit?(group: number, commitIndex: number, appliedIndex: number): void;
  onPersist?(group: number, seconds: number, entries: number): void;
  onProposalDone?(group: number, seconds: number, outcome: 'ok' | 'error'): void;
  onSnapshot?(group: number, index: number, bytes: number): void;
  /** One entry proposed with this many commands. */
  onBatch?(group: number, commands: number): void;
  /** A read served from the lease, by ReadIndex, or by ReadIndex because the lease was not
   * held (read mode `lease`). */
  onRead?(group: number, kind: ReadKind): void;
}

export type ReadKind = 'lease' | 'read_index' | 'lease_fallback';

export interface RaftGroupOptions {
  readonly group: number;
  readonly nodeId: NodeId;
  readonly dataDir: string;
  readonly bootstrap: ClusterConfig;
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'rand'>>;
  readonly fsync: boolean;
  /** Opens the group's log: a view of the pod's shared WAL (RaftHost with a PodWal). Default:
   * a RaftStorage of its own in dataDir. */
  readonly openStorage?: () => Promise<{ storage: GroupStorage; recovered: Recovered }>;
  /** Take a snapshot and compact the log after this many applied entries (default 10,000). */
  readonly snapshotEntries?: number;
  /** Pending proposals at most; more are refused as UNAVAILABLE (back-pressure).
   * Default DEFAULT_PENDING_PROPOSALS_MAX, 1..1,000,000. */
  readonly pendingProposalsMax?: number;
  /** Commands in one Raft entry at most; a fuller turn makes several entries.
   * Default DEFAULT_BATCH_COMMANDS_MAX, 1..65,536. */
  readonly batchCommandsMax?: number;
  /** Bytes of commands in one Raft entry at most (a larger command still goes alone).
   * Default DEFAULT_BATCH_BYTES_MAX (1 MiB), 1 KiB..8 MiB. */
  readonly batchBytesMax?: number;
  /** Linearizable reads waiting on this leader at most; more are refused at once with a
   * retryable RESOURCE_EXHAUSTED naming `pendingReadsMax`. Default DEFAULT_PENDING_READS_MAX,
   * 1..1,000,000. */
  readonly pendingReadsMax?: number;
  /** How read() confirms that this node may answer from its state (docs/runtime.md,
   * "Reads"): `linearizable` (default) by a ReadIndex round; `lease` from the leader lease
   * while it holds, by a ReadIndex round when it does not. */
  readonly readMode?: ReadMode;
  /** With readMode `lease`: how long a heartbeat round that a quorum answered lets this
   * leader answer reads from its state, in ms from when the round was sent. It must be
   * shorter than the followers' election timeout minus what the clocks may drift in that
   * time (leaseReadMs() in config.ts computes it); 1..600,000. */
  readonly leaseMs?: number;
  readonly stateMachine: StateMachine;
  readonly send: (to: NodeId, msg: Message) => void;
  /** Runs work on a later turn of the event loop, in order (default setImmediate). The Raft
   * host gives its groups one shared turn, so that what they all send then leaves together. */
  readonly defer?: (work: () => void) => void;
  readonly logger: Logger;
  readonly observer?: RaftGroupObserver;
  readonly clock?: () => number;
  readonly seed?: number;
}

export const DEFAULT_SNAPSHOT_ENTRIES = 10_000;
export const DEFAULT_PENDING_PROPOSALS_MAX = 10_000;
export const DEFAULT_BATCH_COMMANDS_MAX = 512;
export const DEFAULT_BATCH_BYTES_MAX = 1024 * 1024;
export const DEFAULT_PENDING_READS_MAX = 4096;
/** Longest the ready loop works before it lets the event loop serve other I/O (HTTP and
 * /health, peer messages, timers). A Ready that needs no disk write resolves in a microtask,
 * so without this a replay of the log at start-up, or thousands of commits at once, would
 * hold the event loop for as long as they take. */
export const DRAIN_SLICE_MS = 10;
/** Heartbeat rounds whose send time a lease-reading leader remembers (older ones cannot be
 * the newest a quorum answered once newer ones are). */
const LEASE_ROUNDS_MAX = 1024;
const LEASE_MS_MAX = 600_000;

interface GroupLimits {
  readonly pendingProposalsMax: number;
  readonly batchCommandsMax: number;
  readonly batchBytesMax: number;
  readonly pendingReadsMax: number;
}

const LIMIT_BOUNDS: Record<keyof GroupLimits, readonly [number, number, number]> = {
  pendingProposalsMax: [1, 1_000_000, DEFAULT_PENDING_PROPOSALS_MAX],
  batchCommandsMax: [1, 65_536, DEFAULT_BATCH_COMMANDS_MAX],
  batchBytesMax: [1024, 8 * 1024 * 1024, DEFAULT_BATCH_BYTES_MAX],
  pendingReadsMax: [1, 1_000_000, DEFAULT_PENDING_READS_MAX],
};

/** The group's bounds with their defaults; throws InvalidArgumentError naming the field. */
export function parseGroupLimits(o: Partial<GroupLimits>): GroupLimits {
  const out: Record<string, number> = {};
  for (const [field, [lo, hi, dflt]] of Object.entries(LIMIT_BOUNDS)) {
    const v = o[field as keyof GroupLimits] ?? dflt;
    if (!Number.isSafeInteger(v) || v < lo || v > hi) {
      throw new InvalidArgumentError(field, `${field} must be an integer in [${lo}, ${hi}]`);
    }
    out[field] = v;
  }
  return out as unknown as GroupLimits;
}

function checkReadMode(o: Pick<RaftGroupOptions, 'readMode' | 'leaseMs' | 'raft'>): void {
  const mode = o.readMode ?? 'linearizable';
  if (!READ_MODES.includes(mode)) {
    throw new InvalidArgumentError('readMode', `readMode must be one of ${READ_MODES.join(', ')}`);
  }
  if (mode !== 'lease') return;
  const ms = o.leaseMs;
  if (ms === undefined || !Number.isSafeInteger(ms) || ms < 1 || ms > LEASE_MS_MAX) {
    throw new InvalidArgumentError('leaseMs', `readMode lease needs leaseMs, an integer in ` +
      `[1, ${LEASE_MS_MAX}] (see leaseReadMs in config.ts)`);
  }
  if (o.raft?.checkQuorum === false) {
    throw new InvalidArgumentError('readMode', 'readMode lease needs checkQuorum: followers ' +
      'refuse votes while they hear from a leader only with it');
  }
}

/** A command waiting in the batch of the current turn. */
interface Queued {
  readonly item: BatchedCommand;
  readonly waiter: Waiter<unknown>;
}

/** A proposed entry: the term it was proposed in and a waiter per command, by position. */
interface PendingEntry {
  readonly term: number;
  readonly waiters: readonly Waiter<unknown>[];
}

/** One ReadIndex round and the reads that share it. */
interface PendingRead {
  index: number | null;
  readonly waiters: readonly Waiter<void>[];
}

export interface ProposeOptions {
  readonly timeoutMs: number;
  readonly clientId?: string;
  readonly requestId?: string;
  readonly signal?: AbortSignal;
}

export class RaftGroup {
  readonly group: number;
  private readonly node: RaftNode;
  private readonly log: Logger;
  private readonly limits: GroupLimits;
  private readonly machine: GroupMachine;
  private readonly proposals = new Map<number, PendingEntry>();
  /** Commands accepted and not settled, batched or proposed. */
  private pendingCommands = 0;
  private batch: Queued[] = [];
  /** A Ready is being written whose committed entries all applied: see step(). */
  private applyWhileWriting = false;
  private batchBytes = 0;
  private readonly reads = new Map<number, PendingRead>();
  private readBatch: Waiter<void>[] = [];
  /** Reads accepted and not settled. */
  private pendingReads = 0;
  private readSeq = 0;
  /** A new leader's first entry that the core refused (it is full): retried before anything
   * else, and nothing else is accepted until it is in. */
  private leaderStart: Uint8Array | null = null;
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  private term = 0;
  private applied = 0;
  private snapshotIndex = 0;
  private scheduled = false;
  private draining = false;
  /** Set while the ready loop pauses between slices: ends the pause. */
  private resumeDrain: (() => void) | null = null;
  private closed = false;
  private snapshotting = false;
  /** requestSnapshot() was called: the next ready loop snapshots whatever is applied. */
  private snapshotAsked = false;
  private savedHardState: HardState | null = null;
  private deferredHardState: HardState | null = null;
  private readonly appliedWaiters: Array<{ index: number; resolve(): void }> = [];
  private readonly readMode: ReadMode;
  private readonly leaseMs: number;
  /** When each heartbeat round was first handed to the transport (monotonic ms). */
  private readonly roundSentAt = new Map<number, number>();
  private readonly defer: (work: () => void) => void;

  private constructor(
    private readonly opts: RaftGroupOptions,
    private readonly storage: GroupStorage,
    node: RaftNode,
    appliedFromSnapshot: number,
  ) {
    this.group = opts.group;
    this.node = node;
    this.applied = appliedFromSnapshot;
    this.snapshotIndex = appliedFromSnapshot;
    this.log = opts.logger.child({ group: opts.group });
    this.limits = parseGroupLimits(opts);
    this.machine = new GroupMachine(opts.stateMachine);
    this.readMode = opts.readMode ?? 'linearizable';
    this.leaseMs = opts.leaseMs ?? 0;
    this.defer = opts.defer ?? ((work) => { setImmediate(work); });
  }

  static async open(opts: RaftGroupOptions): Promise<RaftGroup> {
    parseGroupLimits(opts);
    checkReadMode(opts);
    const { storage, recovered }: { storage: GroupStorage; recovered: Recovered } =
      opts.openStorage !== undefined ? await opts.openStorage()
        : await RaftStorage.open({ dir: opts.dataDir, fsync: opts.fsync });
    for (const w of recovered.warnings ?? []) opts.logger.warn({ group: opts.group }, w);
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
    // A restarted voter must not help elect a new leader within a lease it gave before the
    // restart: always on, so that switching a cluster to lease reads needs no special order.
    const raftOpts = parseRaftOptions({ holdVotesAfterStart: true, ...opts.raft,
      id: opts.nodeId, rand: seededRand(seed) });
    const node = new RaftNode(raftOpts, {
      hardState: recovered.hardState,
      snapshot: recovered.snapshot,
      entries: recovered.entries,
      config: opts.bootstrap,
    });
    const g = new RaftGroup(opts, storage, node, recovered.snapshot?.meta.index ?? 0);
    g.savedHardState = recovered.hardState;
    // The shared WAL asks for a snapshot when this group's entries hold its oldest segment.
    storage.onSnapshotWanted?.(() => g.requestSnapshot());
    if (recovered.snapshot) g.machine.restore(recovered.snapshot.data);
    g.log.info({ snapshot: recovered.snapshot?.meta.index ?? 0, entries: recovered.entries.length,
      hardState: recovered.hardState }, 'raft group recovered');
    g.schedule();
    return g;
  }

  // ---- inputs -------------------------------------------------------------------------

  tick(): void {
    if (this.closed) return;
    this.node.tick();
    this.sendHeartbeatsNow();
    this.schedule();
  }

  /** A heartbeat round now if this node leads (RaftHost.beatIfLate), sent at once. */
  beat(): void {
    if (this.closed) return;
    this.node.beat();
    this.sendHeartbeatsNow();
    this.flush();
  }

  /** While a Ready is being persisted (a slow disk can take seconds), heartbeats need not
   * wait for it: the followers must keep hearing from their leader. */
  private sendHeartbeatsNow(): void {
    if (!this.draining) return;
    for (const m of this.node.takeHeartbeats()) this.opts.send(m.to, m);
  }

  step(msg: Message): void {
    if (this.closed) return;
    this.node.step(msg);
    // An ack that arrives while the leader writes a Ready may commit entries written before
    // it: they apply now instead of after that write.
    if (this.applyWhileWriting) this.applyDurableCommitted();
    this.schedule();
  }

  private applyDurableCommitted(): void {
    const entries = this.node.takeDurableCommitted();
    if (entries.length === 0) return;
    for (const e of entries) this.applyEntry(e);
    this.opts.observer?.onCommit?.(this.group, this.node.status().commit, this.applied);
    this.releaseReads();
  }

  /** Propose a command; resolves with the state machine's result once applied here. It
   * joins the entry of this event-loop turn. */
  propose(command: Uint8Array, o: ProposeOptions): Promise<unknown> {
    const refused = this.refusal();
    if (refused !== null) return Promise.reject(refused);
    if (this.pendingCommands >= this.limits.pendingProposalsMax) {
      return Promise.reject(new UnavailableError(
        'too many proposals in flight on this leader; back off and retry', { group: this.group }));
    }
    const item: BatchedCommand = o.clientId !== undefined && o.requestId !== undefined
      ? { d: command, c: o.clientId, r: o.requestId } : { d: command };
    this.pendingCommands++;
    const waiter = new Waiter<unknown>(o.timeoutMs, () => new IndeterminateError(
      `no commit within ${o.timeoutMs} ms; the command may still apply, retry with the same ` +
      'requestId'), () => { this.pendingCommands--; }, o.signal,
    () => new IndeterminateError('request aborted; the command may still apply'));
    const bytes = batchedCommandBytes(item);
    if (this.batch.length > 0 && (this.batch.length >= this.limits.batchCommandsMax ||
        this.batchBytes + bytes > this.limits.batchBytesMax)) {
      this.flushBatch();
    }
    this.batch.push({ item, waiter });
    this.batchBytes += bytes;
    this.schedule();
    return waiter.promise;
  }

  /** Resolves once this node has applied everything committed before the call (ReadIndex).
   * The reads of one turn share one quorum round. */
  linearizableRead(timeoutMs: number): Promise<void> {
    const refused = this.refusal();
    if (refused !== null) return Promise.reject(refused);
    const max = this.limits.pendingReadsMax;
    if (this.pendingReads >= max) {
      return Promise.reject(new DsyncError('RESOURCE_EXHAUSTED', `${max} linearizable reads are ` +
        'already waiting on this leader; retry after the Retry-After delay',
      { retryable: true, details: { limit: 'pendingReadsMax', max } }));
    }
    this.pendingReads++;
    const w = new Waiter<void>(timeoutMs, () => new TimeoutError(
      `read not confirmed by a quorum within ${timeoutMs} ms; retry`),
    () => { this.pendingReads--; });
    this.readBatch.push(w);
    this.schedule();
    return w.promise;
  }

  /**
   * Resolves once this node may answer a read from its state, by the group's read mode: from
   * the leader lease when it holds (no message), else by a ReadIndex round as
   * linearizableRead(). Rejects as linearizableRead() does.
   */
  read(timeoutMs: number): Promise<void> {
    if (this.readMode === 'lease') {
      const index = this.leaseReadIndex();
      this.opts.observer?.onRead?.(this.group, index === null ? 'lease_fallback' : 'lease');
      if (index !== null) {
        return index <= this.applied ? Promise.resolve() : this.waitApplied(index, timeoutMs);
      }
    } else {
      this.opts.observer?.onRead?.(this.group, 'read_index');
    }
    return this.linearizableRead(timeoutMs);
  }

  /** The index a lease read must have applied, or null when the lease does not hold: the
   * newest round a quorum answered was sent `leaseMs` ago or more, or the core offers no
   * lease read (not leading, no commit in its term yet, a transfer in this term). */
  private leaseReadIndex(): number | null {
    if (this.refusal() !== null) return null;
    const lease = this.node.leaseRead();
    if (lease === null) return null;
    const sentAt = this.roundSentAt.get(lease.round);
    if (sentAt === undefined || performance.now() - sentAt >= this.leaseMs) return null;
    return lease.index;
  }

  /** Remembers when heartbeat rounds first leave, for leases; forgets rounds that can no
   * longer be the newest a quorum answered. */
  private noteRoundsSent(messages: readonly Message[]): void {
    const now = performance.now();
    for (const m of messages) {
      if (m.type !== 'heartbeat' || this.roundSentAt.has(m.readCtx)) continue;
      this.roundSentAt.set(m.readCtx, now);
    }
    const confirmed = this.node.leaseRead()?.round ?? 0;
    for (const round of this.roundSentAt.keys()) {
      if (round >= confirmed && this.roundSentAt.size <= LEASE_ROUNDS_MAX) break;
      this.roundSentAt.delete(round);
    }
  }

  /** Why a proposal or read is refused right now, or null. */
  private refusal(): DsyncError | null {
    if (this.closed) return new UnavailableError('node is shutting down');
    if (this.role !== 'leader') return new NotLeaderError(this.leader, this.group);
    if (this.leaderStart !== null) {
      return new UnavailableError('this node has just become leader and is still taking ' +
        'office; retry shortly', { group: this.group });
    }
    return null;
  }

  /** Resolves when this node has applied `index` (used after a remote leader answered). */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = { index, resolve: () => { clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => {
        const i = this.appliedWaiters.indexOf(w);
        if (i >= 0) this.appliedWaiters.splice(i, 1);
        reject(new TimeoutError(`index ${index} not applied within ${timeoutMs} ms`));
      }, timeoutMs);
      this.appliedWaiters.push(w);
    });
  }

  /** Asks for a snapshot of everything applied, and a compaction, on the next turn of the
   * ready loop, whatever snapshotEntries says (status().firstIndex moves past 1 once done).
   * A member added afterwards then starts from a snapshot, which carries the group's
   * configuration: its log alone would be read against its own, unrelated bootstrap. */
  requestSnapshot(): void {
    this.snapshotAsked = true;
    this.schedule();
  }

  transferLeadership(to: NodeId): void {
    this.node.transferLeadership(to);
    this.schedule();
  }

  campaign(): void {
    this.node.campaign();
    this.schedule();
  }

  proposeConfChange(cc: Parameters<RaftNode['proposeConfChange']>[0]): { index: number } {
    const r = this.node.proposeConfChange(cc);
    this.schedule();
    return r;
  }

  status(): ReturnType<RaftNode['status']> {
    return this.node.status();
  }

  isLeader(): boolean {
    return this.role === 'leader';
  }

  leaderId(): NodeId | null {
    return this.leader;
  }

  appliedIndex(): number {
    return this.applied;
  }

  /** The clock for commands: never behind what the log has already seen. */
  now(): number {
    return this.machine.clock((this.opts.clock ?? Date.now)());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new UnavailableError('node is shutting down; retry on another node');
    this.failPending(err, err);
    while (this.draining) await new Promise((r) => setTimeout(r, 5));
    if (this.deferredHardState !== null) {
      await this.storage.save({ hardState: this.deferredHardState, entries: [], snapshot: null });
    }
    await this.storage.close();
  }

  // ---- the ready loop -----------------------------------------------------------------

  /** Runs the ready loop now rather than from the next setImmediate, when it is idle: for
   * work done from inside a long I/O phase (RaftHost), which must not wait for its end. */
  flush(): void {
    if (this.resumeDrain !== null) {
      // The loop is only pausing between slices: go on now.
      this.resumeDrain();
      return;
    }
    if (this.draining || this.closed || !this.node.hasReady()) return;
    void this.drain();
  }

  /** The pause between two slices of the ready loop: until the next setImmediate, or until
   * flush() says to go on (from inside an I/O phase, when setImmediate would be late). */
  private pauseDrain(): Promise<void> {
    return new Promise((resolve) => {
      const go = (): void => {
        if (this.resumeDrain !== go) return;
        this.resumeDrain = null;
        resolve();
      };
      this.resumeDrain = go;
      this.defer(go);
    });
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    this.defer(() => {
      this.scheduled = false;
      // Reads need no disk: their round starts now even while the loop waits for an fsync.
      this.flushReads();
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.draining || this.closed) return;
    this.draining = true;
    try {
      let sliceStart = performance.now();
      for (;;) {
        // What this turn (or the last fsync) gathered becomes one entry, one read round.
        this.flushBatch();
        this.flushReads();
        if (this.closed || !this.node.hasReady()) break;
        const rd = this.node.ready();
        await this.handleReady(rd);
        this.node.advance(rd);
        if (performance.now() - sliceStart >= DRAIN_SLICE_MS) {
          await this.pauseDrain();
          sliceStart = performance.now();
        }
      }
      if (!this.closed) await this.maybeSnapshot();
    } catch (err) {
      // Storage or an invariant failed: a replica that cannot persist must not go on.
      this.log.fatal({ err }, 'raft ready loop failed; exiting so the node restarts from disk');
      process.exit(70);
    } finally {
      this.draining = false;
    }
    // Work that arrived while the snapshot was written found the loop busy: run it now.
    if (!this.closed && (this.node.hasReady() || this.batch.length > 0)) this.schedule();
  }

  /** Proposes the commands gathered since the last flush as one entry. */
  private flushBatch(): void {
    if (this.leaderStart !== null) this.proposeLeaderStart();
    if (this.batch.length === 0) return;
    const live = this.batch.filter((q) => !q.waiter.done);
    this.batch = [];
    this.batchBytes = 0;
    if (live.length === 0) return;
    // The core may have moved on (a new term, even as leader again) while the loop waited
    // for the disk: nothing may enter a term before that term's leader-start commands.
    const s = this.node.status();
    if (s.role !== 'leader' || s.term !== this.term || this.leaderStart !== null) {
      const err = new NotLeaderError(s.role === 'leader' ? null : s.leader, this.group);
      for (const q of live) q.waiter.reject(err);
      return;
    }
    const data = encodeEnvelope({ t: this.now(), b: live.map((q) => q.item) });
    let at: { index: number; term: number };
    try {
      at = this.node.propose(data);
    } catch (err) {
      // The core refused (full, or transferring leadership): nothing was proposed.
      if (!(err instanceof DsyncError)) throw err;
      for (const q of live) q.waiter.reject(err);
      return;
    }
    this.proposals.set(at.index, { term: at.term, waiters: live.map((q) => q.waiter) });
    this.opts.observer?.onBatch?.(this.group, live.length);
  }

  /** Starts one ReadIndex round for the reads gathered since the last flush. */
  private flushReads(): void {
    if (this.readBatch.length === 0) return;
    const live = this.readBatch.filter((w) => !w.done);
    this.readBatch = [];
    if (live.length === 0) return;
    if (this.role !== 'leader' || this.closed) {
      const err = new NotLeaderError(this.leader, this.group);
      for (const w of live) w.reject(err);
      return;
    }
    const ctx = ++this.readSeq;
    this.reads.set(ctx, { index: null, waiters: live });
    try {
      this.node.readIndex(ctx);
    } catch (err) {
      // The core's round queue is full: answer every read of the round, leave nothing behind.
      this.reads.delete(ctx);
      if (!(err instanceof DsyncError)) throw err;
      const refused = new DsyncError(err.code, `${err.message} (ReadIndex rounds waiting on ` +
        'this leader)', { retryable: err.retryable, cause: err,
        details: { limit: 'maxPendingReads', max: err.details.maxPendingReads } });
      for (const w of live) w.reject(refused);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState.role, rd.softState.term, rd.softState.leader);
    // The leader's appends go out first so that the followers' network and fsync overlap our
    // own fsync (§10.2.1); the core counts our write toward a quorum only after advance().
    for (const m of rd.earlyMessages) this.opts.send(m.to, m);
    // Committed entries that an earlier Ready already made durable here apply while this
    // Ready's new entries are written (the write starts first, so the fsync runs meanwhile):
    // their answers need not wait for one more fsync (under load the leader's next Ready
    // always carries new entries, and that fsync doubled every commit's latency).
    // Only a leader: its proposers wait for the apply. A follower's ack leaves when its write
    // is done, and an apply running then (a large entry) would hold the ack back.
    const eager = rd.snapshot === null && this.role === 'leader';
    const early = eager ? committedBeforeWrite(rd) : 0;
    const persisting = this.persist(rd);
    try {
      for (let i = 0; i < early; i++) this.applyEntry(at(rd.committed, i));
      // With all of this Ready's committed entries applied, later ones may apply as they
      // commit during the write (step()).
      this.applyWhileWriting = eager && early === rd.committed.length;
    } finally {
      try {
        await persisting;
      } finally {
        this.applyWhileWriting = false;
      }
    }
    if (this.readMode === 'lease' && this.role === 'leader') this.noteRoundsSent(rd.messages);
    for (const m of rd.messages) this.opts.send(m.to, m);
    if (rd.snapshot) {
      this.machine.restore(rd.snapshot.data);
      this.applied = rd.snapshot.meta.index;
      this.snapshotIndex = rd.snapshot.meta.index;
      this.failProposalsUpTo(rd.snapshot.meta.index);
    }
    for (let i = early; i < rd.committed.length; i++) this.applyEntry(at(rd.committed, i));
    if (rd.committed.length > 0 || rd.snapshot) {
      this.opts.observer?.onCommit?.(this.group, this.node.status().commit, this.applied);
    }
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.ctx);
      if (r) r.index = rs.index;
    }
    for (const d of rd.dropped) {
      const r = this.reads.get(d.ctx);
      if (!r) continue;
      this.reads.delete(d.ctx);
      const err = new NotLeaderError(this.leader, this.group);
      for (const w of r.waiters) w.reject(err);
    }
    this.releaseReads();
  }

  /** Persists what the Ready must make durable before its messages go out. A hard state
   * that only moved the commit index is not worth an fsync on the commit path (the commit
   * index is re-learned from the leader after a restart; term and vote are what must not be
   * lost): it rides along with the next write instead. */
  private async persist(rd: Ready): Promise<void> {
    const hs = rd.hardState;
    const commitOnly = hs !== null && rd.entries.length === 0 && rd.snapshot === null &&
      this.savedHardState !== null && hs.term === this.savedHardState.term &&
      hs.vote === this.savedHardState.vote;
    if (commitOnly) {
      this.deferredHardState = hs;
      return;
    }
    const hardState = hs ?? this.deferredHardState;
    if (hardState === null && rd.entries.length === 0 && rd.snapshot === null) return;
    const t0 = process.hrtime.bigint();
    await this.storage.save({ hardState, entries: rd.entries, snapshot: rd.snapshot });
    if (hardState !== null) this.savedHardState = hardState;
    this.deferredHardState = null;
    this.opts.observer?.onPersist?.(this.group, Number(process.hrtime.bigint() - t0) / 1e9,
      rd.entries.length);
  }

  private onSoftState(role: Role, term: number, leader: NodeId | null): void {
    const wasLeader = this.role === 'leader';
    const previousTerm = this.term;
    if (role !== this.role || leader !== this.leader || term !== this.term) {
      this.log.info({ role, term, leader }, 'raft state change');
      this.opts.observer?.onRole?.(this.group, role, term, leader);
    }
    this.role = role;
    this.term = term;
    this.leader = leader;
    if (role !== 'leader' || term !== previousTerm) this.roundSentAt.clear();
    if (wasLeader && (role !== 'leader' || term !== previousTerm)) {
      // Leadership lost (or a new term began behind our back): we cannot tell whether the
      // proposed commands will commit. Fail fast as INDETERMINATE; a retry with the same
      // requestId is de-duplicated. Batched ones were never proposed.
      this.leaderStart = null;
      this.failPending(new IndeterminateError('leadership was lost before the command ' +
        'committed; retry with the same requestId'), new NotLeaderError(leader, this.group));
    }
    if (role === 'leader' && (!wasLeader || term !== previousTerm)) {
      this.leaderStart = this.machine.leaderStartEntry(term, (this.opts.clock ?? Date.now)());
      this.proposeLeaderStart();
    }
  }

  /** Proposes the new leader's first entry. The core refuses only when it is full (too many
   * uncommitted entries): then nothing else is accepted until a retry succeeds. */
  private proposeLeaderStart(): void {
    const data = this.leaderStart;
    if (data === null || this.role !== 'leader') return;
    try {
      this.node.propose(data);
      this.leaderStart = null;
    } catch (err) {
      if (!(err instanceof DsyncError)) throw err;
      this.log.warn({ err, term: this.term }, 'could not propose the leader-start commands yet; ' +
        'refusing proposals until they are in');
    }
  }

  /** Rejects every proposal (with `proposed` once in the log, `batched` before) and every
   * read (`batched`: a read changes nothing, so it is never indeterminate). */
  private failPending(proposed: Error, batched: Error): void {
    for (const [i, p] of this.proposals) {
      this.proposals.delete(i);
      for (const w of p.waiters) w.reject(proposed);
    }
    for (const q of this.batch) q.waiter.reject(batched);
    this.batch = [];
    this.batchBytes = 0;
    for (const [c, r] of this.reads) {
      this.reads.delete(c);
      for (const w of r.waiters) w.reject(batched);
    }
    for (const w of this.readBatch) w.reject(batched);
    this.readBatch = [];
  }

  private applyEntry(e: Entry): void {
    assert(e.index === this.applied + 1,
      () => `group ${this.group}: applying ${e.index} after ${this.applied}`);
    this.applied = e.index;
    const results = this.machine.apply(e);
    const p = this.proposals.get(e.index);
    if (p) {
      this.proposals.delete(e.index);
      const ours = p.term === e.term;
      assert(!ours || results.length === p.waiters.length,
        () => `group ${this.group}: entry ${e.index} has ${results.length} results for ` +
          `${p.waiters.length} proposals`);
      const err = ours ? null : new NotLeaderError(this.leader, this.group);
      for (const [position, w] of p.waiters.entries()) {
        if (w.done) continue;
        this.opts.observer?.onProposalDone?.(this.group,
          Number(process.hrtime.bigint() - w.startNs) / 1e9, ours ? 'ok' : 'error');
        if (err === null) w.resolve(results[position]);
        else w.reject(err);
      }
    }
    while (this.appliedWaiters.length > 0) {
      const i = this.appliedWaiters.findIndex((w) => w.index <= this.applied);
      if (i < 0) break;
      this.appliedWaiters.splice(i, 1)[0]?.resolve();
    }
  }

  private failProposalsUpTo(index: number): void {
    const err = new IndeterminateError('a snapshot replaced the log; retry with the same requestId');
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      for (const w of p.waiters) w.reject(err);
    }
  }

  private releaseReads(): void {
    for (const [c, r] of this.reads) {
      if (r.index === null || r.index > this.applied) continue;
      this.reads.delete(c);
      for (const w of r.waiters) w.resolve();
    }
  }

  // ---- snapshots ----------------------------------------------------------------------

  private async maybeSnapshot(): Promise<void> {
    const every = this.opts.snapshotEntries ?? DEFAULT_SNAPSHOT_ENTRIES;
    // An asked-for snapshot drops the whole log before it (no tail kept for followers), also
    // when the last snapshot is at the applied index but kept a tail.
    const asked = this.snapshotAsked && (this.applied > this.snapshotIndex ||
      this.node.status().firstIndex <= this.snapshotIndex);
    if (this.snapshotting || (!asked && this.applied - this.snapshotIndex < every)) return;
    this.snapshotAsked = false;
    this.snapshotting = true;
    try {
      const snap: Snapshot = {
        meta: this.node.snapshotMetaAt(this.applied), data: this.machine.image(),
      };
      await this.storage.saveSnapshot(snap);
      this.node.compact(snap, !asked);
      await this.storage.compact(snap.meta.index);
      this.snapshotIndex = snap.meta.index;
      this.opts.observer?.onSnapshot?.(this.group, snap.meta.index, snap.data.byteLength);
      this.log.info({ index: snap.meta.index, bytes: snap.data.byteLength }, 'snapshot taken');
    } finally {
      this.snapshotting = false;
    }
  }
}

function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  assert(x !== undefined, 'index in range');
  return x;
}
