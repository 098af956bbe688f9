// The `dsync` command line. Client commands go through the SDK; `-o`, `--endpoints` and
// `--timeout` are accepted by every one of them, before or after the subcommand.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { addCacheCommands } from './cache-commands.js';
import { addCompletionCommand } from './completion.js';
import { runDev } from './dev.js';
import { addElectCommand } from './elect.js';
import { addLockCommands } from './lock-commands.js';
import { addQueueCommands } from './queue-commands.js';
import { addMemberCommands } from './member.js';
import { addGlobalOptions, DEFAULT_DEV_DIR } from './options.js';
import { addServeCommand } from './serve.js';
import { EXIT_USAGE, reportErrors } from './report.js';
import { addStatusCommand } from './status.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

const program = new Command('dsync')
  .description('dsync: Raft-replicated locks, a partitioned queue and a coherent cache')
  .version(pkg.version)
  .showHelpAfterError('(run `dsync --help` for the list of commands)')
  // Parse errors throw instead of exiting, so that they get the usage exit code (below).
  // Set before any subcommand is added: subcommands inherit it.
  .exitOverride()
  .configureHelp({ showGlobalOptions: true });
addGlobalOptions(program);

addServeCommand(program);

program.command('dev')
  .description('start a complete local system on loopback (3 nodes per service)')
  .option('--dir <dir>', 'where data, logs and cluster.json go', DEFAULT_DEV_DIR)
  .option('--services <list>', 'which services to start', 'lock,queue,cache')
  .option('--port-offset <n>', 'add n to every default port (run a second system beside)', '0')
  .action(async (o: { dir: string; services: string; portOffset: string }) => {
    const portOffset = Number(o.portOffset);
    if (!Number.isSafeInteger(portOffset) || portOffset < 0 || portOffset > 50_000) {
      program.error('--port-offset must be an integer from 0 to 50000', { exitCode: 2 });
    }
    const services = o.services.split(',').map((s) => s.trim()) as Array<'lock' | 'queue' | 'cache'>;
    for (const s of services) {
      if (!['lock', 'queue', 'cache'].includes(s)) {
        program.error(`unknown service "${s}": choose from lock, queue, cache`, { exitCode: 2 });
      }
    }
    await runDev({ dir: o.dir, services, portOffset, binPath: join(root, 'bin', 'dsync.js') });
  });

addStatusCommand(program);
addMemberCommands(program);
addLockCommands(program);
addElectCommand(program);
addQueueCommands(program);
addCacheCommands(program);
addCompletionCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has printed its message. Help and --version exit 0; our own program.error()
    // calls carry their code; every parse error (unknown option, missing argument, bad
    // value, no command at all) is a usage error.
    process.exitCode = err.exitCode === 0 ? 0
      : err.code === 'commander.error' ? err.exitCode : EXIT_USAGE;
  } else {
    process.exitCode = reportErrors([err]);
  }
}
