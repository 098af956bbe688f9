// RaftGroup with real files (fsync on): proposals batched per Raft entry, a new leader's first
// commands ahead of everything else in its term, the log of the previous entry format
// replayed, and reads that cannot crash the process. Groups of one node elect themselves;
// three-node groups talk through an in-process network that a test can silence.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observability/logger.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import { decode, encode } from '../../src/runtime/envelope.js';
import { RaftGroup, type RaftGroupOptions } from '../../src/runtime/raft-group.js';
import type { ApplyContext, StateMachine } from '../../src/runtime/state-machine.js';
import { RaftStorage } from '../../src/storage/raft-storage.js';
import { waitFor } from '../support/wait.js';

/** Records every command with where it applied; answers `cmd@index.position`. */
class RecordingMachine implements StateMachine {
  applied: Array<{ cmd: string; index: number; position: number; term: number }> = [];
  constructor(private readonly startCommands = false) {}
  apply(command: Uint8Array, ctx: ApplyContext): string {
    const cmd = decode<string>(command);
    this.applied.push({ cmd, index: ctx.index, position: ctx.position, term: ctx.term });
    return `${cmd}@${ctx.index}.${ctx.position}`;
  }
  leaderStartCommands(term: number): Uint8Array[] {
    return this.startCommands ? [encode(`start-${term}`)] : [];
  }
  snapshot(): Uint8Array { return encode(this.applied); }
  restore(d: Uint8Array): void { this.applied = decode(d); }
}

let dir = '';
let groups: RaftGroup[] = [];
let ticker: NodeJS.Timeout | null = null;

function tmp(): string {
  dir = mkdtempSync(join(tmpdir(), 'dsync-group-'));
  return dir;
}

afterEach(async () => {
  if (ticker) clearInterval(ticker);
  ticker = null;
  await Promise.all(groups.map((g) => g.close()));
  groups = [];
  rmSync(dir, { recursive: true, force: true });
});

type Extra = Partial<Omit<RaftGroupOptions, 'stateMachine'>>;

/** One voter that elects itself at once. */
async function single(sm: StateMachine, extra: Extra = {}): Promise<RaftGroup> {
  const g = await RaftGroup.open({ group: 0, nodeId: 'n0', dataDir: join(dir || tmp(), 'n0'),
    bootstrap: { voters: ['n0'], learners: [] }, fsync: true, stateMachine: sm,
    send: () => undefined, logger: silentLogger(), ...extra });
  groups.push(g);
  g.campaign();
  await waitFor('n0 leads', () => g.isLeader());
  return g;
}

/** Three voters in this process; `cut` silences messages to and from a node. */
async function three(sms: StateMachine[], extra: Extra = {}):
  Promise<{ gs: RaftGroup[]; cut: Set<NodeId> }> {
  const ids = ['n0', 'n1', 'n2'];
  const cut = new Set<NodeId>();
  const byId = new Map<NodeId, RaftGroup>();
  const send = (to: NodeId, m: Message): void => {
    if (cut.has(to) || cut.has(m.from)) return;
    setImmediate(() => byId.get(to)?.step(m));
  };
  tmp();
  for (const [i, id] of ids.entries()) {
    const g = await RaftGroup.open({ group: 0, nodeId: id, dataDir: join(dir, id),
      bootstrap: { voters: ids, learners: [] }, fsync: true, stateMachine: sms[i]!, send,
      logger: silentLogger(), raft: { electionTicks: 10, heartbeatTicks: 1 }, seed: i + 1,
      ...extra });
    byId.set(id, g);
    groups.push(g);
  }
  ticker = setInterval(() => { for (const g of groups) g.tick(); }, 10);
  return { gs: groups, cut };
}

describe('RaftGroup: commands batched per entry', () => {
  it('the proposals of one turn become one entry, each answered with its own result',
    async () => {
      const sm = new RecordingMachine();
      const g = await single(sm);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        g.propose(encode(`c${i}`), { timeoutMs: 5000 })));
      const mine = sm.applied.filter((a) => a.cmd.startsWith('c'));
      expect(new Set(mine.map((a) => a.index)).size).toBe(1);
      expect(mine.map((a) => a.position)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(results).toEqual(mine.map((a) => `${a.cmd}@${a.index}.${a.position}`));
    });

  it('bounds an entry by batchCommandsMax and batchBytesMax', async () => {
    const sm = new RecordingMachine();
    const g = await single(sm, { batchCommandsMax: 8, batchBytesMax: 1024 });
    await Promise.all(Array.from({ length: 20 }, (_, i) =>
      g.propose(encode(`n${i}`), { timeoutMs: 5000 })));
    const byIndex = (prefix: string): number[] => {
      const counts = new Map<number, number>();
      for (const a of sm.applied.filter((x) => x.cmd.startsWith(prefix))) {
        counts.set(a.index, (counts.get(a.index) ?? 0) + 1);
      }
      return [...counts.values()];
    };
    expect(byIndex('n')).toEqual([8, 8, 4]);
    const big = 'b'.repeat(300);
    await Promise.all(Array.from({ length: 7 }, (_, i) =>
      g.propose(encode(`${big}${i}`), { timeoutMs: 5000 })));
    expect(byIndex('b').every((n) => n <= 3)).toBe(true);
    expect(byIndex('b').reduce((a, b) => a + b, 0)).toBe(7);
  });

  it('refuses batch limits out of bounds at start-up, naming the field', async () => {
    await expect(single(new RecordingMachine(), { batchCommandsMax: 0 }))
      .rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'batchCommandsMax' } });
    await expect(single(new RecordingMachine(), { pendingReadsMax: 1.5 }))
      .rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'pendingReadsMax' } });
  });
});

