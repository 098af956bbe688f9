// `dsync member list|add|remove`: the Raft membership of the lock service (/v1/cluster).
// `add` makes a node (started with --join) a learner; the leader promotes it to voter once it
// has caught up, which `add --wait` follows with a progress line.
import type { Command } from 'commander';
import type { ClusterMember, ClusterView, DsyncClient } from '../client/index.js';
import { UnavailableError } from '../client/index.js';
import { clientFor, duration, globalOptions } from './options.js';
import { print, table } from './output.js';
import { elapsed, startProgress } from './progress.js';
import { reportErrors } from './report.js';

/** How often `add --wait` looks at the membership, ms. */
const WATCH_INTERVAL_MS = 250;

export function membersText(v: ClusterView): string {
  const lag = (m: ClusterMember): string => (m.id === v.leader ? '0' : m.match === null ? '?'
    : String(Math.max(0, v.commitIndex - m.match)));
  return `${table(v.members, [['id', (m) => m.id],
    ['role', (m) => (m.id === v.leader ? `${m.role} (leader)` : m.role)],
    ['url', (m) => m.url], ['match', (m) => m.match], ['behind', lag]])}\n` +
    `term ${v.term}, commit ${v.commitIndex}`;
}

export function addMemberCommands(program: Command): void {
  const member = program.command('member')
    .description('list, add and remove members of the lock service\'s Raft group');
  const out = (c: Command) => globalOptions(c).output;
  const act = (c: Command, f: (client: DsyncClient) => Promise<ClusterView>) => async () => {
    const client = clientFor(c, 'lock', { longRunning: c.opts<{ wait?: number }>().wait !==
      undefined });
    try {
      print(out(c), await f(client), membersText);
    } catch (err) {
      process.exitCode = reportErrors([err]);
    } finally {
      await client.close();
    }
  };
  member.command('list').description('voters and learners, the leader, how far behind each is')
    .action((_o: unknown, c: Command) => act(c, (cl) => cl.locks.members.list())());
  member.command('add <id>').description('add a node of the peer list (started with --join) ' +
    'as a learner; the leader promotes it to voter once it has caught up')
    .option('--wait <duration>', 'wait up to this long until it is a voter, with progress',
      duration)
    .action((id: string, o: { wait?: number }, c: Command) => act(c, async (cl) => {
      const v = await cl.locks.members.addLearner(id);
      return o.wait === undefined ? v : untilVoter(cl, id, o.wait);
    })());
  member.command('remove <id>').description('remove a voter or learner')
    .action((id: string, _o: unknown, c: Command) =>
      act(c, (cl) => cl.locks.members.remove(id))());
}

/** Polls until `id` is a voter, printing where it stands; UnavailableError at the deadline. */
async function untilVoter(client: DsyncClient, id: string, waitMs: number):
  Promise<ClusterView> {
  const started = performance.now();
  let v = await client.locks.members.list();
  const progress = startProgress(() => {
    const m = v.members.find((x) => x.id === id);
    const where = m === undefined ? 'not a member' : m.role === 'voter' ? 'voter'
      : `learner, ${m.match === null ? 'no reply from it yet' : `at ${m.match} of ${v.commitIndex}`}`;
    return `dsync: ${id}: ${where} (${elapsed(performance.now() - started)})`;
  });
  try {
    while (!v.voters.includes(id)) {
      if (performance.now() - started > waitMs) {
        throw new UnavailableError(`${id} is still not a voter after ${elapsed(waitMs)}: is ` +
          'it running, and started with --join? Its log says why it does not catch up', {
          status: 0 });
      }
      await new Promise((r) => setTimeout(r, WATCH_INTERVAL_MS));
      v = await client.locks.members.list();
    }
    return v;
  } finally {
    progress.stop();
  }
}
