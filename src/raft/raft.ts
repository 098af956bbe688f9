// The Raft consensus core (Ongaro & Ousterhout, "In Search of an Understandable Consensus
// Algorithm", and Ongaro's dissertation), modelled on etcd-io/raft's RawNode/Ready contract.
// Pure, synchronous and deterministic: the shell feeds ticks and messages, and drains ready()
// batches in the order persist -> send -> apply -> advance().
//
// Decisions worth knowing:
// - Followers do not forward ReadIndex requests: readIndex() on a non-leader reports the read
//   in ready().dropped with reason 'not_leader' and the shell forwards it to the leader.
// - A config change takes effect when its entry is appended (dissertation §4.1) and is undone
//   if the entry is truncated; only one may be uncommitted at a time.
// - A node joining an existing cluster is started with the cluster's bootstrap config (the
//   `initial cluster`), or with a snapshot; it learns later changes from the log.
// - A Ready carrying a snapshot replaces the whole persisted log: the shell must drop older
//   entries when it persists it.
// - The leader writes its log in parallel with replicating it (dissertation §10.2.1): its
//   appends carrying entries come in ready().earlyMessages, which may leave before the Ready is
//   persisted, and it counts itself toward a commit quorum only up to the entries the shell
//   confirmed durable with advance(). Votes, responses and anything else that vouches for
//   local state wait for the persist; so does everything in a Ready that changes term or vote.

import { assert } from '../assert.js';
import { DsyncError, InvalidArgumentError, NotLeaderError, UnavailableError } from '../errors.js';
import {
  applyConfChange, confChangeError, configsEqual, decodeConfChange, encodeConfChange, isLearner,
  isVoter, members, validateConfig,
} from './config.js';
import { describeMessage, describeReady } from './describe.js';
import { RaftLog } from './log.js';
import { parseRaftOptions, DEFAULT_RAFT_OPTIONS } from './options.js';
import type { RaftOptions } from './options.js';
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult } from './quorum.js';
import { ReadOnlyQueue } from './read-only.js';
import type {
  ClusterConfig, ConfChange, DroppedRequest, Entry, EntryType, HardState, Message, NodeId,
  ReadState, Ready, Role, Snapshot, SnapshotMeta, SoftState,
} from './types.js';

export { DEFAULT_RAFT_OPTIONS, parseRaftOptions, describeMessage, describeReady };
export { encodeConfChange, decodeConfChange, applyConfChange, confChangeError };
export type { RaftOptions };

export interface RaftInit {
  hardState: HardState | null;
  /** Last persisted snapshot (its data kept to send to lagging peers). */
  snapshot: Snapshot | null;
  /** Persisted log after the snapshot, in order. */
  entries: readonly Entry[];
  /** Bootstrap configuration, used when neither snapshot nor log has one. */
  config: ClusterConfig;
}

export interface ProgressStatus {
  match: number;
  next: number;
  inflight: number;
  state: string;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  leader: NodeId | null;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  config: ClusterConfig;
  progress?: Record<NodeId, ProgressStatus>;
}

type InternalRole = 'follower' | 'precandidate' | 'candidate' | 'leader';
/** A message before the sender fills in `from` (distributes over the union). */
type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, 'from'> : never) : never;
type MsgOf<T extends Message['type']> = Extract<Message, { type: T }>;

/** A snapshot being received in chunks; never buffers more than its declared total. */
interface InboundSnapshot {
  readonly meta: SnapshotMeta;
  readonly from: NodeId;
  readonly term: number;
  readonly totalBytes: number;
  readonly parts: Uint8Array[];
  receivedBytes: number;
}

const EMPTY = new Uint8Array(0);

/** How many of a Ready's committed entries lie before the entries it persists: those are
 * durable here already (an earlier Ready wrote them), so a leader may apply them while this
 * Ready is written. */
export function committedBeforeWrite(rd: Ready): number {
  const first = rd.entries[0]?.index;
  if (first === undefined) return rd.committed.length;
  let n = 0;
  while (n < rd.committed.length && (rd.committed[n]?.index ?? Infinity) < first) n++;
  return n;
}

export class RaftNode {
  readonly id: NodeId;
  private readonly opts: RaftOptions;
  private term = 0;
  private vote: NodeId | null = null;
  private leader: NodeId | null = null;
  private role: InternalRole = 'follower';
  private readonly log: RaftLog;
  /** Config at the log's snapshot index; the current config is this folded over the log. */
  private baseConfig: ClusterConfig;
  private config: ClusterConfig;
  private configIndex: number;
  private snapshot: Snapshot | null;
  private pendingSnapshot: Snapshot | null = null;
  private inbound: InboundSnapshot | null = null;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Refusing votes for the first election timeout after start (holdVotesAfterStart). */
  private startHold: boolean;
  /** A leadership transfer was started in this term: its target's election does not wait
   * out the followers' leases, so no lease read is safe for the rest of the term. */
  private leaseForfeited = false;
  /** Periodic heartbeats broadcast in this node's life: the unit of loss recovery. */
  private heartbeats = 0;
  private randomizedElectionTicks = 0;
  private readonly votes = new Map<NodeId, boolean>();
  private readonly progress = new Map<NodeId, Progress>();
  private pendingConfIndex = 0;
  private transferee: NodeId | null = null;
  private readonly readOnly: ReadOnlyQueue;
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private dropped: DroppedRequest[] = [];
  private lastSoft: SoftState;
  private lastHard: HardState;
  /** Committed entries were handed out in a Ready up to this index. */
  private applyingTo: number;
  /** A Ready was handed out and not yet advance()d: the next one must wait for it. */
  private readyOutstanding = false;
  /** The outstanding Ready carries a snapshot (nothing applies until it is installed). */
  private writingSnapshot = false;
  /** The term of the last hard state known to be on disk (restored, or advance()d). */
  private durableTerm = 0;
  private stepRole: (m: Message) => void = (m) => this.stepFollower(m);
  private tickRole: () => void = () => this.tickElection();

