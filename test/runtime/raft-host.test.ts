// The runtime with real parts: three hosts in this process, each with a real TCP transport on
// loopback and real files with fsync, running two Raft groups each (the queue will run many).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observability/logger.js';
import { decode, encode } from '../../src/runtime/envelope.js';
import { RaftHost } from '../../src/runtime/raft-host.js';
import type { RaftGroup } from '../../src/runtime/raft-group.js';
import type { ApplyContext, StateMachine } from '../../src/runtime/state-machine.js';
import { PeerRequests } from '../../src/transport/peer-requests.js';
import type { PeerTransport } from '../../src/transport/peer-transport.js';
import { freePorts } from '../support/ports.js';
import { loopbackTransport } from './loopback-transport.js';
import { waitFor } from '../support/wait.js';

/** A register per key; apply returns the key's new version. */
class KvMachine implements StateMachine {
  data = new Map<string, { value: string; version: number }>();
  applied: Array<[number, string]> = [];
  apply(cmd: Uint8Array, ctx: ApplyContext): number {
    const { k, v } = decode<{ k: string; v: string }>(cmd);
    const version = (this.data.get(k)?.version ?? 0) + 1;
    this.data.set(k, { value: v, version });
    this.applied.push([ctx.index, `${k}=${v}`]);
    return version;
  }
  snapshot(): Uint8Array { return encode([...this.data]); }
  restore(d: Uint8Array): void {
    this.data = new Map(decode<Array<[string, { value: string; version: number }]>>(d));
  }
}

interface TestNode { id: string; host: RaftHost; transport: PeerTransport; groups: RaftGroup[];
  sms: KvMachine[] }

const ids = ['n0', 'n1', 'n2'];
let dir = '';
let nodes: TestNode[] = [];
let ports: number[] = [];

async function startNode(i: number, snapshotEntries = 10_000): Promise<TestNode> {
  const id = ids[i]!;
  const transport = loopbackTransport(ids, ports, i);
  const host = new RaftHost(id, transport, silentLogger(), 20);
  const groups: RaftGroup[] = [];
  const sms: KvMachine[] = [];
  for (const g of [1, 2]) {
    const sm = new KvMachine();
    sms.push(sm);
    groups.push(await host.openGroup({ group: g, dataDir: join(dir, id, `g${g}`),
      bootstrap: { voters: ids, learners: [] }, fsync: true, stateMachine: sm, snapshotEntries,
      raft: { electionTicks: 10, heartbeatTicks: 1 } }));
  }
  await transport.start();
  host.start();
  return { id, host, transport, groups, sms };
}

async function stopNode(n: TestNode): Promise<void> {
  await n.host.close();
  await n.transport.close();
}

function leaderOf(g: number, among = nodes): Promise<TestNode> {
  return waitFor(`leader of group ${g}`, () => {
    const ls = among.filter((n) => n.groups[g]?.isLeader());
    return ls.length === 1 ? ls[0] : null;
  }, 15_000);
}

async function put(n: TestNode, g: number, k: string, v: string): Promise<number> {
  return await n.groups[g]!.propose(encode({ k, v }), { timeoutMs: 5000 }) as number;
}

/** Puts through whichever node leads, retrying while leadership moves. */
async function putAnywhere(among: TestNode[], g: number, k: string, v: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const l = await leaderOf(g, among);
    try {
      return await put(l, g, k, v);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (attempt > 20 || !['NOT_LEADER', 'INDETERMINATE'].includes(code)) throw err;
    }
  }
}

afterEach(async () => {
  await Promise.all(nodes.map(stopNode));
  nodes = [];
  rmSync(dir, { recursive: true, force: true });
});

describe('RaftHost over real TCP and real files', () => {
  it('elects a leader per group, commits and applies the same log everywhere', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsync-rt-'));
    ports = await freePorts(3);
    nodes = await Promise.all([0, 1, 2].map((i) => startNode(i)));
    for (const g of [0, 1]) {
      const l = await leaderOf(g);
      const versions = await Promise.all(
        Array.from({ length: 50 }, (_, i) => put(l, g, 'k', `v${i}`)));
      expect(new Set(versions).size).toBe(50);
      await l.groups[g]!.linearizableRead(5000);
      const want = l.sms[g]!.applied.filter(([, c]) => c.startsWith('k='));
      expect(want).toHaveLength(50);
      await waitFor('followers apply',
        () => nodes.every((n) => n.sms[g]!.applied.length >= want.length));
      for (const n of nodes) expect(n.sms[g]!.applied).toEqual(l.sms[g]!.applied);
    }
  });

  it('frames of the requests between nodes on the same transport are not dropped as its own',
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'dsync-rt-'));
      ports = await freePorts(3);
      nodes = await Promise.all([0, 1, 2].map((i) => startNode(i)));
      const [a, b] = nodes as [TestNode, TestNode];
      await waitFor('a linked to b', () => a.transport.isConnected(b.id, 'bulk'));
      // Handlers run in order, b's host first: once this one saw the last frame, so has it.
      const seen: unknown[] = [];
      b.transport.onMessage((_from, payload) => seen.push(payload));
      const before = b.host.stats().droppedFrames;
      // No PeerRequests on b: nobody answers (a times out), and b's host ignores the frame.
      const requests = new PeerRequests(a.transport, { nodeId: a.id });
      const call = requests.request(b.id, { method: 'GET', path: '/x', headers: {},
        body: null }, 1000);
      const bogus = { g: 1, m: { type: 'bogus' } };
      a.transport.send(b.id, bogus);
      await waitFor('b received both', () => seen.some((p) =>
        (p as { m?: { type?: unknown } }).m?.type === 'bogus'));
      expect(b.host.stats().droppedFrames).toBe(before + 1);
      await expect(call.response).rejects.toMatchObject({ code: 'TIMEOUT' });
      requests.close();
    });

  it('a follower refuses proposals with NOT_LEADER naming the leader', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsync-rt-'));
    ports = await freePorts(3);
    nodes = await Promise.all([0, 1, 2].map((i) => startNode(i)));
    const l = await leaderOf(0);
    const f = nodes.find((n) => n !== l)!;
    await waitFor('follower knows leader', () => f.groups[0]!.leaderId() === l.id);
    await expect(put(f, 0, 'a', 'b')).rejects.toMatchObject({ code: 'NOT_LEADER',
      details: { leader: l.id } });
  });

  it('survives the leader stopping, and a restarted node catches up by log and by snapshot',
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'dsync-rt-'));
      ports = await freePorts(3);
      nodes = await Promise.all([0, 1, 2].map((i) => startNode(i, 20)));
      const l1 = await leaderOf(0);
      for (let i = 0; i < 30; i++) await put(l1, 0, `a${i}`, 'x');
      const li = nodes.indexOf(l1);
      await stopNode(l1);
      const rest = nodes.filter((n) => n !== l1);
      // > snapshotEntries: compacts. Leadership may still move right after an election.
      for (let i = 0; i < 60; i++) await putAnywhere(rest, 0, `b${i}`, 'y');
      const l2 = await leaderOf(0, rest);
      const back = await startNode(li, 20);
      nodes = [...rest, back];
      await waitFor('restarted node catches up', () =>
        back.sms[0]!.data.size === l2.sms[0]!.data.size, 15_000);
      expect([...back.sms[0]!.data]).toEqual([...l2.sms[0]!.data]);
    });
});
