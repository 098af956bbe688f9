// `dsync queue …`: the queue service at a terminal, through the SDK. Data on stdout in the
// chosen format (-o table|json|yaml), errors on stderr with what to do next, exit code 1 when
// the cluster refused or could not do it and 2 for usage errors (report.ts). `tail` prints
// one record per message as it arrives (NDJSON with -o json).
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, type Command } from 'commander';
import {
  NotFoundError, type QueueMessage, type Queues, type TopicView,
} from '../client/index.js';
import { clientFor, duration, globalOptions, int } from './options.js';
import { cellText, fields, printRecord, table, type Column } from './output.js';
import {
  DEFAULT_FILE_BATCH, DEFAULT_FILE_IN_FLIGHT, FILE_IN_FLIGHT_MAX, publishFile,
} from './queue-file.js';
import { reportErrors, run, usageError } from './report.js';

/** Messages per receive of `tail`. */
const TAIL_RECEIVE_MAX = 100;
/** Long poll of `tail` (the API's longest). */
const TAIL_WAIT_MS = 20_000;

function intIn(lo: number, hi: number): (v: string) => number {
  return (v) => {
    const n = int(v);
    if (n < lo || n > hi) throw new InvalidArgumentError(`must be in [${lo}, ${hi}]`);
    return n;
  };
}

/** A body as typed: JSON when it parses, else the text as a string. */
function bodyOf(raw: string): unknown {
  try { return JSON.parse(raw) as unknown; } catch { return raw; }
}

const MESSAGE_COLUMNS: readonly Column<QueueMessage>[] = [
  ['id', (m) => m.id], ['key', (m) => m.key], ['deliveries', (m) => m.deliveries],
  ['body', (m) => m.body], ['receipt', (m) => m.receipt],
];

function statsTable(v: TopicView): string {
  const head = fields({ topic: v.topic, partition: v.partition, leader: v.leader, dlq: v.dlq });
  const groups = Object.entries(v.groups);
  if (groups.length === 0) return `${head}\n(no consumer group yet: a receive creates one)`;
  return `${head}\n\n${table(groups, [['group', ([g]) => g], ['ready', ([, c]) => c.ready],
    ['inflight', ([, c]) => c.inflight], ['delayed', ([, c]) => c.delayed],
    ['parked', ([, c]) => c.parked]])}`;
}

/** One message of `tail` as a table line. */
function tailLine(m: QueueMessage): string {
  return `${m.id}  ${m.key ?? '-'}  ${m.deliveries}  ${cellText(m.body)}`;
}

interface PublishFlags {
  key?: string; dedupId?: string; delay?: number; file?: string; bodies: boolean;
  batch: number; inFlight: number;
}

function addPublishCommand(queue: Command, queues: (c: Command) => Queues): void {
  queue.command('publish <topic> [body]')
    .description('publish one message (body is JSON; plain text is a string), or a file of ' +
      'one JSON message per line')
    .option('--key <key>', 'FIFO key (with --file: for lines without one)')
    .option('--dedup-id <id>', 'a re-publish with this id within 5 minutes is a no-op')
    .option('--delay <duration>', 'visible only after this long (e.g. 30s)', duration)
    .option('--file <file>', 'publish every line of this file ("-" reads stdin): ' +
      '{"body": …, "key"?, "dedupId"?, "delayMs"?} per line')
    .option('--bodies', 'with --file: each line is a message body', false)
    .option('--batch <n>', 'with --file: messages per request', intIn(1, 1000),
      DEFAULT_FILE_BATCH)
    .option('--in-flight <n>', 'with --file: requests at once (more than 1 does not keep the ' +
      'file\'s order)', intIn(1, FILE_IN_FLIGHT_MAX), DEFAULT_FILE_IN_FLIGHT)
    .action((topic: string, body: string | undefined, o: PublishFlags, c: Command) =>
      run(globalOptions(c).output, () => {
        if ((body === undefined) === (o.file === undefined)) {
          throw usageError('dsync queue publish: give a message body or --file, not both ' +
            'and not neither');
        }
        if (o.file === undefined) {
          return queues(c).publish(topic, bodyOf(body ?? ''), {
            ...(o.key === undefined ? {} : { key: o.key }),
            ...(o.dedupId === undefined ? {} : { dedupId: o.dedupId }),
            ...(o.delay === undefined ? {} : { delayMs: o.delay }) });
        }
        if (o.dedupId !== undefined) {
          throw usageError('dsync queue publish --file: put a "dedupId" on each line instead ' +
            'of --dedup-id');
        }
        return publishFile(queues(c), topic, { file: o.file, bodies: o.bodies, batch: o.batch,
          inFlight: o.inFlight, ...(o.key === undefined ? {} : { key: o.key }),
          ...(o.delay === undefined ? {} : { delayMs: o.delay }) });
      }));
}

