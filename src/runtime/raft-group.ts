// Drives one Raft group: the ready loop (send early → persist → send → apply → advance),
// proposals and linearizable reads as promises with deadlines, snapshots and log compaction.
import type { Logger } from 'pino';
import { assert } from '../assert.js';
import { IndeterminateError, NotLeaderError, TimeoutError, UnavailableError } from '../errors.js';
import { RaftNode, parseRaftOptions, type RaftOptions } from '../raft/raft.js';
import { seededRand } from '../raft/rand.js';
import type {
  ClusterConfig, Entry, HardState, Message, NodeId, Ready, Role, Snapshot,
} from '../raft/types.js';
import { RaftStorage } from '../storage/raft-storage.js';
import { DedupTable } from './dedup.js';
import { decode, decodeEnvelope, encode, encodeEnvelope } from './envelope.js';
import type { StateMachine } from './state-machine.js';

/** Counters and gauges the group reports; the node maps them onto prom-client. */
export interface RaftGroupObserver {
  onRole?(group: number, role: Role, term: number, leader: NodeId | null): void;
  onCommit?(group: number, commitIndex: number, appliedIndex: number): void;
  onPersist?(group: number, seconds: number, entries: number): void;
  onProposalDone?(group: number, seconds: number, outcome: 'ok' | 'error'): void;
  onSnapshot?(group: number, index: number, bytes: number): void;
}

export interface RaftGroupOptions {
  readonly group: number;
  readonly nodeId: NodeId;
  readonly dataDir: string;
  readonly bootstrap: ClusterConfig;
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'rand'>>;
  readonly fsync: boolean;
  /** Take a snapshot and compact the log after this many applied entries (default 10,000). */
  readonly snapshotEntries?: number;
  /** Pending proposals at most; more are refused as UNAVAILABLE (back-pressure). */
  readonly pendingProposalsMax?: number;
  readonly stateMachine: StateMachine;
  readonly send: (to: NodeId, msg: Message) => void;
  readonly logger: Logger;
  readonly observer?: RaftGroupObserver;
  readonly clock?: () => number;
  readonly seed?: number;
}

export const DEFAULT_SNAPSHOT_ENTRIES = 10_000;
export const DEFAULT_PENDING_PROPOSALS_MAX = 10_000;

interface PendingProposal {
  readonly term: number;
  readonly startNs: bigint;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

interface PendingRead {
  index: number | null;
  resolve(): void;
  reject(err: Error): void;
}

export interface ProposeOptions {
  readonly timeoutMs: number;
  readonly clientId?: string;
  readonly requestId?: string;
  readonly signal?: AbortSignal;
}

interface SnapshotImage {
  readonly sm: Uint8Array;
  readonly dedup: Array<[string, number, unknown]>;
  readonly nowMs: number;
}

export class RaftGroup {
  readonly group: number;
  private readonly node: RaftNode;
  private readonly log: Logger;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<number, PendingRead>();
  private readSeq = 0;
  private dedup = new DedupTable();
  private lastNowMs = 0;
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  private term = 0;
  private applied = 0;
  private snapshotIndex = 0;
  private scheduled = false;
  private draining = false;
  private closed = false;
  private snapshotting = false;
  private savedHardState: HardState | null = null;
  private deferredHardState: HardState | null = null;
  private readonly appliedWaiters: Array<{ index: number; resolve(): void }> = [];

  private constructor(
    private readonly opts: RaftGroupOptions,
    private readonly storage: RaftStorage,
    node: RaftNode,
    appliedFromSnapshot: number,
  ) {
    this.group = opts.group;
    this.node = node;
    this.applied = appliedFromSnapshot;
    this.snapshotIndex = appliedFromSnapshot;
    this.log = opts.logger.child({ group: opts.group });
  }

  static async open(opts: RaftGroupOptions): Promise<RaftGroup> {
    const { storage, recovered } = await RaftStorage.open({ dir: opts.dataDir, fsync: opts.fsync });
    for (const w of recovered.warnings ?? []) opts.logger.warn({ group: opts.group }, w);
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
    const raftOpts = parseRaftOptions({ ...opts.raft, id: opts.nodeId, rand: seededRand(seed) });
    const node = new RaftNode(raftOpts, {
      hardState: recovered.hardState,
      snapshot: recovered.snapshot,
      entries: recovered.entries,
      config: opts.bootstrap,
    });
    const g = new RaftGroup(opts, storage, node, recovered.snapshot?.meta.index ?? 0);
    g.savedHardState = recovered.hardState;
    if (recovered.snapshot) g.restoreImage(recovered.snapshot.data);
    g.log.info({ snapshot: recovered.snapshot?.meta.index ?? 0, entries: recovered.entries.length,
      hardState: recovered.hardState }, 'raft group recovered');
    g.schedule();
    return g;
  }

