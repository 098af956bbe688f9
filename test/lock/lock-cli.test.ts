// `dsync` as a child process against a real lock cluster (three voters, and a fourth node
// started with --join for the member commands): data in -o table|json|yaml on stdout, errors
// with their code and what to do next on stderr, exit code 1 for a refused operation and 2
// for a usage error, never a stack trace. `lock run` passes the command's exit code and the
// fencing token through and stops the command when the lease is lost; `elect` hands over
// between campaigners; `member` adds and removes a learner; `status` finds every node from
// one; `completion` completes.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { dsync, RunningCli, STACK_LINE, type CliResult } from '../support/cli.js';
import { Cluster, ROOT, type ClusterNode } from '../support/cluster.js';
import { get } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

let cluster: Cluster;
let voters: ClusterNode[];
let urls: string;
let scratch: string;

beforeAll(async () => {
  cluster = await Cluster.start({ service: 'lock', size: 4, startNodes: 3, startTimeoutMs: 60_000,
    nodeArgs: (i) => (i === 3 ? ['--join'] : ['--voters', 'lock-0,lock-1,lock-2']) });
  voters = cluster.nodes.slice(0, 3);
  await cluster.leader(30_000, voters);
  urls = voters.map((n) => n.url).join(',');
  scratch = mkdtempSync(join(tmpdir(), 'dsync-cli-'));
});
afterAll(async () => {
  await cluster?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/** `dsync --endpoints <cluster> <args>` (before the args: `lock run` ends with `-- CMD`). */
const lock = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  dsync(['--endpoints', urls, ...args], env);

/** The parsed JSON of a command that must succeed. */
async function json<T>(args: string[]): Promise<T> {
  const r = await lock([...args, '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

interface Grant { name: string; owner: string; mode: string; token: number; expiresAt: number }
interface View { name: string; mode: string | null; holders: Grant[]; waiters: unknown[] }

const holders = async (name: string): Promise<Grant[]> =>
  (await get<View>(voters[0]!.url, `/v1/locks/${encodeURIComponent(name)}`)).body.holders;

function friendly(r: CliResult, code: number, ...says: RegExp[]): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).not.toMatch(STACK_LINE);
  expect(r.stderr).not.toMatch(/unexpected error/);
  for (const re of says) expect(r.stderr).toMatch(re);
}

// Each process start takes seconds on a loaded 2-core machine: long leases, long timeouts.
describe('dsync lock', { timeout: 120_000 }, () => {
  it('acquire, show, list, renew and release in -o json', async () => {
    const g = await json<Grant>(['lock', 'acquire', 'cli/a', '--owner', 'me', '--ttl', '10m']);
    expect(g).toMatchObject({ name: 'cli/a', owner: 'me', mode: 'exclusive' });
    expect(Number.isSafeInteger(g.token)).toBe(true);
    const v = await json<View>(['lock', 'show', 'cli/a']);
    expect(v).toEqual({ name: 'cli/a', mode: 'exclusive', waiters: [], holders: [
      { owner: 'me', mode: 'exclusive', token: g.token, expiresAt: expect.any(Number) }] });
    // At least: a leader change in between pushes every lease out (extendLeases).
    expect(v.holders[0]!.expiresAt).toBeGreaterThanOrEqual(g.expiresAt);
    const l = await json<{ locks: View[] }>(['lock', 'list', '--prefix', 'cli/']);
    expect(l.locks.map((x) => x.name)).toEqual(['cli/a']);
    const r = await json<{ expiresAt: number }>(['lock', 'renew', 'cli/a', '--owner', 'me',
      '--ttl', '900000']);
    expect(r.expiresAt).toBeGreaterThan(g.expiresAt);
    const rel = await json<{ released: boolean }>(['lock', 'release', 'cli/a', '--owner', 'me',
      '--token', String(g.token)]);
    expect(rel).toEqual({ released: true });
    expect(await holders('cli/a')).toEqual([]);
  });

  it('prints a table by default and YAML with -o yaml (also from DSYNC_OUTPUT)', async () => {
    const t = await lock(['lock', 'acquire', 'cli/t', '--owner', 'tab', '--ttl', '10m']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^NAME\s+OWNER\s+MODE\s+TOKEN\s+EXPIRES IN\n/);
    expect(t.stdout).toMatch(/cli\/t\s+tab\s+exclusive\s+\d+\s+\d+\.\ds/);
    const show = await lock(['lock', 'show', 'cli/t']);
    expect(show.stdout).toMatch(/^lock cli\/t: held exclusive\nROLE\s+OWNER/);
    const y = await lock(['-o', 'yaml', 'lock', 'show', 'cli/t']);
    expect(parseYaml(y.stdout)).toMatchObject({ name: 'cli/t', holders: [{ owner: 'tab' }] });
    const e = await lock(['lock', 'list'], { DSYNC_OUTPUT: 'yaml' });
    expect((parseYaml(e.stdout) as { locks: View[] }).locks.map((x) => x.name))
      .toContain('cli/t');
  });

  it('finds the nodes from DSYNC_LOCK_ENDPOINTS, and from DSYNC_ENDPOINTS', async () => {
    for (const env of [{ DSYNC_LOCK_ENDPOINTS: urls }, { DSYNC_ENDPOINTS: voters[1]!.url }]) {
      const r = await dsync(['lock', 'acquire', 'cli/s', '--owner', 'r', '--mode', 'shared',
        '-o', 'json'], env);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as Grant).mode).toBe('shared');
    }
  });

  it('refusals exit 1 with the code and what to do next', async () => {
    friendly(await lock(['lock', 'release', 'cli/none', '--owner', 'me']), 1, /NOT_HELD/,
      /not_holder/, /acquire it again/);
    await json<Grant>(['lock', 'acquire', 'cli/busy', '--owner', 'a', '--ttl', '10m']);
    const r = await lock(['lock', 'acquire', 'cli/busy', '--owner', 'b', '--wait', '200']);
    friendly(r, 1, /LOCK_TIMEOUT/, /dsync lock show NAME/);
    expect(r.stdout).toBe('');
  });

  it('bad input is a usage error: the field named, exit 2, no stack trace', async () => {
    friendly(await lock(['lock', 'acquire', 'cli/x', '--owner', 'a', '--ttl', '99']), 2,
      /INVALID_ARGUMENT/, /ttlMs/, /Fix the value named by `field`/);
    friendly(await lock(['lock', 'acquire', 'cli/x']), 2, /--owner/);
    friendly(await lock(['lock', 'renew', 'cli/x', '--owner', 'a', '--ttl', 'soon']), 2,
      /"soon" is not a duration/);
    friendly(await lock(['lock', 'acquire', 'cli/x', '--owner', 'a', '--mode', 'read']), 2,
      /exclusive, shared/);
    friendly(await lock(['lock', 'show', 'x', '-o', 'xml']), 2, /table, json, yaml/);
    friendly(await dsync(['lock', 'show', 'x', '--endpoints', 'lock-0:8000']), 2,
      /"lock-0:8000" is not a node URL; use http:\/\/host:port/);
  });

  it('--help lists the lock commands, their options and the global ones', async () => {
    const top = await dsync(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['lock', 'elect', 'member', 'status', 'cache', 'completion']) {
      expect(top.stdout).toContain(c);
    }
    const l = await dsync(['lock', '--help']);
    expect(l.code).toBe(0);
    for (const sub of ['acquire', 'release', 'renew', 'show', 'list', 'run', '--endpoints',
      '--output', '--timeout']) expect(l.stdout).toContain(sub);
    const acq = await dsync(['lock', 'acquire', '--help']);
    for (const opt of ['--owner', '--mode', '--ttl', '--wait']) expect(acq.stdout).toContain(opt);
  });

  it('an unreachable cluster says so and what to do, and exits 1', async () => {
    const r = await dsync(['lock', 'show', 'x', '--endpoints',
      `http://127.0.0.1:${await freePort()}`, '--timeout', '300ms']);
    friendly(r, 1, /DEADLINE_EXCEEDED/, /NETWORK/, /connection refused/, /dsync dev/,
      /longer --timeout/);
    expect(r.stdout).toBe('');
  });
});

describe('dsync lock run', { timeout: 120_000 }, () => {
  it('passes the command\'s exit code through and gives it the fencing token', async () => {
    const out = join(scratch, 'token');
    const r = await lock(['lock', 'run', 'cli/run', '--', 'sh', '-c',
      `echo "$DSYNC_LOCK_TOKEN $DSYNC_LOCK_NAME" > ${out}; exit 7`]);
    expect(r.code, r.stderr).toBe(7);
    const [token, name] = readFileSync(out, 'utf8').trim().split(' ');
    expect(name).toBe('cli/run');
    expect(Number(token)).toBeGreaterThan(0);
    // Released after the command: free again.
    expect(await holders('cli/run')).toEqual([]);
  });

  it('holds the lock while the command runs, with the token it passed', async () => {
    const flag = join(scratch, 'go');
    const c = new RunningCli(['lock', 'run', 'cli/held', '--endpoints', urls, '--', 'sh', '-c',
      `echo "token=$DSYNC_LOCK_TOKEN"; while [ ! -f ${flag} ]; do sleep 0.05; done`]);
    const [, token] = await c.waitForOutput(/token=(\d+)/);
    const h = await holders('cli/held');
    expect(h.map((x) => x.token)).toEqual([Number(token)]);
    writeFileSync(flag, '');
    expect((await c.exited).code).toBe(0);
    expect(await holders('cli/held')).toEqual([]);
  });

  it('waits for a held lock with a progress line naming the holder, then runs', async () => {
    const g = await json<Grant>(['lock', 'acquire', 'cli/wait', '--owner', 'first', '--ttl',
      '10m']);
    const c = new RunningCli(['lock', 'run', 'cli/wait', '--endpoints', urls, '--', 'sh', '-c',
      'echo ran'], { DSYNC_PROGRESS_MS: '200' });
    await c.waitForOutput(/waiting for lock cli\/wait \(held by first, token \d+\)/, 'stderr');
    expect(c.stdout).toBe('');
    await json(['lock', 'release', 'cli/wait', '--owner', 'first', '--token', String(g.token)]);
    const r = await c.exited;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('ran\n');
  });

  it('with --wait, gives up on a held lock without running the command: exit 1', async () => {
    await json<Grant>(['lock', 'acquire', 'cli/never', '--owner', 'other', '--ttl', '10m']);
    const r = await lock(['lock', 'run', 'cli/never', '--wait', '300ms', '--', 'sh', '-c',
      'echo ran']);
    friendly(r, 1, /LOCK_TIMEOUT/);
    expect(r.stdout).toBe('');
  });

  it('stops the command when the lease is lost (quorum paused) and exits 124', async () => {
    const c = new RunningCli(['lock', 'run', 'cli/lost', '--endpoints', urls, '--ttl', '2s',
      '--grace', '5s', '--', 'sh', '-c',
      'trap "echo got TERM; exit 9" TERM; echo started; while true; do sleep 0.05; done']);
    await c.waitForOutput(/started/);
    // No renewal can succeed with every voter stopped: the lease bound passes.
    for (const n of voters) n.pause();
    try {
      await c.waitForOutput(/LEASE_LOST/, 'stderr');
    } finally {
      for (const n of voters) n.resume();
    }
    const r = await c.exited;
    expect(r.code, r.stderr).toBe(124);
    expect(r.stdout).toContain('got TERM');
    expect(r.stderr).toMatch(/stopping the command \(pid \d+\): SIGTERM/);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });

  it('kills a command that ignores SIGTERM after --grace', async () => {
    // The lock is released behind the holder's back (a fenced release with its token): the
    // next renewal is answered NOT_HELD.
    const c = new RunningCli(['lock', 'run', 'cli/stubborn', '--endpoints', urls, '--ttl', '3s',
      '--grace', '300ms', '--', process.execPath, '-e',
      'process.on("SIGTERM", () => console.log("ignored TERM")); ' +
      'console.log("token=" + process.env.DSYNC_LOCK_TOKEN); setInterval(() => {}, 1000)']);
    const [, token] = await c.waitForOutput(/token=(\d+)/);
    const rel = await lock(['lock', 'release', 'cli/stubborn', '--owner', (await holders(
      'cli/stubborn'))[0]!.owner, '--token', token!]);
    expect(rel.code, rel.stderr).toBe(0);
    const r = await c.exited;
    expect(r.code, r.stderr).toBe(124);
    expect(r.stderr).toMatch(/LEASE_LOST/);
    expect(r.stderr).toMatch(/NOT_HELD|renewal refused/);
    expect(r.stdout).toContain('ignored TERM');
  });

  it('a command that does not exist exits 127 and releases the lock', async () => {
    const r = await lock(['lock', 'run', 'cli/nocmd', '--', 'no-such-command-dsync']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/cannot run no-such-command-dsync: command not found/);
    await waitFor('released', async () => (await holders('cli/nocmd')).length === 0);
  });

  it('without a command after -- it is a usage error', async () => {
    friendly(await lock(['lock', 'run', 'cli/x']), 2, /missing required argument 'command'/);
  });
});

describe('dsync elect', { timeout: 120_000 }, () => {
  it('hands leadership over to the next campaigner; --listen sees both terms', async () => {
    const listen = new RunningCli(['elect', 'cli/e', '--listen', '-o', 'json',
      '--endpoints', urls]);
    await listen.waitForOutput(/"leader":null/);
    const alpha = new RunningCli(['elect', 'cli/e', '--proposal', 'alpha', '--endpoints', urls]);
    const [, alphaTerm] = await alpha.waitForOutput(/cli\/e: elected as alpha \(term (\d+)\)/);
    const flag = join(scratch, 'beta-done');
    const beta = new RunningCli(['elect', 'cli/e', '--proposal', 'beta', '-o', 'json',
      '--endpoints', urls, '--', 'sh', '-c',
      `echo "term=$DSYNC_LOCK_TOKEN"; while [ ! -f ${flag} ]; do sleep 0.05; done`],
    { DSYNC_PROGRESS_MS: '200' });
    await beta.waitForOutput(/campaigning for cli\/e as beta; leader is alpha/, 'stderr');
    await listen.waitForOutput(/"value":"alpha"/);
    // Ctrl-C (SIGINT) makes alpha resign; beta takes over.
    alpha.kill('SIGINT');
    expect((await alpha.exited).code).toBe(0);
    const [, betaTerm] = await beta.waitForOutput(/term=(\d+)/);
    expect(Number(betaTerm)).toBeGreaterThan(Number(alphaTerm));
    const elected = JSON.parse(beta.stdout.split('\n')[0]!) as { value: string; term: number };
    expect(elected).toMatchObject({ value: 'beta', term: Number(betaTerm) });
    await listen.waitForOutput(/"value":"beta"/);
    writeFileSync(flag, '');
    expect((await beta.exited).code).toBe(0);
    listen.kill('SIGINT');
    await listen.exited;
    const seen = listen.stdout.trim().split('\n').map((l) => JSON.parse(l) as
      { leader: { value: string; term: number } | null });
    const values = seen.map((s) => s.leader?.value ?? null);
    expect(values.slice(0, 3)).toEqual([null, 'alpha', 'beta']);
    expect(seen[2]!.leader!.term).toBe(Number(betaTerm));
  });

  it('needs exactly one of --proposal and --listen', async () => {
    friendly(await lock(['elect', 'cli/e2']), 2, /either --proposal VALUE or --listen/);
  });
});

describe('dsync member', { timeout: 120_000 }, () => {
  type Members = { leader: string; members: Array<{ id: string; role: string; url: string }> };

  it('lists the voters with their URLs and the leader', async () => {
    const v = await json<Members>(['member', 'list']);
    expect(v.members.map((m) => [m.id, m.role])).toEqual([
      ['lock-0', 'voter'], ['lock-1', 'voter'], ['lock-2', 'voter']]);
    expect(v.members.map((m) => m.url)).toEqual(voters.map((n) => n.url));
    expect(voters.map((n) => n.id)).toContain(v.leader);
    const t = await lock(['member', 'list']);
    expect(t.stdout).toMatch(/^ID\s+ROLE\s+URL\s+MATCH\s+BEHIND\n/);
    expect(t.stdout).toMatch(/voter \(leader\)/);
  });

  it('adds a learner, removes it, and adds it again until it is a voter', async () => {
    // Not started yet: it stays a learner.
    const added = await json<Members>(['member', 'add', 'lock-3']);
    expect(added.members.find((m) => m.id === 'lock-3')?.role).toBe('learner');
    expect((await json<Members>(['member', 'list'])).members.map((m) => m.role))
      .toEqual(['voter', 'voter', 'voter', 'learner']);
    const removed = await json<Members>(['member', 'remove', 'lock-3']);
    expect(removed.members.map((m) => m.id)).not.toContain('lock-3');
    friendly(await lock(['member', 'remove', 'lock-3']), 1, /NOT_FOUND/);
    friendly(await lock(['member', 'add', 'lock-9']), 2, /INVALID_ARGUMENT/, /peer list/);
    const newcomer = cluster.nodes[3]!;
    newcomer.start();
    await newcomer.waitHealthy(60_000);
    const r = await dsync(['member', 'add', 'lock-3', '--wait', '60s', '-o', 'json',
      '--endpoints', urls], { DSYNC_PROGRESS_MS: '200' }, { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/dsync: lock-3: (learner|voter)/);
    const v = JSON.parse(r.stdout) as Members;
    expect(v.members.find((m) => m.id === 'lock-3')?.role).toBe('voter');
  });
});

describe('dsync status', { timeout: 120_000 }, () => {
  it('finds every node from one URL, in a table and in -o json', async () => {
    const t = await dsync(['status', voters[0]!.url]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^SERVICE\s+NODE\s+URL\s+STATE\s+TERM\s+LEADER\s+COMMIT\s+LAG\n/);
    const j = await dsync(['status', '--endpoints', voters[1]!.url, '-o', 'json']);
    expect(j.code, j.stderr).toBe(0);
    const rows = JSON.parse(j.stdout) as Array<{ node: string; status: string;
      raft: { state: string } }>;
    expect(rows.map((r) => r.node)).toEqual(cluster.nodes.filter((n) => n.running)
      .map((n) => n.id));
    expect(rows.filter((r) => r.raft.state === 'leader')).toHaveLength(1);
  });
});

describe('dsync completion', () => {
  /** What bash completes for the words typed so far (the last one being completed). */
  async function complete(words: string[]): Promise<string[]> {
    const script = join(scratch, 'completion.bash');
    if (!existsSync(script)) {
      const r = await dsync(['completion', 'bash']);
      expect(r.code).toBe(0);
      writeFileSync(script, r.stdout);
    }
    const r = await new Promise<string>((resolve, reject) => {
      execFile('bash', ['-c',
        `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); ` +
        `COMP_CWORD=${words.length - 1}; _dsync; printf '%s\\n' "\${COMPREPLY[@]}"`],
      (err, stdout) => (err ? reject(new Error(err.message)) : resolve(stdout)));
    });
    return r.trim().split('\n').filter(Boolean);
  }

  it('bash completes commands, subcommands, options and option values', async () => {
    expect(await complete(['dsync', ''])).toEqual(expect.arrayContaining(
      ['lock', 'cache', 'elect', 'member', 'status', 'completion']));
    expect(await complete(['dsync', 'lock', 'r'])).toEqual(['release', 'renew', 'run']);
    expect(await complete(['dsync', 'lock', 'run', '--'])).toEqual(expect.arrayContaining(
      ['--ttl', '--wait', '--shared', '--output', '--endpoints']));
    expect(await complete(['dsync', 'lock', 'show', 'x', '-o', ''])).toEqual(
      ['table', 'json', 'yaml']);
    expect(await complete(['dsync', 'lock', 'acquire', 'x', '--mode', 's'])).toEqual(['shared']);
  });

  it('docs/cli.md documents every command of the tree', async () => {
    const r = await dsync(['completion', 'bash']);
    const doc = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8');
    const paths = [...r.stdout.matchAll(/^ {4}"([a-z][a-z ]*)"\) words=/gm)].map((m) => m[1]!);
    expect(paths).toContain('lock run');
    for (const p of paths) expect(doc, p).toContain(`dsync ${p}`);
  });

  it('zsh gets a compdef script of the same tree; another shell is a usage error', async () => {
    const z = await dsync(['completion', 'zsh']);
    expect(z.code).toBe(0);
    expect(z.stdout).toMatch(/^#compdef dsync\n/);
    expect(z.stdout).toContain('("lock run") compadd -- ');
    expect(z.stdout).toContain('compdef _dsync dsync');
    friendly(await dsync(['completion', 'fish']), 2, /bash, zsh/);
  });
});