describe('RaftGroup: applying while the next write is on disk', () => {
  it('a committed entry is answered while the Ready that commits it still writes new ' +
    'entries (storage writes held by the test)', async () => {
    const sm = new RecordingMachine();
    const g = await single(sm);
    const storage = (g as unknown as { storage: RaftStorage }).storage;
    const save = storage.save.bind(storage);
    const held: Array<() => void> = [];
    let holding = false;
    storage.save = async (w) => {
      if (holding && w.entries.length > 0) await new Promise<void>((r) => held.push(r));
      return save(w);
    };
    holding = true;
    let aDone = false;
    const a = g.propose(encode('a'), { timeoutMs: 10_000 })
      .then((r) => { aDone = true; return r; });
    await waitFor('the write of a is held', () => held.length === 1);
    // b joins the next entry: the loop is waiting for a's write.
    const b = g.propose(encode('b'), { timeoutMs: 10_000 });
    held.shift()?.();
    await waitFor('the write of b is held', () => held.length === 1);
    try {
      // a is committed (the one voter persisted it) and answered though b's write is not done.
      await waitFor('a answered while b is written', () => aDone, 5000);
      expect(sm.applied.map((x) => x.cmd)).toEqual(['a']);
    } finally {
      holding = false;
      held.shift()?.();
    }
    expect(await a).toMatch(/^a@/);
    expect(await b).toMatch(/^b@/);
  });
});

describe('RaftGroup: taking office', () => {
  it('a new leader\'s first commands follow its no-op, ahead of a proposal made the moment ' +
    'it leads', async () => {
    const sm = new RecordingMachine(true);
    const g = await RaftGroup.open({ group: 0, nodeId: 'n0', dataDir: join(tmp(), 'n0'),
      bootstrap: { voters: ['n0'], learners: [] }, fsync: true, stateMachine: sm,
      send: () => undefined, logger: silentLogger() });
    groups.push(g);
    g.campaign();
    // Propose on the very turn the group reports leadership.
    const first = await new Promise<Promise<unknown>>((resolve) => {
      const poll = (): void => {
        if (g.isLeader()) resolve(g.propose(encode('client'), { timeoutMs: 5000 }));
        else setImmediate(poll);
      };
      poll();
    });
    await first;
    expect(sm.applied.map((a) => a.cmd)).toEqual([`start-${g.status().term}`, 'client']);
    // Right after the no-op: index 1 is the no-op of term 1.
    expect(sm.applied[0]).toMatchObject({ index: 2, position: 0 });
  });

  it('every new term starts with the leader-start commands, whoever leads it', async () => {
    const sms = [0, 1, 2].map(() => new RecordingMachine(true));
    const { gs, cut } = await three(sms);
    const leaderOf = (among: RaftGroup[]): Promise<RaftGroup> => waitFor('a leader', () =>
      among.find((g) => g.isLeader() && g.status().commit >= g.status().lastIndex), 15_000);
    const l1 = await leaderOf(gs);
    await l1.propose(encode('one'), { timeoutMs: 5000 });
    const id1 = l1.status().id;
    cut.add(id1);
    const rest = gs.filter((g) => g !== l1);
    const l2 = await leaderOf(rest);
    await waitFor('a proposal through the new leader', async () => {
      try {
        return await l2.propose(encode('two'), { timeoutMs: 2000 });
      } catch {
        return null;
      }
    }, 15_000);
    const sm2 = sms[gs.indexOf(l2)]!;
    const terms = new Map<number, string[]>();
    for (const a of sm2.applied) terms.set(a.term, [...(terms.get(a.term) ?? []), a.cmd]);
    for (const [term, cmds] of terms) expect(cmds[0]).toBe(`start-${term}`);
    expect(terms.get(l2.status().term)).toContain('two');
  });
});

