// Hosts many Raft groups in one process over one peer transport: one ticker for all of them,
// frames tagged with the group id, heartbeats and votes on the control lane.
import type { Logger } from 'pino';
import type { Message, NodeId } from '../raft/types.js';
import { isPeerRequestFrame } from '../transport/peer-requests.js';
import type { Lane, PeerTransport } from '../transport/peer-transport.js';
import { RaftGroup, type RaftGroupOptions } from './raft-group.js';

/** Milliseconds per Raft tick (default 100 ms: elections after 10–20 ticks = 1–2 s, as etcd). */
export const DEFAULT_TICK_MS = 100;
/** Ticks run at once after a stall, at most (the rest of the stall is forgotten). */
export const TICKS_OWED_MAX = 10;

interface Frame {
  readonly g: number;
  readonly m: Message;
}

const CONTROL_TYPES = new Set<Message['type']>([
  'prevote', 'prevoteResp', 'vote', 'voteResp', 'heartbeat', 'heartbeatResp', 'appendResp',
  'snapshotResp', 'timeoutNow',
]);

export function laneOf(m: Message): Lane {
  return CONTROL_TYPES.has(m.type) ? 'control' : 'bulk';
}

function isFrame(p: unknown): p is Frame {
  if (typeof p !== 'object' || p === null) return false;
  const f = p as {
    g?: unknown; m?: { type?: unknown; to?: unknown; from?: unknown; term?: unknown };
  };
  return Number.isSafeInteger(f.g) && typeof f.m === 'object' && f.m !== null &&
    typeof f.m.type === 'string' && typeof f.m.to === 'string' && typeof f.m.from === 'string' &&
    typeof f.m.term === 'number';
}

export class RaftHost {
  private readonly groups = new Map<number, RaftGroup>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** performance.now() at which the next tick is due. */
  private nextTickAt = 0;
  /** performance.now() of the last beatIfLate() round. */
  private lastBeatAt = 0;
  private droppedFrames = 0;

  constructor(
    readonly nodeId: NodeId,
    private readonly transport: PeerTransport,
    private readonly logger: Logger,
    private readonly tickMs = DEFAULT_TICK_MS,
  ) {
    transport.onMessage((from, payload) => this.deliver(from, payload));
  }

  async openGroup(opts: Omit<RaftGroupOptions, 'send' | 'nodeId' | 'logger'>): Promise<RaftGroup> {
    const g = await RaftGroup.open({
      ...opts, nodeId: this.nodeId, logger: this.logger,
      send: (to, m) => { this.transport.send(to, { g: opts.group, m }, laneOf(m)); },
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
    for (const g of this.groups.values()) g.beat();
  }

  stats(): { groups: number; droppedFrames: number } {
    return { groups: this.groups.size, droppedFrames: this.droppedFrames };
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all([...this.groups.values()].map((g) => g.close()));
  }

  private deliver(from: string, payload: unknown): void {
    // Requests between nodes share the transport (forwarding): not ours, not malformed.
    if (isPeerRequestFrame(payload)) return;
    if (!isFrame(payload) || payload.m.to !== this.nodeId || payload.m.from !== from) {
      this.droppedFrames++;
      if (this.droppedFrames % 1000 === 1) {
        this.logger.warn({ from }, 'dropped a malformed or misaddressed raft frame');
      }
      return;
    }
    const g = this.groups.get(payload.g);
    if (!g) { this.droppedFrames++; return; }
    g.step(payload.m);
  }
}