  constructor(opts: RaftOptions, init: RaftInit) {
    this.opts = parseRaftOptions(opts);
    this.id = this.opts.id;
    validateConfig(init.config, 'config');
    const snap = init.snapshot;
    this.log = new RaftLog(snap?.meta.index ?? 0, snap?.meta.term ?? 0);
    this.snapshot = snap;
    this.baseConfig = snap === null ? init.config : snap.meta.config;
    this.log.append(init.entries.filter((e) => e.index > this.log.snapshotIndex()));
    this.log.markAllStable();
    const hs = init.hardState;
    this.durableTerm = hs?.term ?? 0;
    if (hs !== null) {
      assert(hs.commit <= this.log.lastIndex(), 'persisted commit beyond the persisted log');
      this.term = hs.term;
      this.vote = hs.vote;
      this.log.commitTo(Math.max(hs.commit, this.log.commit));
    }
    assert(this.term >= this.log.lastTerm(), 'no persisted entry is from a future term');
    this.applyingTo = this.log.applied;
    this.config = this.baseConfig;
    this.configIndex = this.log.snapshotIndex();
    this.readOnly = new ReadOnlyQueue(this.opts.maxPendingReads);
    this.startHold = this.opts.holdVotesAfterStart;
    this.recomputeConfig();
    this.becomeFollower(this.term, null);
    this.lastHard = this.hardState();
    this.lastSoft = this.softState();
  }

  // ---- public API -------------------------------------------------------------------------

  tick(): void {
    this.tickRole();
  }