describe('RaftGroup: the log of the previous version', () => {
  it('replays entries in the envelope format before batching ({t, d, c, r})', async () => {
    const legacy = new Packr({ useRecords: false, moreTypes: false });
    const dataDir = join(tmp(), 'n0');
    const { storage } = await RaftStorage.open({ dir: dataDir, fsync: true });
    const entries = ['a', 'b', 'c'].map((k, i) => ({ index: i + 1, term: 1, type: 'normal' as const,
      data: legacy.pack({ t: 1000 + i, d: encode(k), c: 'http', r: `r${i}` }) }));
    await storage.save({ hardState: { term: 1, vote: 'n0', commit: 3 }, entries, snapshot: null });
    await storage.close();
    const sm = new RecordingMachine();
    const g = await RaftGroup.open({ group: 0, nodeId: 'n0', dataDir,
      bootstrap: { voters: ['n0'], learners: [] }, fsync: true, stateMachine: sm,
      send: () => undefined, logger: silentLogger() });
    groups.push(g);
    await waitFor('the old log applied', () => g.appliedIndex() >= 3);
    expect(sm.applied.map((a) => [a.cmd, a.index, a.position])).toEqual([
      ['a', 1, 0], ['b', 2, 0], ['c', 3, 0]]);
    expect(g.now()).toBeGreaterThanOrEqual(1002);
  });
});

describe('RaftGroup: linearizable reads', () => {
  it('past pendingReadsMax a read is refused at once with RESOURCE_EXHAUSTED naming the limit',
    async () => {
      const g = await single(new RecordingMachine(), { pendingReadsMax: 3 });
      const outcomes = await Promise.allSettled(Array.from({ length: 10 },
        () => g.linearizableRead(5000)));
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
      for (const o of outcomes.slice(3)) {
        expect(o).toMatchObject({ status: 'rejected', reason: { code: 'RESOURCE_EXHAUSTED',
          retryable: true, details: { limit: 'pendingReadsMax', max: 3 } } });
      }
      // The bound counts waiting reads: once answered, there is room again.
      await g.linearizableRead(5000);
    });

  it('reads of one turn share one quorum round, and a round the core refuses leaves no ' +
    'promise behind (no unhandled rejection)', async () => {
    const sms = [0, 1, 2].map(() => new RecordingMachine());
    // One pending ReadIndex round at most in the core.
    const { gs, cut } = await three(sms, { raft: { electionTicks: 10, heartbeatTicks: 1,
      maxPendingReads: 1 } });
    const leader = await waitFor('a leader that committed in its term', () => gs.find((g) =>
      g.isLeader() && g.status().commit >= g.status().lastIndex), 15_000);
    // A quorum answers: 50 reads of one turn are confirmed together.
    await Promise.all(Array.from({ length: 50 }, () => leader.linearizableRead(5000)));
    // No quorum: the first round stays pending; the reads of the next turns are refused.
    for (const g of gs) if (g !== leader) cut.add(g.status().id);
    const stuck = Promise.allSettled(Array.from({ length: 5 }, () => leader.linearizableRead(300)));
    await new Promise((r) => setImmediate(r));
    const refused = Promise.allSettled(Array.from({ length: 5 },
      () => leader.linearizableRead(300)));
    const a = await stuck;
    const b = await refused;
    for (const o of a) expect(o).toMatchObject({ status: 'rejected' });
    for (const o of b) {
      expect(o).toMatchObject({ status: 'rejected', reason: { code: 'RESOURCE_EXHAUSTED',
        details: { limit: 'maxPendingReads', max: 1 } } });
    }
  });
});

describe('RaftGroup: lease reads', () => {
  it('a leader answers from its lease while a quorum answers its rounds, then falls back',
    async () => {
      const kinds: string[] = [];
      const sms = [0, 1, 2].map(() => new RecordingMachine());
      // Ticks of 10 ms and 10 ticks per election: a lease of 50 ms is inside the 90 ms.
      const { gs, cut } = await three(sms, { readMode: 'lease', leaseMs: 50,
        observer: { onRead: (_g, kind) => kinds.push(kind) } });
      const leader = await waitFor('a leader that committed in its term', () => gs.find((g) =>
        g.isLeader() && g.status().commit >= g.status().lastIndex), 15_000);
      await waitFor('a lease read', async () => {
        await leader.read(5000);
        return kinds.includes('lease');
      });
      // Cut off: once the lease lapses, reads go to ReadIndex, which finds no quorum.
      for (const g of gs) if (g !== leader) cut.add(g.status().id);
      const lapsed = await waitFor('a read past the lease', async () => {
        const before = kinds.length;
        const outcome: unknown = await leader.read(200).then(() => 'answered', (e: unknown) => e);
        return kinds[before] === 'lease_fallback' ? { outcome } : null;
      });
      expect(lapsed.outcome).toMatchObject({ retryable: true });
      expect(['TIMEOUT', 'NOT_LEADER', 'UNAVAILABLE'])
        .toContain((lapsed.outcome as { code?: unknown }).code);
    });

  it('refuses a lease mode without a lease or without CheckQuorum, naming the field',
    async () => {
      tmp();
      const open = (extra: Extra) => RaftGroup.open({ group: 0, nodeId: 'n0',
        dataDir: join(dir, 'bad'), bootstrap: { voters: ['n0'], learners: [] }, fsync: true,
        stateMachine: new RecordingMachine(), send: () => undefined, logger: silentLogger(),
        ...extra });
      await expect(open({ readMode: 'lease' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT', details: { field: 'leaseMs' } });
      await expect(open({ readMode: 'lease', leaseMs: 100, raft: { checkQuorum: false } }))
        .rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'readMode' } });
    });
});
