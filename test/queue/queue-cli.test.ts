// `dsync queue …` as a child process (the real binary over dist/) against a real queue
// cluster: JSON on stdout, errors with their code and what to do next on stderr, exit code 1
// for what the cluster refused and 2 for usage errors, never a stack trace; publish of a file
// with its status line, receive/ack, stats, config and redrive, and tail following a topic.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DsyncClient } from '../../src/client/index.js';
import { dsync, RunningCli, STACK_LINE } from '../support/cli.js';
import { Cluster } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

let cluster: Cluster;
let urls: string;
let client: DsyncClient;
let dir: string;

beforeAll(async () => {
  cluster = await Cluster.start({ service: 'queue', startTimeoutMs: 60_000 });
  urls = cluster.nodes.map((n) => n.url).join(',');
  client = new DsyncClient({ queue: cluster.nodes.map((n) => n.url), timeoutMs: 30_000 });
  await waitFor('the queue to take a config', () => client.queues.put('cli/ready', {}), 60_000);
  dir = mkdtempSync(join(tmpdir(), 'dsync-queue-cli-'));
});
afterAll(async () => {
  await client.close();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `dsync queue <sub> ... -o json --endpoints <cluster>` and the parsed JSON of its stdout. */
async function queueJson<T>(args: string[]): Promise<T> {
  const r = await dsync(['queue', ...args, '-o', 'json', '--endpoints', urls]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).not.toMatch(STACK_LINE);
  return JSON.parse(r.stdout) as T;
}

interface Received {
  messages: Array<{ id: string; body: unknown; key?: string; receipt: string;
    deliveries: number }>;
}
interface Stats { topic: string; partition: number; leader: string;
  groups: Record<string, { ready: number; inflight: number }>; dlq: number }

describe('dsync queue', { timeout: 180_000 }, () => {
  it('publish, receive, ack and stats print JSON', async () => {
    const p1 = await queueJson<{ ids: string[] }>(['publish', 'cli/a', '{"n":1}', '--key', 'k']);
    const p2 = await queueJson<{ ids: string[] }>(['publish', 'cli/a', 'plain text',
      '--dedup-id', 'd1']);
    const p3 = await queueJson<{ ids: string[] }>(['publish', 'cli/a', 'again', '--dedup-id',
      'd1']);
    expect(p3.ids).toEqual(p2.ids);
    const r = await queueJson<Received>(['receive', 'cli/a', '--max', '10',
      '--visibility', '600000']);
    expect(r.messages.map((m) => [m.id, m.body])).toEqual([[p1.ids[0], { n: 1 }],
      [p2.ids[0], 'plain text']]);
    expect(r.messages[0]).toMatchObject({ key: 'k', deliveries: 1 });
    const s = await queueJson<Stats>(['stats', 'cli/a']);
    expect(s).toMatchObject({ topic: 'cli/a', groups: { default: { ready: 0, inflight: 2 } },
      dlq: 0 });
    expect(Number.isSafeInteger(s.partition)).toBe(true);
    const a = await queueJson<{ acked: number }>(['ack', 'cli/a',
      ...r.messages.map((m) => m.receipt)]);
    expect(a).toEqual({ acked: 2 });
    expect((await queueJson<Stats>(['stats', 'cli/a'])).groups.default)
      .toMatchObject({ ready: 0, inflight: 0 });
  });

  it('publish --file sends every line in batches, with a status line on stderr', async () => {
    const file = join(dir, 'messages.jsonl');
    const n = 250;
    writeFileSync(file, Array.from({ length: n }, (_, i) =>
      JSON.stringify({ body: { i }, key: `k${i % 3}` })).join('\n') + '\n\n');
    const r = await dsync(['queue', 'publish', 'cli/file', '--file', file, '--batch', '100',
      '--endpoints', urls]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/published\s+250/);
    expect(r.stderr).toMatch(/250 published of 251 lines read/);
    const bodies = join(dir, 'bodies.jsonl');
    writeFileSync(bodies, '1\n"two"\n[3]\n');
    expect(await queueJson(['publish', 'cli/file', '--file', bodies, '--bodies']))
      .toEqual({ published: 3, requests: 1 });
    expect((await client.queues.get('cli/file'))).toBeDefined();
    // A line that is not a message is a usage error that names the line.
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"body": 1}\n{"nobody": 2}\n');
    const e = await dsync(['queue', 'publish', 'cli/file', '--file', bad, '--endpoints', urls]);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/line 2 is not a message/);
    expect(e.stderr).not.toMatch(STACK_LINE);
  });

  it('tail prints each message as a JSON line and acks it in a group of its own',
    async () => {
      await client.queues.publishBatch('cli/tail', [{ body: 1 }, { body: 2 }, { body: 3 }]);
      // --no-ack leaves them in flight for its group (which therefore keeps them retained
      // for a group made later).
      const k = await dsync(['queue', 'tail', 'cli/tail', '--count', '3', '--group', 'peek',
        '--no-ack', '--endpoints', urls]);
      expect(k.code, k.stderr).toBe(0);
      expect(k.stdout.trim().split('\n')).toHaveLength(3);
      expect((await client.queues.get('cli/tail'))?.groups.peek)
        .toMatchObject({ ready: 0, inflight: 3 });
      const r = await dsync(['queue', 'tail', 'cli/tail', '--count', '3', '-o', 'json',
        '--endpoints', urls]);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { body: number });
      expect(lines.map((l) => l.body)).toEqual([1, 2, 3]);
      const group = /as group ([^\s;]+)/.exec(r.stderr)?.[1] ?? '';
      expect(group).toMatch(/^tail-[0-9a-f]{8}$/);
      expect((await client.queues.get('cli/tail'))?.groups[group])
        .toMatchObject({ ready: 0, inflight: 0 });
    });

  it('tail follows live messages and stops with exit 0 on Ctrl-C', async () => {
    const tail = new RunningCli(['queue', 'tail', 'cli/live', '--endpoints', urls]);
    try {
      await tail.waitForOutput(/following cli\/live/, 'stderr');
      await client.queues.publish('cli/live', { live: true });
      await tail.waitForOutput(/"live":true/);
      tail.kill('SIGINT');
      const r = await tail.exited;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(STACK_LINE);
    } finally {
      tail.kill('SIGKILL');
    }
  });

  it('config and redrive: a message nacked past maxDeliveries comes back from the DLQ',
    async () => {
      expect(await queueJson(['config', 'cli/dlq', '--max-deliveries', '1']))
        .toMatchObject({ topic: 'cli/dlq', maxDeliveries: 1 });
      await client.queues.publish('cli/dlq', 'poison');
      const r = await queueJson<Received>(['receive', 'cli/dlq']);
      expect(await queueJson(['nack', 'cli/dlq', r.messages[0]!.receipt])).toEqual({ nacked: 1 });
      await waitFor('the dead letter', async () =>
        (await client.queues.get('cli/dlq'))?.dlq === 1, 30_000);
      expect((await queueJson<Stats>(['stats', 'cli/dlq'])).dlq).toBe(1);
      expect(await queueJson(['redrive', 'cli/dlq'])).toEqual({ moved: 1 });
      const again = await queueJson<Received>(['receive', 'cli/dlq', '--wait', '5000']);
      expect(again.messages.map((m) => [m.body, m.deliveries])).toEqual([['poison', 1]]);
    });

  it('a topic that never existed: NOT_FOUND on stderr, exit 1', async () => {
    const r = await dsync(['queue', 'stats', 'cli/never', '--endpoints', urls]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/NOT_FOUND/);
    expect(r.stderr).toMatch(/first publish/);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it('usage errors exit 2 and say what to fix; an unreachable cluster exits 1', async () => {
    const cases: string[][] = [
      ['publish', 'cli/u'],
      ['publish', 'cli/u', 'x', '--file', 'f'],
      ['receive', 'cli/u', '--max', '0'],
      ['receive', 'cli/u', '--visibility', 'soon'],
      ['receive', 'cli/u', '--visibility', '99'],
      ['ack', 'cli/u'],
    ];
    for (const args of cases) {
      const r = await dsync(['queue', ...args, '--endpoints', urls]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).not.toMatch(STACK_LINE);
    }
    const bad = await dsync(['queue', 'stats', 't', '--endpoints', 'localhost:8100']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a node URL/);
    const down = await dsync(['queue', '--timeout', '300ms', 'stats', 't', '--endpoints',
      'http://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/NETWORK/);
    expect(down.stderr).toMatch(/DSYNC_QUEUE_ENDPOINTS/);
  });
});
