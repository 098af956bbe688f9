// `dsync lock …` as a child process against a real lock cluster: JSON on stdout, errors with
// their code and what to do next on stderr, exit code 1 for a refused operation and 2 for a
// usage error, never a stack trace; help text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dsync, STACK_LINE } from '../support/cli.js';
import { Cluster } from '../support/cluster.js';

let cluster: Cluster;
let urls: string;

beforeAll(async () => {
  cluster = await Cluster.start({ service: 'lock', startTimeoutMs: 60_000 });
  await cluster.leader();
  urls = cluster.nodes.map((n) => n.url).join(',');
});
afterAll(async () => { await cluster.stop(); });

/** `dsync lock <sub> ... --urls <cluster>` and the parsed JSON of its stdout. */
async function lockJson<T>(args: string[]): Promise<T> {
  const r = await dsync(['lock', ...args, '--urls', urls]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

interface Grant { name: string; owner: string; mode: string; token: number; expiresAt: number }
interface View { name: string; mode: string | null; holders: Grant[]; waiters: unknown[] }

// Each process start takes seconds on a loaded 2-core machine: long leases, long timeouts.
describe('dsync lock', { timeout: 120_000 }, () => {
  it('acquire, show, list, renew and release print JSON', async () => {
    const g = await lockJson<Grant>(['acquire', 'cli/a', '--owner', 'me', '--ttl', '600000']);
    expect(g).toMatchObject({ name: 'cli/a', owner: 'me', mode: 'exclusive' });
    expect(Number.isSafeInteger(g.token)).toBe(true);
    const v = await lockJson<View>(['show', 'cli/a']);
    expect(v).toEqual({ name: 'cli/a', mode: 'exclusive', waiters: [], holders: [
      { owner: 'me', mode: 'exclusive', token: g.token, expiresAt: expect.any(Number) }] });
    // At least: a leader change in between pushes every lease out (extendLeases).
    expect(v.holders[0]!.expiresAt).toBeGreaterThanOrEqual(g.expiresAt);
    const l = await lockJson<{ locks: View[] }>(['list', '--prefix', 'cli/']);
    expect(l.locks.map((x) => x.name)).toEqual(['cli/a']);
    const r = await lockJson<{ expiresAt: number }>(['renew', 'cli/a', '--owner', 'me',
      '--ttl', '900000']);
    expect(r.expiresAt).toBeGreaterThan(g.expiresAt);
    const rel = await lockJson<{ released: boolean }>(['release', 'cli/a', '--owner', 'me',
      '--token', String(g.token)]);
    expect(rel).toEqual({ released: true });
    expect((await lockJson<View>(['show', 'cli/a'])).holders).toEqual([]);
  });

  it('shared mode and --urls before the subcommand or from DSYNC_LOCK_URLS', async () => {
    const r = await dsync(['lock', '--urls', urls, 'acquire', 'cli/s', '--owner', 'r1',
      '--mode', 'shared', '--ttl', '600000']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Grant).mode).toBe('shared');
    const e = await dsync(['lock', 'acquire', 'cli/s', '--owner', 'r2', '--mode', 'shared'],
      { DSYNC_LOCK_URLS: urls });
    expect(e.code, e.stderr).toBe(0);
    expect((await lockJson<View>(['show', 'cli/s'])).holders.map((h) => h.owner))
      .toEqual(['r1', 'r2']);
  });

  it('a release by a non-holder prints NOT_HELD on stderr and exits 1', async () => {
    const r = await dsync(['lock', 'release', 'cli/none', '--owner', 'me', '--urls', urls]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/NOT_HELD/);
    expect(r.stderr).toMatch(/not_holder/);
  });

  it('a renew of an expired lease prints NOT_HELD with reason expired', async () => {
    await lockJson<Grant>(['acquire', 'cli/exp', '--owner', 'me', '--ttl', '100']);
    const r = await dsync(['lock', 'renew', 'cli/exp', '--owner', 'me', '--urls', urls]);
    // A 100 ms lease is over by the time a second process has started.
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NOT_HELD/);
    expect(r.stderr).toMatch(/expired/);
  });

  it('a lock held by another owner gives LOCK_TIMEOUT and exit 1', async () => {
    await lockJson<Grant>(['acquire', 'cli/busy', '--owner', 'a', '--ttl', '600000']);
    const r = await dsync(['lock', 'acquire', 'cli/busy', '--owner', 'b', '--wait', '200',
      '--urls', urls]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/LOCK_TIMEOUT/);
  });

  it('bad input is a usage error: the field named, exit 2, no stack trace', async () => {
    const r = await dsync(['lock', 'acquire', 'cli/x', '--owner', 'a', '--ttl', '99',
      '--urls', urls]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/INVALID_ARGUMENT/);
    expect(r.stderr).toMatch(/ttlMs/);
    expect(r.stderr).toMatch(/Fix the value named by `field`/);
    const u = await dsync(['lock', 'acquire', 'cli/x', '--urls', urls]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/--owner/);
    const n = await dsync(['lock', 'renew', 'cli/x', '--owner', 'a', '--ttl', 'soon',
      '--urls', urls]);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/"soon" is not an integer/);
    const m = await dsync(['lock', 'acquire', 'cli/x', '--owner', 'a', '--mode', 'read',
      '--urls', urls]);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/exclusive, shared/);
    const url = await dsync(['lock', 'show', 'x', '--urls', 'lock-0:8000']);
    expect(url.code).toBe(2);
    expect(url.stderr).toMatch(/"lock-0:8000" is not a node URL; use http:\/\/host:port/);
    for (const x of [r, u, n, m, url]) expect(x.stderr).not.toMatch(STACK_LINE);
  });

  it('an unreachable cluster says so and what to do, and exits 1', async () => {
    const r = await dsync(['lock', 'show', 'x', '--urls', 'http://127.0.0.1:9',
      '--deadline', '300']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/NETWORK/);
    expect(r.stderr).toMatch(/dsync dev/);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it('--help lists the lock commands and their options', async () => {
    const top = await dsync(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/lock/);
    const lock = await dsync(['lock', '--help']);
    expect(lock.code).toBe(0);
    for (const sub of ['acquire', 'release', 'renew', 'show', 'list']) {
      expect(lock.stdout).toContain(sub);
    }
    expect(lock.stdout).toContain('--urls');
    const acq = await dsync(['lock', 'acquire', '--help']);
    expect(acq.code).toBe(0);
    for (const opt of ['--owner', '--mode', '--ttl', '--wait']) expect(acq.stdout).toContain(opt);
  });
});
