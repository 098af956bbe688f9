// `dsync serve` and the built-in cluster token (issue 7, item 10): refused on a non-loopback
// address unless --insecure-allow-default-token says otherwise; fine on loopback, which is
// where `dsync dev` and the test clusters run. Also how a cache node starts without its
// Redis: it waits a bounded time, then exits 1 saying what to do (not "a bug in dsync"), and
// a flush interval whose lease would exceed its bound is refused up front (exit 2). Real
// processes on free ports.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../support/cluster.js';
import { freePorts } from '../support/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'dsync-serve-token-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run { code: number | null; out: string }

/** Runs `dsync serve ...args` until it exits, or until `until` shows in its output (then it
 * is stopped with SIGTERM). No DSYNC_* variable of the test's own environment leaks in. */
function serve(args: string[], until: RegExp | null, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('DSYNC_')));
  const p = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: ROOT,
    env: { ...clean, DSYNC_EXIT_WITH_PARENT: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
  const onData = (c: Buffer): void => {
    out += c.toString();
    if (until !== null && until.test(out)) p.kill('SIGTERM');
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  return new Promise((resolve) => p.once('exit', (code) => {
    clearTimeout(timer);
    resolve({ code, out });
  }));
}

const node = (id: string, ports: number[]): string[] => ['--service', 'lock', '--node-id', id,
  '--http-port', String(ports[0]), '--peer-port', String(ports[1]),
  '--data-dir', join(dir, id), '--log-level', 'info'];

describe('dsync serve with the built-in cluster token', { timeout: 60_000 }, () => {
  it('refuses to start on the default 0.0.0.0 and says what to set; exit code 2', async () => {
    const r = await serve(node('lock-a', await freePorts(2)), null);
    expect(r.code).toBe(2);
    for (const s of ['--cluster-token', 'DSYNC_CLUSTER_TOKEN', '--http-host is 0.0.0.0',
      '--insecure-allow-default-token']) {
      expect(r.out).toContain(s);
    }
    expect(r.out).not.toMatch(/lock node started/);
  });

  it('refuses a loopback HTTP address with a reachable peer address', async () => {
    const r = await serve([...node('lock-b', await freePorts(2)), '--http-host', '127.0.0.1'],
      null);
    expect(r.code).toBe(2);
    expect(r.out).toContain('--peer-host is 0.0.0.0');
  });

  it('starts on loopback, with a warning', async () => {
    const r = await serve([...node('lock-c', await freePorts(2)), '--http-host', '127.0.0.1',
      '--peer-host', '127.0.0.1'], /lock node started/);
    expect(r.out).toMatch(/lock node started/);
    expect(r.out).toMatch(/built-in cluster token \(loopback only\)/);
  });

  it('starts anywhere with DSYNC_INSECURE_ALLOW_DEFAULT_TOKEN, with a louder warning',
    async () => {
      const r = await serve(node('lock-d', await freePorts(2)), /lock node started/,
        { DSYNC_INSECURE_ALLOW_DEFAULT_TOKEN: '1' });
      expect(r.out).toMatch(/lock node started/);
      expect(r.out).toMatch(/INSECURE/);
    });
});

describe('dsync serve --service cache and its Redis', { timeout: 60_000 }, () => {
  const cache = (id: string, ports: number[]): string[] => ['--service', 'cache',
    '--node-id', id, '--http-host', '127.0.0.1', '--peer-host', '127.0.0.1',
    '--http-port', String(ports[0]), '--peer-port', String(ports[1]),
    '--data-dir', join(dir, id), '--log-level', 'info'];

  it('waits for an absent Redis, logging it, then exits 1 with what to do', async () => {
    const [http, peer, redisPort] = await freePorts(3);
    const r = await serve([...cache('cache-a', [http!, peer!]),
      '--redis-url', `redis://:pw@127.0.0.1:${redisPort}`, '--redis-connect-wait-ms', '1500'],
    null);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/waiting for Redis to answer before serving/);
    expect(r.out).toMatch(/did not answer within 1500 ms/);
    expect(r.out).toContain('--redis-url (DSYNC_REDIS_URL)');
    expect(r.out).not.toMatch(/bug in dsync|pw@/);
  });

  it('refuses a flush interval whose lease would pass the lease bound; exit code 2',
    async () => {
      const r = await serve([...cache('cache-b', await freePorts(2)),
        '--flush-interval-ms', '600000'], null);
      expect(r.code).toBe(2);
      expect(r.out).toMatch(/--flush-interval-ms.*<=300000/);
    });
});
