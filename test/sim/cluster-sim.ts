// A seeded, single-process simulator of a Raft cluster (TigerBeetle's VOPR, etcd-io/raft's
// in-process network): N RaftNodes over a simulated network with delay, loss, duplication,
// reordering and partitions, and a simulated disk where what a Ready persisted is durable and
// everything else is lost on a crash. A Ready's early messages (the leader's appends) leave
// before its write, which may take a few steps while the node goes on stepping messages, so
// followers can hold entries their leader loses in a crash. A safety phase with faults checks
// the invariants after every step; a liveness phase heals everything and requires progress
// within a budget. Besides the invariants of checker.ts, every message that vouches for local
// state (a granted vote, an acknowledged entry) is checked against its sender's disk when it
// leaves, and every leader commit against a quorum of disks. `stats` counts every fault
// injected, so a batch of seeds can show that its faults really happened (fault-coverage.ts);
// the RaftNode class is a parameter, so planted-bug variants run here too (sim-mutants).

import { DsyncError } from '../../src/errors.js';
import { committedBeforeWrite, RaftNode, describeMessage } from '../../src/raft/raft.js';
import type { RaftInit, RaftOptions } from '../../src/raft/raft.js';
import { quorumSize } from '../../src/raft/quorum.js';
import { seededRand } from '../../src/raft/rand.js';
import type { Rand } from '../../src/raft/rand.js';
import type {
  ClusterConfig, ConfChange, Entry, HardState, Message, NodeId, Ready, Snapshot, SoftState,
} from '../../src/raft/types.js';
import { SafetyChecker, SimViolation } from './checker.js';
import type { SimWorld } from './world.js';

interface Disk {
  hardState: HardState | null;
  snapshot: Snapshot | null;
  entries: Entry[];
}

/** The replicated application: a running hash of applied entries. */
interface App {
  index: number;
  hash: number;
}

interface SimNode {
  readonly id: NodeId;
  raft: RaftNode | null; // null while crashed
  readonly disk: Disk;
  app: App;
  lastCommit: number;
  /** The log's last index when last observed. */
  lastSeenIndex: number;
  checkedCommit: number;
  incarnation: number;
  /** The step of the last crash. */
  crashedAt: number;
  wasLeaderTerm: number;
  /** A Ready whose early messages left and whose write completes at step `doneAt`. */
  /** A slow write in progress. `applied`: how many of its Ready's committed entries were
   * applied before the write started (those below its entries, as the runtime does); once
   * all were, entries committed during the write apply as they commit (takeDurableCommitted). */
  writing: { readonly rd: Ready; readonly doneAt: number; readonly applied: number } | null;
  /** The term the shell knows it leads (0: not leading), and the leader-start entries of
   * that term it could not propose yet (as RaftGroup: nothing else goes in before them). */
  shellTerm: number;
  pendingStart: Uint8Array[];
  /** The step each heartbeat round of this incarnation was first sent (as RaftGroup records
   * the time), for lease reads. */
  readonly roundSentAt: Map<number, number>;
}

interface InFlight {
  readonly msg: Message;
  readonly deliverAt: number;
  readonly seq: number;
}

export interface SimStats {
  steps: number;
  delivered: number;
  committed: number;
  /** Leader changes: a node observed leading a term it did not lead before. */
  elections: number;
  /** Crashes of every kind (the four below and `random`), decommissions excluded. */
  crashes: number;
  crashesRandom: number;
  crashesBeforePersist: number;
  crashesMidReady: number;
  crashesAfterEarlySend: number;
  crashesAfterSend: number;
  /** Restarts of a crashed node (the first start of a node is not counted), and those of
   * them in the step after the crash. */
  restarts: number;
  quickRestarts: number;
  partitions: number;
  oneWayPartitions: number;
  heals: number;
  /** Messages lost by the network, and messages dropped on a cut link. */
  drops: number;
  cutDrops: number;
  duplicates: number;
  longDelays: number;
  /** Messages delivered out of the order they were sent in (the shuffle moved them). */
  reorders: number;
  tickSkips: number;
  slowWrites: number;
  /** Entries applied while a write of their node was in progress (takeDurableCommitted). */
  appliedWhileWriting: number;
  compactions: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  reads: number;
  readsDropped: number;
  /** Reads a leader answered from its lease, and those it could not (no lease held). */
  leaseReads: number;
  leaseReadsRefused: number;
  /** Membership changes proposed, and config entries applied (counted once per index). */
  confChanges: number;
  confChangesApplied: number;
  /** Leadership transfers started, and timeoutNow messages delivered. */
  transfers: number;
  timeoutNows: number;
}

