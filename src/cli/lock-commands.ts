// `dsync lock …`: the lock service at a terminal, through the SDK. `lock run` holds a lock
// while a command runs (lock-run.ts).
import { Option, type Command } from 'commander';
import type { Grant, LockView } from '../client/index.js';
import { addLockRun } from './lock-run.js';
import { clientFor, duration, globalOptions, int } from './options.js';
import { table, type Column } from './output.js';
import { run } from './report.js';

/** "12.3s" until `expiresAt` (leader's clock; close enough to read). */
export function expiresIn(expiresAt: number): string {
  const ms = expiresAt - Date.now();
  return ms <= 0 ? 'expired' : `${(ms / 1000).toFixed(1)}s`;
}

const GRANT_COLUMNS: readonly Column<Grant>[] = [
  ['name', (g) => g.name], ['owner', (g) => g.owner], ['mode', (g) => g.mode],
  ['token', (g) => g.token], ['expires in', (g) => expiresIn(g.expiresAt)],
];

type Row = { role: string; owner: string; mode: string; token?: number; expiresAt?: number };

function showTable(v: LockView): string {
  const rows: Row[] = [...v.holders.map((h) => ({ role: 'holder', ...h })),
    ...v.waiters.map((w, i) => ({ role: `waiter ${i + 1}`, ...w }))];
  const head = `lock ${v.name}: ${v.mode === null ? 'free' : `held ${v.mode}`}`;
  if (rows.length === 0) return head;
  return `${head}\n${table(rows, [['role', (r) => r.role], ['owner', (r) => r.owner],
    ['mode', (r) => r.mode], ['token', (r) => r.token],
    ['expires in', (r) => (r.expiresAt === undefined ? undefined : expiresIn(r.expiresAt))]])}`;
}

function listTable(l: { locks: LockView[] }): string {
  if (l.locks.length === 0) return '(no lock is held or waited on)';
  return table(l.locks, [['name', (v) => v.name], ['mode', (v) => v.mode],
    ['holders', (v) => v.holders.map((h) => `${h.owner} (token ${h.token})`).join(', ')],
    ['waiters', (v) => v.waiters.length]]);
}

const modeOption = (): Option => new Option('--mode <mode>', 'exclusive or shared')
  .choices(['exclusive', 'shared']).default('exclusive');

export function addLockCommands(program: Command): void {
  const lock = program.command('lock').description('acquire, release, renew and inspect locks; ' +
    'run a command under a lock');
  const out = (c: Command) => globalOptions(c).output;
  lock.command('acquire <name>').description('acquire a lock (its lease is not renewed: use ' +
    '`lock run` to hold it while a command runs)')
    .requiredOption('--owner <owner>', 'who holds it')
    .addOption(modeOption())
    .option('--ttl <duration>', 'lease (e.g. 30s; ms when no unit)', duration, 30_000)
    .option('--wait <duration>', 'wait up to this long for the lock', duration, 0)
    .action((name: string, o: { owner: string; mode: 'exclusive' | 'shared'; ttl: number;
      wait: number }, c: Command) => run<Grant>(out(c), () => clientFor(c, 'lock').locks
      .grant(name, { owner: o.owner, mode: o.mode, ttlMs: o.ttl, waitMs: o.wait }),
    (g) => table([g], GRANT_COLUMNS)));
  lock.command('release <name>').description('release a lock')
    .requiredOption('--owner <owner>', 'who holds it')
    .option('--token <n>', 'release only the grant with this fencing token', int)
    .action((name: string, o: { owner: string; token?: number }, c: Command) =>
      run(out(c), () => clientFor(c, 'lock').locks.release(name, o.owner, o.token)));
  lock.command('renew <name>').description('extend the lease')
    .requiredOption('--owner <owner>', 'who holds it')
    .option('--ttl <duration>', 'new lease (default: the grant\'s own)', duration)
    .action((name: string, o: { owner: string; ttl?: number }, c: Command) =>
      run<{ expiresAt: number }>(out(c), () => clientFor(c, 'lock').locks.renew(name, o.owner,
        o.ttl), (r) => `renewed: expires in ${expiresIn(r.expiresAt)}`));
  lock.command('show <name>').description('holders and waiters of a lock')
    .action((name: string, _o: unknown, c: Command) =>
      run(out(c), () => clientFor(c, 'lock').locks.get(name), showTable));
  lock.command('list').description('held or waited-on locks')
    .option('--prefix <p>', 'only names with this prefix', '')
    .action((o: { prefix: string }, c: Command) =>
      run(out(c), () => clientFor(c, 'lock').locks.list(o.prefix), listTable));
  addLockRun(lock);
}
