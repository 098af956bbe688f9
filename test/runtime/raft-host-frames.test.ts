// Many groups, one link: three hosts in this process, each with a real TCP transport on
// loopback and real files with fsync, running 64 Raft groups each. What all groups send one
// peer on one lane in one event-loop job is one frame: a tick's heartbeats of every group a
// pod leads, and the answers, are one frame per pod pair, not one per group. Frames are
// counted by the metrics an operator sees (dsync_peer_frames_sent_total and
// dsync_peer_raft_messages_sent_total), against the host's own count of tick rounds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { encode } from '../../src/runtime/envelope.js';
import type { RaftGroup } from '../../src/runtime/raft-group.js';
import { RaftHost } from '../../src/runtime/raft-host.js';
import type { StateMachine } from '../../src/runtime/state-machine.js';
import type { Message } from '../../src/raft/types.js';
import { packFrame, toWireItem } from '../../src/runtime/raft-frames.js';
import type { PeerTransport } from '../../src/transport/peer-transport.js';
import { freePorts } from '../support/ports.js';
import { loopbackTransport } from './loopback-transport.js';
import { waitFor } from '../support/wait.js';

const GROUPS = 64;
const ids = ['n0', 'n1', 'n2'];

class CountingMachine implements StateMachine {
  count = 0;
  apply(): number { return ++this.count; }
  snapshot(): Uint8Array { return encode(this.count); }
  restore(): void { this.count = 0; }
}

interface SentFrame { to: string; lane: string; payload: unknown }

interface TestNode { id: string; host: RaftHost; transport: PeerTransport; groups: RaftGroup[];
  metrics: Metrics; sent: SentFrame[] }

let dir = '';
let nodes: TestNode[] = [];
/** Bare transports standing in for pods of the version before batch frames. */
let bare: PeerTransport[] = [];

async function startNode(i: number, ports: number[], groupCount = GROUPS): Promise<TestNode> {
  const id = ids[i]!;
  const transport = loopbackTransport(ids, ports, i);
  // Every frame handed to the transport, to look inside them.
  const sent: SentFrame[] = [];
  const send = transport.send.bind(transport);
  transport.send = (to, payload, lane = 'bulk') => {
    sent.push({ to, lane, payload });
    return send(to, payload, lane);
  };
  const metrics = createMetrics(id, 'queue');
  const host = new RaftHost(id, transport, silentLogger(), 20, metrics.peer);
  const groups = await Promise.all(Array.from({ length: groupCount }, (_, g) => host.openGroup({
    group: g, dataDir: join(dir, id, `g${g}`), bootstrap: { voters: ids, learners: [] },
    fsync: true, stateMachine: new CountingMachine(),
    raft: { electionTicks: 20, heartbeatTicks: 1 } })));
  await transport.start();
  host.start();
  return { id, host, transport, groups, metrics, sent };
}

interface Counts { control: number; bulk: number; messages: number; ticks: number }

async function counts(n: TestNode): Promise<Counts> {
  const sum = async (c: typeof n.metrics.peer.framesSent, lane?: string) =>
    (await c.get()).values.filter((v) => lane === undefined || v.labels.lane === lane)
      .reduce((t, v) => t + v.value, 0);
  return { control: await sum(n.metrics.peer.framesSent, 'control'),
    bulk: await sum(n.metrics.peer.framesSent, 'bulk'),
    messages: await sum(n.metrics.peer.raftMessagesSent), ticks: n.host.stats().tickRounds };
}

/** What all nodes sent since `before`; ticks: the most tick rounds one node ran. */
async function sumDelta(before: Counts[]): Promise<Counts> {
  const after = await Promise.all(nodes.map(counts));
  const d = { control: 0, bulk: 0, messages: 0, ticks: 0 };
  after.forEach((a, i) => {
    const b = before[i]!;
    d.control += a.control - b.control;
    d.bulk += a.bulk - b.bulk;
    d.messages += a.messages - b.messages;
    d.ticks = Math.max(d.ticks, a.ticks - b.ticks);
  });
  return d;
}

/** Appends carrying entries in a frame's items (batch shape: [g, message]). */
function appendsWithEntries(payload: unknown): number {
  const items = (payload as { i?: unknown[] }).i ?? [];
  return items.filter((it) => {
    const m = (it as unknown[])[1] as { type?: string; entries?: unknown[] };
    return m.type === 'append' && (m.entries?.length ?? 0) > 0;
  }).length;
}

afterEach(async () => {
  await Promise.all(nodes.map(async (n) => { await n.host.close(); await n.transport.close(); }));
  await Promise.all(bare.map((t) => t.close()));
  nodes = [];
  bare = [];
  rmSync(dir, { recursive: true, force: true });
});