/** The counters a run starts from, all zero. */
export function emptySimStats(): SimStats {
  return { steps: 0, delivered: 0, committed: 0, elections: 0, crashes: 0, crashesRandom: 0,
    crashesBeforePersist: 0, crashesMidReady: 0, crashesAfterEarlySend: 0, crashesAfterSend: 0,
    restarts: 0, quickRestarts: 0, partitions: 0, oneWayPartitions: 0, heals: 0, drops: 0,
    cutDrops: 0, duplicates: 0, longDelays: 0, reorders: 0, tickSkips: 0, slowWrites: 0,
    appliedWhileWriting: 0,
    compactions: 0, snapshotsSent: 0, snapshotsInstalled: 0, reads: 0, readsDropped: 0,
    leaseReads: 0, leaseReadsRefused: 0, confChanges: 0, confChangesApplied: 0, transfers: 0,
    timeoutNows: 0 };
}

/** The Raft implementation a simulation runs: RaftNode, or a variant with a planted bug. */
export type RaftNodeClass = new (opts: RaftOptions, init: RaftInit) => RaftNode;

type CrashKind = 'random' | 'beforePersist' | 'midReady' | 'afterEarlySend' | 'afterSend' |
  'removed';

export class SimFailure extends Error {
  constructor(readonly seed: number, cause: unknown) {
    const why = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(`seed ${seed}: ${why}\nreproduce with: npm run sim -- --seed ${seed}`, { cause });
    this.name = 'SimFailure';
  }
}

/** FNV-1a over the previous hash and the entry. */
function hashEntry(h: number, e: Entry): number {
  let x = (h ^ e.index) >>> 0;
  x = Math.imul(x ^ e.term, 16777619) >>> 0;
  for (const b of e.data) x = Math.imul(x ^ b, 16777619) >>> 0;
  return Math.imul(x ^ e.type.length, 16777619) >>> 0;
}

function encodeApp(app: App, fillerBytes: number): Uint8Array {
  const out = new Uint8Array(8 + fillerBytes);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, app.index);
  dv.setUint32(4, app.hash);
  for (let i = 8; i < out.length; i++) out[i] = (i * 31 + app.hash) & 0xff;
  return out;
}

/** With a SimMachine the snapshot image is the App header followed by the machine's image. */
function encodeAppWithImage(app: App, image: Uint8Array): Uint8Array {
  const out = encodeApp(app, image.length);
  out.set(image, 8);
  return out;
}

function decodeApp(data: Uint8Array): App {
  if (data.length < 8) throw new SimViolation('snapshot image too short');
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { index: dv.getUint32(0), hash: dv.getUint32(4) };
}

/** An optional application replicated alongside the built-in running hash (which keeps its
 * checks). Without one the simulator draws the same randomness and behaves exactly as
 * before; with one, proposals, the liveness marker and snapshot images come from it, and it
 * sees every start, snapshot install and committed entry of every node. Its methods throw
 * (SimViolation or an assertion) on a broken invariant; the simulator adds the seed. */
export interface SimMachine {
  /** The data of a normal entry that `node` proposes at sim step `step`. */
  propose(node: NodeId, step: number): Uint8Array;
  /** The liveness phase's marker: unique bytes that must apply as a no-op. */
  marker(seed: number): Uint8Array;
  /** A node (re)starts from its durable snapshot image, or empty (image null, index 0). */
  start(node: NodeId, image: Uint8Array | null, index: number): void;
  /** A node installs a snapshot sent by its leader. */
  restore(node: NodeId, image: Uint8Array, index: number): void;
  /** A node applies one committed entry (every type; only `normal` carries commands) at sim
   * step `step`. */
  apply(node: NodeId, entry: Entry, step: number): void;
  /** Optional: the entries a node proposes the moment its shell learns it leads `term` (the
   * runtime's leader-start commands). With it, a node takes client proposals only in a term
   * whose leader-start entries are in its log, as RaftGroup does. */
  leaderStart?(node: NodeId, term: number, step: number): readonly Uint8Array[];
  /** The image of a node's state at its last applied index, for compaction. */
  snapshot(node: NodeId): Uint8Array;
  /** Called after every sim step. */
  check(): void;
}

export class ClusterSim {
  private readonly rand: Rand;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly bootstrap: ClusterConfig;
  private readonly checker = new SafetyChecker();
  private inflight: InFlight[] = [];
  private seq = 0;
  private now = 0;
  /** Directed links that are cut: "from>to". */
  private readonly cut = new Set<string>();
  private proposalSeq = 0;
  private readCtx = 0;
  private extraNodes = 0;
  private faultsOn = true;
  /** Liveness phase: the marker is not in the leader's log yet, so it goes first. */
  private markerFirst = false;
  /** Highest config entry index applied anywhere, so each is counted once. */
  private configAppliedTo = 0;
  readonly stats: SimStats = emptySimStats();

