// The queue node's parts that run without a cluster: the partition's Raft adapter (a new
// leader's first command, once per term across restarts), the checks a leader makes before it
// proposes, the parked long polls, the bounded metric series, the leader directory, the
// receive answer's JSON and the files a pod keeps about its partitions.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DsyncError } from '../../src/errors.js';
import { QueueCmd } from '../../src/queue/partition-commands.js';
import { QueuePartitionMachine } from '../../src/queue/partition-state-machine.js';
import { QueuePartition } from '../../src/queue/partition.js';
import { LeaderDirectory } from '../../src/queue/queue-directory.js';
import {
  openClusterRecord, partitionBootstrap, receiptSaltOf, writeClusterRecord,
} from '../../src/queue/queue-layout.js';
import { LongPolls } from '../../src/queue/queue-long-polls.js';
import { collectRows, OTHER_LABEL } from '../../src/queue/queue-metrics.js';
import { receiveAnswer } from '../../src/queue/queue-routes.js';
import { createLogger } from '../../src/observability/logger.js';
import { FsSync } from '../../src/storage/fs-sync.js';
import type { PartitionMetrics } from '../../src/queue/partition-views.js';

const T0 = 1_700_000_000_000;

describe('QueuePartitionMachine: taking office', () => {
  const ctx = (index: number, term: number) => ({ index, position: 0, term, nowMs: T0 + index });

  it('extends every lease once per term, and a restored snapshot remembers the term', () => {
    const m = new QueuePartitionMachine({ leaseExtensionMs: 4000 });
    const [start] = m.leaderStartCommands(3);
    expect(start).toBeDefined();
    m.apply(QueuePartitionMachine.encode(QueueCmd.publish('t', [{ body: '1' }])), ctx(1, 3));
    const got = m.apply(QueuePartitionMachine.encode(QueueCmd.receive('t', 'g', 1, 1000)),
      ctx(2, 3));
    expect(got.type).toBe('received');
    m.apply(start!, ctx(3, 3));
    expect(m.partition.groupMessages('t', 'g')[0]?.untilMs).toBe(T0 + 2 + 1000 + 4000);
    expect(m.leaderStartCommands(3)).toEqual([]);
    const restarted = new QueuePartitionMachine({ leaseExtensionMs: 4000 });
    restarted.restore(m.snapshot());
    expect(restarted.extendedInTerm).toBe(3);
    expect(restarted.leaderStartCommands(3)).toEqual([]);
    expect(restarted.leaderStartCommands(4)).toHaveLength(1);
  });

  it('restores a snapshot written without the term header, and proposes nothing with 0', () => {
    const p = new QueuePartition();
    p.apply(QueueCmd.publish('t', [{ body: 'x' }]), { nowMs: T0 });
    const m = new QueuePartitionMachine();
    m.restore(p.snapshot());
    expect(m.partition.topicView('t')?.messages).toBe(1);
    expect(m.extendedInTerm).toBe(0);
    expect(m.leaderStartCommands(1)).toEqual([]);
  });
});

describe('what a leader refuses before proposing', () => {
  const p = new QueuePartition({ limits: { topicsMax: 1, messageBytesMax: 10,
    topicRetainedBytesMax: 1024, partitionRetainedBytesMax: 4096 } });
  p.apply(QueueCmd.publish('a', [{ body: '1', dedupId: 'd' }]), { nowMs: T0 });

  it('names the bound a publish would hit, and passes what fits', () => {
    expect(p.publishRefusal('a', [{ body: 'x'.repeat(11) }]))
      .toEqual({ type: 'exhausted', limit: 'messageBytes', max: 10 });
    expect(p.publishRefusal('b', [{ body: '1' }]))
      .toEqual({ type: 'exhausted', limit: 'topics', max: 1 });
    expect(p.publishRefusal('a.dlq', [{ body: '1' }])).toBeNull();
    const many = Array.from({ length: 20 }, () => ({ body: '1234567890' }));
    expect(p.publishRefusal('a', many)?.type).toBe('exhausted');
    expect(p.publishRefusal('a', [{ body: '1' }])).toBeNull();
    expect(p.topicRefusal('b')).toEqual({ type: 'exhausted', limit: 'topics', max: 1 });
    expect(p.topicRefusal('a')).toBeNull();
  });

  it('counts no bytes for a dedupId still in its window, as the command does', () => {
    const q = new QueuePartition({ limits: { messageBytesMax: 900, topicRetainedBytesMax: 1024,
      partitionRetainedBytesMax: 1024 } });
    const big = 'x'.repeat(900);
    q.apply(QueueCmd.publish('a', [{ body: big, dedupId: 'same' }]), { nowMs: T0 });
    expect(q.publishRefusal('a', [{ body: big, dedupId: 'same' }])).toBeNull();
    expect(q.publishRefusal('a', [{ body: big, dedupId: 'other' }])?.type).toBe('exhausted');
  });
});

