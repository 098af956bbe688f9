// Hosts many Raft groups in one process over one peer transport: one ticker for all of them,
// one shared turn of the event loop for their ready loops, and one frame per peer and lane for
// everything they send in one event-loop job (raft-frames.ts): a tick's heartbeats of every
// group this node leads leave in one frame per follower pod, not one per group. Heartbeats,
// votes and answers go on the control lane, appends and snapshots on the bulk lane, so a slow
// bulk lane never delays a heartbeat. Given a PodWal, every group keeps its log in that one
// WAL: the saves the ready loops of that shared turn make share one write and one fsync
// (group commit, see pod-wal.ts).
import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/types.js';
import type { PeerMetrics } from '../observability/metrics.js';
import type { PodWal } from '../storage/pod-wal.js';
import { isPeerRequestFrame } from '../transport/peer-requests.js';
import type { Lane, PeerTransport } from '../transport/peer-transport.js';
import {
  FramePacker, singleFrame, unpackFrame, type RaftBatchFrame, type RefusalReason,
} from './raft-frames.js';
import { RaftGroup, type RaftGroupOptions } from './raft-group.js';

/** Milliseconds per Raft tick (default 100 ms: elections after 10–20 ticks = 1–2 s, as etcd). */
export const DEFAULT_TICK_MS = 100;
/** Ticks run at once after a stall, at most (the rest of the stall is forgotten). */
export const TICKS_OWED_MAX = 10;

const CONTROL_TYPES = new Set<Message['type']>([
  'prevote', 'prevoteResp', 'vote', 'voteResp', 'heartbeat', 'heartbeatResp', 'appendResp',
  'snapshotResp', 'timeoutNow',
]);

export function laneOf(m: Message): Lane {
  return CONTROL_TYPES.has(m.type) ? 'control' : 'bulk';
}

/** Refusals of one reason logged at most once per this many (all are counted). */
const REFUSALS_PER_LOG = 1000;

export class RaftHost {
  private readonly groups = new Map<number, RaftGroup>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** performance.now() at which the next tick is due. */
  private nextTickAt = 0;
  /** performance.now() of the last beatIfLate() round. */
  private lastBeatAt = 0;
  private droppedFrames = 0;
  /** Rounds of ticks run (catchUp) and heartbeat rounds sent (beatIfLate). */
  private tickRounds = 0;
  private readonly refusals = new Map<RefusalReason, number>();
  private readonly packer: FramePacker<Lane>;
  /** Peers known to read batch frames (raft-frames.ts, "Mixed versions"). */
  private readonly batchPeers = new Set<NodeId>();
  private flushQueued = false;
  /** Work the groups deferred to the shared turn (RaftGroupOptions.defer). */
  private deferred: (() => void)[] = [];
  private deferQueued = false;
  private readonly counters: {
    readonly frames: Record<Lane, { inc(): void }>;
    readonly messages: Record<Lane, { inc(n: number): void }>;
  } | null;

  constructor(
    readonly nodeId: NodeId,
    private readonly transport: PeerTransport,
    private readonly logger: Logger,
    private readonly tickMs = DEFAULT_TICK_MS,
    private readonly metrics?: PeerMetrics,
    /** The pod's shared WAL; null: each group has a RaftStorage of its own. */
    readonly wal: PodWal | null = null,
  ) {
    this.counters = metrics === undefined ? null : {
      frames: { control: metrics.framesSent.labels('control'),
        bulk: metrics.framesSent.labels('bulk') },
      messages: { control: metrics.raftMessagesSent.labels('control'),
        bulk: metrics.raftMessagesSent.labels('bulk') },
    };
    this.packer = new FramePacker<Lane>((to, lane, frame) => this.sendFrame(to, lane, frame));
    transport.onMessage((from, payload) => this.deliver(from, payload));
    // The peer may come back on another version: single frames until it shows it reads more.
    transport.onLink((peer, _lane, open) => { if (!open) this.batchPeers.delete(peer); });
  }

  async openGroup(opts: Omit<RaftGroupOptions, 'send' | 'nodeId' | 'logger' | 'defer'>):
    Promise<RaftGroup> {
    const wal = this.wal;
    const g = await RaftGroup.open({
      ...opts, nodeId: this.nodeId, logger: this.logger,
      ...(wal === null ? {} : { openStorage: () => wal.attach(opts.group, opts.dataDir) }),
      send: (to, m) => { this.send(to, opts.group, m); },
      defer: (work) => { this.defer(work); },
    });
    this.groups.set(opts.group, g);
    return g;
  }

  group(id: number): RaftGroup | undefined {
    return this.groups.get(id);
  }

  allGroups(): RaftGroup[] {
    return [...this.groups.values()];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.nextTickAt = performance.now() + this.tickMs;
    // Ticks owed after a stall run after the I/O that waited meanwhile (setImmediate runs
    // after the poll phase): a follower must see the heartbeats that arrived during the
    // stall before its election clock jumps ahead.
    const loop = (): void => {
      setImmediate(() => {
        this.catchUp();
        if (this.running) {
          this.timer = setTimeout(loop, Math.max(1, this.nextTickAt - performance.now()));
        }
      });
    };
    this.timer = setTimeout(loop, this.tickMs);
  }