  constructor(readonly world: SimWorld, private readonly trace?: (line: string) => void,
    private readonly machine?: SimMachine, private readonly raftNode: RaftNodeClass = RaftNode) {
    this.rand = seededRand(world.seed);
    const ids = Array.from({ length: world.nodeCount }, (_, i) => `n${i + 1}`);
    this.bootstrap = { voters: ids, learners: [] };
    for (const id of ids) this.addNode(id);
  }

  /** Run both phases; throws SimFailure (with the seed) on any violation. */
  run(): SimStats {
    try {
      for (let i = 0; i < this.world.safetySteps; i++) this.step();
      this.liveness();
      return this.stats;
    } catch (err) {
      throw new SimFailure(this.world.seed, err);
    }
  }

  // ---- nodes, disks, crashes -------------------------------------------------------------

  private addNode(id: NodeId): SimNode {
    const n: SimNode = { id, raft: null, disk: { hardState: null, snapshot: null, entries: [] },
      app: { index: 0, hash: 0 }, lastCommit: 0, lastSeenIndex: 0, checkedCommit: 0,
      incarnation: 0, crashedAt: 0,
      wasLeaderTerm: 0, writing: null, shellTerm: 0, pendingStart: [], roundSentAt: new Map() };
    this.nodes.set(id, n);
    this.start(n);
    return n;
  }

  private start(n: SimNode): void {
    const w = this.world.raft;
    const init: RaftInit = { hardState: n.disk.hardState, snapshot: n.disk.snapshot,
      entries: n.disk.entries, config: this.bootstrap };
    if (n.incarnation > 0) this.stats.restarts++;
    n.incarnation++;
    const rand = seededRand(this.rand.int(0, 2 ** 31));
    n.raft = new this.raftNode({ id: n.id, ...w, rand }, init);
    // The application restarts from its snapshot and re-applies the committed log.
    n.app = n.disk.snapshot === null ? { index: 0, hash: 0 } : decodeApp(n.disk.snapshot.data);
    this.machine?.start(n.id, n.disk.snapshot?.data.subarray(8) ?? null, n.app.index);
    n.lastCommit = n.raft.status().commit;
    n.lastSeenIndex = n.raft.status().lastIndex;
    n.checkedCommit = n.disk.snapshot?.meta.index ?? 0;
    n.wasLeaderTerm = 0;
    n.shellTerm = 0;
    n.pendingStart = [];
    n.roundSentAt.clear();
    this.log(`start ${n.id} #${n.incarnation} commit=${n.lastCommit}`);
  }

  private crash(n: SimNode, why: string, kind: CrashKind): void {
    if (n.raft === null) return;
    n.raft = null;
    n.writing = null; // the write in progress is lost, its early messages are not
    n.crashedAt = this.now;
    const s = this.stats;
    if (kind === 'random') s.crashesRandom++;
    else if (kind === 'beforePersist') s.crashesBeforePersist++;
    else if (kind === 'midReady') s.crashesMidReady++;
    else if (kind === 'afterEarlySend') s.crashesAfterEarlySend++;
    else if (kind === 'afterSend') s.crashesAfterSend++;
    if (kind !== 'removed') s.crashes++;
    this.log(`crash ${n.id} (${why})`);
  }