describe('RaftHost with 64 groups over real TCP', () => {
  it('sends one frame per pod pair and lane per tick, whatever the number of groups',
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'dsync-frames-'));
      const ports = await freePorts(3);
      nodes = await Promise.all([0, 1, 2].map((i) => startNode(i, ports)));
      const leaderOf = (g: number) => nodes.find((n) => n.groups[g]!.isLeader());
      await waitFor('a leader for every group, known to every node', () =>
        Array.from({ length: GROUPS }, (_, g) => g).every((g) => {
          const l = leaderOf(g);
          return l !== undefined && nodes.every((n) => n.groups[g]!.leaderId() === l.id);
        }), 30_000);

      // Quiet: heartbeats and their answers only, each group's leader beating every tick.
      const before = await Promise.all(nodes.map(counts));
      await waitFor('20 tick rounds', () => nodes.every((n) =>
        n.host.stats().tickRounds >= before[nodes.indexOf(n)]!.ticks + 20));
      const quiet = await sumDelta(before);
      // Every tick round: each group's heartbeat to 2 followers and their answers...
      expect(quiet.messages).toBeGreaterThanOrEqual(GROUPS * 2 * 2 * (quiet.ticks - 4));
      // ...in at most 2 frames per ordered pod pair (the heartbeats of the groups it leads,
      // the answers to the other's): 3 pods × 2 peers × 2, plus the rounds at the edges.
      expect(quiet.control).toBeLessThanOrEqual(3 * 2 * 2 * (quiet.ticks + 4));

      // A turn that proposes in every group: every leader's appends in one bulk frame per
      // follower, not one per group (the frames after it carry answers and commit indexes).
      for (const n of nodes) n.sent.length = 0;
      const results = await Promise.all(Array.from({ length: GROUPS }, (_, g) =>
        leaderOf(g)!.groups[g]!.propose(encode({ g }), { timeoutMs: 10_000 })));
      expect(results).toHaveLength(GROUPS);
      const withEntries = nodes.flatMap((n) => n.sent)
        .filter((f) => f.lane === 'bulk' && appendsWithEntries(f.payload) > 0);
      expect(withEntries.reduce((t, f) => t + appendsWithEntries(f.payload), 0))
        .toBeGreaterThanOrEqual(GROUPS * 2);
      // At most one frame per leading pod and follower: 3 pods × 2 peers.
      expect(withEntries.length).toBeLessThanOrEqual(3 * 2);
    });

  it('sends a pod of the version before the frames it knows, until the pod shows it reads ' +
    'batches, and again after their link closed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsync-frames-'));
    const ports = await freePorts(3);
    const frames = new Map<string, unknown[]>([['n1', []], ['n2', []]]);
    const startBare = async (i: number): Promise<PeerTransport> => {
      const t = loopbackTransport(ids, ports, i);
      t.onMessage((_from, payload) => frames.get(ids[i]!)!.push(payload));
      await t.start();
      bare.push(t);
      return t;
    };
    const [n1] = await Promise.all([startBare(1), startBare(2)]);
    nodes = [await startNode(0, ports, 1)];
    const single = (p: unknown) => (p as { b?: unknown; m?: { from?: unknown } }).b === 1 &&
      (p as { m: { from?: unknown } }).m.from === 'n0';
    const batch = (p: unknown) => (p as { rb?: unknown }).rb === 1;
    // n0 campaigns: its prevotes reach both in the single-message shape (with `b`).
    await waitFor('n0 campaigns to n1 and n2', () =>
      frames.get('n1')!.length > 0 && frames.get('n2')!.length > 0, 15_000);
    expect([...frames.get('n1')!, ...frames.get('n2')!].every(single)).toBe(true);
    // n1 sends a batch (a stale answer the core ignores): n0 sends it batches from then on.
    const stale: Message = { type: 'prevoteResp', from: 'n1', to: 'n0', term: 0,
      granted: false };
    n1.send('n0', packFrame([toWireItem(0, stale)]), 'control');
    await waitFor('n0 sends n1 batches', () => frames.get('n1')!.some(batch), 15_000);
    expect(frames.get('n2')!.every(single)).toBe(true);
    // n1 restarts (maybe on the version before): single frames again once the link closed.
    await n1.close();
    bare = bare.filter((t) => t !== n1);
    frames.set('n1', []);
    await startBare(1);
    await waitFor('n0 sends the restarted n1 single frames', () =>
      frames.get('n1')!.some(single), 15_000);
  });
});