describe('LongPolls', () => {
  it('refuses past its bound with 429 naming longPolls', () => {
    const polls = new LongPolls(1, () => 0);
    polls.park('t', 'g', 1);
    let err: unknown;
    try { polls.park('t', 'g', 1); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(DsyncError);
    expect((err as DsyncError).code).toBe('RESOURCE_EXHAUSTED');
    expect((err as DsyncError).details).toEqual({ limit: 'longPolls', max: 1 });
  });

  it('wakes in arrival order only as many as the ready messages cover', async () => {
    const ready = new Map([['g', 2], ['h', 0]]);
    const polls = new LongPolls(100, (_t, g) => ready.get(g) ?? null);
    const g = [polls.park('t', 'g', 1), polls.park('t', 'g', 1), polls.park('t', 'g', 1)];
    const h = polls.park('t', 'h', 5);
    const fresh = polls.park('t', 'new-group', 1);
    const woken = g.map((p) => p.wait(5000));
    polls.notify('t');
    polls.notify('t');
    expect(await woken[0]).toBe(true);
    expect(await woken[1]).toBe(true);
    expect(await fresh.wait(5000)).toBe(true);
    expect(await g[2]!.wait(1)).toBe(false);
    expect(await h.wait(1)).toBe(false);
    for (const p of [...g, h, fresh]) polls.unpark(p);
    expect(polls.size).toBe(0);
  });

  it('a wake-up during a proposal is kept for the next wait; rearm clears it', async () => {
    const polls = new LongPolls(10, () => null);
    const p = polls.park('t', 'g', 1);
    p.wake();
    expect(await p.wait(1)).toBe(true);
    p.rearm();
    expect(await p.wait(1)).toBe(false);
    const ac = new AbortController();
    const waiting = p.wait(5000, ac.signal);
    ac.abort();
    expect(await waiting).toBe(false);
  });
});

describe('queue metrics: bounded series', () => {
  function partitionWith(topics: number): PartitionMetrics {
    return { nowMs: T0, bytes: 0, dedupEntries: 0, topics: Array.from({ length: topics },
      (_, i) => ({ topic: `t${i}`, messages: i, delayed: 0, bytes: 0, oldestPublishedAt: T0 - 1000,
        counters: { published: i, dedupHits: 1, trimmed: 0, redriven: 0 },
        groups: [{ group: 'g', ready: i, inflight: 1, delayed: 0, parked: 0,
          oldestPublishedAt: T0 - 1000, counters: { delivered: 2, redelivered: 1, acked: 1,
            nacked: 0, expired: 0, deadLettered: 0 } }] })) };
  }

  it('keeps the largest backlogs by name and sums the rest into (other)', () => {
    const { rows, topics } = collectRows([partitionWith(10)], 4, T0);
    expect(rows.map((r) => r.topic)).toEqual(['t9', 't8', 't7', OTHER_LABEL]);
    const other = rows[3]!;
    expect(other.ready).toBe(0 + 1 + 2 + 3 + 4 + 5 + 6);
    expect(other.delivered).toBe(14);
    expect(other.oldestAgeSeconds).toBe(1);
    expect(topics).toHaveLength(4);
    expect(topics.reduce((n, t) => n + t.published, 0)).toBe(45);
  });

  it('emits every series under the bound as it is', () => {
    const { rows } = collectRows([partitionWith(2), partitionWith(1)], 10, T0);
    expect(rows).toHaveLength(3);
  });
});

describe('LeaderDirectory', () => {
  const dir = new LeaderDirectory({ urlOf: () => undefined, freshMs: 1000, timeoutMs: 100,
    logger: createLogger({ level: 'silent', node: 't', service: 'queue' }) });

  it('takes the newest term, and the configuration only from the leader itself', async () => {
    dir.learn([{ partition: 1, state: 'leader', term: 2, leader: 'a', voters: ['a', 'b'],
      learners: [] }]);
    dir.learn([{ partition: 1, state: 'follower', term: 1, leader: 'c' }]);
    expect((await dir.leaderOf(1, []))?.leader).toBe('a');
    dir.learn([{ partition: 1, state: 'follower', term: 2, leader: 'a' }]);
    expect((await dir.leaderOf(1, []))?.config?.voters).toEqual(['a', 'b']);
    dir.learn([{ partition: 1, state: 'follower', term: 3, leader: 'b' }]);
    const v = await dir.leaderOf(1, []);
    expect(v).toMatchObject({ leader: 'b', term: 3, config: null });
    dir.forget(1);
    expect(await dir.leaderOf(1, ['x'])).toBeNull();
  });
});

describe('the receive answer', () => {
  it('embeds the stored JSON text of each body', () => {
    const text = receiveAnswer([
      { id: '1', body: '{"a":[1,"é"]}', receipt: 'r.1.x', deliveries: 1, publishedAt: T0 },
      { id: '2', body: 'null', key: 'k"ey', receipt: 'r.2.y', deliveries: 3, publishedAt: T0 },
      { id: '3', body: new TextEncoder().encode('"bytes"'), receipt: 'r', deliveries: 1,
        publishedAt: T0 },
    ]);
    expect(JSON.parse(text)).toEqual({ messages: [
      { id: '1', body: { a: [1, 'é'] }, receipt: 'r.1.x', deliveries: 1, publishedAt: T0 },
      { id: '2', body: null, key: 'k"ey', receipt: 'r.2.y', deliveries: 3, publishedAt: T0 },
      { id: '3', body: 'bytes', receipt: 'r', deliveries: 1, publishedAt: T0 },
    ] });
    expect(receiveAnswer([])).toBe('{"messages":[]}');
  });
});

describe('queue layout on disk', () => {
  let dir = '';
  afterEach(() => { if (dir !== '') rmSync(dir, { recursive: true, force: true }); });
  const sync = new FsSync(false);

  it('a pod bootstraps only on its first start, and keeps its partition count', async () => {
    dir = mkdtempSync(join(tmpdir(), 'queue-layout-'));
    expect(await openClusterRecord(dir, 16, false)).toEqual({ mayBootstrap: true });
    expect(await openClusterRecord(dir, 16, true)).toEqual({ mayBootstrap: false });
    await writeClusterRecord(dir, 16, ['a', 'b'], sync);
    expect(await openClusterRecord(dir, 16, false)).toEqual({ mayBootstrap: false });
    await expect(openClusterRecord(dir, 8, false)).rejects.toThrow(/--partitions 16/);
  });

  it('a partition keeps the configuration it was created with', async () => {
    dir = mkdtempSync(join(tmpdir(), 'queue-layout-'));
    const first = { voters: ['a', 'b', 'c'], learners: [] };
    expect(await partitionBootstrap(dir, 3, first, sync)).toEqual(first);
    expect(await partitionBootstrap(dir, 3, { voters: ['d'], learners: [] }, sync))
      .toEqual(first);
  });

  it('receipt salts differ per partition and per cluster token', () => {
    const a = receiptSaltOf('token-1', 0);
    expect(a >>> 0).toBe(a);
    expect(receiptSaltOf('token-1', 1)).not.toBe(a);
    expect(receiptSaltOf('token-2', 0)).not.toBe(a);
  });
});