export function addQueueCommands(program: Command): void {
  const queue = program.command('queue').description('publish, receive, ack and follow ' +
    'queue topics');
  const out = (c: Command) => globalOptions(c).output;
  const queues = (c: Command): Queues => clientFor(c, 'queue').queues;
  addPublishCommand(queue, queues);
  queue.command('receive <topic>').description('receive messages (each leased to you until ' +
    'acked or its visibility runs out)')
    .option('--group <group>', 'consumer group', 'default')
    .option('--max <n>', 'most messages', intIn(1, 1000), 1)
    .option('--visibility <duration>', 'lease (default: the topic\'s)', duration)
    .option('--wait <duration>', 'long poll: wait up to this long for a message', duration, 0)
    .action((topic: string, o: { group: string; max: number; visibility?: number;
      wait: number }, c: Command) => run<{ messages: QueueMessage[] }>(out(c), async () =>
      ({ messages: await queues(c).receive(topic, { group: o.group, max: o.max, waitMs: o.wait,
        ...(o.visibility === undefined ? {} : { visibilityMs: o.visibility }) }) }),
    (r) => (r.messages.length === 0 ? '(no message)' : table(r.messages, MESSAGE_COLUMNS))));
  queue.command('ack <topic> <receipts...>').description('acknowledge deliveries by receipt')
    .option('--group <group>', 'consumer group', 'default')
    .action((topic: string, receipts: string[], o: { group: string }, c: Command) =>
      run(out(c), async () => ({ acked: await queues(c).ack(topic, receipts,
        { group: o.group }) })));
  queue.command('nack <topic> <receipts...>').description('give deliveries back')
    .option('--group <group>', 'consumer group', 'default')
    .option('--delay <duration>', 'delivered again after this long', duration)
    .action((topic: string, receipts: string[], o: { group: string; delay?: number },
      c: Command) => run(out(c), async () => ({ nacked: await queues(c).nack(topic, receipts,
      { group: o.group, ...(o.delay === undefined ? {} : { delayMs: o.delay }) }) })));
  addTopicCommands(queue, queues);
  addTailCommand(queue, queues);
}

function addTopicCommands(queue: Command, queues: (c: Command) => Queues): void {
  const out = (c: Command) => globalOptions(c).output;
  queue.command('stats <topic>').description('partition, leader, ready and in-flight per ' +
    'group, dead letters')
    .action((topic: string, _o: unknown, c: Command) => run<TopicView>(out(c), async () =>
      (await queues(c).get(topic)) ?? Promise.reject(new NotFoundError(`topic ` +
        `${JSON.stringify(topic)} does not exist: it is created by its first publish or by ` +
        '`dsync queue config`', { status: 0 })), statsTable));
  queue.command('config <topic>').description('create a topic or change its config')
    .option('--max-deliveries <n>', 'deliveries before the DLQ', intIn(1, 1000))
    .option('--visibility <duration>', 'default lease of a receive', duration)
    .option('--retention <duration>', 'how long messages are kept (e.g. 90m; ms when no unit)',
      duration)
    .action((topic: string, o: { maxDeliveries?: number; visibility?: number;
      retention?: number }, c: Command) => run(out(c), () => queues(c).put(topic, {
      ...(o.maxDeliveries === undefined ? {} : { maxDeliveries: o.maxDeliveries }),
      ...(o.visibility === undefined ? {} : { visibilityMs: o.visibility }),
      ...(o.retention === undefined ? {} : { retentionMs: o.retention }) })));
  queue.command('redrive <topic>').description('move dead letters of TOPIC.dlq back to TOPIC')
    .option('--max <n>', 'most messages to move (default all)', intIn(1, 1_000_000))
    .action((topic: string, o: { max?: number }, c: Command) => run(out(c), async () =>
      ({ moved: await queues(c).redrive(topic, o.max === undefined ? {} : { max: o.max }) })));
}

interface TailFlags { group?: string; ack: boolean; count?: number; visibility?: number }

function addTailCommand(queue: Command, queues: (c: Command) => Queues): void {
  queue.command('tail <topic>')
    .description('follow a topic live: each message as it arrives, in a consumer group of ' +
      'its own (which starts with the messages the topic still retains); Ctrl-C stops')
    .option('--group <group>', 'consumer group (default: tail-<random>, made for this run ' +
      'and kept by the topic like any group)')
    .option('--no-ack', 'leave messages unacked: they come back after their visibility')
    .option('--count <n>', 'stop after this many messages', intIn(1, 1_000_000_000))
    .option('--visibility <duration>', 'lease of each delivery (default: the topic\'s)',
      duration)
    .action(async (topic: string, o: TailFlags, c: Command) => {
      try {
        await tail(queues(c), topic, o, globalOptions(c).output);
      } catch (err) {
        process.exitCode = reportErrors([err]);
      }
    });
}

async function tail(q: Queues, topic: string, o: TailFlags,
  format: 'table' | 'json' | 'yaml'): Promise<void> {
  const group = o.group ?? `tail-${randomBytes(4).toString('hex')}`;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.stderr.write(`following ${topic} as group ${group}${o.ack ? '' : ' (not acking)'}; ` +
    'Ctrl-C stops\n');
  let printed = 0;
  try {
    while (!stop.signal.aborted && (o.count === undefined || printed < o.count)) {
      const max = Math.min(TAIL_RECEIVE_MAX, (o.count ?? Infinity) - printed);
      let messages: QueueMessage[];
      try {
        messages = await q.receive(topic, { group, max, waitMs: TAIL_WAIT_MS,
          signal: stop.signal, ...(o.visibility === undefined ? {} : {
            visibilityMs: o.visibility }) });
      } catch (err) {
        if (stop.signal.aborted) break;
        throw err;
      }
      for (const m of messages) printRecord(format, m, tailLine(m));
      printed += messages.length;
      // Acked even when Ctrl-C came meanwhile: they were printed.
      if (o.ack && messages.length > 0) await q.ack(topic, messages, { group });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
