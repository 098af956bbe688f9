// RaftHost with the pod WAL, real files with fsync: the saves of all groups of one ready
// cycle cost one write and one fsync (counted by the WAL, not timed), and every group comes
// back from the one WAL after a restart.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observability/logger.js';
import { decode, encode } from '../../src/runtime/envelope.js';
import { RaftHost } from '../../src/runtime/raft-host.js';
import type { RaftGroup } from '../../src/runtime/raft-group.js';
import type { StateMachine } from '../../src/runtime/state-machine.js';
import { PodWal } from '../../src/storage/pod-wal.js';
import { PeerTransport } from '../../src/transport/peer-transport.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

/** Appends every command; its image is the list. */
class ListMachine implements StateMachine {
  items: string[] = [];
  apply(cmd: Uint8Array): number {
    this.items.push(decode<string>(cmd));
    return this.items.length;
  }
  snapshot(): Uint8Array { return encode(this.items); }
  restore(d: Uint8Array): void { this.items = decode<string[]>(d); }
}

const N = 16;
let dir = '';
let hosts: Array<{ host: RaftHost; transport: PeerTransport }> = [];

async function startPod(id: string, port: number): Promise<{ host: RaftHost; wal: PodWal;
  groups: RaftGroup[]; sms: ListMachine[] }> {
  const transport = new PeerTransport({ nodeId: id, listen: { host: '127.0.0.1', port },
    peers: new Map(), clusterToken: 't', sendQueueBytesMax: 1 << 24, frameBytesMax: 1 << 24,
    reconnectMsMin: 20, reconnectMsMax: 200 });
  const wal = await PodWal.open({ dir: join(dir, 'wal') }, true);
  const host = new RaftHost(id, transport, silentLogger(), 20, undefined, wal);
  hosts.push({ host, transport });
  const groups: RaftGroup[] = [];
  const sms: ListMachine[] = [];
  for (let g = 0; g < N; g++) {
    const sm = new ListMachine();
    sms.push(sm);
    groups.push(await host.openGroup({ group: g, dataDir: join(dir, 'groups', String(g)),
      bootstrap: { voters: [id], learners: [] }, fsync: true, stateMachine: sm,
      raft: { electionTicks: 10, heartbeatTicks: 1 } }));
  }
  await transport.start();
  host.start();
  return { host, wal, groups, sms };
}

afterEach(async () => {
  for (const h of hosts) {
    await h.host.close();
    await h.transport.close();
  }
  hosts = [];
  rmSync(dir, { recursive: true, force: true });
});

describe('RaftHost on one pod WAL', () => {
  it(`a ready cycle with writes in ${N} groups costs one fsync`, async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsync-podwal-'));
    const [port] = await freePorts(1);
    const pod = await startPod('p0', port!);
    await waitFor('every group leads', () => pod.groups.every((g) => g.isLeader()), 15_000);
    // Settled: the leader-start entries of every group are applied.
    await Promise.all(pod.groups.map((g) => g.propose(encode('warm-up'), { timeoutMs: 5000 })));
    for (let round = 0; round < 5; round++) {
      // A leader answers a proposal once it applied, which may be while its group still
      // writes the Ready after it (raft-group.ts): the round starts once that write is done.
      await waitFor('the WAL is idle', () => !pod.wal.stats().writing, 5_000);
      const before = pod.wal.stats();
      // One command per group in one turn: every group's Ready has entries to persist.
      await Promise.all(pod.groups.map((g, i) =>
        g.propose(encode(`r${round}-g${i}`), { timeoutMs: 5000 })));
      const after = pod.wal.stats();
      expect(after.groupCommits - before.groupCommits).toBe(1);
      expect(after.fsyncs - before.fsyncs).toBe(1);
      expect(after.saves - before.saves).toBe(N);
    }
  });

  it('every group comes back from the one WAL after a restart', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsync-podwal-'));
    const [port] = await freePorts(1);
    const a = await startPod('p0', port!);
    await waitFor('every group leads', () => a.groups.every((g) => g.isLeader()), 15_000);
    for (let k = 0; k < 3; k++) {
      await Promise.all(a.groups.map((g, i) => g.propose(encode(`g${i}-${k}`),
        { timeoutMs: 5000 })));
    }
    const h = hosts.pop()!;
    await h.host.close();
    await h.transport.close();
    const b = await startPod('p0', port!);
    await waitFor('every group leads again', () => b.groups.every((g) => g.isLeader()), 15_000);
    for (const [i, sm] of b.sms.entries()) {
      await waitFor(`group ${i} applied its log`, () => sm.items.length >= 3);
      expect(sm.items).toEqual([`g${i}-0`, `g${i}-1`, `g${i}-2`]);
    }
  });
});