  /** Runs the ticks the clock owes by now (at most TICKS_OWED_MAX) and lets every group act
   * on them at once. From the ticker only, after pending I/O (see start()). */
  private catchUp(): void {
    if (!this.running) return;
    const now = performance.now();
    if (now < this.nextTickAt) return;
    // A drift-free clock: count the ticks owed so a slow event loop catches up.
    let owed = 0;
    while (this.nextTickAt <= now && owed < TICKS_OWED_MAX) {
      owed++;
      this.nextTickAt += this.tickMs;
    }
    if (this.nextTickAt <= now) this.nextTickAt = now + this.tickMs;
    this.tickRounds++;
    for (let i = 0; i < owed; i++) for (const g of this.groups.values()) g.tick();
    for (const g of this.groups.values()) g.flush();
  }

  /**
   * For I/O callbacks, a service's request handlers: Node handles a burst of ready sockets
   * (10,000 HTTP requests) in one poll phase of its event loop, in which no timer fires, and
   * a leader that only heartbeats from its ticks would fall silent for the whole burst: its
   * followers would elect another. When a tick is overdue, every leader sends a heartbeat
   * round now (at most one per tick). The ticks themselves still wait for the ticker, which
   * runs after the peer messages that waited meanwhile: CheckQuorum must see the followers'
   * answers before it counts the time. Cheap when nothing is late: one clock read.
   */
  beatIfLate(): void {
    if (!this.running) return;
    const now = performance.now();
    if (now < this.nextTickAt || now - this.lastBeatAt < this.tickMs) return;
    this.lastBeatAt = now;
    this.tickRounds++;
    for (const g of this.groups.values()) g.beat();
  }

  /** `droppedFrames`: frames refused and messages for groups not hosted here; `tickRounds`:
   * rounds of ticks run and late heartbeat rounds sent, each a round of frames to peers. */
  stats(): { groups: number; droppedFrames: number; tickRounds: number } {
    return { groups: this.groups.size, droppedFrames: this.droppedFrames,
      tickRounds: this.tickRounds };
  }

  /** Gathers `m` into the frame for its peer and lane; the frames leave at the end of this
   * event-loop job (after its microtasks: the ready loops continue there), before any other
   * I/O: a heartbeat is never held behind a long poll phase. A peer not known to read batch
   * frames gets each message in a frame of its own, as before (raft-frames.ts). */
  private send(to: NodeId, g: number, m: Message): void {
    if (!this.batchPeers.has(to)) {
      this.transport.send(to, singleFrame(g, m), laneOf(m));
      this.count(laneOf(m), 1);
      return;
    }
    this.packer.add(to, laneOf(m), g, m);
    if (this.flushQueued) return;
    this.flushQueued = true;
    // A tick queued from a microtask runs once the microtask queue is empty.
    queueMicrotask(() => process.nextTick(() => {
      this.flushQueued = false;
      this.packer.flush();
    }));
  }

  private sendFrame(to: NodeId, lane: Lane, frame: RaftBatchFrame): void {
    this.transport.send(to, frame, lane);
    this.count(lane, frame.i.length);
  }

  private count(lane: Lane, messages: number): void {
    if (this.counters === null) return;
    this.counters.frames[lane].inc();
    this.counters.messages[lane].inc(messages);
  }

  /** One setImmediate for the deferred work of every group, so that the ready loops of one
   * turn run in one job and what they send shares frames. */
  private defer(work: () => void): void {
    this.deferred.push(work);
    if (this.deferQueued) return;
    this.deferQueued = true;
    setImmediate(() => {
      this.deferQueued = false;
      const batch = this.deferred;
      this.deferred = [];
      for (const w of batch) w();
    });
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all([...this.groups.values()].map((g) => g.close()));
    await this.wal?.close();
  }

  private deliver(from: string, payload: unknown): void {
    // Requests between nodes share the transport (forwarding): not ours, not malformed.
    if (isPeerRequestFrame(payload)) return;
    const unpacked = unpackFrame(payload, from, this.nodeId);
    if (!unpacked.ok) {
      this.refuse(from, unpacked.reason);
      return;
    }
    if (unpacked.readsBatches) this.batchPeers.add(from);
    for (const { g, m } of unpacked.messages) {
      const group = this.groups.get(g);
      // A group this node does not host (a partition placed elsewhere, or not opened yet).
      if (group === undefined) this.droppedFrames++;
      else group.step(m);
    }
  }

  private refuse(from: string, reason: RefusalReason): void {
    this.droppedFrames++;
    this.metrics?.framesRefused.inc({ reason });
    const n = (this.refusals.get(reason) ?? 0) + 1;
    this.refusals.set(reason, n);
    if (n % REFUSALS_PER_LOG !== 1) return;
    this.logger.error({ from, reason, refused: n }, 'refused a raft frame from a peer: a peer ' +
      'on another dsync version, or a bug; every pod of a service must run a version that ' +
      'knows the frames of the others (docs/runtime.md, "Frames between pods")');
  }
}
