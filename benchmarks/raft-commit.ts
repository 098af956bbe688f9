// Raft commit: dsync's Raft (3 processes on loopback, fsync on) next to the raw fsync rate of
// the disk and a 3-member etcd cluster, 100-byte proposals/puts at 1, 16 and 64 in flight,
// all in one run. Run: npx tsx benchmarks/raft-commit.ts [--json] [--duration-ms N]
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchEtcdPut, DEFAULT_PUT_DURATION_MS, DEFAULT_PUT_INFLIGHT } from './etcd-put.js';
import { benchFsyncRate } from './fsync-rate.js';
import { freePorts } from './lib/proc.js';
import type { LoadResult } from './lib/load.js';
import { makeRow, parseBenchArgs, printRows, type Row } from './lib/stats.js';

const NODE_SCRIPT = join(import.meta.dirname, 'lib', 'raft-bench-node.ts');

interface Child { id: string; proc: ChildProcess }

function request<T>(c: Child, msg: unknown, want: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { type: string }): void => {
      if (m.type !== want) return;
      c.proc.off('message', on);
      resolve(m as T);
    };
    c.proc.on('message', on);
    c.proc.send(msg as object);
  });
}

async function startDsync(fsync: boolean): Promise<{ children: Child[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'dsync-raft-bench-'));
  const ids = ['r0', 'r1', 'r2'];
  const ports = await freePorts(3);
  const children = ids.map((id) => ({
    id,
    proc: fork(NODE_SCRIPT, [JSON.stringify({ id, ids, ports, dir: join(dir, id), fsync })], {
      execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  }));
  await Promise.all(children.map((c) => new Promise<void>((r) => {
    c.proc.once('message', () => r());
  })));
  return {
    children,
    stop: async () => {
      await Promise.all(children.map((c) => new Promise<void>((r) => {
        c.proc.once('exit', () => r());
        c.proc.kill('SIGTERM');
      })));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function findLeader(children: Child[]): Promise<Child> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    for (const c of children) {
      const s = await request<{ leader: boolean }>(c, { type: 'status' }, 'status');
      if (s.leader) return c;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no Raft leader within 30 s: see the nodes\' stderr above');
}

export async function benchDsyncRaft(o: { durationMs: number; inflight: readonly number[];
  fsync: boolean }): Promise<Row[]> {
  const d = await startDsync(o.fsync);
  try {
    const rows: Row[] = [];
    for (const concurrency of o.inflight) {
      const leader = await findLeader(d.children);
      const { result } = await request<{ result: LoadResult }>(leader,
        { type: 'load', concurrency, durationMs: o.durationMs, valueBytes: 100 }, 'result');
      rows.push(makeRow(o.fsync ? 'dsync' : 'dsync (unsafe, no fsync)', `${concurrency} in flight`,
        result, { members: 3, valueBytes: 100 }));
    }
    return rows;
  } finally {
    await d.stop();
  }
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  const durationMs = args.durationMs ?? DEFAULT_PUT_DURATION_MS;
  const inflight = DEFAULT_PUT_INFLIGHT;
  process.stderr.write('raft-commit: raw fsync rate of the disk…\n');
  const fsyncRows = await benchFsyncRate(Math.min(durationMs, 3000));
  process.stderr.write('raft-commit: dsync, 3 processes…\n');
  const dsync = await benchDsyncRaft({ durationMs, inflight, fsync: true });
  process.stderr.write('raft-commit: etcd, 3 members…\n');
  const etcd = await benchEtcdPut({ durationMs, inflight });
  const rows = [...dsync, ...etcd];
  printRows('Raft commit: 100-byte proposals, 3 members, fsync on', rows, etcd[0]?.system ?? '',
    args);
  printRows('Reference: raw fsync rate of this disk', fsyncRows, fsyncRows[0]?.system ?? '', args);
}

await main();
