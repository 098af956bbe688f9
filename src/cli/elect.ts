// `dsync elect NAME --proposal VALUE [-- CMD]` and `dsync elect NAME --listen` (etcdctl
// `elect`): campaign for leadership of NAME and hold it until Ctrl-C, or while CMD runs; or
// print every change of leader. The leadership term is the lock's fencing token.
import type { Command } from 'commander';
import { AbortError, type Leader, type Leadership } from '../client/index.js';
import { DEFAULT_GRACE_MS, runUnderLease } from './lock-run.js';
import { clientFor, duration, globalOptions } from './options.js';
import { printRecord, type OutputFormat } from './output.js';
import { elapsed, startProgress, type Progress } from './progress.js';
import { EXIT_LOST, EXIT_OK, reportErrors, usageError } from './report.js';

interface ElectOptions {
  readonly proposal?: string;
  readonly listen?: boolean;
  readonly ttl: number;
  readonly grace: number;
}

const leaderLine = (name: string, l: Leader | null): string => (l === null
  ? `${name}: no leader` : `${name}: leader ${l.value} (term ${l.term})`);

export function addElectCommand(program: Command): void {
  program.command('elect <name>')
    .description('campaign to lead NAME with --proposal (holding it until Ctrl-C, or while ' +
      'the command after -- runs), or print every change of leader with --listen')
    .argument('[command...]', 'run this while leader (after --); it gets DSYNC_LOCK_TOKEN')
    .option('--proposal <value>', 'what this candidate proclaims when it leads')
    .option('--listen', 'print the leader and every change of it, until Ctrl-C')
    .option('--ttl <duration>', 'lease of the leadership: how long a crashed leader blocks ' +
      'the next', duration, 10_000)
    .option('--grace <duration>', 'after a lost leadership, SIGKILL the command this long ' +
      'after SIGTERM', duration, DEFAULT_GRACE_MS)
    .action(async (name: string, argv: string[], o: ElectOptions, c: Command) => {
      if ((o.proposal === undefined) === (o.listen !== true)) {
        process.exitCode = reportErrors([usageError('pass either --proposal VALUE or --listen')]);
        return;
      }
      process.exitCode = o.listen === true ? await listen(c, name)
        : await campaign(c, name, o.proposal!, argv, o);
    });
}

/** Aborts on the first Ctrl-C or SIGTERM. */
function interruption(): { signal: AbortSignal; done(): void } {
  const ac = new AbortController();
  const on = (): void => ac.abort(new Error('interrupted'));
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  return { signal: ac.signal, done: () => { process.off('SIGINT', on); process.off('SIGTERM', on); } };
}

async function listen(c: Command, name: string): Promise<number> {
  const client = clientFor(c, 'lock', { longRunning: true });
  const format = globalOptions(c).output;
  const stop = interruption();
  try {
    for await (const l of client.election(name).observe({ signal: stop.signal })) {
      printRecord(format, { election: name, leader: l }, leaderLine(name, l));
    }
    return EXIT_OK;
  } finally {
    stop.done();
    await client.close();
  }
}

async function campaign(c: Command, name: string, value: string, argv: string[],
  o: ElectOptions): Promise<number> {
  const client = clientFor(c, 'lock', { longRunning: true });
  const format: OutputFormat = globalOptions(c).output;
  const stop = interruption();
  let leader: Leader | null = null;
  const started = performance.now();
  let progress: Progress | null = null;
  const line = (): string => `dsync: campaigning for ${name} as ${value}; ` +
    `${leader === null ? 'no leader' : `leader is ${leader.value} (term ${leader.term})`}, ` +
    `waiting for ${elapsed(performance.now() - started)}; Ctrl-C gives up`;
  let won: Leadership;
  try {
    won = await client.election(name).campaign(value, { ttlMs: o.ttl, signal: stop.signal,
      onWaiting: (l) => {
        leader = l;
        if (progress === null) progress = startProgress(line);
        else progress.update();
      } });
  } catch (err) {
    stop.done();
    await client.close();
    if (err instanceof AbortError) return EXIT_OK;
    return reportErrors([err]);
  } finally {
    (progress as Progress | null)?.stop();
  }
  printRecord(format, { election: name, elected: true, ...won.toJSON() },
    `${name}: elected as ${value} (term ${won.term})`);
  try {
    if (argv.length > 0) {
      stop.done();
      return await runUnderLease(won.lease, argv, { DSYNC_ELECTION: name,
        DSYNC_LOCK_TOKEN: String(won.term), DSYNC_LOCK_OWNER: won.lease.owner }, o.grace);
    }
    return await holdUntilInterrupted(won, stop.signal);
  } finally {
    stop.done();
    await client.close();
  }
}

/** Leads until Ctrl-C (then resigns: the next candidate takes over) or until it is lost. */
async function holdUntilInterrupted(won: Leadership, interrupted: AbortSignal): Promise<number> {
  const how = await new Promise<'interrupted' | 'lost'>((resolve) => {
    if (interrupted.aborted) resolve('interrupted');
    if (!won.isLeader) resolve('lost');
    interrupted.addEventListener('abort', () => resolve('interrupted'), { once: true });
    won.once('lost', (err) => { reportErrors([err]); resolve('lost'); });
  });
  if (how === 'lost') return EXIT_LOST;
  await won.resign().catch((err: unknown) => { reportErrors([err]); });
  return EXIT_OK;
}