  /** Feed one message from the network; messages for other nodes are ignored. */
  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id) return;
    if (m.term > this.term) {
      if (!this.acceptHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.stepLowerTerm(m);
      return;
    }
    assert(m.term === this.term || m.type === 'prevote' || m.type === 'prevoteResp',
      'only pre-vote traffic runs ahead of our term');
    switch (m.type) {
      case 'prevote':
      case 'vote':
        this.handleVoteRequest(m);
        return;
      default:
        this.stepRole(m);
    }
  }

  propose(data: Uint8Array): { index: number; term: number } {
    this.checkCanPropose();
    const e = this.appendEntry('normal', data);
    return { index: e.index, term: e.term };
  }

  /** Propose a single-server membership change; one may be pending at a time. */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.log.commit) {
      throw new UnavailableError('a configuration change is already in progress; retry later',
        { pendingConfIndex: this.pendingConfIndex });
    }
    const err = confChangeError(this.config, cc);
    if (err !== null) throw new InvalidArgumentError('confChange', err);
    const e = this.appendEntry('config', encodeConfChange(cc));
    return { index: e.index, term: e.term };
  }

  /** Request a linearizable read; answered in ready().readStates or ready().dropped. */
  readIndex(ctx: number): void {
    assert(Number.isSafeInteger(ctx), 'read ctx is an integer');
    if (this.role !== 'leader') {
      this.dropped.push({ kind: 'read', ctx, reason: 'not_leader' });
      return;
    }
    if (this.readOnly.full()) {
      throw new DsyncError('RESOURCE_EXHAUSTED', 'too many pending reads; retry shortly',
        { retryable: true, details: { maxPendingReads: this.opts.maxPendingReads } });
    }
    // §6.4: the leader's commit index is only known to be current once it has committed an
    // entry of its own term (the no-op); park the read until then.
    if (this.log.term(this.log.commit) !== this.term) {
      this.readOnly.wait(ctx);
      return;
    }
    this.readOnly.add(ctx, this.log.commit);
    this.releaseReads(this.id, 0);
    this.maybeBroadcastReads();
  }

  /**
   * What a lease read needs from the core (dissertation §6.4.1), or null when this node may
   * not serve one: it is not the leader, it has tried to hand leadership over in this term
   * (the target's election does not wait out the followers' leases, and a delayed timeoutNow
   * may start it even after the transfer was given up), or it has not yet committed an entry
   * of its term (its commit index may be behind). `index` is the commit index to apply up to;
   * `round` the newest heartbeat round a quorum has answered: the shell knows when it sent
   * that round, and no other leader can be elected until an election timeout after the
   * followers received it.
   */
  leaseRead(): { index: number; round: number } | null {
    if (this.role !== 'leader' || this.leaseForfeited) return null;
    if (this.log.term(this.log.commit) !== this.term) return null;
    const round = this.readOnly.quorumRound(this.id, this.config.voters);
    return { index: this.log.commit, round };
  }

  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (to === this.id || this.transferee === to) return;
    if (!isVoter(this.config, to)) {
      throw new InvalidArgumentError('to', `${to} is not a voter of this cluster`);
    }
    this.transferee = to;
    this.leaseForfeited = true;
    // The transfer is aborted if it has not completed within an election timeout (§3.10).
    this.electionElapsed = 0;
    const pr = this.progress.get(to);
    assert(pr !== undefined, 'a voter has progress');
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to, term: this.term });
    else this.sendAppend(to, true);
  }

  /** Start an election now (bootstrapping a one-node cluster, tests). */
  campaign(): void {
    this.hup(false, false);
  }

  /** The application snapshotted at snapshot.meta.index (<= applied): drop the log up to it,
   * except for what followers still need (see tailStart). `keepTail` false drops the whole
   * prefix: a member added afterwards then surely starts from the snapshot. Build the meta
   * with snapshotMetaAt(index). */
  compact(snapshot: Snapshot, keepTail = true): void {
    const { meta } = snapshot;
    assert(meta.index <= this.log.applied, 'compact only applied entries');
    const held = this.snapshot?.meta.index ?? 0;
    if (meta.index < held || (meta.index === held && keepTail)) return;
    const expected = this.snapshotMetaAt(meta.index);
    assert(expected.term === meta.term, 'snapshot term matches the log');
    assert(configsEqual(expected.config, meta.config), 'snapshot config matches the log');
    const cut = keepTail ? this.tailStart(meta.index) : meta.index;
    if (cut > this.log.snapshotIndex()) {
      this.baseConfig = this.configAt(cut);
      this.log.compact(cut);
    }
    this.snapshot = snapshot;
    assert(this.log.snapshotIndex() <= meta.index, 'the log reaches the snapshot');
  }

  /**
   * Where compaction at `index` cuts the log. A leader keeps what its followers still need
   * (TiKV's log GC does the same): the entries after the match of each follower it heard from
   * lately, and after the image each follower in snapshot state is being sent, so that one
   * whose transfer took longer than the gap between two compactions catches up from the log
   * once it has installed the image, instead of needing the next snapshot (and the next).
   * Bounded: at most compactTailEntriesMax entries and compactTailBytesMax bytes are kept.
   */
  private tailStart(index: number): number {
    let want = index;
    if (this.role === 'leader') {
      for (const [id, pr] of this.progress) {
        if (id === this.id) continue;
        if (pr.state === 'snapshot') want = Math.min(want, pr.pendingSnapshot);
        else if (pr.recentActive) want = Math.min(want, pr.match);
      }
    }
    const floor = Math.max(this.log.snapshotIndex(), index - this.opts.compactTailEntriesMax);
    let cut = index;
    let bytes = 0;
    while (cut > floor && cut > want) {
      const e = this.log.entry(cut);
      assert(e !== undefined, 'a compaction tail lies inside the log');
      bytes += e.data.length;
      if (bytes > this.opts.compactTailBytesMax) break;
      cut--;
    }
    return cut;
  }

  /** The metadata a snapshot at `index` must carry (term and config as of that index). */
  snapshotMetaAt(index: number): SnapshotMeta {
    const term = this.log.term(index);
    assert(term !== undefined, () => `no term for snapshot index ${index}`);
    return { index, term, config: this.configAt(index) };
  }

  hasReady(): boolean {
    return this.msgs.length > 0 || this.readStates.length > 0 || this.dropped.length > 0 ||
      this.pendingSnapshot !== null || this.log.hasUnstable() ||
      this.nextApplyIndex() <= this.log.commit ||
      !hardStatesEqual(this.hardState(), this.lastHard) ||
      !softStatesEqual(this.softState(), this.lastSoft);
  }

  ready(): Ready {
    assert(!this.readyOutstanding, 'advance() the previous Ready before taking the next');
    assert(this.applyingTo <= this.log.commit, 'never hand out uncommitted entries');
    const soft = this.softState();
    const hard = this.hardState();
    const committed = this.takeCommitted();
    const { early, late } = this.splitMessages(hard);
    const r: Ready = {
      softState: softStatesEqual(soft, this.lastSoft) ? null : soft,
      hardState: hardStatesEqual(hard, this.lastHard) ? null : hard,
      snapshot: this.pendingSnapshot,
      entries: this.log.takeUnstable(),
      earlyMessages: early,
      messages: late,
      committed,
      readStates: this.readStates,
      dropped: this.dropped,
    };
    this.lastSoft = soft;
    this.lastHard = hard;
    this.pendingSnapshot = null;
    this.msgs = [];
    this.readStates = [];
    this.dropped = [];
    this.readyOutstanding = true;
    this.writingSnapshot = r.snapshot !== null;
    return r;
  }

  /**
   * §10.2.1: which messages may leave before the Ready is durable. Only the leader's appends
   * that carry entries: a follower acknowledges only what it persisted, so they cannot make
   * anything commit before the leader's own write (which advance() confirms) or a quorum of
   * followers holds it. Nothing may leave early in a Ready that changes term or vote, since
   * a crash before the persist would forget them and allow a second leader in the term.
   */
  private splitMessages(hard: HardState): { early: Message[]; late: Message[] } {
    const sameVote = hard.term === this.lastHard.term && hard.vote === this.lastHard.vote;
    if (!sameVote || this.pendingSnapshot !== null) return { early: [], late: this.msgs };
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of this.msgs) {
      if (m.type === 'append' && m.entries.length > 0) {
        assert(m.term === this.term, 'an early append is from our current term');
        early.push(m);
      } else {
        late.push(m);
      }
    }
    return { early, late };
  }

  /** A heartbeat round now, without moving the clock: for a shell whose ticks run late (its
   * event loop is stuck in a long phase of other I/O), so that the followers keep hearing
   * from their leader. Elections and CheckQuorum still count tick() alone. No-op unless this
   * node leads. */
  beat(): void {
    if (this.role !== 'leader') return;
    this.bcastHeartbeat();
  }

  /**
   * The heartbeats queued since the last ready(), taken out so the shell can send them now,
   * while it is still persisting that Ready. They depend on nothing being written first:
   * they carry our term, which is on disk (checked), and a commit index no higher than what
   * each follower already acknowledged. A leader whose disk stalls for longer than an
   * election timeout would otherwise fall silent, and its followers would elect another.
   * Empty unless this node leads.
   */
  takeHeartbeats(): Message[] {
    if (this.role !== 'leader' || this.durableTerm !== this.term) return [];
    const beats = this.msgs.filter((m) => m.type === 'heartbeat');
    if (beats.length > 0) this.msgs = this.msgs.filter((m) => m.type !== 'heartbeat');
    return beats;
  }

  /**
   * Committed entries the shell may apply at once, while the outstanding Ready is still being
   * persisted: those after every entry already handed out, up to the commit index and no
   * further than what is durable here. An ack that arrives during the leader's write (or a
   * commit index during a follower's) need not wait for that write to be applied: the entries
   * are on a majority's disks, and on ours. The shell must have applied every committed entry
   * of the outstanding Ready already, and must apply these before it steps anything else.
   * Empty while a snapshot waits to be installed or is being written.
   */
  takeDurableCommitted(): Entry[] {
    if (this.pendingSnapshot !== null || this.writingSnapshot) return [];
    if (this.log.snapshotIndex() > this.applyingTo) return [];
    const hi = Math.min(this.log.commit, this.log.stableIndex());
    const lo = this.applyingTo + 1;
    if (lo > hi) return [];
    const out = this.log.slice(lo, hi + 1, Infinity, this.opts.maxAppendEntries);
    const last = out[out.length - 1];
    assert(last !== undefined, 'durable committed entries exist');
    this.applyingTo = last.index;
    this.log.appliedTo(last.index);
    return out;
  }

  /** The shell persisted, sent and applied `ready`. */
  advance(ready: Ready): void {
    assert(this.readyOutstanding, 'advance() follows ready()');
    this.readyOutstanding = false;
    this.writingSnapshot = false;
    if (ready.hardState !== null) this.durableTerm = ready.hardState.term;
    const lastCommitted = ready.committed[ready.committed.length - 1]?.index ?? 0;
    const applied = Math.max(lastCommitted, ready.snapshot?.meta.index ?? 0);
    assert(applied <= this.log.commit, 'applied entries were committed');
    if (applied > this.log.applied) this.log.appliedTo(applied);
    // Our own write is durable now: it may complete a quorum the followers already formed.
    if (this.log.stableToWriting() && this.role === 'leader' && this.maybeCommit()) {
      this.bcastCommit();
    }
  }

  status(): RaftStatus {
    const s: RaftStatus = {
      id: this.id, role: this.publicRole(), term: this.term, leader: this.leader,
      commit: this.log.commit, applied: this.log.applied, lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(), config: this.config,
    };
    if (this.role === 'leader') {
      const progress: Record<NodeId, ProgressStatus> = {};
      for (const [id, pr] of this.progress) {
        progress[id] = {
          match: pr.match, next: pr.next, inflight: pr.inflight.count(), state: pr.state,
        };
      }
      s.progress = progress;
    }
    return s;
  }

  /** The log entry at `index` if still held (tests and tools). */
  entryAt(index: number): Entry | undefined {
    return this.log.entry(index);
  }

  // ---- term handling ----------------------------------------------------------------------

  /** A message from a higher term. Returns false when it must be ignored. */
  private acceptHigherTerm(m: Message): boolean {
    const inLease = (this.leader !== null || this.startHold) &&
      this.electionElapsed < this.opts.electionTicks;
    if (m.type === 'prevote') {
      // §9.6: a node that heard from a leader within the election timeout denies pre-votes,
      // so a rejoining partitioned node cannot disrupt a healthy leader.
      return !(this.opts.preVote && inLease);
    }
    if (m.type === 'prevoteResp' && m.granted) return true; // pre-votes never bump terms
    if (m.type === 'vote' && this.opts.checkQuorum && inLease && !m.transfer) {
      return false; // leader lease (§4.2.3): ignore disruptive votes
    }
    const lead = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ?
      m.from : null;
    this.becomeFollower(m.term, lead);
    assert(this.term === m.term, 'term advanced to the message term');
    return true;
  }

  private stepLowerTerm(m: Message): void {
    assert(m.term < this.term, 'a message from an older term');
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Tell a stale leader about the newer term so that it steps down.
        this.send({ type: 'appendResp', to: m.from, term: this.term, success: false,
          index: 0, rejectHint: 0 });
        return;
      case 'prevote':
        this.send({ type: 'prevoteResp', to: m.from, term: this.term, granted: false });
        return;
      case 'vote':
        this.send({ type: 'voteResp', to: m.from, term: this.term, granted: false });
        return;
      default:
        return;
    }
  }

  private handleVoteRequest(m: MsgOf<'prevote'> | MsgOf<'vote'>): void {
    // §5.2: one vote per term; §5.4.1: only for a log at least as up-to-date as ours.
    const canVote = this.vote === m.from || (this.vote === null && this.leader === null) ||
      (m.type === 'prevote' && m.term > this.term);
    const granted = canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm);
    const respType = m.type === 'prevote' ? 'prevoteResp' : 'voteResp';
    this.send({ type: respType, to: m.from, term: granted ? m.term : this.term, granted });
    if (granted && m.type === 'vote') {
      assert(m.term === this.term, 'votes are granted in the current term');
      this.electionElapsed = 0;
      this.vote = m.from;
    }
  }

  // ---- role transitions -------------------------------------------------------------------

  private reset(term: number): void {
    assert(term >= this.term, 'terms never go backwards');
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    if (this.role === 'leader') {
      for (const ctx of this.readOnly.drain()) {
        this.dropped.push({ kind: 'read', ctx, reason: 'leadership_lost' });
      }
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTicks =
      this.opts.rand.int(this.opts.electionTicks, 2 * this.opts.electionTicks);
    this.transferee = null;
    this.votes.clear();
    this.progress.clear();
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    assert(leader !== this.id, 'a follower follows someone else');
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
    this.stepRole = (m) => this.stepFollower(m);
    this.tickRole = () => this.tickElection();
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not pre-campaign');
    // A pre-candidate keeps its term and vote: nothing changes unless the real election runs.
    this.role = 'precandidate';
    this.leader = null;
    this.votes.clear();
    this.randomizedElectionTicks =
      this.opts.rand.int(this.opts.electionTicks, 2 * this.opts.electionTicks);
    this.stepRole = (m) => this.stepCandidate(m);
    this.tickRole = () => this.tickElection();
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader does not campaign');
    this.reset(this.term + 1);
    this.role = 'candidate';
    this.vote = this.id;
    this.stepRole = (m) => this.stepCandidate(m);
    this.tickRole = () => this.tickElection();
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    assert(isVoter(this.config, this.id), 'only a voter leads');
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    this.leaseForfeited = false;
    this.stepRole = (m) => this.stepLeader(m);
    this.tickRole = () => this.tickHeartbeat();
    this.syncProgress();
    // No config change until everything up to and including this term's no-op commits: the
    // log may hold an uncommitted change from an older term.
    this.pendingConfIndex = this.log.lastIndex() + 1;
    this.appendEntry('noop', EMPTY);
  }

  /** Start an election; `skipPreVote` after a won pre-vote or on timeoutNow, `transfer` only
   * on timeoutNow (it lets the vote through leader leases). */
  private hup(skipPreVote: boolean, transfer: boolean): void {
    if (this.role === 'leader' || !isVoter(this.config, this.id)) return;
    this.startHold = false;
    assert(skipPreVote || !transfer, 'a transfer election skips the pre-vote');
    const pre = this.opts.preVote && !skipPreVote;
    if (pre) this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = pre ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (this.pollVotes()) return;
    for (const to of this.config.voters) {
      if (to === this.id) continue;
      const base = { to, term: voteTerm, lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm() };
      if (pre) this.send({ type: 'prevote', ...base });
      else this.send({ type: 'vote', ...base, transfer });
    }
  }

  /** Tally votes; acts on a decided election and returns whether it was decided. */
  private pollVotes(): boolean {
    assert(this.role === 'candidate' || this.role === 'precandidate', 'only candidates poll');
    assert(this.votes.get(this.id) === true, 'a candidate votes for itself');
    const result = voteResult(this.config.voters, this.votes);
    if (result === 'pending') return false;
    if (result === 'lost') {
      this.becomeFollower(this.term, null);
    } else if (this.role === 'precandidate') {
      this.hup(true, false); // the pre-vote was won: run the real election
    } else {
      this.becomeLeader();
    }
    return true;
  }

  // ---- ticks ------------------------------------------------------------------------------

  private tickElection(): void {
    assert(this.role !== 'leader', 'election ticks run on non-leaders');
    this.electionElapsed++;
    if (this.electionElapsed >= this.opts.electionTicks) this.startHold = false;
    if (isVoter(this.config, this.id) && this.electionElapsed >= this.randomizedElectionTicks) {
      this.electionElapsed = 0;
      this.hup(false, false);
    }
  }

  private tickHeartbeat(): void {
    assert(this.role === 'leader', 'heartbeat ticks run on the leader');
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.opts.electionTicks) {
      this.electionElapsed = 0;
      const active = hasQuorum(this.config.voters,
        (v) => v === this.id || this.progress.get(v)?.recentActive === true);
      if (this.opts.checkQuorum && !active) {
        this.becomeFollower(this.term, null);
        return;
      }
      // recentActive also gates learner promotion, so it is refreshed with or without
      // CheckQuorum.
      for (const pr of this.progress.values()) pr.recentActive = false;
      this.transferee = null; // a transfer that did not finish in an election timeout aborts
    }
    if (this.heartbeatElapsed >= this.opts.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.heartbeats++;
      this.bcastHeartbeat();
    }
  }

  // ---- follower and candidate -------------------------------------------------------------

  private stepFollower(m: Message): void {
    assert(this.role === 'follower', 'follower handler');
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        assert(this.leader === null || this.leader === m.from, () =>
          `two leaders in term ${this.term}: ${this.leader} and ${m.from}`);
        this.leader = m.from;
        this.electionElapsed = 0;
        this.stepFromLeader(m);
        return;
      case 'timeoutNow':
        this.hup(true, true);
        return;
      default:
        return; // stale responses
    }
  }

  private stepCandidate(m: Message): void {
    assert(this.role === 'candidate' || this.role === 'precandidate', 'candidate handler');
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // §5.2: a candidate that hears from a leader of its term returns to follower.
        this.becomeFollower(this.term, m.from);
        this.stepFromLeader(m);
        return;
      case 'prevoteResp':
      case 'voteResp':
        if ((m.type === 'prevoteResp') !== (this.role === 'precandidate')) return;
        if (!isVoter(this.config, m.from)) return;
        this.votes.set(m.from, m.granted);
        this.pollVotes();
        return;
      default:
        return;
    }
  }

  private stepFromLeader(m: MsgOf<'append'> | MsgOf<'heartbeat'> | MsgOf<'snapshot'>): void {
    if (m.type === 'append') this.handleAppend(m);
    else if (m.type === 'heartbeat') this.handleHeartbeat(m);
    else this.handleSnapshot(m);
  }

  private handleAppend(m: MsgOf<'append'>): void {
    const commit = this.log.commit;
    if (m.prevIndex < commit) {
      // Everything up to our commit matches the leader (§5.4 leader completeness).
      this.send({ type: 'appendResp', to: m.from, term: this.term, success: true,
        index: commit, rejectHint: 0 });
      return;
    }
    const r = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.entries);
    if (r === null) {
      const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()),
        m.prevTerm);
      this.send({ type: 'appendResp', to: m.from, term: this.term, success: false,
        index: m.prevIndex, rejectHint: hint });
      return;
    }
    assert(r.lastNew <= this.log.lastIndex(), 'the matched prefix is in our log');
    if (r.truncated || m.entries.some((e) => e.type === 'config')) this.recomputeConfig();
    this.log.commitTo(Math.max(commit, Math.min(m.commit, r.lastNew)));
    assert(this.log.commit >= commit, 'commit never moves backwards');
    this.send({ type: 'appendResp', to: m.from, term: this.term, success: true,
      index: r.lastNew, rejectHint: 0 });
  }

  private handleHeartbeat(m: MsgOf<'heartbeat'>): void {
    assert(this.role === 'follower' && this.leader === m.from, 'heartbeats come from our leader');
    // The leader sends min(match, commit), so this never commits past what matches it.
    const commit = Math.min(m.commit, this.log.lastIndex());
    if (commit > this.log.commit) this.log.commitTo(commit);
    this.send({ type: 'heartbeatResp', to: m.from, term: this.term, readCtx: m.readCtx });
  }

  private handleSnapshot(m: MsgOf<'snapshot'>): void {
    const reply = (nextOffset: number): void => this.send({ type: 'snapshotResp', to: m.from,
      term: this.term, index: m.meta.index, nextOffset });
    const end = m.offset + m.chunk.length;
    if (m.offset < 0 || end > m.totalBytes || m.done !== (end === m.totalBytes)) {
      reply(-1);
      return;
    }
    if (m.meta.index <= this.log.commit) {
      this.inbound = null;
      this.send({ type: 'appendResp', to: m.from, term: this.term, success: true,
        index: this.log.commit, rejectHint: 0 });
      return;
    }
    const ib = this.inbound;
    if (ib === null || ib.meta.index !== m.meta.index || ib.meta.term !== m.meta.term ||
      ib.from !== m.from || ib.term !== m.term) {
      if (m.offset !== 0) {
        reply(0);
        return;
      }
      this.inbound = { meta: m.meta, from: m.from, term: m.term, totalBytes: m.totalBytes,
        parts: [], receivedBytes: 0 };
    }
    const cur = this.inbound;
    assert(cur !== null, 'an inbound snapshot is being assembled');
    if (m.offset !== cur.receivedBytes) {
      reply(cur.receivedBytes);
      return;
    }
    cur.parts.push(m.chunk);
    cur.receivedBytes = end;
    assert(cur.receivedBytes <= cur.totalBytes, 'inbound snapshot within its declared size');
    if (m.done) {
      this.inbound = null;
      this.installSnapshot({ meta: cur.meta, data: concatBytes(cur.parts, cur.totalBytes) });
    }
    reply(cur.receivedBytes);
  }

  private installSnapshot(snap: Snapshot): void {
    const { meta } = snap;
    assert(meta.index > this.log.commit, 'install only a snapshot past commit');
    if (this.log.matchTerm(meta.index, meta.term)) {
      // Our log already holds the snapshot's last entry: just fast-forward the commit.
      this.log.commitTo(meta.index);
      return;
    }
    this.log.restore(meta.index, meta.term);
    this.baseConfig = meta.config;
    this.snapshot = snap;
    this.pendingSnapshot = snap;
    this.applyingTo = Math.max(this.applyingTo, meta.index);
    this.recomputeConfig();
    assert(this.log.lastIndex() === meta.index, 'restored log ends at the snapshot');
  }

  // ---- leader -----------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    assert(this.role === 'leader' && this.leader === this.id, 'leader handler');
    switch (m.type) {
      case 'appendResp': this.handleAppendResp(m); return;
      case 'heartbeatResp': this.handleHeartbeatResp(m); return;
      case 'snapshotResp': this.handleSnapshotResp(m); return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        assert(false, () => `two leaders in term ${this.term}: ${this.id} and ${m.from}`);
        return;
      default:
        return;
    }
  }

  private checkCanPropose(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    assert(this.leader === this.id, 'a leader knows it leads');
    // §3.10: stop accepting proposals while handing leadership over; retry on the target.
    if (this.transferee !== null) throw new NotLeaderError(this.transferee);
    if (this.log.lastIndex() - this.log.commit >= this.opts.maxUncommittedEntries) {
      throw new DsyncError('RESOURCE_EXHAUSTED', 'too many uncommitted entries; retry shortly',
        { retryable: true, details: { maxUncommittedEntries: this.opts.maxUncommittedEntries } });
    }
  }

  private appendEntry(type: EntryType, data: Uint8Array): Entry {
    assert(this.role === 'leader', 'only the leader appends');
    const e: Entry = { term: this.term, index: this.log.lastIndex() + 1, type, data };
    this.log.append([e]);
    if (type === 'config') {
      this.pendingConfIndex = e.index;
      this.recomputeConfig();
    }
    assert(this.log.lastIndex() === e.index, 'entry appended at the tail');
    this.bcastAppend();
    this.maybeCommit();
    return e;
  }

  private bcastAppend(): void {
    for (const to of this.progress.keys()) this.sendAppend(to, false);
  }

  /** Tell every follower about a new commit index (an empty append if nothing is new). */
  private bcastCommit(): void {
    for (const to of this.progress.keys()) this.sendAppend(to, true);
  }

  /** Every broadcast is a new ReadIndex round (read-only.ts): reads waiting for it ride it. */
  private bcastHeartbeat(): void {
    const readCtx = this.readOnly.nextRound();
    for (const [to, pr] of this.progress) {
      this.send({ type: 'heartbeat', to, term: this.term,
        commit: Math.min(pr.match, this.log.commit), readCtx });
    }
  }

  /** Send the next append (or snapshot) to `to`; returns whether something was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    assert(pr !== undefined, () => `no progress for ${to}`);
    if (pr.isPaused()) return false;
    const last = this.log.lastIndex();
    assert(pr.next <= last + 1, 'next is at most one past the log');
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.startSnapshot(to, pr);
    const entries = pr.next > last ? [] :
      this.log.slice(pr.next, last + 1, this.opts.maxAppendBytes, this.opts.maxAppendEntries);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', to, term: this.term, prevIndex, prevTerm, entries,
      commit: this.log.commit });
    const lastSent = entries[entries.length - 1];
    if (pr.state === 'replicate' && lastSent !== undefined) {
      pr.optimisticUpdate(lastSent.index);
      pr.inflight.add(lastSent.index);
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    }
    return true;
  }

  private startSnapshot(to: NodeId, pr: Progress): boolean {
    const snap = this.snapshot;
    assert(snap !== null, 'a compacted log has a snapshot');
    // The log may still hold a tail before the snapshot's index (compact()), not after it.
    assert(snap.meta.index >= this.log.snapshotIndex(), 'the snapshot covers the compacted log');
    pr.becomeSnapshot(snap);
    this.sendSnapshotChunk(to, pr);
    return true;
  }

  /** The next chunk of the image this follower's transfer started with (Progress.snapshotImage),
   * even when the leader compacted since. */
  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const snap = pr.snapshotImage;
    assert(snap !== null && pr.state === 'snapshot', 'sending a snapshot');
    assert(snap.meta.index === pr.pendingSnapshot, 'the image is the one being sent');
    const offset = pr.snapshotAckedBytes;
    const total = snap.data.length;
    assert(offset <= total, 'snapshot offset within the image');
    const end = Math.min(total, offset + this.opts.snapshotChunkBytes);
    const chunk = snap.data.subarray(offset, end);
    this.send({ type: 'snapshot', to, term: this.term, meta: snap.meta, offset,
      totalBytes: total, chunk, done: offset + chunk.length === total });
  }

  private handleAppendResp(m: MsgOf<'appendResp'>): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    // Leader completeness: nobody in our term can acknowledge more than our log holds.
    assert(m.index <= this.log.lastIndex(), () =>
      `${m.from} acknowledged ${m.index} beyond our last ${this.log.lastIndex()}`);
    pr.recentActive = true;
    if (!m.success) {
      if (pr.maybeDecrTo(m.index, m.rejectHint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    // A probe answered at the match we already hold (a snapshot that ended our log caught
    // the follower up) proves replication as much as one that moves it: without this an
    // idle group would keep the follower probing, and a learner would never be promoted
    // (etcd-io/raft's handleAppendEntries does the same).
    const probedAtMatch = pr.state === 'probe' && m.index === pr.match;
    if (!pr.maybeUpdate(m.index) && !probedAtMatch) {
      if (pr.state === 'replicate') pr.inflight.freeLE(m.index);
      return;
    }
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && (pr.match >= pr.pendingSnapshot ||
      pr.match + 1 >= this.log.firstIndex())) {
      // The follower holds the image being sent (it installed it, or its log reached it), or
      // our log reaches back to what it holds: probe from there; a newer snapshot follows if
      // we compacted past it meanwhile.
      pr.becomeProbe();
    }
    else if (pr.state === 'replicate') pr.inflight.freeLE(m.index);
    if (this.maybeCommit()) {
      this.bcastCommit();
    } else if (wasPaused) {
      // The follower was waiting on us: even an empty append tells it the commit index.
      this.sendAppend(m.from, true);
    }
    if (this.role !== 'leader') return; // committed our own removal
    while (this.sendAppend(m.from, false)) { /* fill the inflight window */ }
    if (m.from === this.transferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeoutNow', to: m.from, term: this.term });
    }
    this.maybePromoteLearner();
  }

  private handleHeartbeatResp(m: MsgOf<'heartbeatResp'>): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    // Recovering lost messages once per heartbeat interval and follower: the answers to the
    // rounds that reads send in between would otherwise resend appends several times per
    // interval, and a storm of resends overtaking each other can keep a follower from ever
    // catching up.
    const periodic = pr.recoveredAtHeartbeat !== this.heartbeats;
    pr.recoveredAtHeartbeat = this.heartbeats;
    if (periodic && pr.state === 'snapshot') {
      // Retransmit the chunk the follower waits for (of the image the transfer started with).
      this.sendSnapshotChunk(m.from, pr);
    } else if (periodic && pr.match < this.log.lastIndex()) {
      // Lost appends in replicate state: free a slot and resend so the follower rejects and
      // we fall back to probing.
      if (pr.state === 'replicate' && pr.inflight.full()) pr.inflight.reset();
      this.sendAppend(m.from, true);
    }
    if (m.readCtx > 0) {
      this.releaseReads(m.from, m.readCtx);
      // The round in flight is confirmed: the reads that waited for it go out in the next.
      this.maybeBroadcastReads();
    }
    assert(pr.match <= this.log.lastIndex(), 'match within our log');
  }

  private handleSnapshotResp(m: MsgOf<'snapshotResp'>): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    assert(m.nextOffset >= -1, 'snapshot offsets are naturals or -1');
    if (pr.state !== 'snapshot' || m.index !== pr.pendingSnapshot) return;
    const snap = pr.snapshotImage;
    assert(snap !== null, 'a transfer in progress holds its image');
    if (m.nextOffset < 0) {
      pr.becomeProbe();
      return;
    }
    if (m.nextOffset >= snap.data.length) {
      pr.maybeUpdate(pr.pendingSnapshot);
      pr.becomeProbe();
      this.sendAppend(m.from, true);
      return;
    }
    if (m.nextOffset === pr.snapshotAckedBytes && m.nextOffset !== 0) return; // duplicate
    assert(m.nextOffset < snap.data.length, 'resume inside the image');
    pr.snapshotAckedBytes = m.nextOffset;
    this.sendSnapshotChunk(m.from, pr);
  }

  /** §5.3/§5.4.2: commit the quorum match if it is an entry of the current term. We count
   * ourselves only up to what our disk holds (§10.2.1): our appends may have left before our
   * own write, so followers can match entries we could still lose in a crash. */
  private maybeCommit(): boolean {
    const self = this.log.stableIndex();
    assert(self <= this.log.lastIndex(), 'the stable index is in our log');
    const mci = committedIndex(this.config.voters,
      (v) => (v === this.id ? self : this.progress.get(v)?.match ?? 0));
    assert(mci <= this.log.lastIndex(), 'a quorum cannot match past our log');
    if (mci <= this.log.commit || this.log.term(mci) !== this.term) return false;
    this.log.commitTo(mci);
    this.afterCommit();
    return true;
  }

  private afterCommit(): void {
    assert(this.role === 'leader', 'only the leader advances commit by counting');
    assert(this.log.term(this.log.commit) === this.term, 'committed in the current term');
    this.readOnly.flushWaiting(this.log.commit);
    this.releaseReads(this.id, 0);
    this.maybeBroadcastReads();
    if (!isVoter(this.config, this.id) && this.configIndex <= this.log.commit) {
      // §4.2.2: a leader removed from the cluster steps down once its removal commits.
      this.becomeFollower(this.term, null);
      return;
    }
    this.maybePromoteLearner();
  }

  private maybeBroadcastReads(): void {
    if (this.role === 'leader' && this.readOnly.wantsBroadcast()) this.bcastHeartbeat();
  }

  private releaseReads(from: NodeId, round: number): void {
    for (const rs of this.readOnly.ack(from, round, this.id, this.config.voters)) {
      this.readStates.push(rs);
    }
  }

  private maybePromoteLearner(): void {
    if (this.role !== 'leader' || this.transferee !== null) return;
    assert(this.pendingConfIndex <= this.log.lastIndex() + 1, 'pending change is in the log');
    if (this.pendingConfIndex > this.log.commit) return;
    const last = this.log.lastIndex();
    for (const l of this.config.learners) {
      const pr = this.progress.get(l);
      // Promote only a learner we hear from: a dead one would become a voter that never votes.
      if (pr === undefined || pr.state !== 'replicate' || !pr.recentActive) continue;
      if (pr.match + this.opts.learnerCatchUpEntries < last) continue;
      if (last - this.log.commit >= this.opts.maxUncommittedEntries) return;
      this.appendEntry('config', encodeConfChange({ type: 'promote', node: l }));
      return;
    }
  }

  // ---- configuration ----------------------------------------------------------------------

  private configAt(index: number): ClusterConfig {
    assert(index >= this.log.snapshotIndex(), 'config of a compacted index is unknown');
    let cfg = this.baseConfig;
    for (const e of this.log.allEntries()) {
      if (e.index > index) break;
      if (e.type === 'config') cfg = applyConfChange(cfg, decodeConfChange(e.data));
    }
    return cfg;
  }

  private recomputeConfig(): void {
    let cfg = this.baseConfig;
    let idx = this.log.snapshotIndex();
    for (const e of this.log.allEntries()) {
      if (e.type !== 'config') continue;
      cfg = applyConfChange(cfg, decodeConfChange(e.data));
      idx = e.index;
    }
    this.config = cfg;
    this.configIndex = idx;
    if (this.role === 'leader') {
      if (this.transferee !== null && !isVoter(cfg, this.transferee)) this.transferee = null;
      this.syncProgress();
    }
    assert(cfg.voters.length > 0, 'a config has voters');
  }

  /** Leader: one Progress per other member, created optimistically at the log's end. */
  private syncProgress(): void {
    const all = new Set(members(this.config));
    for (const id of [...this.progress.keys()]) if (!all.has(id)) this.progress.delete(id);
    for (const id of all) {
      if (id === this.id || this.progress.has(id)) continue;
      const pr = new Progress(this.log.lastIndex() + 1, this.opts.maxInflightAppends);
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    assert(!this.progress.has(this.id), 'no progress for self');
  }

  // ---- ready helpers ----------------------------------------------------------------------

  private send(m: Outgoing): void {
    this.msgs.push({ ...m, from: this.id });
  }

  private nextApplyIndex(): number {
    return Math.max(this.applyingTo, this.log.snapshotIndex()) + 1;
  }

  private takeCommitted(): Entry[] {
    const lo = this.nextApplyIndex();
    if (lo > this.log.commit) return [];
    const out = this.log.slice(lo, this.log.commit + 1, Infinity, this.opts.maxAppendEntries);
    const last = out[out.length - 1];
    assert(last !== undefined, 'committed entries exist');
    this.applyingTo = last.index;
    return out;
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.commit };
  }

  private publicRole(): Role {
    if (this.role === 'follower' && isLearner(this.config, this.id)) return 'learner';
    return this.role;
  }

  private softState(): SoftState {
    return { role: this.publicRole(), leader: this.leader, term: this.term };
  }
}

function hardStatesEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function softStatesEqual(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leader === b.leader && a.term === b.term;
}

function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  assert(off === total, 'assembled snapshot has its declared size');
  return out;
}