  // ---- inputs -------------------------------------------------------------------------

  tick(): void {
    if (this.closed) return;
    this.node.tick();
    this.schedule();
  }

  step(msg: Message): void {
    if (this.closed) return;
    this.node.step(msg);
    this.schedule();
  }

  /** Propose a command; resolves with the state machine's result once applied here. */
  propose(command: Uint8Array, o: ProposeOptions): Promise<unknown> {
    if (this.closed) return Promise.reject(new UnavailableError('node is shutting down'));
    if (this.role !== 'leader') return Promise.reject(new NotLeaderError(this.leader, this.group));
    if (this.proposals.size >= (this.opts.pendingProposalsMax ?? DEFAULT_PENDING_PROPOSALS_MAX)) {
      return Promise.reject(new UnavailableError(
        'too many proposals in flight on this leader; back off and retry', { group: this.group }));
    }
    const env = encodeEnvelope({
      t: this.now(), d: command,
      ...(o.clientId !== undefined && o.requestId !== undefined
        ? { c: o.clientId, r: o.requestId } : {}),
    });
    const { index, term } = this.node.propose(env);
    const startNs = process.hrtime.bigint();
    const p = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.finishProposal(index, new IndeterminateError(
          `no commit within ${o.timeoutMs} ms; the command may still apply, retry with the same requestId`));
      }, o.timeoutMs);
      const onAbort = (): void => this.finishProposal(index,
        new IndeterminateError('request aborted; the command may still apply'));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = (): void => { clearTimeout(timer); o.signal?.removeEventListener('abort', onAbort); };
      this.proposals.set(index, {
        term, startNs,
        resolve: (r) => { cleanup(); resolve(r); },
        reject: (e) => { cleanup(); reject(e); },
      });
    });
    this.schedule();
    return p;
  }

  /** Resolves once this node has applied everything committed before the call (ReadIndex). */
  linearizableRead(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.reject(new UnavailableError('node is shutting down'));
    if (this.role !== 'leader') return Promise.reject(new NotLeaderError(this.leader, this.group));
    const ctx = ++this.readSeq;
    const p = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(ctx);
        reject(new TimeoutError(`read not confirmed by a quorum within ${timeoutMs} ms; retry`));
      }, timeoutMs);
      this.reads.set(ctx, {
        index: null,
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
    this.node.readIndex(ctx);
    this.schedule();
    return p;
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
    return Math.max((this.opts.clock ?? Date.now)(), this.lastNowMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new UnavailableError('node is shutting down; retry on another node');
    for (const [i, p] of this.proposals) { this.proposals.delete(i); p.reject(err); }
    for (const [c, r] of this.reads) { this.reads.delete(c); r.reject(err); }
    while (this.draining) await new Promise((r) => setTimeout(r, 5));
    if (this.deferredHardState !== null) {
      await this.storage.save({ hardState: this.deferredHardState, entries: [], snapshot: null });
    }
    await this.storage.close();
  }

  // ---- the ready loop -----------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.draining || this.closed) return;
    this.draining = true;
    try {
      while (!this.closed && this.node.hasReady()) {
        const rd = this.node.ready();
        await this.handleReady(rd);
        this.node.advance(rd);
      }
      if (!this.closed) await this.maybeSnapshot();
    } catch (err) {
      // Storage or an invariant failed: a replica that cannot persist must not go on.
      this.log.fatal({ err }, 'raft ready loop failed; exiting so the node restarts from disk');
      process.exit(70);
    } finally {
      this.draining = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState.role, rd.softState.term, rd.softState.leader);
    // The leader's appends go out first so that the followers' network and fsync overlap our
    // own fsync (§10.2.1); the core counts our write toward a quorum only after advance().
    for (const m of rd.earlyMessages) this.opts.send(m.to, m);
    await this.persist(rd);
    for (const m of rd.messages) this.opts.send(m.to, m);
    if (rd.snapshot) {
      this.restoreImage(rd.snapshot.data);
      this.applied = rd.snapshot.meta.index;
      this.snapshotIndex = rd.snapshot.meta.index;
      this.failProposalsUpTo(rd.snapshot.meta.index);
    }
    for (const e of rd.committed) this.applyEntry(e);
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
      r.reject(new NotLeaderError(this.leader, this.group));
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
    if (role !== this.role || leader !== this.leader || term !== this.term) {
      this.log.info({ role, term, leader }, 'raft state change');
      this.opts.observer?.onRole?.(this.group, role, term, leader);
    }
    this.role = role;
    this.term = term;
    this.leader = leader;
    if (wasLeader && role !== 'leader') {
      // Leadership lost: we cannot tell whether these will commit. Fail fast as
      // INDETERMINATE; a retry with the same requestId is de-duplicated.
      for (const [i, p] of this.proposals) {
        this.proposals.delete(i);
        p.reject(new IndeterminateError(
          'leadership was lost before the command committed; retry with the same requestId'));
      }
      for (const [c, r] of this.reads) {
        this.reads.delete(c);
        r.reject(new NotLeaderError(leader, this.group));
      }
    }
  }

  private applyEntry(e: Entry): void {
    assert(e.index === this.applied + 1,
      () => `group ${this.group}: applying ${e.index} after ${this.applied}`);
    this.applied = e.index;
    let result: unknown = undefined;
    if (e.type === 'normal') {
      const env = decodeEnvelope(e.data);
      this.lastNowMs = Math.max(this.lastNowMs, env.t);
      const ctx = { index: e.index, term: e.term, nowMs: this.lastNowMs };
      if (env.c !== undefined && env.r !== undefined) {
        const key = DedupTable.key(env.c, env.r);
        const seen = this.dedup.lookup(key);
        if (seen) result = seen.result;
        else {
          result = this.opts.stateMachine.apply(env.d, ctx);
          this.dedup.remember(key, this.lastNowMs, result);
        }
      } else {
        result = this.opts.stateMachine.apply(env.d, ctx);
      }
    }
    const p = this.proposals.get(e.index);
    if (p) {
      this.proposals.delete(e.index);
      this.opts.observer?.onProposalDone?.(this.group,
        Number(process.hrtime.bigint() - p.startNs) / 1e9, p.term === e.term ? 'ok' : 'error');
      if (p.term === e.term) p.resolve(result);
      else p.reject(new NotLeaderError(this.leader, this.group));
    }
    while (this.appliedWaiters.length > 0) {
      const i = this.appliedWaiters.findIndex((w) => w.index <= this.applied);
      if (i < 0) break;
      this.appliedWaiters.splice(i, 1)[0]?.resolve();
    }
  }

  private finishProposal(index: number, err: Error): void {
    const p = this.proposals.get(index);
    if (!p) return;
    this.proposals.delete(index);
    this.opts.observer?.onProposalDone?.(this.group,
      Number(process.hrtime.bigint() - p.startNs) / 1e9, 'error');
    p.reject(err);
  }

  private failProposalsUpTo(index: number): void {
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      p.reject(new IndeterminateError('a snapshot replaced the log; retry with the same requestId'));
    }
  }

  private releaseReads(): void {
    for (const [c, r] of this.reads) {
      if (r.index === null || r.index > this.applied) continue;
      this.reads.delete(c);
      r.resolve();
    }
  }

  // ---- snapshots ----------------------------------------------------------------------

  private image(): Uint8Array {
    const img: SnapshotImage = {
      sm: this.opts.stateMachine.snapshot(), dedup: this.dedup.toJSON(), nowMs: this.lastNowMs,
    };
    return encode(img);
  }

  private restoreImage(data: Uint8Array): void {
    const img = decode<SnapshotImage>(data);
    this.opts.stateMachine.restore(img.sm);
    this.dedup = DedupTable.fromJSON(img.dedup);
    this.lastNowMs = img.nowMs;
  }

  private async maybeSnapshot(): Promise<void> {
    const every = this.opts.snapshotEntries ?? DEFAULT_SNAPSHOT_ENTRIES;
    if (this.snapshotting || this.applied - this.snapshotIndex < every) return;
    this.snapshotting = true;
    try {
      const snap: Snapshot = { meta: this.node.snapshotMetaAt(this.applied), data: this.image() };
      await this.storage.saveSnapshot(snap);
      this.node.compact(snap);
      await this.storage.compact(snap.meta.index);
      this.snapshotIndex = snap.meta.index;
      this.opts.observer?.onSnapshot?.(this.group, snap.meta.index, snap.data.byteLength);
      this.log.info({ index: snap.meta.index, bytes: snap.data.byteLength }, 'snapshot taken');
    } finally {
      this.snapshotting = false;
    }
  }
}
