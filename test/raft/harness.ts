// A small synchronous in-process network of RaftNodes for the paper tests (etcd-io/raft's
// `network` in raft_test.go): messages are delivered in order until the cluster is quiet,
// except across cut links.

import { RaftNode, DEFAULT_RAFT_OPTIONS } from '../../src/raft/raft.js';
import type { RaftInit, RaftOptions } from '../../src/raft/raft.js';
import { seededRand } from '../../src/raft/rand.js';
import type {
  ClusterConfig, DroppedRequest, Entry, Message, NodeId, ReadState, Ready, Snapshot,
} from '../../src/raft/types.js';

/** Messages delivered in one `deliver()` at most: a livelock shows as an error, not a hang. */
const DELIVER_MAX_MESSAGES = 100_000;

export interface Disk {
  init: RaftInit;
}

export function opts(id: NodeId, over: Partial<RaftOptions> = {}): RaftOptions {
  return { ...DEFAULT_RAFT_OPTIONS, id, rand: seededRand(id.charCodeAt(id.length - 1)), ...over };
}

export function emptyInit(config: ClusterConfig): RaftInit {
  return { hardState: null, snapshot: null, entries: [], config };
}

export function entry(index: number, term: number, data = ''): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(data) };
}

export class Net {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly applied = new Map<NodeId, Entry[]>();
  readonly readStates = new Map<NodeId, ReadState[]>();
  readonly dropped = new Map<NodeId, DroppedRequest[]>();
  readonly installed = new Map<NodeId, Snapshot[]>();
  /** Every message sent, for assertions on traffic. */
  readonly sent: Message[] = [];
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  /** Return false to drop a message. */
  filter: (m: Message) => boolean = () => true;

  constructor(
    ids: readonly NodeId[], readonly over: Partial<RaftOptions> = {},
    readonly config: ClusterConfig = { voters: ids, learners: [] },
  ) {
    for (const id of ids) this.add(id, emptyInit(config));
  }

  add(id: NodeId, init: RaftInit, extra: Partial<RaftOptions> = {}): RaftNode {
    const n = new RaftNode(opts(id, { ...this.over, ...extra }), init);
    this.nodes.set(id, n);
    this.applied.set(id, []);
    this.readStates.set(id, []);
    this.dropped.set(id, []);
    this.installed.set(id, []);
    return n;
  }

  node(id: NodeId): RaftNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Drain every node's Ready: persist (implicit), queue messages, apply, advance. */
  flush(): void {
    for (const [id, n] of this.nodes) {
      while (n.hasReady()) {
        const rd: Ready = n.ready();
        for (const m of [...rd.earlyMessages, ...rd.messages]) {
          this.sent.push(m);
          this.queue.push(m);
        }
        if (rd.snapshot !== null) this.installed.get(id)?.push(rd.snapshot);
        this.applied.get(id)?.push(...rd.committed);
        this.readStates.get(id)?.push(...rd.readStates);
        this.dropped.get(id)?.push(...rd.dropped);
        n.advance(rd);
      }
    }
  }

  /** Deliver until no message is left. */
  deliver(): void {
    let n = 0;
    for (;;) {
      this.flush();
      const batch = this.queue;
      this.queue = [];
      if (batch.length === 0) return;
      for (const m of batch) {
        if (++n > DELIVER_MAX_MESSAGES) throw new Error('network never goes quiet');
        if (this.cut.has(`${m.from}>${m.to}`) || !this.filter(m)) continue;
        this.nodes.get(m.to)?.step(m);
      }
    }
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(id).tick();
      this.deliver();
    }
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) n.tick();
      this.deliver();
    }
  }

  campaign(id: NodeId): void {
    this.node(id).campaign();
    this.deliver();
  }

  role(id: NodeId): string {
    return this.node(id).status().role;
  }

  appliedData(id: NodeId): string[] {
    return (this.applied.get(id) ?? []).filter((e) => e.type === 'normal')
      .map((e) => new TextDecoder().decode(e.data));
  }

  propose(id: NodeId, data: string): { index: number; term: number } {
    const r = this.node(id).propose(new TextEncoder().encode(data));
    this.deliver();
    return r;
  }
}
