// `dsync dev` with the queue (API.md, "The command line"): three queue nodes start, their
// entries in cluster.json let any tool kill one by pid and start it again with its command,
// `dsync status` lists every partition, and Ctrl-C stops everything. The system runs on ports
// shifted by --port-offset, never on the default ones (other work may use them).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { dsync } from '../support/cli.js';
import { BIN, ROOT } from '../support/cluster.js';
import { waitFor } from '../support/wait.js';

interface DevNode {
  service: string; id: string; pid: number; url: string; dataDir: string; cwd: string;
  command: string[]; env: Record<string, string>;
}

const dir = mkdtempSync(join(tmpdir(), 'dsync-dev-queue-'));
let dev: ChildProcess | null = null;
const started: ChildProcess[] = [];

afterAll(() => {
  for (const p of [dev, ...started]) if (p !== null && p.exitCode === null) p.kill('SIGKILL');
  for (const n of nodesOf()) {
    try { process.kill(n.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  rmSync(dir, { recursive: true, force: true });
});

function nodesOf(): DevNode[] {
  const file = join(dir, 'cluster.json');
  if (!existsSync(file)) return [];
  return (JSON.parse(readFileSync(file, 'utf8')) as { nodes: DevNode[] }).nodes;
}

async function free(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** An offset whose six queue ports (HTTP 8100+, peer 9100+) are free now. */
async function freeOffset(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const offset = 20_000 + Math.floor(Math.random() * 20_000);
    const ports = [0, 1, 2].flatMap((i) => [8100 + offset + i, 9100 + offset + i]);
    if ((await Promise.all(ports.map(free))).every(Boolean)) return offset;
  }
  throw new Error('no free port range for dsync dev');
}

const ready = (url: string): Promise<boolean> =>
  fetch(`${url}/ready`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);

it('dsync dev starts three queue nodes, lists them in cluster.json, status shows every ' +
  'partition, and a node killed by its pid restarts from its command', { timeout: 120_000 },
async () => {
  const offset = await freeOffset();
  dev = spawn(process.execPath, [BIN, 'dev', '--services', 'queue', '--dir', dir,
    '--port-offset', String(offset)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DSYNC_EXIT_WITH_PARENT: '1' } });
  let out = '';
  dev.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  await waitFor('the endpoint table', () => out.includes('Ctrl-C stops everything'), 60_000);
  const nodes = nodesOf();
  expect(nodes.map((n) => [n.service, n.id, n.url])).toEqual([0, 1, 2].map((i) =>
    ['queue', `queue-${i}`, `http://127.0.0.1:${8100 + offset + i}`]));
  for (const n of nodes) await waitFor(`${n.id} ready`, () => ready(n.url), 60_000);

  const status = await dsync(['status', ...nodes.map((n) => n.url)]);
  expect(status.code, status.stdout + status.stderr).toBe(0);
  expect(status.stdout).toMatch(/queue partitions/);
  for (let p = 0; p < 16; p++) {
    expect(status.stdout).toMatch(new RegExp(`^${p} +queue-\\d +\\d+ +(queue-\\d:\\w+ ?){3}`, 'm'));
  }

  // What cluster.json promises: kill a node by its pid, start it again from its entry.
  const victim = nodes[1]!;
  process.kill(victim.pid, 'SIGKILL');
  await waitFor(`${victim.id} down`, async () => !(await ready(victim.url)), 10_000);
  const [cmd, ...args] = victim.command;
  const again = spawn(cmd!, args, { cwd: victim.cwd, env: { ...process.env, ...victim.env,
    DSYNC_EXIT_WITH_PARENT: '1' }, stdio: 'ignore' });
  started.push(again);
  await waitFor(`${victim.id} back`, () => ready(victim.url), 60_000);

  const exited = new Promise<number | null>((res) => dev!.once('exit', (code) => res(code)));
  dev.kill('SIGINT');
  expect(await exited).toBe(0);
  for (const n of nodes.filter((x) => x !== victim)) {
    expect(await ready(n.url), `${n.id} stopped`).toBe(false);
  }
});