  private live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.raft !== null);
  }

  private persist(n: SimNode, rd: Ready): void {
    const d = n.disk;
    if (rd.snapshot !== null) {
      d.snapshot = rd.snapshot;
      d.entries = [];
    }
    const first = rd.entries[0];
    if (first !== undefined) {
      const base = d.snapshot?.meta.index ?? 0;
      const keep = first.index - base - 1;
      if (keep < 0 || keep > d.entries.length) {
        throw new SimViolation(`${n.id} persisted entries at ${first.index} leave a hole`);
      }
      const prevTerm = keep === 0 ? d.snapshot?.meta.term ?? 0 : d.entries[keep - 1]?.term;
      this.checker.persisted(n.id, rd.entries, prevTerm);
      d.entries = [...d.entries.slice(0, keep), ...rd.entries];
    }
    if (rd.hardState !== null) d.hardState = rd.hardState;
  }

  private apply(n: SimNode, rd: Ready, appliedEarly: number): void {
    if (rd.snapshot !== null) {
      const app = decodeApp(rd.snapshot.data);
      if (app.index !== rd.snapshot.meta.index) throw new SimViolation('snapshot index mismatch');
      n.app = app;
      this.stats.snapshotsInstalled++;
      this.checker.applied(n.id, app.index, app.hash);
      this.machine?.restore(n.id, rd.snapshot.data.subarray(8), app.index);
    }
    this.applyCommitted(n, rd.committed.slice(appliedEarly));
    for (const rs of rd.readStates) {
      this.checker.readAnswered(n.id, rs.ctx, rs.index);
      this.stats.reads++;
    }
    for (const d of rd.dropped) {
      this.checker.readDropped(n.id, d.ctx);
      this.stats.readsDropped++;
    }
  }

  private applyCommitted(n: SimNode, entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.index !== n.app.index + 1) {
        throw new SimViolation(`${n.id} applies ${e.index} after ${n.app.index}`);
      }
      n.app = { index: e.index, hash: hashEntry(n.app.hash, e) };
      this.machine?.apply(n.id, e, this.now);
      this.checker.applied(n.id, e.index, n.app.hash);
      this.checker.committed(n.id, e.index, e.term);
      this.stats.committed++;
      if (e.type === 'config' && e.index > this.configAppliedTo) {
        this.configAppliedTo = e.index;
        this.stats.confChangesApplied++;
      }
    }
  }

  /** Drain a node's Ready batches: send early -> (crash?) -> [write takes a few steps] ->
   * persist -> (crash?) -> send -> apply -> advance. A node with a write in progress takes no
   * new Ready until it completes (as the runtime's drain loop). */
  private processReady(n: SimNode): void {
    for (let guard = 0; n.raft !== null; guard++) {
      if (guard > 1000) throw new SimViolation(`${n.id} never runs out of Ready`);
      const w = n.writing;
      if (w !== null) {
        if (w.doneAt > this.now) break;
        n.writing = null;
        this.finishReady(n, w.rd, w.applied);
        continue;
      }
      if (!n.raft.hasReady()) break;
      const rd = n.raft.ready();
      if (rd.softState !== null) this.onSoftState(n, rd.softState);
      for (const m of rd.earlyMessages) this.send(m);
      const f = this.world.faults;
      if (rd.earlyMessages.length > 0 && this.faultsOn &&
        this.chance(f.crashAfterEarlySendRate)) {
        this.crash(n, 'after early send, before persist', 'afterEarlySend');
        return;
      }
      const writes = rd.entries.length > 0 || rd.snapshot !== null || rd.hardState !== null;
      if (writes && this.chance(this.world.disk.slowWriteRate)) {
        const applied = rd.snapshot === null ? committedBeforeWrite(rd) : 0;
        this.applyCommitted(n, rd.committed.slice(0, applied));
        n.writing = { rd, doneAt: this.now + this.rand.int(1, this.world.disk.maxWriteSteps + 1),
          applied };
        this.stats.slowWrites++;
        break;
      }
      this.finishReady(n, rd);
    }
    this.observe(n);
  }

  private finishReady(n: SimNode, rd: Ready, appliedEarly = 0): void {
    this.persist(n, rd);
    if (this.faultsOn && this.chance(this.world.faults.crashMidReadyRate)) {
      this.crash(n, 'after persist, before send', 'midReady');
      return;
    }
    for (const m of rd.messages) this.send(m);
    if (rd.messages.length > 0 && this.faultsOn &&
      this.chance(this.world.faults.crashAfterSendRate)) {
      this.crash(n, 'after send, before apply', 'afterSend');
      return;
    }
    this.apply(n, rd, appliedEarly);
    n.raft?.advance(rd);
  }

  // ---- network ---------------------------------------------------------------------------

  private send(m: Message): void {
    const net = this.world.net;
    if (m.type === 'heartbeat') {
      const sentAt = this.nodes.get(m.from)?.roundSentAt;
      if (sentAt !== undefined && !sentAt.has(m.readCtx)) sentAt.set(m.readCtx, this.now);
    }
    if (m.type === 'snapshot' && m.offset === 0) this.stats.snapshotsSent++;
    this.checkDurableBeforeSend(m);
    if (this.faultsOn && this.chance(net.lossRate)) {
      this.stats.drops++;
      return;
    }
    const copies = this.faultsOn && this.chance(net.dupRate) ? 2 : 1;
    if (copies > 1) this.stats.duplicates++;
    for (let i = 0; i < copies; i++) {
      const long = this.faultsOn && this.chance(net.longDelayRate);
      if (long) this.stats.longDelays++;
      const delay = long ? this.rand.int(net.maxDelaySteps + 1, net.longDelayStepsMax + 1) :
        this.rand.int(0, net.maxDelaySteps + 1);
      this.inflight.push({ msg: m, deliverAt: this.now + delay, seq: this.seq++ });
    }
  }

  private deliverDue(): void {
    const due = this.inflight.filter((f) => f.deliverAt <= this.now);
    if (due.length === 0) return;
    this.inflight = this.inflight.filter((f) => f.deliverAt > this.now);
    // Shuffle what is due together: reordering beyond what the delays already produce.
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.rand.int(0, i + 1);
      if (j !== i) this.stats.reorders++;
      const a = due[i];
      const b = due[j];
      if (a !== undefined && b !== undefined) {
        due[i] = b;
        due[j] = a;
      }
    }
    for (const f of due) this.deliver(f.msg);
  }

  private deliver(m: Message): void {
    const n = this.nodes.get(m.to);
    if (n?.raft == null) return;
    if (this.cut.has(`${m.from}>${m.to}`)) {
      this.stats.cutDrops++;
      return;
    }
    this.trace?.(`  ${this.now} ${describeMessage(m)}`);
    this.stats.delivered++;
    if (m.type === 'timeoutNow') this.stats.timeoutNows++;
    n.raft.step(m);
    const w = n.writing;
    if (w !== null && w.rd.snapshot === null && w.applied === w.rd.committed.length) {
      const entries = n.raft.takeDurableCommitted();
      this.stats.appliedWhileWriting += entries.length;
      this.applyCommitted(n, entries);
    }
    if (this.faultsOn && this.chance(this.world.faults.crashBeforePersistRate)) {
      this.crash(n, 'after step, before persist', 'beforePersist');
      return;
    }
    this.processReady(n);
  }

  // ---- one step of the safety phase --------------------------------------------------------

  step(): void {
    this.now++;
    this.stats.steps++;
    if (this.faultsOn) this.injectFaults();
    this.workload();
    this.deliverDue();
    for (const n of this.live()) {
      if (this.faultsOn && this.chance(this.world.faults.tickSkipRate)) {
        this.stats.tickSkips++;
        continue;
      }
      n.raft?.tick();
      this.processReady(n);
    }
    for (const n of this.live()) this.observe(n);
    this.machine?.check();
  }

  private injectFaults(): void {
    const f = this.world.faults;
    if (this.chance(f.partitionRate)) this.partition();
    if (this.cut.size > 0 && this.chance(f.healRate)) {
      this.cut.clear();
      this.stats.heals++;
      this.log('heal');
    }
    for (const n of this.nodes.values()) {
      if (n.raft === null) {
        const quick = n.crashedAt === this.now - 1 && this.chance(f.quickRestartRate);
        if (quick) this.stats.quickRestarts++;
        if (quick || this.chance(f.restartRate)) this.start(n);
      } else if (this.chance(f.crashRate)) {
        this.crash(n, 'random', 'random');
      }
    }
  }

  private partition(): void {
    const ids = [...this.nodes.keys()];
    // Often isolate a leader alone: deposed-but-unaware leaders are where safety bugs live.
    const leaders = this.live().filter((n) => n.raft?.status().role === 'leader');
    const side = leaders.length > 0 && this.chance(0.4) ?
      new Set([this.pickOf(leaders).id]) : new Set(ids.filter(() => this.rand.next() < 0.5));
    const oneWay = this.rand.next() < 0.3;
    for (const a of ids) {
      for (const b of ids) {
        if (side.has(a) && !side.has(b)) {
          this.cut.add(`${a}>${b}`);
          if (!oneWay) this.cut.add(`${b}>${a}`);
        }
      }
    }
    this.stats.partitions++;
    if (oneWay) this.stats.oneWayPartitions++;
    this.log(`partition ${oneWay ? 'one-way ' : ''}{${[...side].join(',')}}`);
  }

  private workload(): void {
    const l = this.world.load;
    const live = this.live();
    if (live.length === 0) return;
    const any = (): SimNode => this.pickOf(live);
    // Aim most requests at nodes that believe they lead, stale leaders included: those are
    // the interesting ones for figure 8 and for reads on a deposed leader.
    const leaders = live.filter((n) => n.raft?.status().role === 'leader');
    const leader = leaders.length === 0 ? undefined : this.pickOf(leaders);
    const target = (): SimNode => (leader !== undefined && this.chance(0.8) ? leader : any());
    if (this.chance(l.proposeRate)) {
      const to = target();
      if (!this.markerFirst) this.tryPropose(to);
    }
    if (this.chance(l.readRate)) this.tryRead(target());
    // Drawn only in worlds with lease reads, so that the others replay as before.
    if (l.leaseReadRate > 0 && this.chance(l.leaseReadRate)) this.tryLeaseRead(target());
    // Membership changes and transfers only while faults run: the liveness phase measures a
    // healed, otherwise steady cluster.
    const churn = this.faultsOn && leader !== undefined;
    if (churn && this.chance(l.confChangeRate)) this.tryConfChange(leader);
    const compact = this.chance(l.compactRate);
    if (compact) this.compact(any());
    if (churn && this.chance(l.transferRate)) {
      const voters = leader.raft?.status().config.voters ?? [];
      this.expected(() => {
        leader.raft?.transferLeadership(this.pickOf(voters));
        this.stats.transfers++;
      });
    }
    for (const n of live) this.processReady(n);
  }

  /** The shell learns its role from a Ready, as RaftGroup.onSoftState: a new leader queues
   * the machine's leader-start entries and proposes them at once. */
  private onSoftState(n: SimNode, s: SoftState): void {
    const was = n.shellTerm;
    n.shellTerm = s.role === 'leader' ? s.term : 0;
    if (n.shellTerm === was) return;
    n.pendingStart = n.shellTerm === 0 ? [] :
      [...this.machine?.leaderStart?.(n.id, s.term, this.now) ?? []];
    this.proposeStart(n);
  }

  /** Proposes what is left of the leader-start entries; true once all are in. */
  private proposeStart(n: SimNode): boolean {
    while (n.pendingStart[0] !== undefined) {
      try {
        n.raft?.propose(n.pendingStart[0]);
      } catch (err) {
        if (!(err instanceof DsyncError)) throw err;
        return false;
      }
      n.pendingStart.shift();
    }
    return true;
  }

  /** With leader-start entries, a proposal goes in only where the shell knows it leads the
   * core's current term and that term's leader-start entries are in. */
  private shellAccepts(n: SimNode): boolean {
    if (this.machine?.leaderStart === undefined) return true;
    const st = n.raft?.status();
    return st?.role === 'leader' && st.term === n.shellTerm && this.proposeStart(n);
  }

  private tryPropose(n: SimNode): void {
    if (!this.shellAccepts(n)) return;
    const seq = ++this.proposalSeq;
    const data = this.machine?.propose(n.id, this.now) ??
      new TextEncoder().encode(`p${this.world.seed}-${seq}`);
    this.expected(() => n.raft?.propose(data));
  }

  private tryRead(n: SimNode): void {
    const ctx = ++this.readCtx;
    for (const m of this.live()) this.observe(m);
    this.checker.readRequested(n.id, ctx);
    this.expected(() => n.raft?.readIndex(ctx));
  }

  /** A lease read as RaftGroup serves one: answered at once with the leader's commit index
   * while the newest round a quorum answered was sent less than the lease ago; otherwise
   * the node would fall back to ReadIndex (counted as refused). */
  private tryLeaseRead(n: SimNode): void {
    const lease = n.raft?.leaseRead() ?? null;
    const sentAt = lease === null ? undefined : n.roundSentAt.get(lease.round);
    if (lease === null || sentAt === undefined ||
        this.now >= sentAt + this.world.load.leaseReadSteps) {
      this.stats.leaseReadsRefused++;
      return;
    }
    const ctx = ++this.readCtx;
    for (const m of this.live()) this.observe(m);
    this.checker.readRequested(n.id, ctx);
    this.checker.readAnswered(n.id, ctx, lease.index);
    this.stats.leaseReads++;
    // Rounds older than the one in use can never be used again.
    for (const r of n.roundSentAt.keys()) if (r < lease.round) n.roundSentAt.delete(r);
  }

  private tryConfChange(leader: SimNode): void {
    const cfg = leader.raft?.status().config;
    if (cfg === undefined) return;
    const r = this.rand.next();
    let cc: ConfChange | null = null;
    if (r < 0.4 && this.extraNodes < this.world.load.maxExtraNodes) {
      const id = `n${this.world.nodeCount + ++this.extraNodes}`;
      this.addNode(id);
      cc = { type: 'addLearner', node: id };
    } else if (r < 0.7 && cfg.learners.length > 0) {
      cc = { type: 'promote', node: this.pickOf(cfg.learners) };
    } else if (cfg.voters.length > 2) {
      cc = { type: 'remove', node: this.pickOf(cfg.voters) };
    }
    if (cc === null) return;
    this.log(`propose ${cc.type} ${cc.node}`);
    const change = cc;
    this.expected(() => {
      leader.raft?.proposeConfChange(change);
      this.stats.confChanges++;
    });
  }

  private compact(n: SimNode): void {
    const raft = n.raft;
    // As the runtime, which snapshots between Readies: during a write the app may be ahead of
    // what the core counts applied (entries applied while the write runs).
    if (raft === null || n.writing !== null) return;
    const st = raft.status();
    if (st.applied < st.firstIndex + 2) return;
    const meta = raft.snapshotMetaAt(st.applied);
    if (n.app.index !== st.applied) throw new SimViolation(`${n.id} app and raft disagree`);
    const data = this.machine === undefined ? encodeApp(n.app, this.rand.int(0, 300)) :
      encodeAppWithImage(n.app, this.machine.snapshot(n.id));
    const snap: Snapshot = { meta, data };
    raft.compact(snap);
    n.disk.snapshot = snap;
    n.disk.entries = n.disk.entries.filter((e) => e.index > meta.index);
    this.stats.compactions++;
    this.log(`compact ${n.id} at ${meta.index}`);
  }

  /** Run an operation whose operational (DsyncError) failures are expected under faults. */
  private expected(op: () => void): void {
    try {
      op();
    } catch (err) {
      if (!(err instanceof DsyncError)) throw err;
    }
  }

  // ---- invariants ------------------------------------------------------------------------

  private observe(n: SimNode): void {
    const raft = n.raft;
    if (raft === null) return;
    const st = raft.status();
    this.checker.commitSeen(n.id, st.commit, n.lastCommit);
    if (st.role === 'leader' && st.commit > n.lastCommit) {
      this.checker.leaderCommitted(n.id, st.term, st.commit, raft.entryAt(st.commit)?.term);
      this.checkDurableQuorum(n, st.commit, n.lastSeenIndex);
    }
    n.lastCommit = st.commit;
    n.lastSeenIndex = st.lastIndex;
    for (let i = Math.max(n.checkedCommit + 1, st.firstIndex); i <= st.commit; i++) {
      const e = raft.entryAt(i);
      if (e !== undefined) this.checker.committed(n.id, i, e.term);
    }
    n.checkedCommit = Math.max(n.checkedCommit, st.commit);
    if (st.role === 'leader') {
      this.checker.leader(st.term, n.id);
      if (n.wasLeaderTerm !== st.term) {
        n.wasLeaderTerm = st.term;
        this.stats.elections++;
        this.log(`leader ${n.id} term ${st.term}`);
        this.checker.elected(n.id, st.term, st.config.voters);
        this.checker.newLeader({ id: n.id, term: st.term, firstIndex: st.firstIndex,
          lastIndex: st.lastIndex, entryAt: (i) => raft.entryAt(i) });
      }
    }
  }

  /** What a message vouches for is on its sender's disk (Figure 2: persistent state is
   * updated on stable storage before responding): a granted vote, an acknowledged entry. */
  private checkDurableBeforeSend(m: Message): void {
    if (m.type === 'voteResp' && m.granted) this.checker.voteGranted(m.from, m.term, m.to);
    const d = this.nodes.get(m.from)?.disk;
    if (d === undefined) return;
    // A node that since moved to a later term, and persisted it, cannot return to the term a
    // message speaks for: nothing it said in that term can be held against it after a crash.
    const movedOn = (d.hardState?.term ?? 0) > m.term;
    if (m.type === 'voteResp' && m.granted && !movedOn) {
      const hs = d.hardState;
      if (hs?.term !== m.term || hs.vote !== m.to) {
        throw new SimViolation(`durability: ${m.from} granted its vote in term ${m.term} to ` +
          `${m.to} while its disk says term ${hs?.term}, vote ${hs?.vote}`);
      }
    } else if (m.type === 'appendResp' && m.success && !movedOn) {
      const last = (d.snapshot?.meta.index ?? 0) + d.entries.length;
      if (m.index > last) {
        throw new SimViolation(`durability: ${m.from} acknowledged entries up to ${m.index} ` +
          `while its disk ends at ${last}`);
      }
    }
  }

  /** A leader commits only what a quorum of the voters holds on disk: with early appends
   * the leader's own copy counts only once its write completed (dissertation §10.2.1). The
   * config in force when it committed is the one at its last index then, which lies between
   * the last observation (`seenIndex`) and now: a config entry appended right after the commit
   * (a learner's promotion) must not be held against it. */
  private checkDurableQuorum(leader: SimNode, index: number, seenIndex: number): void {
    const raft = leader.raft;
    const e = raft?.entryAt(index);
    if (raft == null || e === undefined) return;
    const last = raft.status().lastIndex;
    const from = Math.min(Math.max(index, seenIndex), last);
    const configs = [raft.snapshotMetaAt(from).config];
    for (let i = from + 1; i <= last; i++) {
      if (raft.entryAt(i)?.type === 'config') configs.push(raft.snapshotMetaAt(i).config);
    }
    const holdersOf = (voters: readonly NodeId[]): NodeId[] => voters.filter((v) => {
      const d = this.nodes.get(v)?.disk;
      return d !== undefined && diskHolds(d, index, e.term);
    });
    if (configs.some((c) => holdersOf(c.voters).length >= quorumSize(c.voters.length))) return;
    const voters = configs[0]?.voters ?? [];
    throw new SimViolation(`${leader.id} committed ${index}@${e.term} held on disk only by ` +
      `[${holdersOf(voters).join(',')}] of voters [${voters.join(',')}]`);
  }

  // ---- liveness ----------------------------------------------------------------------------

  /** Heal everything, then a leader must exist and a new proposal must apply everywhere. */
  private liveness(): void {
    this.faultsOn = false;
    this.cut.clear();
    for (const n of this.nodes.values()) if (n.raft === null) this.start(n);
    this.decommissionRemoved();
    this.log('liveness phase');
    const marker = this.machine?.marker(this.world.seed) ??
      new TextEncoder().encode(`live-${this.world.seed}`);
    for (let i = 0; i < this.world.livenessBudgetSteps; i++) {
      const leader = this.live().find((n) => n.raft?.status().role === 'leader');
      // The load goes on, but it may not keep the marker out of a full uncommitted window: in
      // a slow world (one entry per append, one in flight) it could fill it forever.
      this.markerFirst = leader === undefined || !this.hasMarker(leader, marker);
      if (leader?.raft != null) {
        if (this.allApplied(leader, marker)) return;
        if (i % 5 === 0 && !this.hasMarker(leader, marker)) {
          this.expected(() => leader.raft?.propose(marker));
          this.processReady(leader);
        }
      }
      this.step();
    }
    const roles = this.live().map((n) => {
      const s = n.raft?.status();
      return `${n.id}:${s?.role}/t${s?.term}/c${s?.commit}/a${s?.applied}/l${s?.lastIndex}`;
    });
    const cfg = this.live().find((n) => n.raft?.status().role === 'leader')?.raft?.status().config;
    throw new SimViolation(`liveness: no progress within ${this.world.livenessBudgetSteps} ` +
      `steps after healing [${roles.join(' ')}] leader config ${JSON.stringify(cfg)}`);
  }

  /** The operator stops nodes removed from the cluster: without PreVote or CheckQuorum a
   * removed node that missed its removal would keep disrupting elections (§4.2.3). */
  private decommissionRemoved(): void {
    const commitOf = (n: SimNode | undefined): number => n?.raft?.status().commit ?? -1;
    let best: SimNode | undefined;
    for (const n of this.live()) if (commitOf(n) > commitOf(best)) best = n;
    const raft = best?.raft;
    if (raft == null) return;
    // Only a committed removal counts: an uncommitted one may still be truncated.
    const cfg = raft.snapshotMetaAt(raft.status().commit).config;
    const listed = (c: ClusterConfig, id: NodeId): boolean =>
      c.voters.includes(id) || c.learners.includes(id);
    for (const n of this.live()) {
      if (listed(cfg, n.id)) continue;
      // Still listed by another node (say, an uncommitted addLearner): not removed.
      const others = this.live().filter((o) => o !== n);
      if (others.some((o) => o.raft !== null && listed(o.raft.status().config, n.id))) continue;
      this.crash(n, 'removed', 'removed');
    }
  }

  private hasMarker(n: SimNode, marker: Uint8Array): boolean {
    const st = n.raft?.status();
    if (st === undefined) return false;
    for (let i = st.firstIndex; i <= st.lastIndex; i++) {
      const e = n.raft?.entryAt(i);
      if (e !== undefined && sameBytes(e.data, marker) && e.term === st.term) return true;
    }
    return false;
  }

  private allApplied(leader: SimNode, marker: Uint8Array): boolean {
    const st = leader.raft?.status();
    if (st === undefined) return false;
    let markerIndex = 0;
    for (let i = st.firstIndex; i <= st.commit; i++) {
      const e = leader.raft?.entryAt(i);
      if (e !== undefined && sameBytes(e.data, marker)) markerIndex = i;
    }
    if (markerIndex === 0) return false;
    return st.config.voters.every((v) => {
      const n = this.nodes.get(v);
      return n?.raft != null && n.app.index >= markerIndex;
    });
  }

  // ---- helpers -------------------------------------------------------------------------------

  private chance(p: number): boolean {
    return p > 0 && this.rand.next() < p;
  }

  private pickOf<T>(xs: readonly T[]): T {
    const x = xs[this.rand.int(0, xs.length)];
    if (x === undefined) throw new SimViolation('pick from an empty list');
    return x;
  }

  private log(line: string): void {
    this.trace?.(`${this.now} ${line}`);
  }
}

/** Whether a disk holds entry index@term (or a snapshot past it, taken once it committed). */
function diskHolds(d: Disk, index: number, term: number): boolean {
  const base = d.snapshot?.meta.index ?? 0;
  if (index <= base) return true;
  return d.entries[index - base - 1]?.term === term;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Run one seed; returns its stats or throws SimFailure. */
export function runSeed(world: SimWorld, trace?: (line: string) => void,
  machine?: SimMachine, raftNode?: RaftNodeClass): SimStats {
  return new ClusterSim(world, trace, machine, raftNode).run();
}

